//! Discovery over a LAN of its own: two network namespaces joined by a bridge, the server
//! announcing itself in one, clients with no `--server` in the other. Nothing leaves the
//! namespaces, which the test creates and removes; without the privilege to create them
//! (root or CAP_NET_ADMIN, and `ip` from iproute2) it says so and passes as skipped.
//!
//! The only test that lets `breeze-server` announce: every other one starts it with
//! `--no-announce` (`ServerProcess::start_with`), so no test multicasts beyond loopback.

mod e2e_support;

use breeze_sim::loopback::PASSWORD;
use e2e_support::{binaries, run_bounded, ClientProcess, ServerProcess};
use serde_json::Value;
use std::process::Command;
use std::sync::Arc;

const SERVER_IP: &str = "10.231.0.1";
const CLIENT_IP: &str = "10.231.0.2";

/// A server namespace and a client namespace: the server's holds a bridge with its address,
/// and one end of a veth pair as the bridge's port; the other end is the client's interface.
/// Both are deleted (with their interfaces) on drop.
struct Lan {
    server: String,
    client: String,
    made: Vec<String>,
}

impl Lan {
    /// The two namespaces, or why they cannot be made here.
    fn create() -> Result<Lan, String> {
        let tag = format!("bz{}", std::process::id());
        let mut lan = Lan {
            server: format!("{tag}s"),
            client: format!("{tag}c"),
            made: Vec::new(),
        };
        for ns in [lan.server.clone(), lan.client.clone()] {
            ip(&["netns", "add", &ns])?;
            lan.made.push(ns);
        }
        let (s, c) = (lan.server.as_str(), lan.client.as_str());
        ip(&["-n", s, "link", "set", "lo", "up"])?;
        ip(&["-n", c, "link", "set", "lo", "up"])?;
        ip(&["-n", s, "link", "add", "br0", "type", "bridge"])?;
        ip(&[
            "-n", s, "link", "add", "port0", "type", "veth", "peer", "name", "eth0", "netns", c,
        ])?;
        ip(&["-n", s, "link", "set", "port0", "master", "br0"])?;
        ip(&[
            "-n",
            s,
            "addr",
            "add",
            &format!("{SERVER_IP}/24"),
            "dev",
            "br0",
        ])?;
        ip(&[
            "-n",
            c,
            "addr",
            "add",
            &format!("{CLIENT_IP}/24"),
            "dev",
            "eth0",
        ])?;
        for (ns, dev) in [(s, "port0"), (s, "br0"), (c, "eth0")] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(lan)
    }

    /// `ip netns exec NS PROGRAM`, to add arguments to.
    fn run(ns: &str, program: &std::path::Path) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns]).arg(program);
        command
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in &self.made {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A data directory with alice's account, and its server key's fingerprint.
fn data_with_alice() -> (tempfile::TempDir, String) {
    let data = tempfile::tempdir().expect("a temporary directory");
    ServerProcess::add_user(data.path(), "alice", PASSWORD);
    let mut command = Command::new(&binaries().server);
    command.arg("--data").arg(data.path()).arg("key");
    let output = run_bounded(command, "");
    assert!(output.status.success(), "breeze-server key failed");
    let fingerprint = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (data, fingerprint)
}

/// `breeze` in the client namespace with no `--server`, in line mode.
fn client_without_server(lan: &Lan) -> ClientProcess {
    let mut command = Lan::run(&lan.client, &binaries().client);
    command.args(["--p2p-listen", &format!("{CLIENT_IP}:0")]);
    let profile = Arc::new(tempfile::tempdir().expect("a temporary profile"));
    ClientProcess::spawn(command, "alice", PASSWORD, profile, &[])
}

#[test]
fn a_client_with_no_server_finds_the_one_announced_on_its_lan_and_refuses_to_guess_among_two() {
    let lan = match Lan::create() {
        Ok(lan) => lan,
        Err(why) => {
            eprintln!(
                "skipping the discovery test: cannot create network namespaces here \
                 (needs root or CAP_NET_ADMIN and iproute2): {why}"
            );
            return;
        }
    };
    let (data, fingerprint) = data_with_alice();
    let first = format!("{SERVER_IP}:7300");
    let command = Lan::run(&lan.server, &binaries().server);
    let _server = ServerProcess::spawn(command, data.path(), &first, &[]);

    // `breeze discover` hears it, with its key.
    let mut discover = Lan::run(&lan.client, &binaries().client);
    discover.args(["discover", "--wait", "3000"]);
    let output = run_bounded(discover, "");
    assert!(output.status.success(), "{output:?}");
    let heard: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
        .collect();
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert_eq!(heard[0]["addr"], first.as_str());
    assert_eq!(heard[0]["fingerprint"], fingerprint.as_str());

    // `breeze --user alice` alone logs in there, expecting the announced key.
    let mut alice = client_without_server(&lan);
    let key = alice.expect("the server's key", |e| e["event"] == "server_key");
    assert_eq!(key["fingerprint"], fingerprint.as_str());
    alice.expect("its login", |e| e["event"] == "logged_in");
    assert!(alice.quit().success());

    // With a second server on the LAN, line mode names both and picks neither.
    let (other_data, _) = data_with_alice();
    let second = format!("{SERVER_IP}:7301");
    let command = Lan::run(&lan.server, &binaries().server);
    let _other = ServerProcess::spawn(command, other_data.path(), &second, &[]);
    let mut alice = client_without_server(&lan);
    let status = alice.exit_status();
    assert!(!status.success());
    let text = format!("{:?}", alice.seen);
    assert!(text.contains(&first) && text.contains(&second), "{text}");
}
