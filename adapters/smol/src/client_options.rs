//! How to start a [`Client`](crate::Client): the server, the account, the P2P listener.

use crate::{DiskFiles, FileHost};
use breeze_core::client::ClientConfig;
use breeze_core::liveness::Heartbeat;
use breeze_core::secure::{Fingerprint, IdentityKey, PublicKey};
use breeze_core::wire::UserName;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Adjusts the core's configuration beyond what [`ClientOptions`] names (tests shorten timeouts).
pub type ConfigTweak = Arc<dyn Fn(&mut ClientConfig) + Send + Sync>;

#[derive(Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// The Breeze server.
    pub server: SocketAddr,
    pub user: UserName,
    /// For a password login (enrolment); leave empty with `key_login`.
    pub password: String,
    /// Log in with the profile key alone: the profile is enrolled (an earlier password login
    /// bound its key), so no password is needed or sent.
    pub key_login: bool,
    /// Create the account on first login (if the server allows it).
    pub register: bool,
    /// Where to listen for peers. The default, `0.0.0.0:0`, listens on every interface on a
    /// port the OS picks; the server tells peers that port with the address it sees us on.
    pub p2p_listen: SocketAddr,
    /// Open direct channels to peers; off sends everything through the server relay.
    pub direct_channels: bool,
    pub heartbeat: Heartbeat,
    /// How long a TCP connect (to the server or a peer) may take before it counts as failed.
    pub connect_timeout: Duration,
    /// Applied last to the core's configuration.
    pub tweak: Option<ConfigTweak>,
    /// The profile's static key. `None` (the default) makes up a key for this client only, a
    /// fresh profile every run; an application with a profile sets the one it keeps.
    pub identity: Option<IdentityKey>,
    /// The server key pinned in the profile (or given by the user); `None` trusts the first.
    pub server_key: Option<PublicKey>,
    /// Accept only a server whose key has this fingerprint (given by the user).
    pub server_fingerprint: Option<Fingerprint>,
    /// Peer keys remembered in the profile.
    pub peer_keys: Vec<(UserName, PublicKey)>,
    /// Reads offered files and writes received ones. The default is a fresh [`DiskFiles`];
    /// share one with the application to learn where received files landed.
    pub files: Arc<dyn FileHost>,
}

impl ClientOptions {
    pub fn new(server: SocketAddr, user: UserName, password: impl Into<String>) -> ClientOptions {
        ClientOptions {
            server,
            user,
            password: password.into(),
            key_login: false,
            register: false,
            p2p_listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            direct_channels: true,
            heartbeat: Heartbeat::default(),
            connect_timeout: Duration::from_secs(3),
            tweak: None,
            identity: None,
            server_key: None,
            server_fingerprint: None,
            peer_keys: Vec::new(),
            files: Arc::new(DiskFiles::new()),
        }
    }

    /// The core's configuration, advertising `p2p_port` (the port actually bound).
    pub fn core_config(&self, p2p_port: u16) -> ClientConfig {
        let mut config = ClientConfig::new(self.user.clone(), self.password.clone(), p2p_port);
        config.register = self.register;
        config.key_login = self.key_login;
        config.server_key = self.server_key;
        config.server_fingerprint = self.server_fingerprint;
        config.peer_keys = self.peer_keys.clone();
        config.direct_channels = self.direct_channels;
        config.heartbeat = self.heartbeat;
        if let Some(tweak) = &self.tweak {
            tweak(&mut config);
        }
        config
    }
}

/// Never prints the password.
impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("server", &self.server)
            .field("user", &self.user)
            .field("key_login", &self.key_login)
            .field("register", &self.register)
            .field("p2p_listen", &self.p2p_listen)
            .field("direct_channels", &self.direct_channels)
            .field("heartbeat", &self.heartbeat)
            .field("connect_timeout", &self.connect_timeout)
            .field("tweak", &self.tweak.is_some())
            .field("identity", &self.identity)
            .field("server_key", &self.server_key)
            .field("server_fingerprint", &self.server_fingerprint)
            .field("files", &"dyn FileHost")
            .finish_non_exhaustive()
    }
}
