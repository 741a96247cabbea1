//! What the core benchmarks share: users logged in to a server core through the real
//! handshake and login, and a driver loop that answers the host's requests.

#![allow(dead_code)]

use breeze_core::codec::{encode_frame, DEFAULT_MAX_FRAME};
use breeze_core::rng::SeededRng;
use breeze_core::secure::{Handshake, IdentityKey, LinkKind, Sealer};
use breeze_core::server::{Action, ConnId, Event, Server, ServerConfig};
use breeze_core::wire::{ClientFrame, UserName, PROTOCOL_VERSION};
use serde::Serialize;
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

pub fn user(i: u64) -> UserName {
    UserName::new(format!("user.{i:04}")).unwrap()
}

pub fn encode(frame: &impl Serialize, out: &mut Vec<u8>) {
    encode_frame(frame, DEFAULT_MAX_FRAME, out).unwrap();
}

/// Drains every output the way a driver does, writing everything at once and answering the
/// host's requests: every login is accepted, nobody has stored messages. Returns the number of
/// transmits written.
pub fn drain(server: &mut Server, now: Instant) -> usize {
    let mut written = 0;
    loop {
        let mut idle = true;
        while let Some(transmit) = server.poll_transmit() {
            black_box(&transmit.payload);
            server.handle_written(transmit.to, transmit.payload.len());
            written += 1;
            idle = false;
        }
        while let Some(action) = server.poll_action() {
            idle = false;
            match action {
                Action::CheckLogin { conn, .. } => server.handle_login_checked(conn, Ok(()), now),
                Action::LoadOffline { user } => server.handle_offline_loaded(&user, vec![], now),
                Action::SaveGroup { info, .. } => server.handle_group_saved(info.id, Ok(()), now),
                Action::StoreGroupMessage { message, .. } => {
                    server.handle_group_stored(message.group, message.order, true, now)
                }
                Action::LoadGroupBacklog { user, .. } => {
                    server.handle_group_backlog_loaded(&user, vec![], false, now)
                }
                Action::AckGroup { .. } => {}
                other => panic!("the benchmark does not expect {other:?}"),
            }
        }
        while let Some(event) = server.poll_event() {
            if let Event::ConnectionFailed { conn, error } = event {
                panic!("{conn:?} failed: {error}");
            }
        }
        if idle {
            return written;
        }
    }
}

/// The written bytes of every transmit `server` has for `conn` (others are dropped).
pub fn written_to(server: &mut Server, conn: ConnId) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(transmit) = server.poll_transmit() {
        server.handle_written(transmit.to, transmit.payload.len());
        if transmit.to == conn {
            out.extend_from_slice(transmit.payload.as_bytes().expect("bytes"));
        }
    }
    out
}

/// The client side of `conn`'s handshake with `server`: its sealer for what it sends next.
pub fn handshake(server: &mut Server, conn: ConnId, i: u64, now: Instant) -> Sealer {
    let mut rng = SeededRng::from_u64(i);
    let key = IdentityKey::from_secret(rng.bytes32());
    let mut client = Handshake::initiator(LinkKind::ClientServer, &key, None, &mut rng).unwrap();
    server.handle_bytes(conn, &client.write(&[]).unwrap(), now);
    let answer = written_to(server, conn);
    client.read(&answer[2..]).unwrap();
    server.handle_bytes(conn, &client.write(&[]).unwrap(), now);
    client.finish().unwrap().sealer
}

/// A server core with the benchmarks' configuration and key.
pub fn server() -> Server {
    Server::new(
        ServerConfig::default(),
        IdentityKey::from_secret([7; 32]),
        [7; 32],
    )
}

/// User `i`'s connection `ConnId(i)` arrives, from an address of its own.
pub fn connect(server: &mut Server, i: u64, now: Instant) -> ConnId {
    let conn = ConnId(i);
    let ip = Ipv4Addr::from(0x0a00_0000 + i as u32 + 1);
    server.handle_connected(conn, SocketAddr::new(ip.into(), 50_000), now);
    conn
}

/// User `i`'s hello and login on `conn`, after its handshake, and everything drained.
pub fn log_in(server: &mut Server, conn: ConnId, sealer: &mut Sealer, i: u64, now: Instant) {
    let mut hello_login = Vec::new();
    let hello = ClientFrame::Hello {
        version: PROTOCOL_VERSION,
    };
    encode(&hello, &mut hello_login);
    let login = ClientFrame::Login {
        user: user(i),
        password: "correct horse battery staple".into(),
        p2p_port: 7000,
        register: false,
    };
    encode(&login, &mut hello_login);
    let sealed = sealer.seal_to_vec(&hello_login).unwrap();
    server.handle_bytes(conn, &sealed, now);
    let _ = drain(server, now);
}

/// A server with `users` users logged in, each on connection `ConnId(i)`, and each user's
/// sealer.
pub fn server_with_online(users: u64, now: Instant) -> (Server, Vec<Sealer>) {
    let mut server = server();
    let mut sealers = Vec::new();
    for i in 0..users {
        let conn = connect(&mut server, i, now);
        let mut sealer = handshake(&mut server, conn, i, now);
        log_in(&mut server, conn, &mut sealer, i, now);
        sealers.push(sealer);
    }
    assert_eq!(server.stats().online, users as usize);
    (server, sealers)
}
