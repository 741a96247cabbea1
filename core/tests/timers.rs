//! What `poll_timeout`'s docs promise a host that keeps one timer and moves it only when the
//! deadline gets earlier: a `handle_timeout` before the deadline does nothing at all, so waking
//! early (at a deadline that has since moved later) costs nothing and misses nothing.

use breeze_core::client::{Action, Client, ClientConfig, Destination};
use breeze_core::secure::IdentityKey;
use breeze_core::server::{Action as ServerAction, ConnId, Server, ServerConfig};
use breeze_core::wire::UserName;
use std::time::{Duration, Instant};

fn name(n: &str) -> UserName {
    UserName::new(n).unwrap()
}

/// Moves every output between the cores (instant delivery) until all are quiet; returns
/// whether anything moved.
fn settle(server: &mut Server, clients: &mut [Client], now: Instant) -> bool {
    let mut moved = false;
    loop {
        let mut busy = false;
        for (i, client) in clients.iter_mut().enumerate() {
            let conn = ConnId(i as u64);
            while let Some(t) = client.poll_transmit() {
                assert_eq!(t.to, Destination::Server, "direct channels are off");
                server.handle_bytes(conn, t.unwrap_bytes(), now);
                client.handle_written(t.to, t.unwrap_bytes().len());
                busy = true;
            }
            while let Some(action) = client.poll_action() {
                assert_eq!(action, Action::ConnectServer, "no dials, no files here");
                server.handle_connected(conn, "127.0.0.1:50000".parse().unwrap(), now);
                client.handle_server_connected(now);
                busy = true;
            }
            while client.poll_event().is_some() {
                busy = true;
            }
        }
        while let Some(t) = server.poll_transmit() {
            clients[t.to.0 as usize].handle_server_bytes(t.unwrap_bytes(), now);
            server.handle_written(t.to, t.unwrap_bytes().len());
            busy = true;
        }
        while let Some(action) = server.poll_action() {
            match action {
                ServerAction::CheckLogin { conn, .. } => {
                    server.handle_login_checked(conn, Ok(()), now)
                }
                ServerAction::LoadOffline { user } => {
                    server.handle_offline_loaded(&user, vec![], now)
                }
                _ => {}
            }
            busy = true;
        }
        while server.poll_event().is_some() {
            busy = true;
        }
        if !busy {
            return moved;
        }
        moved = true;
    }
}

#[test]
fn an_early_handle_timeout_does_nothing_and_the_deadline_stays() {
    let mut now = Instant::now();
    let mut server = Server::new(
        ServerConfig::default(),
        IdentityKey::from_secret([9; 32]),
        [0; 32],
    );
    let mut clients: Vec<Client> = ["alice", "bob"]
        .iter()
        .enumerate()
        .map(|(i, user)| {
            let mut config = ClientConfig::new(name(user), "pw", 0);
            config.direct_channels = false;
            Client::new(
                config,
                IdentityKey::from_secret([i as u8 + 1; 32]),
                [i as u8 + 1; 32],
                now,
            )
        })
        .collect();
    settle(&mut server, &mut clients, now);
    clients[0].send(&name("bob"), "hi".into(), now).unwrap();
    settle(&mut server, &mut clients, now);
    assert_eq!(clients[0].unacknowledged(&name("bob")), 0, "delivered");
    // 20 s of sweeps and heartbeats (beyond the 15 s a silent link lives), each deadline
    // woken for early, then at it.
    for _ in 0..40 {
        let deadlines: Vec<_> = clients.iter().map(Client::poll_timeout).collect();
        let server_deadline = server.poll_timeout();
        let earliest = deadlines.iter().chain([&server_deadline]).flatten().min();
        let early = earliest.map(|at| *at - Duration::from_millis(1)).unwrap();
        assert!(early > now, "the deadlines lie ahead");
        for client in clients.iter_mut() {
            client.handle_timeout(early);
        }
        server.handle_timeout(early);
        assert!(
            !settle(&mut server, &mut clients, early),
            "nothing happens early"
        );
        // A deadline may move later (one kept cheap becomes exact), never earlier.
        let after = clients.iter().map(Client::poll_timeout);
        for (after, before) in after.zip(&deadlines) {
            assert!(after.is_none_or(|after| before.is_some_and(|before| after >= before)));
        }
        assert_eq!(server.poll_timeout(), server_deadline);
        // Then at the earliest deadline: something was due, and afterwards the deadline moved on.
        now = *earliest.unwrap();
        for client in clients.iter_mut() {
            client.handle_timeout(now);
        }
        server.handle_timeout(now);
        settle(&mut server, &mut clients, now);
        let next = clients
            .iter()
            .map(Client::poll_timeout)
            .chain([server.poll_timeout()]);
        assert!(
            next.flatten().all(|at| at > now),
            "handling a deadline makes progress"
        );
    }
    assert!(
        clients.iter().all(Client::is_logged_in),
        "heartbeats kept everyone online"
    );
}
