//! What the virtual network delivers, handed to the core at the far end: accepted and
//! completed connections, failed connects, bytes and closes, and write completions.

use super::{Sim, SERVER_ADDR};
use crate::network::{Endpoint, Scheduled, Segment, StreamId};
use breeze_core::client::{Client, Destination};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

impl Sim {
    pub(super) fn apply(&mut self, due: Scheduled) {
        match due {
            Scheduled::Segment {
                stream,
                dir,
                segment,
            } => {
                if !self.net.must_stall(stream, dir, &segment) {
                    self.deliver_segment(stream, dir, segment);
                }
            }
            Scheduled::Accept { stream } => self.accept(stream),
            Scheduled::Connected { stream } => self.connected(stream),
            Scheduled::ConnectFailed { opener, dialled } => {
                let now = self.now;
                let Some(core) = self.core_for(opener) else {
                    return;
                };
                match dialled {
                    Some(peer) => core.handle_dial_failed(&peer, now),
                    None => core.handle_server_connect_failed(now),
                }
            }
            Scheduled::Written {
                stream,
                from,
                bytes,
            } => self.written(stream, from, bytes),
        }
    }

    /// Bytes a core handed over have gone out on the wire; tell it, if the socket is still
    /// the one they were written to.
    pub(super) fn written(&mut self, stream: StreamId, from: Endpoint, bytes: usize) {
        match from {
            Endpoint::Server { incarnation, conn } => {
                let current = incarnation == self.server_incarnation
                    && self.server_conns.get(&conn) == Some(&stream);
                if let Some(server) = self.server.as_mut().filter(|_| current) {
                    server.handle_written(conn, bytes);
                }
            }
            Endpoint::ClientServer { node, .. } => {
                if self.clients[node].server_stream == Some(stream) {
                    if let Some(core) = self.core_for(from) {
                        core.handle_written(Destination::Server, bytes);
                    }
                }
            }
            Endpoint::ClientPeer { node, link, .. } => {
                if self.clients[node].links.get(&link) == Some(&stream) {
                    if let Some(core) = self.core_for(from) {
                        core.handle_written(Destination::Peer(link), bytes);
                    }
                }
            }
            Endpoint::Raw(_) => {}
        }
    }

    pub(super) fn accept(&mut self, stream: StreamId) {
        let now = self.now;
        let Some(s) = self.net.stream(stream) else {
            return;
        };
        let (opener, acceptor) = (s.ends[0], s.ends[1]);
        let remote = self.address_of(opener);
        let alive = match acceptor {
            Endpoint::Server { incarnation, conn } => match self.server.as_mut() {
                Some(server) if incarnation == self.server_incarnation => {
                    server.handle_connected(conn, remote, now);
                    true
                }
                _ => false,
            },
            Endpoint::ClientPeer { link, .. } => match self.core_for(acceptor) {
                Some(core) => {
                    core.handle_accepted(link, remote, now);
                    true
                }
                None => false,
            },
            _ => false,
        };
        if !alive {
            self.net.close(stream, acceptor, now);
        }
    }

    pub(super) fn connected(&mut self, stream: StreamId) {
        let now = self.now;
        let Some(s) = self.net.stream(stream) else {
            return;
        };
        let (opener, dialled) = (s.ends[0], s.dialled.clone());
        if !s.attached[0] {
            return;
        }
        match (opener, self.core_for(opener)) {
            (Endpoint::ClientServer { .. }, Some(core)) => core.handle_server_connected(now),
            (Endpoint::ClientPeer { link, .. }, Some(core)) => {
                if let Some(peer) = dialled {
                    core.handle_dialed(link, &peer, now);
                }
            }
            (Endpoint::Raw(_), _) => {}
            _ => self.net.close(stream, opener, now),
        }
    }

    pub(super) fn deliver_segment(&mut self, stream: StreamId, dir: usize, segment: Segment) {
        let now = self.now;
        let Some(s) = self.net.stream(stream) else {
            return;
        };
        let to = s.ends[1 - dir];
        if !s.attached[1 - dir] {
            return;
        }
        let fin = matches!(segment, Segment::Fin);
        if fin {
            self.net.detach(stream, dir);
        }
        match to {
            Endpoint::Raw(raw) => {
                if let Some(conn) = self.raws.get_mut(&raw) {
                    match segment {
                        Segment::Bytes(bytes) => conn.inbox.extend_from_slice(&bytes),
                        Segment::Fin => conn.closed = true,
                    }
                }
            }
            Endpoint::Server { incarnation, conn } => {
                let Some(server) = self
                    .server
                    .as_mut()
                    .filter(|_| incarnation == self.server_incarnation)
                else {
                    return;
                };
                match segment {
                    Segment::Bytes(bytes) => server.handle_bytes(conn, &bytes, now),
                    Segment::Fin => {
                        self.server_conns.remove(&conn);
                        server.handle_disconnected(conn, now);
                    }
                }
            }
            Endpoint::ClientServer { node, .. } => {
                if self.clients[node].server_stream != Some(stream) {
                    return;
                }
                if fin {
                    self.clients[node].server_stream = None;
                }
                let Some(core) = self.core_for(to) else {
                    return;
                };
                match segment {
                    Segment::Bytes(bytes) => core.handle_server_bytes(&bytes, now),
                    Segment::Fin => core.handle_server_closed(now),
                }
            }
            Endpoint::ClientPeer { node, link, .. } => {
                if fin {
                    self.clients[node].links.remove(&link);
                }
                let Some(core) = self.core_for(to) else {
                    return;
                };
                match segment {
                    Segment::Bytes(bytes) => core.handle_link_bytes(link, &bytes, now),
                    Segment::Fin => core.handle_link_closed(link, now),
                }
            }
        }
    }

    /// The running core an endpoint belongs to, if that process is still the one that opened it.
    pub(super) fn core_for(&mut self, end: Endpoint) -> Option<&mut Client> {
        let (node, incarnation) = match end {
            Endpoint::ClientServer { node, incarnation } => (node, incarnation),
            Endpoint::ClientPeer {
                node, incarnation, ..
            } => (node, incarnation),
            _ => return None,
        };
        if self.clients.get(node)?.incarnation != incarnation {
            return None;
        }
        self.mark_dirty(node);
        self.clients.get_mut(node)?.core.as_mut()
    }

    pub(super) fn address_of(&self, end: Endpoint) -> SocketAddr {
        match end {
            Endpoint::ClientServer { node, .. } | Endpoint::ClientPeer { node, .. } => {
                SocketAddr::new(self.clients[node].ip, 40000 + node as u16)
            }
            Endpoint::Server { .. } => SERVER_ADDR,
            Endpoint::Raw(raw) => SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(127, 0, 9, 9)),
                50000 + raw.0 as u16,
            ),
        }
    }
}
