//! `breeze --json`: commands from stdin, one JSON event per line on stdout.

use crate::command::{self, Command};
use crate::json::{LineEvent, WhoEntry};
use breeze_core::wire::UserName;
use breeze_smol::Client;
use futures_lite::future::race;
use futures_lite::io::{AsyncBufReadExt, BufReader};
use futures_lite::StreamExt;
use std::io::{self, Write};
use std::process::ExitCode;

enum Wake {
    Line(Option<io::Result<String>>),
    Event(Option<breeze_core::client::Event>),
}

/// Runs until `quit`, the end of stdin, or a fatal event (login refused, kicked).
pub async fn run(client: Client) -> ExitCode {
    let mut lines = BufReader::new(smol::Unblock::new(io::stdin())).lines();
    let mut out = io::stdout();
    loop {
        let wake = race(async { Wake::Line(lines.next().await) }, async {
            Wake::Event(client.next_event().await)
        });
        let outcome = match wake.await {
            Wake::Line(Some(Ok(line))) => match command::parse(&line) {
                Ok(Some(Command::Quit)) => break,
                Ok(Some(command)) => execute(&client, command).await,
                Ok(None) => continue,
                Err(message) => LineEvent::error(message),
            },
            Wake::Line(Some(Err(error))) => {
                eprintln!("breeze: cannot read stdin: {error}");
                break;
            }
            // The end of stdin is a quit: a script's last command has been given.
            Wake::Line(None) => break,
            Wake::Event(Some(event)) => LineEvent::from(event),
            Wake::Event(None) => {
                return fatal(&mut out, LineEvent::fatal_error("client stopped"));
            }
        };
        if outcome.is_fatal() {
            return fatal(&mut out, outcome);
        }
        if let LineEvent::Error { message, .. } = &outcome {
            eprintln!("breeze: {message}");
        }
        if emit(&mut out, &outcome).is_err() {
            // Nobody reads our events any more.
            break;
        }
    }
    client.logout().await;
    // What the logout itself reported (`logged_out`), without waiting for more.
    while let Some(Some(event)) = futures_lite::future::poll_once(client.next_event()).await {
        let _ = emit(&mut out, &LineEvent::from(event));
    }
    ExitCode::SUCCESS
}

/// Runs one command; the event it answers with.
async fn execute(client: &Client, command: Command) -> LineEvent {
    match command {
        Command::Send { to, text } => {
            let to = match UserName::new(to.as_str()) {
                Ok(to) => to,
                Err(e) => return LineEvent::error(format!("bad user name {to:?}: {e}")),
            };
            match client.send(&to, text).await {
                Ok(id) => LineEvent::Sent { to, id },
                Err(e) => LineEvent::error(format!("cannot send to {to}: {e}")),
            }
        }
        Command::File { .. } | Command::Accept { .. } => {
            LineEvent::error("file transfer not supported yet")
        }
        Command::Who => LineEvent::Who {
            users: client
                .peers()
                .await
                .into_iter()
                .map(|peer| WhoEntry {
                    user: peer.user,
                    online: peer.online,
                    route: peer.route.to_string(),
                })
                .collect(),
        },
        Command::Quit => LineEvent::LoggedOut,
    }
}

fn emit(out: &mut impl Write, event: &LineEvent) -> io::Result<()> {
    event.emit(out)
}

fn fatal(out: &mut impl Write, event: LineEvent) -> ExitCode {
    match &event {
        LineEvent::Error { message, .. } => eprintln!("breeze: {message}"),
        LineEvent::Kicked { reason } => eprintln!("breeze: kicked: {reason}"),
        _ => {}
    }
    let _ = emit(out, &event);
    ExitCode::FAILURE
}
