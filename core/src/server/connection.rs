//! One client connection as the server sees it.

use super::file_relay::FileBudget;
use crate::codec::FrameDecoder;
use crate::liveness::Liveness;
use crate::wire::UserName;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Instant;

#[derive(Debug)]
pub(super) enum Phase {
    /// Waiting for the client's hello.
    Hello,
    /// Hello exchanged, waiting for the login frame.
    Login,
    /// The host is checking the credentials.
    Checking {
        user: UserName,
        p2p_port: u16,
    },
    Online(Session),
}

#[derive(Debug)]
pub(super) struct Session {
    pub user: UserName,
    /// Where peers should dial this user: observed IP, advertised port.
    pub endpoint: SocketAddr,
    /// (sender, epoch) of stored messages delivered on this session, whose acknowledgements
    /// must reach the store. Acks for live relayed traffic skip the store entirely.
    pub stored_delivered: HashSet<(UserName, u64)>,
    /// This user's relay budget for file data.
    pub file_budget: FileBudget,
}

#[derive(Debug)]
pub(super) struct Connection {
    pub remote: SocketAddr,
    pub opened: Instant,
    pub phase: Phase,
    pub decoder: FrameDecoder,
    pub liveness: Liveness,
}

impl Connection {
    pub fn session(&self) -> Option<&Session> {
        match &self.phase {
            Phase::Online(session) => Some(session),
            _ => None,
        }
    }
}
