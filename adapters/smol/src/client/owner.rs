//! The owner task's state: the client core and everything the driver keeps beside it (sockets,
//! the file lanes, the offers, logout waiters). The files next to this one each handle one kind
//! of input: `sockets.rs` the network, `commands.rs` the [`Client`](super::Client) handle's
//! requests, `files.rs` the file host; `owner_loop.rs` is the loop that waits for them.

use crate::client_options::ClientOptions;
use crate::file_host::FileOffer;
use crate::file_lanes::{Answer, Lanes};
use crate::read_pool::ReadPool;
use crate::socket::{Socket, SocketEvent};
use crate::timer::Alarm;
use async_channel::Sender;
use breeze_core::client::{Event, LinkId};
use breeze_core::wire::{TransferId, UserName};
use smol::net::TcpStream;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a logout waits for the goodbyes to be written.
pub(super) const LOGOUT_GRACE: Duration = Duration::from_secs(2);

/// The owner's name for a socket. Server connections get a fresh generation each, so a late
/// report from an old one is never mistaken for the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum SocketKey {
    Server(u64),
    Peer(LinkId),
}

pub(super) enum Input {
    Socket(SocketEvent<SocketKey>),
    Accepted(TcpStream, SocketAddr),
    ServerConnected(io::Result<TcpStream>),
    Dialed {
        peer: UserName,
        result: io::Result<TcpStream>,
    },
    /// The file host answered.
    File(Answer),
}

impl From<SocketEvent<SocketKey>> for Input {
    fn from(event: SocketEvent<SocketKey>) -> Input {
        Input::Socket(event)
    }
}

impl From<Answer> for Input {
    fn from(answer: Answer) -> Input {
        Input::File(answer)
    }
}

pub(super) struct Owner {
    pub(super) core: breeze_core::Client,
    pub(super) options: ClientOptions,
    pub(super) sockets: HashMap<SocketKey, Socket>,
    /// The generation of the current server connection.
    pub(super) server: Option<u64>,
    pub(super) next_server: u64,
    pub(super) next_link: u64,
    /// Handed to every socket and connect task so they can report back.
    pub(super) inbound_tx: Sender<Input>,
    pub(super) events: Sender<Event>,
    pub(super) alarm: Alarm,
    /// Read buffers of big reads, reused by every socket of this driver.
    pub(super) read_pool: ReadPool,
    pub(super) logout_waiters: Vec<Sender<()>>,
    pub(super) logout_deadline: Option<Instant>,
    /// The file host's calls, in order per transfer.
    pub(super) lanes: Lanes<Input>,
    /// Offers not answered yet, for the host to prepare the file when one is accepted.
    pub(super) offers: HashMap<(UserName, TransferId), FileOffer>,
}

impl Owner {
    pub(super) fn new(
        core: breeze_core::Client,
        options: ClientOptions,
        inbound_tx: Sender<Input>,
        events: Sender<Event>,
    ) -> Owner {
        Owner {
            core,
            lanes: Lanes::new(options.files.clone(), inbound_tx.clone()),
            offers: HashMap::new(),
            options,
            sockets: HashMap::new(),
            server: None,
            next_server: 0,
            next_link: 0,
            inbound_tx,
            events,
            alarm: Alarm::new(),
            read_pool: ReadPool::default(),
            logout_waiters: Vec::new(),
            logout_deadline: None,
        }
    }
}
