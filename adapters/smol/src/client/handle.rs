//! The embedding API of the client driver: start a client, send, offer and accept files, watch
//! events, log out. Every method is a request to the owner task (`owner_loop.rs`) over a
//! channel.

use super::commands::{Command, FileCommand, PeerStatus};
use super::owner_loop;
use crate::client_options::ClientOptions;
use crate::file_request::FileRequestError;
use crate::seed::os_seed;
use crate::shared_file::SharedFile;
use async_channel::{Receiver, Sender};
use breeze_core::client::{Direction, Event, FileError, SendError};
use breeze_core::wire::{MessageId, TransferId, UserName};
use futures_lite::Stream;
use smol::net::TcpListener;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A running Breeze client: a handle on the task that owns the client core.
///
/// Clones share the same client. The client logs out by itself once every handle is dropped.
/// The handle's methods are plain futures over channels: they work from any executor; the
/// driver's own tasks run on smol's global executor.
#[derive(Clone)]
pub struct Client {
    pub(super) commands: Sender<Command>,
    events: Receiver<Event>,
    user: UserName,
    p2p_addr: Option<SocketAddr>,
}

impl Client {
    /// Binds the P2P listener (to learn the port to advertise), unless direct channels are
    /// off, then starts connecting to the server and logging in in the background. Watch
    /// [`events`](Client::events) for the outcome.
    pub fn start(options: ClientOptions) -> io::Result<Client> {
        let listener = if options.direct_channels {
            let bound = std::net::TcpListener::bind(options.p2p_listen)?;
            Some(TcpListener::try_from(bound)?)
        } else {
            // Nothing to accept: no port is opened, and the login says so (port 0).
            None
        };
        let p2p_addr = listener.as_ref().map(TcpListener::local_addr).transpose()?;
        let config = options.core_config(p2p_addr.map_or(0, |addr| addr.port()));
        let identity = match &options.identity {
            Some(identity) => identity.clone(),
            None => breeze_core::secure::IdentityKey::from_secret(os_seed()?),
        };
        let core = breeze_core::Client::new(config, identity, os_seed()?, Instant::now());
        let (commands, commands_rx) = async_channel::bounded(64);
        // Unbounded: the owner must never wait for the application (which may be waiting for
        // the owner), and dropping an event would lie to the user. The application is local
        // and drains it; the network-facing queues are all bounded.
        let (events_tx, events) = async_channel::unbounded();
        let user = options.user.clone();
        smol::spawn(owner_loop::run(
            core,
            options,
            listener,
            commands_rx,
            events_tx,
        ))
        .detach();
        tracing::debug!(%user, ?p2p_addr, "client started");
        Ok(Client {
            commands,
            events,
            user,
            p2p_addr,
        })
    }

    pub fn user(&self) -> &UserName {
        &self.user
    }

    /// The address the P2P listener is bound to; `None` with direct channels off.
    pub fn p2p_addr(&self) -> Option<SocketAddr> {
        self.p2p_addr
    }

    /// Queues a chat message; its fate is reported as `Delivered` or `Stored` events with the
    /// returned id.
    pub async fn send(&self, to: &UserName, text: String) -> Result<MessageId, SendError> {
        let (reply, answer) = async_channel::bounded(1);
        let command = Command::Send {
            to: to.clone(),
            text,
            reply,
        };
        if self.commands.send(command).await.is_err() {
            return Err(SendError::Stopped);
        }
        answer.recv().await.unwrap_or(Err(SendError::Stopped))
    }

    /// Offers the file at `path` to `to`. The file is hashed first (off the owner task; a
    /// big file takes a moment), and its id derived from the file, so offering the same file
    /// again, also after a restart, lets the receiver resume. Its progress is reported as
    /// `File*` events with the returned id.
    pub async fn offer_file(
        &self,
        to: &UserName,
        path: impl AsRef<Path>,
    ) -> Result<SharedFile, FileRequestError> {
        let path = path.as_ref().to_path_buf();
        let file = smol::unblock(move || SharedFile::fingerprint(&path)).await?;
        let to = to.clone();
        self.file_request(|reply| FileCommand::Offer { to, file, reply })
            .await
    }

    /// Accepts `from`'s offer `id` (from an `Event::File(FileEvent::Offered)`) into the directory `dir`
    /// (created if missing). Returns the offset the transfer starts at: the length of a
    /// partial file of the same offer found in `dir`, or 0.
    pub async fn accept_file(
        &self,
        from: &UserName,
        id: TransferId,
        dir: impl Into<PathBuf>,
    ) -> Result<u64, FileRequestError> {
        let (from, dir) = (from.clone(), dir.into());
        self.file_request(|reply| FileCommand::Accept {
            from,
            id,
            dir,
            reply,
        })
        .await
    }

    pub async fn decline_file(
        &self,
        from: &UserName,
        id: TransferId,
    ) -> Result<(), FileRequestError> {
        let from = from.clone();
        self.file_request(|reply| FileCommand::Decline { from, id, reply })
            .await
    }

    /// Stops a transfer either way (also an offer not answered yet); the peer is told.
    pub async fn cancel_file(
        &self,
        peer: &UserName,
        id: TransferId,
        direction: Direction,
    ) -> Result<(), FileRequestError> {
        let peer = peer.clone();
        self.file_request(|reply| FileCommand::Cancel {
            peer,
            id,
            direction,
            reply,
        })
        .await
    }

    async fn file_request<T>(
        &self,
        command: impl FnOnce(Sender<Result<T, FileRequestError>>) -> FileCommand,
    ) -> Result<T, FileRequestError> {
        let (reply, answer) = async_channel::bounded(1);
        if self
            .commands
            .send(Command::File(command(reply)))
            .await
            .is_err()
        {
            return Err(FileError::Stopped.into());
        }
        answer
            .recv()
            .await
            .unwrap_or(Err(FileError::Stopped.into()))
    }

    /// Logs out and waits (a couple of seconds at most) until the goodbyes are written.
    pub async fn logout(&self) {
        let (reply, done) = async_channel::bounded(1);
        if self.commands.send(Command::Logout { reply }).await.is_ok() {
            let _ = done.recv().await;
        }
    }

    /// Logs in with `password` (creating the account with `register`) instead of the key:
    /// after the server refused a key login as not enrolled
    /// ([`breeze_core::Client::log_in_with_password`]). The password goes to the core and,
    /// inside the encrypted channel, to the server; nowhere else.
    pub async fn log_in_with_password(&self, password: String, register: bool) {
        let command = Command::LogInWithPassword { password, register };
        let _ = self.commands.send(command).await;
    }

    /// Every user the core knows of, with presence and route.
    pub async fn peers(&self) -> Vec<PeerStatus> {
        let (reply, answer) = async_channel::bounded(1);
        if self.commands.send(Command::Peers { reply }).await.is_err() {
            return Vec::new();
        }
        answer.recv().await.unwrap_or_default()
    }

    /// Turns direct channels off (or on again) at run time: the core's dial and accept
    /// policy ([`breeze_core::Client::set_direct_channels`]). Off closes every direct channel
    /// and refuses new ones; chat falls back to the relay.
    pub async fn set_direct_channels(&self, on: bool) {
        let _ = self.commands.send(Command::SetDirectChannels(on)).await;
    }

    /// Asks to hear when `user` comes and goes, and to be introduced while it is online
    /// ([`breeze_core::Client::watch`]): what a chat screen does for a conversation it opens
    /// or a contact it shows. On a large server only watched users' presence is sent.
    pub async fn watch(&self, user: &UserName) {
        let _ = self.commands.send(Command::Watch(user.clone())).await;
    }

    /// The user opened the conversation with `peer` (on screen): the core opens a direct
    /// channel to it if it has none and is at its cap of channels only on demand
    /// ([`breeze_core::Client::open_conversation`]), so what the user writes next goes direct.
    pub async fn open_conversation(&self, peer: &UserName) {
        let _ = self
            .commands
            .send(Command::OpenConversation(peer.clone()))
            .await;
    }

    /// The core's events, in order. Clones of the stream share one queue: each event goes to
    /// one reader, so have a single consumer.
    pub fn events(&self) -> impl Stream<Item = Event> + Send + 'static {
        self.events.clone()
    }

    /// The next event, or `None` once the client task has ended.
    pub async fn next_event(&self) -> Option<Event> {
        self.events.recv().await.ok()
    }
}
