//! Keys as a user meets them, told by the real programs (`breeze-server`, `breeze --json`) in
//! profile directories of their own (docs/ARCHITECTURE.md §10): the server key pinned at first
//! contact and refused when it changes (until the user trusts the new one by its
//! fingerprint), `verify` showing both sides of a pair the same string, and a peer who comes
//! back with another key reported as such.

mod e2e_support;

use breeze_core::secure::{pair_fingerprint, PublicKey};
use breeze_sim::loopback::PASSWORD;
use e2e_support::{accounts, binaries, logged_in, run_bounded, ClientProcess, ServerProcess};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// `breeze-server --data DATA key`: the fingerprint of the server key kept in `data`.
fn server_fingerprint(data: &Path) -> String {
    let mut command = Command::new(&binaries().server);
    command.arg("--data").arg(data).arg("key");
    let output = run_bounded(command, "");
    assert!(
        output.status.success(),
        "breeze-server key failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let fingerprint = String::from_utf8(output.stdout)
        .expect("a fingerprint is text")
        .trim()
        .to_owned();
    assert!(
        breeze_core::secure::Fingerprint::parse(&fingerprint).is_some(),
        "not a fingerprint: {fingerprint:?}"
    );
    fingerprint
}

/// The public key of the profile `client` runs in (read from its `identity.key`).
fn profile_key(profile: &tempfile::TempDir) -> PublicKey {
    let path = profile.path().join("profile").join("identity.key");
    assert!(
        path.is_file(),
        "the client made its key in {}",
        path.display()
    );
    breeze_smol::key_file::load_or_create(&path)
        .expect("the profile's key reads")
        .public()
}

/// Waits until `client` reports the route to `peer` as direct (also if it already did): by
/// then it holds the key the server introduced `peer` with.
fn direct_to(client: &mut ClientProcess, peer: &str) {
    client.expect_seen(&format!("a direct route to {peer}"), |e| {
        e["event"] == "route" && e["peer"] == peer && e["route"] == "direct"
    });
}

/// Types `verify USER` and returns the fingerprint the client answers with.
fn verify(client: &mut ClientProcess, user: &str) -> String {
    client.command(&format!("verify {user}"));
    let answer = client.expect(&format!("the fingerprint with {user}"), |e| {
        e["event"] == "fingerprint" || e["event"] == "error"
    });
    assert_eq!(answer["event"], "fingerprint", "{answer}");
    assert_eq!(answer["user"], user, "{answer}");
    answer["fingerprint"]
        .as_str()
        .expect("the fingerprint is a string")
        .to_owned()
}

fn events_named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

/// The lines of a server log that speak of a login by `user`: accepted (the driver's and the
/// store's lines), refused, or checked and found wrong.
fn login_lines<'a>(log: &'a [String], user: &str) -> Vec<&'a String> {
    let named = format!("user={user}");
    let about_logins = [
        "logged in",
        "login refused",
        "bad credentials",
        "cannot bind",
    ];
    log.iter()
        .filter(|line| about_logins.iter().any(|what| line.contains(what)))
        .filter(|line| line.contains(&named))
        .collect()
}

#[test]
fn the_server_key_is_shown_and_pinned_at_first_contact_only_and_both_starts_log_in() {
    let data = accounts(&["alice"]);
    let server = ServerProcess::start(data.path(), "127.0.0.1:0");
    let fingerprint = server_fingerprint(data.path());

    let mut first = ClientProcess::start(server.addr, "alice");
    logged_in(&mut first);
    let profile = first.profile.clone();
    let shown = events_named(&first.seen, "server_key");
    assert_eq!(
        shown.len(),
        1,
        "one server_key at first contact: {:?}",
        first.seen
    );
    assert_eq!(
        shown[0]["fingerprint"], fingerprint,
        "the fingerprint `breeze-server key` prints"
    );
    assert!(first.quit().success());
    let pinned = profile.path().join("profile").join("server.pub");
    assert!(pinned.is_file(), "the key is pinned in the profile");

    let mut second = ClientProcess::start_in(server.addr, "alice", PASSWORD, profile, &[]);
    logged_in(&mut second);
    // One command answered after the login: anything the client had to say about the server
    // key it said before this answer.
    second.command("verify nobody");
    second.expect("the answer to verify", |e| e["event"] == "error");
    let seen = second.seen.clone();
    assert!(second.quit().success());
    assert_eq!(
        events_named(&seen, "server_key"),
        Vec::<&Value>::new(),
        "the pinned key is not news"
    );
    assert!(
        events_named(&seen, "error")
            .iter()
            .all(|e| e["fatal"] != true),
        "{seen:?}"
    );
}

#[test]
fn verify_shows_both_sides_the_same_fingerprint_until_bob_comes_back_with_another_key() {
    let data = accounts(&["alice", "bob"]);
    let server = ServerProcess::start(data.path(), "127.0.0.1:0");
    let mut alice = ClientProcess::start(server.addr, "alice");
    logged_in(&mut alice);
    let mut bob = ClientProcess::start(server.addr, "bob");
    logged_in(&mut bob);
    direct_to(&mut alice, "bob");
    direct_to(&mut bob, "alice");

    let at_alice = verify(&mut alice, "bob");
    let at_bob = verify(&mut bob, "alice");
    assert_eq!(at_alice, at_bob, "both sides read out the same string");
    let alices_key = profile_key(&alice.profile);
    let bobs_first_key = profile_key(&bob.profile);
    assert_eq!(
        at_alice,
        pair_fingerprint(&alices_key, &bobs_first_key).to_string(),
        "the pair of the keys in the two profiles"
    );

    // Nobody by that name: an error the client lives on after.
    alice.command("verify nobody");
    let unknown = alice.expect("the answer to verify nobody", |e| {
        e["event"] == "error" || e["event"] == "fingerprint"
    });
    assert_eq!(unknown["event"], "error", "{unknown}");
    assert_ne!(unknown["fatal"], true, "{unknown}");
    assert!(
        unknown["message"]
            .as_str()
            .is_some_and(|m| m.contains("nobody")),
        "{unknown}"
    );
    assert_eq!(verify(&mut alice, "bob"), at_alice, "alice goes on");

    // bob starts again on another machine: a new profile, a new key.
    assert!(bob.quit().success());
    let mut bob = ClientProcess::start(server.addr, "bob");
    logged_in(&mut bob);
    let changed = alice.expect("bob's new key", |e| e["event"] == "peer_key_changed");
    assert_eq!(changed["user"], "bob", "{changed}");
    let bobs_new_key = profile_key(&bob.profile);
    assert_ne!(bobs_new_key, bobs_first_key);
    assert_eq!(
        changed["key"],
        bobs_new_key.fingerprint().to_string(),
        "the fingerprint of the key in bob's new profile"
    );
    direct_to(&mut alice, "bob");
    direct_to(&mut bob, "alice");
    let now_at_alice = verify(&mut alice, "bob");
    assert_ne!(now_at_alice, at_alice, "another key, another fingerprint");
    assert_eq!(now_at_alice, verify(&mut bob, "alice"));
    assert_eq!(
        now_at_alice,
        pair_fingerprint(&alices_key, &bobs_new_key).to_string()
    );
    assert_eq!(
        events_named(&bob.seen, "peer_key_changed"),
        Vec::<&Value>::new(),
        "alice's key did not change: {:?}",
        bob.seen
    );
    drop(server);
}

#[test]
fn another_server_on_the_same_address_is_refused_before_login_until_its_fingerprint_is_given() {
    let first_data = accounts(&["alice"]);
    let first = ServerProcess::start(first_data.path(), "127.0.0.1:0");
    let addr = first.addr;
    let first_fingerprint = server_fingerprint(first_data.path());
    let mut alice = ClientProcess::start(addr, "alice");
    logged_in(&mut alice);
    let profile = alice.profile.clone();
    assert!(alice.quit().success());
    first.kill();

    // Another data directory: the same account, another server key.
    let other_data = accounts(&["alice"]);
    let other_fingerprint = server_fingerprint(other_data.path());
    assert_ne!(other_fingerprint, first_fingerprint);
    let other = ServerProcess::start(other_data.path(), &addr.to_string());
    assert_eq!(other.addr, addr, "the same address as the first server");

    let mut alice = ClientProcess::start_in(addr, "alice", PASSWORD, profile.clone(), &[]);
    let refused = alice.expect("the refusal of the new key", |e| e["event"] == "error");
    assert_eq!(refused["fatal"], true, "{refused}");
    let message = refused["message"].as_str().expect("a message");
    for part in [
        "--server-key",
        first_fingerprint.as_str(),
        other_fingerprint.as_str(),
    ] {
        assert!(message.contains(part), "{part:?} is not in {message:?}");
    }
    let status = alice.exit_status();
    assert!(!status.success(), "a changed server key is fatal: {status}");
    for never in ["logged_in", "server_key"] {
        assert_eq!(
            events_named(&alice.seen, never),
            Vec::<&Value>::new(),
            "{:?}",
            alice.seen
        );
    }
    // alice did reach this server (her error names the key it presented in its handshake);
    // its log, which names every login it checks, names none of hers.
    let (_, log) = other.terminate();
    assert_eq!(
        login_lines(&log, "alice"),
        Vec::<&String>::new(),
        "alice sent no login to the server she did not trust:\n{}",
        log.join("\n")
    );

    // The same server again (same data, same key), now trusted by its fingerprint.
    let other = ServerProcess::start(other_data.path(), &addr.to_string());
    let trusting = ["--server-key", other_fingerprint.as_str()];
    let mut alice = ClientProcess::start_in(addr, "alice", PASSWORD, profile.clone(), &trusting);
    logged_in(&mut alice);
    assert!(alice.quit().success());
    // The new key is pinned: no flag needed any more.
    let mut alice = ClientProcess::start_in(addr, "alice", PASSWORD, profile.clone(), &[]);
    logged_in(&mut alice);
    alice.command("verify nobody");
    alice.expect("the answer to verify", |e| e["event"] == "error");
    let seen = alice.seen.clone();
    assert!(alice.quit().success());
    assert!(
        seen.iter().all(|e| e["fatal"] != true),
        "the pinned key is trusted: {seen:?}"
    );
    let pinned = std::fs::read_to_string(profile.path().join("profile").join("server.pub"))
        .expect("the pin");
    let pinned = PublicKey::from_hex(pinned.trim()).expect("a key");
    assert_eq!(pinned.fingerprint().to_string(), other_fingerprint);

    // The log check above can fail: the same log names alice's logins now.
    let (_, log) = other.terminate();
    let logins = login_lines(&log, "alice");
    assert!(
        logins.len() >= 2,
        "two logins of alice:\n{}",
        log.join("\n")
    );
}

/// `breeze-server --data DATA account ARGS…`: its stdout lines, or its stderr as the error.
fn account(data: &Path, args: &[&str]) -> Result<Vec<String>, String> {
    let mut command = Command::new(&binaries().server);
    command.arg("--data").arg(data).arg("account").args(args);
    let output = run_bounded(command, "");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    if output.status.success() {
        Ok(text(&output.stdout).lines().map(str::to_owned).collect())
    } else {
        Err(text(&output.stderr))
    }
}

/// Marks `profile` enrolled for `user`, as a profile whose password login bound its key
/// remembers it, whether or not the server knows the key.
fn claim_enrolled(profile: &tempfile::TempDir, user: &str) {
    use std::os::unix::fs::DirBuilderExt;
    let dir = profile.path().join("profile");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .expect("the profile directory");
    std::fs::write(dir.join("enrolled"), format!("{user}\n")).expect("the enrolled file");
}

/// The sealed records `dialer` sent on one connection, after the three handshake messages.
fn client_records(sent: &[u8]) -> Vec<Vec<u8>> {
    let (records, _) = e2e_support::split_records(sent);
    records.into_iter().skip(2).collect()
}

#[test]
fn a_profile_enrols_with_its_password_then_logs_in_with_its_key_alone() {
    let data = accounts(&["alice"]);
    let server = ServerProcess::start(data.path(), "127.0.0.1:0");
    let proxy = e2e_support::Proxy::start();
    proxy.forward_to(server.addr);

    let mut first = ClientProcess::start(proxy.addr, "alice");
    logged_in(&mut first);
    let profile = first.profile.clone();
    assert!(first.quit().success());
    let enrolled = profile.path().join("profile").join("enrolled");
    let remembered = std::fs::read_to_string(&enrolled).expect("the profile remembers it");
    assert_eq!(remembered.trim(), "alice");

    // The same profile again, with no password anywhere: only its key can get it in.
    let mut second = ClientProcess::start_without_password(proxy.addr, "alice", profile.clone());
    logged_in(&mut second);
    let seen = second.seen.clone();
    assert!(second.quit().success());
    assert!(seen.iter().all(|e| e["event"] != "error"), "{seen:?}");

    // On the wire: the first record after each handshake holds hello and login. The second
    // is shorter by exactly the password and the register flag: a KeyLogin, no Login.
    let (enrolment, key_login) = (proxy.sent_by(0), proxy.sent_by(1));
    let (enrolment, key_login) = (client_records(&enrolment), client_records(&key_login));
    let user = breeze_core::wire::UserName::new("alice").unwrap();
    let port = 40_000;
    let login = e2e_support::client_frame(&breeze_core::wire::ClientFrame::Login {
        user: user.clone(),
        password: PASSWORD.into(),
        p2p_port: port,
        register: false,
    });
    let by_key = e2e_support::client_frame(&breeze_core::wire::ClientFrame::KeyLogin {
        user,
        p2p_port: port,
    });
    assert_eq!(
        enrolment[0].len() - key_login[0].len(),
        login.len() - by_key.len(),
        "the second login's first record is a KeyLogin's size"
    );
    for record in &key_login {
        assert!(!record
            .windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes()));
    }

    // The server says which way each came in, and the key's last login moved.
    let (_, log) = server.terminate();
    let enrolments = log
        .iter()
        .filter(|l| l.contains("key enrolled by password"));
    assert_eq!(enrolments.count(), 1, "{}", log.join("\n"));
    let listed = account(data.path(), &["keys", "alice"]).expect("the key listing");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let fingerprint = profile_key(&profile).fingerprint().to_string();
    assert!(listed[0].starts_with(&fingerprint), "{listed:?}");
    assert!(listed[0].ends_with("good"), "{listed:?}");
}

#[test]
fn a_revoked_key_is_refused_with_a_clear_error_even_with_the_password() {
    let data = accounts(&["alice"]);
    let server = ServerProcess::start(data.path(), "127.0.0.1:0");
    let mut alice = ClientProcess::start(server.addr, "alice");
    logged_in(&mut alice);
    let profile = alice.profile.clone();
    assert!(alice.quit().success());

    // The owner revokes it while the server runs.
    let fingerprint = profile_key(&profile).fingerprint().to_string();
    account(data.path(), &["revoke", "alice", &fingerprint]).expect("the revocation");
    let listed = account(data.path(), &["keys", "alice"]).expect("the key listing");
    assert!(listed[0].starts_with(&fingerprint) && listed[0].contains("revoked"));
    let again = account(data.path(), &["revoke", "alice", &fingerprint]);
    assert!(again.is_err_and(|e| e.contains("already")));

    let refusal = |client: &mut ClientProcess| {
        let refused = client.expect("the refusal", |e| e["event"] == "error");
        assert_eq!(refused["fatal"], true, "{refused}");
        let message = refused["message"].as_str().expect("a message").to_owned();
        for part in ["revoked", fingerprint.as_str(), "--profile"] {
            assert!(message.contains(part), "{part:?} is not in {message:?}");
        }
        assert!(!client.exit_status().success());
    };
    let mut by_key = ClientProcess::start_without_password(server.addr, "alice", profile.clone());
    refusal(&mut by_key);
    // Forgetting it is enrolled and giving the right password does not help.
    std::fs::remove_file(profile.path().join("profile").join("enrolled")).unwrap();
    let mut by_password = ClientProcess::start_in(server.addr, "alice", PASSWORD, profile, &[]);
    refusal(&mut by_password);
    assert_eq!(events_named(&by_password.seen, "logged_in").len(), 0);
}

#[test]
fn a_key_login_with_a_key_the_server_does_not_know_is_refused() {
    let data = accounts(&["alice"]);
    let server = ServerProcess::start(data.path(), "127.0.0.1:0");
    let mut alice = ClientProcess::start(server.addr, "alice");
    logged_in(&mut alice);
    assert!(alice.quit().success());

    // A fresh profile that claims to be alice's enrolled one: its key is not hers.
    let forged = Arc::new(tempfile::tempdir().expect("a profile"));
    claim_enrolled(&forged, "alice");
    let mut forger = ClientProcess::start_in(server.addr, "alice", "not her password", forged, &[]);
    let told = forger.expect("the key refusal", |e| e["event"] == "error");
    assert_ne!(told["fatal"], true, "{told}");
    assert!(told["message"]
        .as_str()
        .unwrap()
        .contains("does not know this profile's key"));
    // It falls back to the password, which is wrong.
    let refused = forger.expect("the password refusal", |e| e["event"] == "error");
    assert_eq!(refused["fatal"], true, "{refused}");
    assert!(refused["message"]
        .as_str()
        .unwrap()
        .contains("wrong user name or password"));
    assert!(!forger.exit_status().success());

    let (_, log) = server.terminate();
    let refusals: Vec<_> = log
        .iter()
        .filter(|l| l.contains("login refused") && l.contains("not enrolled"))
        .collect();
    assert_eq!(refusals.len(), 1, "{}", log.join("\n"));
    // Alice's own key stays the only one.
    let listed = account(data.path(), &["keys", "alice"]).expect("the key listing");
    assert_eq!(listed.len(), 1, "{listed:?}");
}
