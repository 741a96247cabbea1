//! The simulated host's drive loop: fires due timers and drains every core, handing its
//! transmits to the virtual network and performing its actions, until all are idle.

use super::{LoginCheck, Received, Sim, P2P_PORT};
use crate::disk::span_bytes;
use crate::network::Endpoint;
use breeze_core::client::{self, Client, Destination, LinkId};
use breeze_core::server::{self, ConnId, Server};
use std::time::Instant;

impl Sim {
    /// Handles everything due now, until every core is idle, after an input from outside
    /// (a user's action, a fault) that may have touched any core.
    pub(super) fn drive(&mut self) {
        for i in 0..self.clients.len() {
            self.mark_dirty(i);
        }
        self.run_due();
    }

    /// A core was handed an input: drain it, and re-read its timer, before the next step.
    pub(super) fn mark_dirty(&mut self, i: usize) {
        if let Some(flag) = self.is_dirty.get_mut(i) {
            if !*flag {
                *flag = true;
                self.dirty.push(i);
            }
        }
    }

    /// Handles everything due now, until every core is idle. Bounded: a core that never goes
    /// idle (a timer that does not advance) fails the test instead of hanging it.
    pub(super) fn run_due(&mut self) {
        for _ in 0..1_000_000 {
            let mut busy = self.drain_server();
            while let Some(i) = self.dirty.pop() {
                self.is_dirty[i] = false;
                busy |= self.drain_client(i);
                let core = self.clients[i].core.as_ref();
                let links = core.map_or(0, Client::link_count);
                self.most_links[i] = self.most_links[i].max(links);
                let deadline = core.and_then(Client::poll_timeout);
                if let Some(old) = std::mem::replace(&mut self.deadline[i], deadline) {
                    self.timers.remove(&(old, i));
                }
                if let Some(at) = deadline {
                    self.timers.insert((at, i));
                }
            }
            if let Some(due) = self.net.pop_due(self.now) {
                self.apply(due);
                continue;
            }
            busy |= self.fire_timers();
            if !busy {
                return;
            }
        }
        panic!(
            "the simulation did not settle at {:?}: a core keeps itself busy",
            self.elapsed()
        );
    }

    /// The next instant anything is due. Client timers come from the index kept by
    /// `run_due`, which is exact: a client's deadline changes only with an input, and every
    /// input marks it for a drain.
    pub(super) fn next_wakeup(&self) -> Option<Instant> {
        let server = self.server.as_ref().and_then(Server::poll_timeout);
        let clients = self.timers.first().map(|(at, _)| *at);
        [self.net.next_at(), server, clients]
            .into_iter()
            .flatten()
            .min()
    }

    pub(super) fn fire_timers(&mut self) -> bool {
        let now = self.now;
        let mut fired = false;
        if let Some(server) = self.server.as_mut() {
            if server.poll_timeout().is_some_and(|t| t <= now) {
                server.handle_timeout(now);
                fired = true;
            }
        }
        while let Some(&(at, i)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, i));
            self.deadline[i] = None;
            if let Some(core) = self.clients[i].core.as_mut() {
                core.handle_timeout(now);
                fired = true;
            }
            self.mark_dirty(i);
        }
        fired
    }

    pub(super) fn drain_server(&mut self) -> bool {
        let now = self.now;
        let incarnation = self.server_incarnation;
        let Some(server) = self.server.as_mut() else {
            return false;
        };
        let mut busy = false;
        loop {
            // Bytes first, one action at a time: an action answered inline (a login check)
            // can queue bytes that must go out before a later close.
            if let Some(transmit) = server.poll_transmit() {
                busy = true;
                let (conn, bytes) = (transmit.to, transmit.payload.len());
                let Some(stream) = self.server_conns.get(&conn).copied() else {
                    server.handle_written(conn, bytes);
                    continue;
                };
                let from = Endpoint::Server { incarnation, conn };
                if self
                    .net
                    .write(stream, from, span_bytes(transmit.payload), now)
                {
                    server.handle_written(conn, bytes);
                }
                continue;
            }
            let Some(action) = server.poll_action() else {
                break;
            };
            busy = true;
            match action {
                server::Action::Close { conn } => {
                    if let Some(stream) = self.server_conns.remove(&conn) {
                        self.net
                            .close(stream, Endpoint::Server { incarnation, conn }, now);
                    }
                }
                server::Action::CheckLogin {
                    conn,
                    user,
                    password,
                    register,
                    key,
                } => {
                    let verdict = self.store.check(&user, password.expose(), register, key);
                    self.login_checks.push(LoginCheck::Password { user });
                    server.handle_login_checked(conn, verdict, now);
                }
                server::Action::CheckKeyLogin { conn, user, key } => {
                    let verdict = self.store.check_key(&user, key);
                    self.login_checks.push(LoginCheck::Key { user });
                    server.handle_login_checked(conn, verdict, now);
                }
                server::Action::StoreOffline { to, message } => {
                    let outcome = match self.store.store(to.clone(), message.clone()) {
                        Ok(()) => server::StoreOutcome::Stored,
                        Err(reason) => server::StoreOutcome::Undeliverable(reason),
                    };
                    server.handle_offline_stored(to, &message, outcome, now);
                }
                server::Action::LoadKey { conn, user } => {
                    let key = self.store.key(&user);
                    server.handle_key_loaded(conn, user, key, now);
                }
                server::Action::LoadOffline { user } => {
                    let stored = self.store.load(&user);
                    server.handle_offline_loaded(&user, stored, now);
                }
                server::Action::DeleteOffline {
                    to,
                    from,
                    epoch,
                    through,
                } => self.store.delete(&to, &from, epoch, through),
                server::Action::SaveGroup { info, joined } => {
                    let id = info.id;
                    let known: Vec<bool> =
                        joined.iter().map(|u| self.store.has_account(u)).collect();
                    let result = self.store.groups.save(info, &joined, |u| {
                        joined.iter().zip(&known).any(|(j, k)| j == u && *k)
                    });
                    server.handle_group_saved(id, result, now);
                }
                server::Action::StoreGroupMessage {
                    message,
                    next_order,
                } => {
                    let stored = self.store.groups.store(&message, next_order);
                    if stored {
                        self.group_log.push(message.clone());
                    }
                    server.handle_group_stored(message.group, message.order, stored, now);
                }
                server::Action::DeleteGroupMessage { group, order } => {
                    self.store.groups.delete_message(group, order)
                }
                server::Action::LoadGroupBacklog { user, after, limit } => {
                    let (messages, more) = self.store.groups.backlog(&user, &after, limit);
                    server.handle_group_backlog_loaded(&user, messages, more, now);
                }
                server::Action::AckGroup {
                    user,
                    group,
                    through,
                } => self.store.groups.ack(&user, group, through),
                other => panic!("unexpected server action {other:?}"),
            }
        }
        while let Some(event) = server.poll_event() {
            self.server_events.push((now, event));
        }
        busy
    }

    pub(super) fn drain_client(&mut self, i: usize) -> bool {
        let now = self.now;
        let mut busy = false;
        loop {
            let c = &mut self.clients[i];
            let Some(core) = c.core.as_mut() else {
                return busy;
            };
            let incarnation = c.incarnation;
            if let Some(transmit) = core.poll_transmit() {
                busy = true;
                let (to, bytes) = (transmit.to, transmit.payload.len());
                let (stream, from) = match transmit.to {
                    Destination::Server => (
                        c.server_stream,
                        Endpoint::ClientServer {
                            node: i,
                            incarnation,
                        },
                    ),
                    Destination::Peer(link) => (
                        c.links.get(&link).copied(),
                        Endpoint::ClientPeer {
                            node: i,
                            incarnation,
                            link,
                        },
                    ),
                };
                let Some(stream) = stream else {
                    core.handle_written(to, bytes);
                    continue;
                };
                if self
                    .net
                    .write(stream, from, span_bytes(transmit.payload), now)
                {
                    core.handle_written(to, bytes);
                }
                continue;
            }
            if let Some(action) = core.poll_action() {
                busy = true;
                self.client_action(i, action);
                continue;
            }
            if let Some(event) = core.poll_event() {
                busy = true;
                if let client::Event::Message {
                    from,
                    id,
                    text,
                    route,
                } = &event
                {
                    c.received.push(Received {
                        from: from.clone(),
                        id: *id,
                        text: text.clone(),
                        route: *route,
                        incarnation,
                        at: now,
                    });
                }
                if let client::Event::File(client::FileEvent::Offered { from, id, hash, .. }) =
                    &event
                {
                    c.disk.expected.insert((from.clone(), *id), *hash);
                }
                if let client::Event::Group(client::GroupEvent::Message {
                    group,
                    order,
                    from,
                    id,
                    text,
                    ..
                }) = &event
                {
                    let received = super::GroupReceived {
                        group: *group,
                        order: *order,
                        from: from.clone(),
                        id: *id,
                        text: text.clone(),
                        incarnation,
                    };
                    c.group_received.push(received);
                }
                c.events.push((now, event));
                continue;
            }
            return busy;
        }
    }

    pub(super) fn client_action(&mut self, i: usize, action: client::Action) {
        let now = self.now;
        let incarnation = self.clients[i].incarnation;
        let me = Endpoint::ClientServer {
            node: i,
            incarnation,
        };
        match action {
            client::Action::ConnectServer => {
                if self.server.is_some() {
                    let conn = ConnId(self.next_conn);
                    self.next_conn += 1;
                    let acceptor = Endpoint::Server {
                        incarnation: self.server_incarnation,
                        conn,
                    };
                    let stream = self.net.open(me, acceptor, None, now);
                    self.server_conns.insert(conn, stream);
                    self.clients[i].server_stream = Some(stream);
                } else {
                    self.net.refuse(me, None, self.net.config.latency, now);
                }
            }
            client::Action::CloseServer => {
                if let Some(stream) = self.clients[i].server_stream.take() {
                    self.net.close(stream, me, now);
                }
            }
            client::Action::Dial { peer, addr } => {
                let c = &mut self.clients[i];
                c.dialled.push(peer.clone());
                let link = LinkId(c.next_link);
                c.next_link += 1;
                let opener = Endpoint::ClientPeer {
                    node: i,
                    incarnation,
                    link,
                };
                let target = self.by_ip.get(&addr.ip()).copied().filter(|&j| {
                    let t = &self.clients[j];
                    addr.port() == P2P_PORT && t.core.is_some() && t.listening
                });
                match target {
                    Some(j) if self.net.is_cut(i, j) || self.net.is_cut(j, i) => {
                        self.net
                            .refuse(opener, Some(peer), self.net.config.connect_timeout, now)
                    }
                    Some(j) => {
                        let t = &mut self.clients[j];
                        let their_link = LinkId(t.next_link);
                        t.next_link += 1;
                        let acceptor = Endpoint::ClientPeer {
                            node: j,
                            incarnation: t.incarnation,
                            link: their_link,
                        };
                        let stream = self.net.open(opener, acceptor, Some(peer), now);
                        self.clients[j].links.insert(their_link, stream);
                        self.clients[i].links.insert(link, stream);
                    }
                    None => self
                        .net
                        .refuse(opener, Some(peer), self.net.config.latency, now),
                }
            }
            client::Action::CloseLink { link } => {
                if let Some(stream) = self.clients[i].links.remove(&link) {
                    self.net.close(
                        stream,
                        Endpoint::ClientPeer {
                            node: i,
                            incarnation,
                            link,
                        },
                        now,
                    );
                }
            }
            client::Action::ReadFile {
                id,
                offset,
                len,
                direct,
            } => {
                let c = &mut self.clients[i];
                let data = c.disk.read_payload(id, offset, len, direct);
                if let Some(core) = c.core.as_mut() {
                    match data {
                        Some(data) => core.handle_file_payload(id, offset, data, now),
                        None => core.handle_file_read_failed(id, now),
                    }
                }
            }
            client::Action::WriteFile {
                from,
                id,
                offset,
                data,
            } => {
                let c = &mut self.clients[i];
                let written = c.disk.write(&from, id, offset, &data);
                if let Some(core) = c.core.as_mut() {
                    if written {
                        core.handle_file_written(&from, id, offset, data.len(), now);
                    } else {
                        core.handle_file_write_failed(&from, id, now);
                    }
                }
            }
            client::Action::VerifyFile { from, id } => {
                let c = &mut self.clients[i];
                let verified = c.disk.verify(&from, id);
                if let Some(core) = c.core.as_mut() {
                    core.handle_file_verified(&from, id, verified, now);
                }
            }
            other => panic!("unexpected client action {other:?}"),
        }
    }
}
