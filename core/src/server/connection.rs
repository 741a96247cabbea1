//! One client connection as the server sees it, and its life: opened, fed bytes, sent
//! frames, failed or closed.

use super::file_relay::FileBudget;
use super::groups::SessionGroups;
use super::output::{Action, ConnError, Event, LogoutReason};
use super::{ConnId, Server};
use crate::codec::FrameDecoder;
use crate::liveness::Liveness;
use crate::outbound::QueueError;
use crate::secure::{
    Handshake, HandshakeError, Inbound, LinkKind, Opener, PublicKey, Read, RecordError,
};
use crate::wire::{ClientFrame, ServerFrame, UserName};
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
        key: PublicKey,
    },
    Online(Session),
}

#[derive(Debug)]
pub(super) struct Session {
    pub user: UserName,
    /// The static key this session proved it holds: what peers are told this user is.
    pub key: PublicKey,
    /// Where peers should dial this user: observed IP, advertised port.
    pub endpoint: SocketAddr,
    /// (sender, epoch) of stored messages delivered on this session, whose acknowledgements
    /// must reach the store. Acks for live relayed traffic skip the store entirely.
    pub stored_delivered: HashSet<(UserName, u64)>,
    /// This user's relay budget for file data.
    pub file_budget: FileBudget,
    /// What this session has been sent of each group.
    pub groups: Box<SessionGroups>,
}

#[derive(Debug)]
pub(super) struct Connection {
    pub remote: SocketAddr,
    pub opened: Instant,
    pub phase: Phase,
    /// The server's side of the handshake, until it is through. Boxed: it is larger than the
    /// rest of an idle connection and lives only for the first round trips.
    pub handshake: Option<Box<Handshake>>,
    /// The client's static key, once the handshake proved it.
    pub key: Option<PublicKey>,
    pub inbound: Inbound,
    pub decoder: FrameDecoder,
    pub liveness: Liveness,
    /// The users this connection asked to hear about (at most `max_watched`).
    pub watching: HashSet<UserName>,
}

impl Connection {
    pub fn session(&self) -> Option<&Session> {
        match &self.phase {
            Phase::Online(session) => Some(session),
            _ => None,
        }
    }

    pub fn session_mut(&mut self) -> Option<&mut Session> {
        match &mut self.phase {
            Phase::Online(session) => Some(session),
            _ => None,
        }
    }
}

impl Server {
    /// The key the session on `conn` proved, if it is online.
    pub(super) fn session_key(&self, conn: ConnId) -> Option<PublicKey> {
        Some(self.conns.get(&conn)?.session()?.key)
    }

    /// A new connection: turned away at once while shutting down or over a connection limit
    /// (the client is told why).
    pub(super) fn open(&mut self, conn: ConnId, remote: SocketAddr, now: Instant) {
        if self.conns.contains_key(&conn) {
            return;
        }
        self.outbound.open(conn);
        let handshake = Handshake::responder(LinkKind::ClientServer, &self.identity, &mut self.rng);
        self.conns.insert(
            conn,
            Box::new(Connection {
                remote,
                opened: now,
                phase: Phase::Hello,
                handshake: handshake.ok().map(Box::new),
                key: None,
                inbound: Inbound::default(),
                decoder: FrameDecoder::new(self.config.max_frame),
                liveness: Liveness::new(now),
                watching: HashSet::new(),
            }),
        );
        self.next_sweep
            .get_or_insert(now + self.config.sweep_interval);
        let from_this_ip = self.limits.connected(remote.ip());
        if self.shutting_down {
            self.send(conn, &ServerFrame::ShuttingDown, now);
            self.close(conn, LogoutReason::Requested, now);
        } else if self.conns.len() > self.config.max_connections
            || from_this_ip > self.config.max_connections_per_ip
        {
            self.fail(conn, ConnError::TooManyConnections, now);
        }
    }

    /// Opens what arrived (moving the handshake on first), decodes it and handles each whole
    /// frame; stops at the first frame that closes the connection, and closes it on bytes
    /// that do not authenticate or decode.
    pub(super) fn on_input(&mut self, conn: ConnId, input: Read<'_>, now: Instant) {
        let Some(connection) = self.conns.get_mut(&conn) else {
            return;
        };
        connection.liveness.received(now);
        let mut inbound = std::mem::take(&mut connection.inbound);
        let opened = inbound.read_plain(input, |message| self.handshake_step(conn, message));
        let Some(connection) = self.conns.get_mut(&conn) else {
            return;
        };
        connection.inbound = inbound;
        let plain = match opened {
            Ok(plain) => plain,
            Err(error) => return self.fail(conn, error, now),
        };
        if plain.is_empty() {
            return;
        }
        let mut decoder = std::mem::replace(&mut connection.decoder, FrameDecoder::new(0));
        let decoded = plain.decode_each(&mut decoder, self, |server, frame: ClientFrame| {
            server.on_frame(conn, frame, now);
            server.conns.contains_key(&conn)
        });
        if let Err(err) = decoded {
            self.fail(conn, ConnError::Decode(err.code()), now);
        }
        if let Some(connection) = self.conns.get_mut(&conn) {
            connection.decoder = decoder;
        }
    }

    /// One handshake message from the client (XX): its ephemeral key, answered with ours and
    /// our static key; then its static key, after which the channel is open.
    fn handshake_step(
        &mut self,
        conn: ConnId,
        message: &[u8],
    ) -> Result<Option<Opener>, ConnError> {
        let connection = self
            .conns
            .get_mut(&conn)
            .ok_or(ConnError::UnexpectedFrame)?;
        let handshake = connection
            .handshake
            .as_mut()
            .ok_or(ConnError::Handshake(HandshakeError::Failed))?;
        let payload = handshake.read(message).map_err(ConnError::Handshake)?;
        // Our clients send nothing in the handshake itself: anything else is not one of them
        // (and is not worth an answer).
        if !payload.is_empty() {
            return Err(ConnError::Handshake(HandshakeError::Failed));
        }
        if !handshake.is_finished() {
            let reply = handshake.write(&[]).map_err(ConnError::Handshake)?;
            let _ = self.outbound.send_handshake(conn, reply);
            return Ok(None);
        }
        let handshake = connection
            .handshake
            .take()
            .ok_or(ConnError::Handshake(HandshakeError::Failed))?;
        let channel = handshake.finish().map_err(ConnError::Handshake)?;
        connection.key = Some(channel.remote);
        self.outbound.start_sealing(conn, channel.sealer);
        Ok(Some(channel.opener))
    }

    /// The socket is gone: forget the connection without writing anything more to it.
    pub(super) fn disconnected(&mut self, conn: ConnId, now: Instant) {
        if let Some(connection) = self.conns.remove(&conn) {
            self.outbound.forget(conn);
            self.limits.disconnected(connection.remote.ip());
            if let Phase::Online(session) = connection.phase {
                let watching = connection.watching;
                self.go_offline(
                    conn,
                    session.user,
                    watching,
                    LogoutReason::Disconnected,
                    now,
                );
            }
            if self.conns.is_empty() {
                self.next_sweep = None;
            }
        }
    }

    /// Queues a frame; a connection that cannot take it is scheduled for closing.
    pub(super) fn send(&mut self, conn: ConnId, frame: &ServerFrame, now: Instant) {
        match self.outbound.send(conn, frame) {
            Ok(()) => {
                self.stats.frames_sent += 1;
                if let Some(connection) = self.conns.get_mut(&conn) {
                    connection.liveness.sent(now);
                }
            }
            Err(QueueError::Closed) | Err(QueueError::TooLarge) => {}
            Err(QueueError::Full) => self.doomed.push((conn, ConnError::SlowConsumer)),
        }
    }

    /// Tells the connection why (if it still can take it), then closes it.
    pub(super) fn fail(&mut self, conn: ConnId, error: ConnError, now: Instant) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        self.events
            .push_back(Event::ConnectionFailed { conn, error });
        if error != ConnError::SlowConsumer {
            let _ = self
                .outbound
                .send(conn, &ServerFrame::Error { code: error.code() });
        }
        self.close(conn, LogoutReason::Failed(error), now);
    }

    /// Closes a connection once what is queued for it is written.
    pub(super) fn close(&mut self, conn: ConnId, reason: LogoutReason, now: Instant) {
        let Some(connection) = self.conns.remove(&conn) else {
            return;
        };
        self.limits.disconnected(connection.remote.ip());
        self.outbound.close(conn);
        self.actions.push_back(Action::Close { conn });
        if let Phase::Online(session) = connection.phase {
            self.go_offline(conn, session.user, connection.watching, reason, now);
        }
        if self.conns.is_empty() {
            self.next_sweep = None;
        }
    }

    /// Closes the connections a send found full during this input, now that no loop over the
    /// connections is in the way.
    pub(super) fn reap(&mut self, now: Instant) {
        while let Some((conn, error)) = self.doomed.pop() {
            self.fail(conn, error, now);
        }
    }
}

impl From<RecordError> for ConnError {
    fn from(error: RecordError) -> Self {
        ConnError::Record(error)
    }
}
