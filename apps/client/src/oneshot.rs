//! `breeze … send USER TEXT…`: log in, send one message, wait for `delivered` or `stored`.

use crate::enrolment;
use crate::history::{Conversation, Journal, Journaled};
use crate::json::LineEvent;
use crate::keys::KeyBook;
use breeze_core::client::Event;
use breeze_core::wire::{LoginRefusal, UserName};
use breeze_smol::Client;
use futures_lite::future::or;
use std::io;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// How the one-shot send runs.
#[derive(Debug, Clone, Copy)]
pub struct How {
    /// Print every event as in line mode.
    pub json: bool,
    /// Create the account if a password login has to enrol the key again.
    pub register: bool,
}

/// Exits 0 once the message is delivered or stored; 1 on a refused login, a kick or
/// `timeout`. With `json`, every event is printed as in line mode; otherwise one line of text
/// says what became of the message.
pub async fn run(
    client: Client,
    mut keys: KeyBook,
    journal: &mut Journal,
    to: &str,
    text: String,
    timeout: Duration,
    how: How,
) -> ExitCode {
    let json = how.json;
    let outcome = match UserName::new(to) {
        Ok(to) => {
            let timed_out = async {
                async_io::Timer::after(timeout).await;
                Err(format!(
                    "no delivery to {to} within {} s",
                    timeout.as_secs_f64()
                ))
            };
            or(
                deliver(&client, &mut keys, journal, &to, text, how),
                timed_out,
            )
            .await
        }
        Err(e) => Err(format!("bad user name {to:?}: {e}")),
    };
    client.logout().await;
    match outcome {
        Ok(done) => {
            if !json {
                println!("{done}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("breeze: {message}");
            if json {
                let _ = LineEvent::fatal_error(message).emit(&mut io::stdout());
            }
            ExitCode::FAILURE
        }
    }
}

/// Sends once logged in and waits for the message's fate; the line to print on success.
async fn deliver(
    client: &Client,
    keys: &mut KeyBook,
    journal: &mut Journal,
    to: &UserName,
    text: String,
    how: How,
) -> Result<String, String> {
    let json = how.json;
    let mut text = Some(text);
    let mut sent = None;
    while let Some(event) = client.next_event().await {
        if let Err(warning) = keys.observe(&event) {
            eprintln!("breeze: {warning}");
        }
        if let Journaled::Warning(warning) = journal.observe(&event, SystemTime::now()) {
            eprintln!("breeze: {warning}");
        }
        match &event {
            Event::LoginFailed {
                reason: LoginRefusal::KeyNotEnrolled,
            } => {
                eprintln!("breeze: {}", enrolment::not_enrolled(client.user()));
                enrolment::enrol_again(client, how.register).await?;
                continue;
            }
            Event::LoginFailed {
                reason: LoginRefusal::KeyRevoked,
            } => return Err(enrolment::revoked(client.user(), keys.mine())),
            Event::LoginFailed { reason } => return Err(format!("login refused: {reason}")),
            Event::Kicked { reason } => return Err(format!("kicked: {reason}")),
            Event::ServerKeyChanged {
                expected,
                presented,
            } => return Err(crate::keys::server_key_changed(expected, presented)),
            _ => {}
        }
        // The presence list being complete is no line-mode event (see line_mode.rs).
        let quiet = matches!(
            event,
            Event::PresenceComplete { .. } | Event::PeerKeyLearned { .. } | Event::Enrolled { .. }
        );
        if json && !quiet {
            let _ = LineEvent::from(event.clone()).emit(&mut io::stdout());
        }
        match event {
            Event::LoggedIn { .. } => {
                if let Some(text) = text.take() {
                    let id = client
                        .send(to, text.clone())
                        .await
                        .map_err(|e| format!("cannot send to {to}: {e}"))?;
                    let peer = Conversation::Peer(to.clone());
                    if let Some(warning) = journal.sent(&peer, id, &text, SystemTime::now()) {
                        eprintln!("breeze: {warning}");
                    }
                    if json {
                        let sent = LineEvent::Sent { to: to.clone(), id };
                        let _ = sent.emit(&mut io::stdout());
                    }
                    sent = Some(id);
                }
            }
            Event::Delivered { id, route, .. } if Some(id) == sent => {
                return Ok(format!("delivered to {to} ({route})"));
            }
            Event::Stored { id, .. } if Some(id) == sent => {
                return Ok(format!("{to} is offline: stored for their next login"));
            }
            Event::Undeliverable { id, reason, .. } if Some(id) == sent => {
                return Err(format!("the message to {to} cannot be delivered: {reason}"));
            }
            Event::ServerLost { error, retry_in } if sent.is_none() => {
                let retry_in = retry_in.unwrap_or_default().as_millis();
                eprintln!("breeze: {error}; retrying in {retry_in} ms");
            }
            _ => {}
        }
    }
    Err("the client stopped".into())
}
