//! `breeze --json`: commands from stdin, one JSON event per line on stdout.

use crate::command::{self, Command};
use crate::enrolment;
use crate::group_lines::GroupNames;
use crate::history::{Conversation, Journal, Journaled};
use crate::json::{HistoryEntry, LineEvent, WhoEntry};
use crate::keys::KeyBook;
use crate::transfers::{State, Transfer, Transfers};
use breeze_core::client::{Direction, Event, FileEvent};
use breeze_core::wire::{LoginRefusal, TransferId, UserName};
use breeze_smol::{Client, DiskFiles, Landed};
use futures_lite::future::race;
use futures_lite::io::{AsyncBufReadExt, BufReader};
use futures_lite::StreamExt;
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// `file_progress` lines per transfer are at least this far apart (the last one always
/// comes), so a fast transfer does not flood a script.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// What line mode keeps besides the client: the files and the transfers it knows.
pub struct Session {
    pub client: Client,
    /// The keys this profile knows, for `verify` and to keep the profile up to date.
    pub keys: KeyBook,
    /// Every message, written before its line is printed.
    pub journal: Journal,
    pub files: Arc<DiskFiles>,
    /// Where `accept ID` without a directory puts the file.
    pub download_dir: PathBuf,
    /// Create the account if a password login has to enrol the key again.
    pub register: bool,
    transfers: Transfers,
    group_names: GroupNames,
    progress_shown: HashMap<(UserName, TransferId, Direction), Instant>,
}

impl Session {
    pub fn new(
        client: Client,
        keys: KeyBook,
        journal: Journal,
        files: Arc<DiskFiles>,
        download_dir: PathBuf,
    ) -> Session {
        Session {
            client,
            keys,
            journal,
            files,
            download_dir,
            register: false,
            transfers: Transfers::new(),
            group_names: GroupNames::default(),
            progress_shown: HashMap::new(),
        }
    }
}

enum Wake {
    Line(Option<io::Result<String>>),
    Event(Option<breeze_core::client::Event>),
}

/// Runs until `quit`, the end of stdin, or a fatal event (login refused, kicked).
pub async fn run(mut session: Session) -> ExitCode {
    let client = session.client.clone();
    let mut lines = BufReader::new(smol::Unblock::new(io::stdin())).lines();
    let mut out = io::stdout();
    if let Some(problem) = session.journal.problem() {
        let _ = emit(&mut out, &LineEvent::error(problem));
    }
    loop {
        let wake = race(async { Wake::Line(lines.next().await) }, async {
            Wake::Event(client.next_event().await)
        });
        let outcome = match wake.await {
            Wake::Line(Some(Ok(line))) => match command::parse(&line) {
                Ok(Some(Command::Quit)) => break,
                Ok(Some(command)) => execute(&mut session, command).await,
                Ok(None) => continue,
                Err(message) => LineEvent::error(message),
            },
            Wake::Line(Some(Err(error))) => {
                eprintln!("breeze: cannot read stdin: {error}");
                break;
            }
            // The end of stdin is a quit: a script's last command has been given.
            Wake::Line(None) => break,
            Wake::Event(Some(Event::LoginFailed {
                reason: LoginRefusal::KeyNotEnrolled,
            })) => {
                let notice = LineEvent::error(enrolment::not_enrolled(client.user()));
                if let LineEvent::Error { message, .. } = &notice {
                    eprintln!("breeze: {message}");
                }
                let _ = emit(&mut out, &notice);
                match enrolment::enrol_again(&client, session.register).await {
                    Ok(()) => continue,
                    Err(message) => return fatal(&mut out, LineEvent::fatal_error(message)),
                }
            }
            Wake::Event(Some(Event::LoginFailed {
                reason: LoginRefusal::KeyRevoked,
            })) => LineEvent::fatal_error(enrolment::revoked(client.user(), session.keys.mine())),
            Wake::Event(Some(event)) => match session.observe(event) {
                Some(event) => event,
                None => continue,
            },
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
        if !matches!(event, Event::PresenceComplete { .. }) {
            let _ = emit(&mut out, &LineEvent::from(event));
        }
    }
    ExitCode::SUCCESS
}

impl Session {
    /// The line for a client event, after noting what it says about transfers; `None` for
    /// progress shown a moment ago and for events the contract does not list.
    fn observe(&mut self, event: Event) -> Option<LineEvent> {
        let now = Instant::now();
        // Before the line is printed: what a script saw is in the history.
        match self.journal.observe(&event, SystemTime::now()) {
            Journaled::Show => {}
            Journaled::Repeat => return None,
            Journaled::Warning(warning) => eprintln!("breeze: {warning}"),
        }
        self.transfers.apply(&event, now);
        if let Err(warning) = self.keys.observe(&event) {
            eprintln!("breeze: {warning}");
        }
        match &event {
            // Not (yet) part of the line-mode contract: scripts wait for `presence` events.
            Event::PresenceComplete { .. } => return None,
            // Only a change is news to a script; the first key is just remembered.
            Event::PeerKeyLearned { .. } => return None,
            // Kept in the profile (by `keys.observe` above); a script sees `logged_in`.
            Event::Enrolled { .. } => return None,
            Event::Group(group) => return Some(self.group_names.line_event(group.clone())),
            Event::File(FileEvent::Progress {
                peer,
                id,
                direction,
                bytes,
                size,
                ..
            }) => {
                let key = (peer.clone(), *id, *direction);
                let recent = self
                    .progress_shown
                    .get(&key)
                    .is_some_and(|shown| now.duration_since(*shown) < PROGRESS_EVERY);
                if recent && bytes < size {
                    return None;
                }
                self.progress_shown.insert(key, now);
            }
            Event::File(FileEvent::Done {
                peer,
                id,
                direction,
                verified,
            }) => {
                self.progress_shown.remove(&(peer.clone(), *id, *direction));
                let path = match direction {
                    Direction::Receiving => match self.files.landed(peer, *id) {
                        Some(Landed::Complete(path) | Landed::Corrupt(path)) => Some(path),
                        None => None,
                    },
                    Direction::Sending => self
                        .transfers
                        .get(peer, *id, *direction)
                        .and_then(|t| t.path.clone()),
                };
                if let Some(path) = &path {
                    self.transfers.landed(peer, *id, path.clone());
                }
                return Some(LineEvent::FileDone {
                    peer: peer.clone(),
                    id: id.to_string(),
                    direction: crate::json::direction(*direction),
                    verified: *verified,
                    path: path.map(|p| p.display().to_string()),
                });
            }
            Event::File(FileEvent::Failed {
                peer,
                id,
                direction,
                ..
            })
            | Event::File(FileEvent::Cancelled {
                peer,
                id,
                direction,
            }) => {
                self.progress_shown.remove(&(peer.clone(), *id, *direction));
            }
            _ => {}
        }
        Some(LineEvent::from(event))
    }
}

/// Runs one command; the event it answers with.
async fn execute(session: &mut Session, command: Command) -> LineEvent {
    let client = &session.client;
    match command {
        Command::Send { to, text } => {
            let to = match UserName::new(to.as_str()) {
                Ok(to) => to,
                Err(e) => return LineEvent::error(format!("bad user name {to:?}: {e}")),
            };
            match client.send(&to, text.clone()).await {
                Ok(id) => {
                    let peer = Conversation::Peer(to.clone());
                    let at = SystemTime::now();
                    if let Some(warning) = session.journal.sent(&peer, id, &text, at) {
                        eprintln!("breeze: {warning}");
                    }
                    LineEvent::Sent { to, id }
                }
                Err(e) => LineEvent::error(format!("cannot send to {to}: {e}")),
            }
        }
        Command::File { to, path } => {
            let to = match UserName::new(to.as_str()) {
                Ok(to) => to,
                Err(e) => return LineEvent::error(format!("bad user name {to:?}: {e}")),
            };
            match client.offer_file(&to, &path).await {
                Ok(file) => {
                    session.transfers.offered(&to, &file);
                    LineEvent::FileOffered {
                        to,
                        id: file.id.to_string(),
                        name: file.name.to_string(),
                        size: file.size,
                        path: file.path.display().to_string(),
                    }
                }
                Err(e) => LineEvent::error(format!("cannot offer {path} to {to}: {e}")),
            }
        }
        Command::Accept { id, dir } => {
            let offered =
                |t: &Transfer| t.direction == Direction::Receiving && t.state == State::Offered;
            let (from, id) = match session.transfers.find(&id, offered) {
                Ok(t) => (t.peer.clone(), t.id),
                Err(message) => return LineEvent::error(message),
            };
            let dir = dir.map_or_else(|| session.download_dir.clone(), PathBuf::from);
            match client.accept_file(&from, id, &dir).await {
                Ok(offset) => {
                    session.transfers.accepted(&from, id, dir.clone(), offset);
                    LineEvent::FileAccepted {
                        peer: from,
                        id: id.to_string(),
                        direction: crate::json::direction(Direction::Receiving),
                        offset,
                        dir: Some(dir.display().to_string()),
                    }
                }
                Err(e) => LineEvent::error(format!("cannot accept {id}: {e}")),
            }
        }
        Command::Decline { id } => {
            let offered =
                |t: &Transfer| t.direction == Direction::Receiving && t.state == State::Offered;
            let (from, id) = match session.transfers.find(&id, offered) {
                Ok(t) => (t.peer.clone(), t.id),
                Err(message) => return LineEvent::error(message),
            };
            match client.decline_file(&from, id).await {
                Ok(()) => {
                    let direction = Direction::Receiving;
                    session
                        .transfers
                        .ended(&from, id, direction, State::Declined);
                    LineEvent::file_declined(from, id, direction)
                }
                Err(e) => LineEvent::error(format!("cannot decline {id}: {e}")),
            }
        }
        Command::Cancel { id } => {
            let (peer, id, direction) = match session.transfers.find(&id, Transfer::is_active) {
                Ok(t) => (t.peer.clone(), t.id, t.direction),
                Err(message) => return LineEvent::error(message),
            };
            match client.cancel_file(&peer, id, direction).await {
                Ok(()) => {
                    session
                        .transfers
                        .ended(&peer, id, direction, State::Cancelled);
                    LineEvent::file_cancelled(peer, id, direction, "me")
                }
                Err(e) => LineEvent::error(format!("cannot cancel {id}: {e}")),
            }
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
        Command::Watch { user } => match UserName::new(user.as_str()) {
            Err(error) => LineEvent::error(format!("bad user name {user:?}: {error}")),
            Ok(user) => {
                client.watch(&user).await;
                LineEvent::Watching { user }
            }
        },
        Command::Verify { user } => match UserName::new(user.as_str()) {
            Err(error) => LineEvent::error(format!("bad user name {user:?}: {error}")),
            Ok(user) => match session.keys.fingerprint_with(&user) {
                Some(fingerprint) => LineEvent::Fingerprint {
                    user,
                    fingerprint: fingerprint.to_string(),
                },
                None => LineEvent::error(crate::keys::KeyBook::unknown(&user)),
            },
        },
        Command::Group(command) => crate::group_lines::execute(client, command).await,
        Command::History { user, count } => match UserName::new(user.as_str()) {
            Err(error) => LineEvent::error(format!("bad user name {user:?}: {error}")),
            Ok(peer) => history(&session.journal, Conversation::Peer(peer), count),
        },
        Command::GroupHistory { group, count } => {
            history(&session.journal, Conversation::Group(group), count)
        }
        Command::Quit => LineEvent::LoggedOut,
    }
}

/// The `history` event of `conversation`'s last `count` messages.
fn history(journal: &Journal, conversation: Conversation, count: usize) -> LineEvent {
    match journal.last(&conversation, count) {
        Ok(messages) => {
            let messages = messages.iter().map(HistoryEntry::from).collect();
            match conversation {
                Conversation::Peer(peer) => LineEvent::History {
                    peer: Some(peer),
                    group: None,
                    messages,
                },
                Conversation::Group(group) => LineEvent::History {
                    peer: None,
                    group: Some(group),
                    messages,
                },
            }
        }
        Err(message) => LineEvent::error(message),
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
