//! The owner's network side: socket reports and connect results in, sockets opened and closed.

use super::owner::{Input, Owner, SocketKey};
use crate::read_pool::Fed;
use crate::socket::{Socket, SocketEvent};
use breeze_core::client::{Destination, LinkId};
use smol::net::TcpStream;
use std::time::Instant;

impl Owner {
    /// Feeds one socket or connect report to the core; returns the `now` it used.
    pub(super) fn handle(&mut self, input: Input) -> Instant {
        let now = Instant::now();
        match input {
            Input::Accepted(stream, remote) => {
                let link = self.new_link(stream);
                self.core.handle_accepted(link, remote, now);
            }
            Input::ServerConnected(Ok(stream)) => {
                let generation = self.next_server;
                self.next_server += 1;
                let key = SocketKey::Server(generation);
                let socket = Socket::spawn(key, stream, self.inbound_tx.clone(), &self.read_pool);
                self.sockets.insert(key, socket);
                if let Some(stale) = self.server.replace(generation) {
                    // The core asks for one server connection at a time; never seen.
                    tracing::warn!(stale, "a second server connection replaced the first");
                    self.close(SocketKey::Server(stale));
                }
                self.core.handle_server_connected(now);
            }
            Input::ServerConnected(Err(error)) => {
                tracing::debug!(%error, "cannot connect to the server");
                self.core.handle_server_connect_failed(now);
            }
            Input::Dialed {
                peer,
                result: Ok(stream),
            } => {
                let link = self.new_link(stream);
                self.core.handle_dialed(link, &peer, now);
            }
            Input::Dialed { peer, result } => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "cannot dial peer");
                }
                self.core.handle_dial_failed(&peer, now);
            }
            Input::Socket(event) => self.socket_event(event, now),
            Input::File(answer) => self.file_answer(answer, now),
        }
        now
    }

    fn socket_event(&mut self, event: SocketEvent<SocketKey>, now: Instant) {
        let current = |key: &SocketKey, server: Option<u64>| match key {
            SocketKey::Server(generation) => server == Some(*generation),
            SocketKey::Peer(_) => true,
        };
        match event {
            SocketEvent::Bytes(key, received) => {
                let open = self.sockets.get(&key).is_some_and(|s| !s.closing);
                let core = &mut self.core;
                let received = match key {
                    SocketKey::Server(_) if open && current(&key, self.server) => {
                        received.feed(&self.read_pool, |fed| match fed {
                            Fed::Owned(buffer, len) => core.handle_server_buffer(buffer, len, now),
                            Fed::Slice(bytes) => core.handle_server_bytes(bytes, now),
                        })
                    }
                    SocketKey::Peer(link) if open => {
                        received.feed(&self.read_pool, |fed| match fed {
                            Fed::Owned(buffer, len) => {
                                core.handle_link_buffer(link, buffer, len, now)
                            }
                            Fed::Slice(bytes) => core.handle_link_bytes(link, bytes, now),
                        })
                    }
                    _ => Some(received),
                };
                if let (Some(socket), Some(received)) = (self.sockets.get(&key), received) {
                    socket.recycle(received);
                }
            }
            SocketEvent::Written(key, n) => match key {
                SocketKey::Server(_) if current(&key, self.server) => {
                    self.core.handle_written(Destination::Server, n)
                }
                SocketKey::Peer(link) => self.core.handle_written(Destination::Peer(link), n),
                SocketKey::Server(_) => {}
            },
            SocketEvent::Closed(key) => {
                // Unknown or closed by us: nothing the core needs to hear.
                let closing = match self.sockets.remove(&key) {
                    Some(socket) => socket.closing,
                    None => true,
                };
                match key {
                    SocketKey::Server(_) if current(&key, self.server) => {
                        self.server = None;
                        self.core.handle_server_closed(now);
                    }
                    SocketKey::Peer(link) if !closing => self.core.handle_link_closed(link, now),
                    _ => {}
                }
            }
        }
    }

    pub(super) fn new_link(&mut self, stream: TcpStream) -> LinkId {
        let link = LinkId(self.next_link);
        self.next_link += 1;
        let key = SocketKey::Peer(link);
        let socket = Socket::spawn(key, stream, self.inbound_tx.clone(), &self.read_pool);
        self.sockets.insert(key, socket);
        link
    }

    pub(super) fn close(&mut self, key: SocketKey) {
        if let Some(socket) = self.sockets.get_mut(&key) {
            socket.close();
        }
    }
}
