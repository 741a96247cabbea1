//! File transfer end to end: real `breeze --json` processes, a server on loopback (the smol
//! server driver, in this process), real files of several MiB in temporary directories.
//!
//! "Killing" a client is a real SIGKILL of its `breeze` process: nothing is flushed or said
//! goodbye. A killed receiver leaves its partial file on disk, and a new process resumes from
//! it; a killed sender's new process offers the same file again and continues where the
//! receiver stands.

use breeze_core::server::ServerConfig;
use breeze_sim::loopback::{
    self, content, listing, slow_relay, start_server_with, Dirs, TestServer, MIB, PATIENCE,
};
use breeze_smol::MemoryHost;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

/// One `breeze --json` process; killed when dropped.
struct Breeze {
    user: String,
    child: Child,
    stdin: ChildStdin,
    events: mpsc::Receiver<Value>,
}

impl Breeze {
    fn start(server: &TestServer, user: &str, direct: bool, download_dir: &Path) -> Breeze {
        let mut command = Command::new(env!("CARGO_BIN_EXE_breeze"));
        command
            .args(["--server", &server.addr.to_string(), "--user", user])
            .args(["--json", "--p2p-listen", "127.0.0.1:0", "--download-dir"])
            .arg(download_dir)
            .env("BREEZE_PASSWORD", "pw")
            // Profiles (keys, pins, history) and settings of this test's own, beside its
            // directories: in the tester's home they would outlive the test, and a later test
            // server on the same port, with another key, would meet a pin it does not match.
            .env("XDG_DATA_HOME", download_dir.with_extension("xdg"))
            .env("XDG_CONFIG_HOME", download_dir.with_extension("xdg"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if !direct {
            command.arg("--no-direct");
        }
        let mut child = command.spawn().expect("start breeze");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let event: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if tx.send(event).is_err() {
                    return;
                }
            }
        });
        let breeze = Breeze {
            user: user.to_string(),
            child,
            stdin,
            events,
        };
        breeze.expect("the login", |e| e["event"] == "logged_in");
        breeze
    }

    fn command(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The first event matching `want`, skipping others.
    fn expect(&self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) if want(&event) => return event,
                Ok(_) => {}
                Err(_) => panic!("{} never saw {what}", self.user),
            }
        }
    }

    fn expect_event(&self, name: &str) -> Value {
        self.expect(name, |e| e["event"] == name)
    }

    /// Kills the process outright (SIGKILL): no logout, nothing flushed.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Breeze {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh [`Dirs`], with the receiver's download directory made: a `breeze` process checks
/// its `--download-dir` at start.
fn dirs() -> Dirs {
    let dirs = loopback::dirs();
    std::fs::create_dir(&dirs.inbox).unwrap();
    dirs
}

/// alice offers `file` (written as `outbox/name`), bob sees the offer; returns its id.
fn offer(alice: &mut Breeze, bob: &Breeze, dirs: &Dirs, name: &str, file: &[u8]) -> String {
    let path = dirs.outbox.join(name);
    std::fs::write(&path, file).unwrap();
    alice.command(&format!("file bob {}", path.display()));
    let offered = alice.expect_event("file_offered");
    let offer = bob.expect_event("file_offer");
    assert_eq!(offer["id"], offered["id"]);
    assert_eq!(offer["name"], name);
    assert_eq!(offer["size"], file.len());
    offer["id"].as_str().unwrap().to_string()
}

fn done(breeze: &Breeze, direction: &str) -> Value {
    breeze.expect("file_done", |e| {
        e["event"] == "file_done" && e["direction"] == direction
    })
}

#[test]
fn a_file_sent_directly_arrives_byte_for_byte() {
    let server = start_server_with(MemoryHost::welcoming(), ServerConfig::default());
    let dirs = dirs();
    let mut alice = Breeze::start(&server, "alice", true, &dirs.outbox);
    let mut bob = Breeze::start(&server, "bob", true, &dirs.inbox);
    alice.expect("the direct route", |e| {
        e["event"] == "route" && e["route"] == "direct"
    });
    let file = content(8 * MIB + 7, 1);
    let id = offer(&mut alice, &bob, &dirs, "report.pdf", &file);
    bob.command(&format!("accept {id}"));
    let accepted = bob.expect_event("file_accepted");
    assert_eq!(accepted["offset"], 0);
    let progress = alice.expect_event("file_progress");
    assert_eq!(progress["route"], "direct");
    let received = done(&bob, "receiving");
    assert_eq!(received["verified"], true);
    let landed = dirs.inbox.join("report.pdf");
    assert_eq!(received["path"], landed.display().to_string());
    assert_eq!(done(&alice, "sending")["verified"], true);
    assert!(std::fs::read(&landed).unwrap() == file, "the same bytes");
    assert_eq!(listing(&dirs.inbox), ["report.pdf"], "no leftovers");
}

#[test]
fn a_file_between_clients_without_direct_channels_goes_through_the_relay() {
    let server = start_server_with(MemoryHost::welcoming(), ServerConfig::default());
    let dirs = dirs();
    let mut alice = Breeze::start(&server, "alice", false, &dirs.outbox);
    let mut bob = Breeze::start(&server, "bob", false, &dirs.inbox);
    let file = content(6 * MIB, 2);
    let id = offer(&mut alice, &bob, &dirs, "data.bin", &file);
    let elsewhere = dirs.inbox.join("chosen dir");
    bob.command(&format!("accept {id} {}", elsewhere.display()));
    let progress = bob.expect_event("file_progress");
    assert_eq!(progress["route"], "relay");
    let received = done(&bob, "receiving");
    assert_eq!(received["verified"], true);
    assert!(std::fs::read(elsewhere.join("data.bin")).unwrap() == file);
    assert_eq!(done(&alice, "sending")["verified"], true);
}

#[test]
fn an_existing_file_is_not_overwritten() {
    let server = start_server_with(MemoryHost::welcoming(), ServerConfig::default());
    let dirs = dirs();
    std::fs::write(dirs.inbox.join("photo.jpg"), b"bob's own photo").unwrap();
    let mut alice = Breeze::start(&server, "alice", true, &dirs.outbox);
    let mut bob = Breeze::start(&server, "bob", true, &dirs.inbox);
    let file = content(3 * MIB, 3);
    let id = offer(&mut alice, &bob, &dirs, "photo.jpg", &file);
    bob.command(&format!("accept {id}"));
    let received = done(&bob, "receiving");
    assert_eq!(received["verified"], true);
    let landed = dirs.inbox.join("photo (1).jpg");
    assert_eq!(received["path"], landed.display().to_string());
    assert_eq!(
        std::fs::read(dirs.inbox.join("photo.jpg")).unwrap(),
        b"bob's own photo"
    );
    assert!(std::fs::read(&landed).unwrap() == file);
}

#[test]
fn a_declined_offer_is_reported_to_the_sender() {
    let server = start_server_with(MemoryHost::welcoming(), ServerConfig::default());
    let dirs = dirs();
    let mut alice = Breeze::start(&server, "alice", true, &dirs.outbox);
    let mut bob = Breeze::start(&server, "bob", true, &dirs.inbox);
    let id = offer(&mut alice, &bob, &dirs, "spam.exe", &content(1000, 4));
    bob.command(&format!("decline {id}"));
    let declined = alice.expect_event("file_declined");
    assert_eq!(declined["id"], id.as_str());
    assert_eq!(declined["direction"], "sending");
    assert!(listing(&dirs.inbox).is_empty());
}

/// alice sends `file` to bob over the slow relay; bob's process is killed once a few MiB are
/// on his disk; a new bob process starts on the same directory and alice's file is offered
/// to it again. Returns (alice, the new bob, the transfer id, the part file's length).
fn interrupted(server: &TestServer, dirs: &Dirs, file: &[u8]) -> (Breeze, Breeze, String, u64) {
    let mut alice = Breeze::start(server, "alice", false, &dirs.outbox);
    let mut bob = Breeze::start(server, "bob", false, &dirs.inbox);
    let id = offer(&mut alice, &bob, dirs, "disk.img", file);
    bob.command(&format!("accept {id}"));
    bob.expect("a few MiB on disk", |e| {
        e["event"] == "file_progress" && e["bytes"].as_u64().unwrap() >= 3 * MIB as u64
    });
    bob.kill();
    let part = dirs.inbox.join(format!(".disk.img.{id}.breeze-part"));
    let held = std::fs::metadata(&part)
        .unwrap_or_else(|e| panic!("no partial file ({e}): {:?}", listing(&dirs.inbox)))
        .len();
    assert!(held > 0 && held < file.len() as u64);
    let bob = Breeze::start(server, "bob", false, &dirs.inbox);
    // alice's transfer failed when bob went offline (or the core offers it again by itself
    // if it did not): offer the same file again, as a user would.
    alice.command(&format!(
        "file bob {}",
        dirs.outbox.join("disk.img").display()
    ));
    let again = alice.expect("the offer again", |e| {
        e["event"] == "file_offered" || e["event"] == "error"
    });
    if again["event"] == "file_offered" {
        assert_eq!(again["id"], id.as_str(), "the same file keeps its id");
    }
    bob.expect("the offer again", |e| {
        e["event"] == "file_offer" && e["id"] == id.as_str()
    });
    (alice, bob, id, held)
}

#[test]
fn a_killed_receiver_resumes_from_its_partial_file_after_a_restart() {
    let server = start_server_with(MemoryHost::welcoming(), slow_relay());
    let dirs = dirs();
    let file = content(12 * MIB, 5);
    let (alice, mut bob, id, held) = interrupted(&server, &dirs, &file);
    bob.command(&format!("accept {id}"));
    let accepted = bob.expect_event("file_accepted");
    assert_eq!(accepted["offset"], held, "resumes from what is on disk");
    let resumed = alice.expect("the resumed accept", |e| {
        e["event"] == "file_accepted" && e["offset"].as_u64().unwrap() > 0
    });
    assert_eq!(resumed["offset"], held);
    let received = done(&bob, "receiving");
    assert_eq!(received["verified"], true);
    assert!(std::fs::read(dirs.inbox.join("disk.img")).unwrap() == file);
    assert_eq!(listing(&dirs.inbox), ["disk.img"]);
    assert_eq!(done(&alice, "sending")["verified"], true);
}

#[test]
fn a_corrupted_partial_file_is_detected_and_kept_aside() {
    let server = start_server_with(MemoryHost::welcoming(), slow_relay());
    let dirs = dirs();
    let file = content(12 * MIB, 6);
    let (alice, mut bob, id, _) = interrupted(&server, &dirs, &file);
    let part = dirs.inbox.join(format!(".disk.img.{id}.breeze-part"));
    let mut damaged = std::fs::read(&part).unwrap();
    damaged[12_345] ^= 0x55;
    std::fs::write(&part, &damaged).unwrap();
    bob.command(&format!("accept {id}"));
    let received = done(&bob, "receiving");
    assert_eq!(received["verified"], false);
    let kept = dirs.inbox.join(format!("disk.img.{id}.corrupt"));
    assert_eq!(received["path"], kept.display().to_string());
    assert_eq!(done(&alice, "sending")["verified"], false);
    assert_eq!(
        listing(&dirs.inbox),
        [format!("disk.img.{id}.corrupt")],
        "never under its real name"
    );
}

#[test]
fn a_killed_sender_offers_the_same_file_again_and_the_transfer_continues() {
    let server = start_server_with(MemoryHost::welcoming(), slow_relay());
    let dirs = dirs();
    let file = content(12 * MIB, 7);
    let mut alice = Breeze::start(&server, "alice", false, &dirs.outbox);
    let mut bob = Breeze::start(&server, "bob", false, &dirs.inbox);
    let id = offer(&mut alice, &bob, &dirs, "backup.tar", &file);
    bob.command(&format!("accept {id}"));
    bob.expect("a few MiB on disk", |e| {
        e["event"] == "file_progress" && e["bytes"].as_u64().unwrap() >= 3 * MIB as u64
    });
    alice.kill();
    let mut alice = Breeze::start(&server, "alice", false, &dirs.outbox);
    alice.command(&format!(
        "file bob {}",
        dirs.outbox.join("backup.tar").display()
    ));
    let offered = alice.expect_event("file_offered");
    assert_eq!(offered["id"], id.as_str(), "the same file keeps its id");
    let resumed = alice.expect_event("file_accepted");
    assert!(
        resumed["offset"].as_u64().unwrap() >= 3 * MIB as u64,
        "continues where bob stands: {resumed}"
    );
    let received = done(&bob, "receiving");
    assert_eq!(received["verified"], true);
    assert!(std::fs::read(dirs.inbox.join("backup.tar")).unwrap() == file);
    assert_eq!(done(&alice, "sending")["verified"], true);
}
