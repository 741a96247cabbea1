//! Client tunables.

use crate::backoff::BackoffPolicy;
use crate::codec::DEFAULT_MAX_FRAME;
use crate::liveness::Heartbeat;
use crate::password::Password;
use crate::secure::{Fingerprint, PublicKey};
use crate::wire::UserName;
use std::time::Duration;

/// Everything a client is told at construction: who it is, whom it trusts, and the timing and
/// bounds that suit a LAN. Start from [`ClientConfig::new`] and change what differs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The server's pinned key, from the profile. `None` (and no `server_fingerprint`):
    /// trust on first use (the key met is reported with
    /// [`Event::ServerKeyLearned`](super::Event) and kept for the reconnects of this client);
    /// `Some`: any other key is refused before anything is sent.
    pub server_key: Option<PublicKey>,
    /// Accept only a server whose key has this fingerprint (what a user was told out of band,
    /// `--server-key`); checked like `server_key`.
    pub server_fingerprint: Option<Fingerprint>,
    /// The keys of peers met before (from the profile), to notice when one changes.
    pub peer_keys: Vec<(UserName, PublicKey)>,
    /// The account to log in as.
    pub user: UserName,
    /// Sent to the server at a password login, inside the encrypted channel, only there.
    /// Unused (and best left empty) with `key_login`. Forgotten once a login enrolled the key.
    pub password: Password,
    /// Log in with the profile key alone (`ClientFrame::KeyLogin`): the key is enrolled, so
    /// no password is sent. Turned on by the core itself once a password login succeeds
    /// (that login enrolled the key), so reconnects cost the server a lookup, not a hash.
    pub key_login: bool,
    /// Create the account on first login (if the server allows it).
    pub register: bool,
    /// The port this client listens on for peers; advertised to the server at login.
    pub p2p_port: u16,
    /// Open direct channels to peers. Off means everything goes through the server relay: the
    /// core never asks to dial, closes accepted links at once, and advertises no P2P port.
    /// [`Client::set_direct_channels`](super::Client::set_direct_channels) changes it later.
    pub direct_channels: bool,
    /// Heartbeat timing on the server link and every peer link.
    pub heartbeat: Heartbeat,
    /// A peer link must finish its authenticated setup within this.
    pub setup_timeout: Duration,
    /// The server must answer hello and login within this.
    pub login_timeout: Duration,
    /// A sent message not acknowledged within this is sent again on the current route.
    pub ack_timeout: Duration,
    /// A message the server stored for an offline recipient is offered again after this, in
    /// case the recipient's acknowledgement was lost on its way back.
    pub stored_retry: Duration,
    /// A gap in a sender's messages left open this long is skipped and the messages behind it
    /// released: its sender ended before the missing one got anywhere.
    pub gap_timeout: Duration,
    /// Connect to the server again by itself after losing it, with `reconnect`'s backoff.
    /// Off, for a host that decides itself (its own policy, a "reconnect" button): the client
    /// then waits for [`Client::reconnect`](super::Client::reconnect).
    pub auto_reconnect: bool,
    /// How long to wait between attempts to reach the server.
    pub reconnect: BackoffPolicy,
    /// How long to wait between attempts to open a direct channel to a peer.
    pub redial: BackoffPolicy,
    /// The largest frame sent or accepted, checked from the length prefix.
    pub max_frame: usize,
    /// Bytes queued or unwritten per link before it is dropped as a slow consumer.
    pub max_pending_output: usize,
    /// The longest chat message `send` takes, and a peer may send (the server has its own).
    pub max_text_len: usize,
    /// Unacknowledged messages per recipient; `send` refuses more.
    pub max_outbox: usize,
    /// Out-of-order messages held per sender while a gap fills.
    pub max_held: usize,
    /// Peer links open at once (including ones still in setup).
    pub max_links: usize,
    /// Direct channels held at once: links in any state, dialled or accepted, plus dials the
    /// host is still connecting. While the online peers fit under it, every one is dialled
    /// (the smaller name of a pair dials); beyond it channels open on demand, close after
    /// `channel_idle`, and the least recently used idle one makes room for a new one. So a
    /// client on a big LAN holds a few sockets and heartbeats, not one per online user.
    pub max_direct_channels: usize,
    /// With more online peers than `max_direct_channels`, a channel that carried nothing but
    /// heartbeats for this long is closed in order (the peer is told it is idle, not lost),
    /// and a peer talked to within this long still wants its channel (redialled if lost).
    pub channel_idle: Duration,
    /// Bytes a receiver lets a sender have in flight per transfer (and so buffers at most).
    /// Enough to keep a direct transfer streaming while the receiver's disk answers: two of the
    /// smol adapter's write-behind stretches (8 MiB each), since its disk lane waits for one
    /// stretch to reach the disk while it writes the next. At 4 MiB a 512 MiB direct transfer
    /// stalled on each wait (772–797 MB/s against 830–969 MB/s at 16 MiB, side by side).
    pub file_window: u64,
    /// File data all incoming transfers together may have in flight: a transfer accepted
    /// while others are receiving gets what is left of this as its window (never less than
    /// [`MIN_FILE_WINDOW`]), so many transfers at once do not each buffer a full window.
    pub max_file_buffered: u64,
    /// Unacknowledged bytes a sender lets go through the server per transfer, whatever the
    /// receiver's credit: the relay holds a recipient's file chunks back once 3 MiB of its
    /// output is waiting (`FileRelayLimit::recipient_high_water`), so sending more only gets
    /// chunks dropped and sent again. Less than that starves the pipe: the receiver tells how
    /// far it got only every 256 KiB written, so 1 MiB left a relayed transfer waiting for
    /// acknowledgements with every process below 55 % of a core (13 % slower, measured).
    pub file_relayed_in_flight: u64,
    /// A transfer whose other side has been silent this long is offered again, which makes
    /// the receiver say where it stands.
    pub file_retry: Duration,
    /// An accepted incoming transfer whose sender has been silent this long (no chunk, no
    /// repeated offer: the sender is gone or unreachable) fails as stalled. Several
    /// `file_retry`s, since a live sender that hears nothing offers again every `file_retry`.
    pub file_stall: Duration,
    /// Active transfers per direction.
    pub max_transfers: usize,
    /// File chunks are queued on a link only while less than this is waiting to be written,
    /// so a chat message never waits behind more than this much file data.
    pub file_high_water: usize,
    /// The id of the first message this client sends; later ones count up from it. A driver
    /// that keeps a history across runs starts past the ids it used before, so one sender's
    /// ids stay unique across its restarts and a recipient can tell a message sent again
    /// (after the recipient crashed before acknowledging it) from a new one.
    pub first_message_id: u64,
}

/// The smallest window a transfer is accepted with, however many others are receiving: a
/// few chunk reads' worth, enough to keep it moving.
pub const MIN_FILE_WINDOW: u64 = 1024 * 1024;

impl ClientConfig {
    /// The defaults for `user`, listening for peers on `p2p_port`, trusting the server's key
    /// on first use.
    pub fn new(user: UserName, password: impl Into<String>, p2p_port: u16) -> Self {
        ClientConfig {
            server_key: None,
            server_fingerprint: None,
            peer_keys: Vec::new(),
            user,
            password: Password::new(password),
            key_login: false,
            register: false,
            p2p_port,
            direct_channels: true,
            heartbeat: Heartbeat::default(),
            setup_timeout: Duration::from_secs(5),
            login_timeout: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(10),
            stored_retry: Duration::from_secs(60),
            gap_timeout: Duration::from_secs(60),
            auto_reconnect: true,
            reconnect: BackoffPolicy {
                first: Duration::from_millis(500),
                max: Duration::from_secs(15),
            },
            redial: BackoffPolicy {
                first: Duration::from_secs(1),
                max: Duration::from_secs(10),
            },
            max_frame: DEFAULT_MAX_FRAME,
            max_pending_output: 1024 * 1024,
            max_text_len: 16 * 1024,
            max_outbox: 1000,
            max_held: 256,
            max_links: 1024,
            max_direct_channels: 64,
            channel_idle: Duration::from_secs(180),
            first_message_id: 1,
            file_window: 16 * 1024 * 1024,
            max_file_buffered: 64 * 1024 * 1024,
            file_relayed_in_flight: 3 * 1024 * 1024,
            file_retry: Duration::from_secs(10),
            file_stall: Duration::from_secs(60),
            max_transfers: 64,
            file_high_water: 128 * 1024,
        }
    }
}
