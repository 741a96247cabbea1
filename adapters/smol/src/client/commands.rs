//! What a [`Client`](super::Client) handle asks of the owner task, and how the owner answers.

use super::owner::{Owner, LOGOUT_GRACE};
use crate::file_lanes::Reply;
use crate::shared_file::SharedFile;
use async_channel::Sender;
use breeze_core::client::{Direction, Route, SendError};
use breeze_core::wire::{MessageId, TransferId, UserName};
use std::path::PathBuf;
use std::time::Instant;

/// One row of [`Client::peers`](super::Client::peers): what the core knows about another user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub user: UserName,
    /// Online according to the server's last word.
    pub online: bool,
    pub route: Route,
}

/// Requests from [`Client`](crate::Client) handles.
pub(super) enum Command {
    Send {
        to: UserName,
        text: String,
        reply: Sender<Result<MessageId, SendError>>,
    },
    Logout {
        reply: Sender<()>,
    },
    Peers {
        reply: Sender<Vec<PeerStatus>>,
    },
    SetDirectChannels(bool),
    Watch(UserName),
    LogInWithPassword {
        password: String,
        register: bool,
    },
    /// The user opened the conversation with this peer.
    OpenConversation(UserName),
    /// The file host's part: handled in `files.rs`.
    File(FileCommand),
    /// Groups: handled in `groups.rs`.
    Group(super::groups::GroupCommand),
}

/// Offering, accepting, declining and cancelling a file.
pub(super) enum FileCommand {
    Offer {
        to: UserName,
        file: SharedFile,
        reply: Reply<SharedFile>,
    },
    Accept {
        from: UserName,
        id: TransferId,
        dir: PathBuf,
        reply: Reply<u64>,
    },
    Decline {
        from: UserName,
        id: TransferId,
        reply: Reply<()>,
    },
    Cancel {
        peer: UserName,
        id: TransferId,
        direction: Direction,
        reply: Reply<()>,
    },
}

impl Owner {
    pub(super) fn command(&mut self, command: Command) -> Instant {
        let now = Instant::now();
        match command {
            Command::Send { to, text, reply } => {
                let _ = reply.try_send(self.core.send(&to, text, now));
            }
            Command::Logout { reply } => {
                if !self.core.is_stopped() {
                    self.core.logout(now);
                }
                self.logout_waiters.push(reply);
                self.logout_deadline.get_or_insert(now + LOGOUT_GRACE);
            }
            Command::Peers { reply } => {
                let peers = self.core.peers().map(|(user, online, route)| PeerStatus {
                    user: user.clone(),
                    online,
                    route,
                });
                let _ = reply.try_send(peers.collect());
            }
            Command::File(command) => self.file_command(command, now),
            Command::Group(command) => self.group_command(command, now),
            Command::SetDirectChannels(on) => self.core.set_direct_channels(on, now),
            Command::Watch(user) => self.core.watch(&user, now),
            Command::LogInWithPassword { password, register } => {
                self.core.log_in_with_password(password, register, now)
            }
            Command::OpenConversation(peer) => self.core.open_conversation(&peer, now),
        }
        now
    }
}
