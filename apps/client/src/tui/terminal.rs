//! The loop between the terminal, the client and the [`Screen`]: it draws, waits for a key,
//! an event or the transfer tick, and does what the screen asks of the client.

use super::chat::KEPT;
use super::{Answer, Intent, Screen, SEARCH_RESULTS};
use crate::enrolment;
use crate::history::{unix_ms, Conversation, Journal, Journaled, Page};
use crate::keys::KeyBook;
use crate::transfers::State;
use breeze_core::client::Event;
use breeze_core::wire::LoginRefusal;
use breeze_smol::{Client, DiskFiles};
use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures_lite::future::race;
use futures_lite::StreamExt;
use ratatui::DefaultTerminal;
use std::io;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How often the screen is redrawn while a transfer runs, for its rate and ETA.
const TRANSFER_TICK: Duration = Duration::from_millis(500);

/// Runs the screen until the user quits; non-zero exit after a refused login or a kick.
pub async fn run(
    client: Client,
    keys: KeyBook,
    journal: Journal,
    files: Arc<DiskFiles>,
    download_dir: PathBuf,
    register: bool,
) -> ExitCode {
    let mut terminal = match ratatui::try_init() {
        Ok(terminal) => terminal,
        Err(error) => {
            eprintln!("breeze: cannot set up the terminal: {error}");
            return ExitCode::FAILURE;
        }
    };
    let session = Session {
        client: &client,
        files: &files,
        download_dir,
        register,
    };
    let outcome = event_loop(&mut terminal, session, keys, journal).await;
    ratatui::restore();
    client.logout().await;
    match outcome {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(fatal)) => {
            eprintln!("breeze: {fatal}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("breeze: terminal error: {error}");
            ExitCode::FAILURE
        }
    }
}

enum Wake {
    Key(Option<io::Result<TermEvent>>),
    Client(Option<Event>),
    /// Time to refresh the transfers' rates.
    Tick,
}

/// What the screen runs with.
struct Session<'a> {
    client: &'a Client,
    files: &'a DiskFiles,
    download_dir: PathBuf,
    /// Create the account if a password login has to enrol the key again.
    register: bool,
}

/// Returns the fatal error that ended the session, if one did.
async fn event_loop(
    terminal: &mut DefaultTerminal,
    session: Session<'_>,
    mut book: KeyBook,
    mut journal: Journal,
) -> io::Result<Option<String>> {
    let Session {
        client,
        files,
        download_dir,
        register,
    } = session;
    let mut keys = EventStream::new();
    let mut screen = Screen::new(client.user().clone(), download_dir, Instant::now());
    if let Some(problem) = journal.problem() {
        screen.status = problem.to_string();
    }
    let contacts = journal.peers();
    // On a large server only watched users' presence comes: the contacts are shown, so watch.
    for contact in &contacts {
        client.watch(contact).await;
    }
    screen.set_contacts(contacts);
    // The screen reads the history up to here; what comes later it sees itself.
    let boundary = journal.newest_row();
    let mut title = String::new();
    loop {
        screen.tick(Instant::now());
        screen.set_wall_clock(unix_ms(SystemTime::now()));
        if let Some(peer) = screen.take_opened() {
            // Also watches the peer: on a large server that is what shows its presence.
            client.open_conversation(&peer).await;
        }
        if let Some(peer) = screen.wants_history() {
            let conversation = Conversation::Peer(peer.clone());
            let history = journal.page(&conversation, Page::UpTo(boundary), KEPT);
            screen.load_history(&peer, history);
        }
        if let Some((group, name)) = screen.wants_group_history() {
            let conversation = Conversation::Group(name);
            let history = journal.page(&conversation, Page::UpTo(boundary), KEPT);
            screen.load_group_history(group, history);
        }
        terminal.draw(|frame| screen.render(frame))?;
        signal_news(&mut screen, &mut title)?;
        let running = screen.transfers.active().any(|t| t.state == State::Running);
        let wake = race(async { Wake::Key(keys.next().await) }, async {
            Wake::Client(client.next_event().await)
        });
        let tick = async {
            if running {
                async_io::Timer::after(TRANSFER_TICK).await;
            } else {
                std::future::pending::<()>().await;
            }
            Wake::Tick
        };
        match race(wake, tick).await {
            Wake::Key(Some(Ok(TermEvent::Key(key)))) if key.kind == KeyEventKind::Press => {
                match screen.handle_key(key) {
                    Intent::Nothing => {}
                    Intent::Quit => return Ok(screen.fatal),
                    Intent::Verify(peer) => {
                        let result = book
                            .fingerprint_with(&peer)
                            .map(|f| f.to_string())
                            .ok_or_else(|| KeyBook::unknown(&peer));
                        screen.handle_answer(Answer::Verified { peer, result }, Instant::now());
                    }
                    Intent::Search(query) => {
                        let result = journal.search(&query, SEARCH_RESULTS);
                        screen.handle_answer(Answer::Found { query, result }, Instant::now());
                    }
                    Intent::Jump(peer, row) => {
                        let conversation = Conversation::Peer(peer.clone());
                        let result =
                            journal
                                .page(&conversation, Page::From(row), KEPT)
                                .map(|mut page| {
                                    page.retain(|m| m.row <= boundary);
                                    page
                                });
                        let answer = Answer::Jumped { peer, row, result };
                        screen.handle_answer(answer, Instant::now());
                    }
                    intent => {
                        // Hashing a big file takes a moment: show the notice saying so first.
                        terminal.draw(|frame| screen.render(frame))?;
                        if let Some(answer) = perform(client, intent).await {
                            // In the history before it is on screen.
                            if let Answer::Sent {
                                to,
                                text,
                                result: Ok(id),
                            } = &answer
                            {
                                let peer = Conversation::Peer(to.clone());
                                let at = SystemTime::now();
                                if let Some(warning) = journal.sent(&peer, *id, text, at) {
                                    screen.status = warning;
                                }
                            }
                            screen.handle_answer(answer, Instant::now());
                        }
                    }
                }
            }
            Wake::Key(Some(Ok(_))) | Wake::Tick => {}
            Wake::Key(Some(Err(error))) => return Err(error),
            Wake::Key(None) | Wake::Client(None) => return Ok(screen.fatal),
            Wake::Client(Some(Event::LoginFailed {
                reason: LoginRefusal::KeyNotEnrolled,
            })) => {
                // The password is asked for on the terminal, below the screen for a moment.
                ratatui::restore();
                eprintln!("{}", enrolment::not_enrolled(client.user()));
                let enrolled = enrolment::enrol_again(client, register).await;
                *terminal = ratatui::try_init()?;
                match enrolled {
                    Ok(()) => screen.status = "logging in with the password".into(),
                    Err(message) => {
                        screen.status = format!("{message} (Esc to quit)");
                        screen.fatal = Some(message);
                    }
                }
            }
            Wake::Client(Some(Event::LoginFailed {
                reason: LoginRefusal::KeyRevoked,
            })) => {
                let message = enrolment::revoked(client.user(), book.mine());
                screen.status = format!("{message} (Esc to quit)");
                screen.fatal = Some(message);
            }
            Wake::Client(Some(event)) => {
                if let Err(warning) = book.observe(&event) {
                    screen.status = warning;
                }
                // In the history before it is on screen; a message shown before a crash
                // is not shown twice.
                let show = match journal.observe(&event, SystemTime::now()) {
                    Journaled::Show => true,
                    Journaled::Repeat => false,
                    Journaled::Warning(warning) => {
                        screen.status = warning;
                        true
                    }
                };
                if show {
                    screen.set_wall_clock(unix_ms(SystemTime::now()));
                    screen.handle_event(event, Instant::now(), |peer, id| files.landed(peer, id));
                }
                screen.handle_peers(client.peers().await);
            }
        }
    }
}

/// Rings the terminal's bell for a message from someone not on screen, and keeps the
/// window's title saying how many wait unread.
fn signal_news(screen: &mut Screen, title: &mut String) -> io::Result<()> {
    let mut out = io::stdout();
    if screen.take_alert() {
        out.write_all(b"\x07")?;
    }
    let now = screen.title();
    if &now != title {
        crossterm::execute!(out, crossterm::terminal::SetTitle(&now))?;
        *title = now;
    }
    out.flush()
}

/// Asks the client for what a key press meant; `None` when it asks nothing of the client.
async fn perform(client: &Client, intent: Intent) -> Option<Answer> {
    let answer = match intent {
        Intent::Nothing
        | Intent::Quit
        | Intent::Verify(_)
        | Intent::Search(_)
        | Intent::Jump(..) => return None,
        Intent::GroupSend(group, text) => Answer::GroupAsked {
            group: Some(group),
            result: client
                .send_group(group, text)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        },
        Intent::Group(request) => Answer::GroupAsked {
            group: request.group(),
            result: client
                .group_request(request)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        },
        Intent::Send(to, text) => Answer::Sent {
            result: client
                .send(&to, text.clone())
                .await
                .map_err(|e| e.to_string()),
            to,
            text,
        },
        Intent::Offer(to, path) => Answer::Offered {
            result: client
                .offer_file(&to, &path)
                .await
                .map_err(|e| e.to_string()),
            to,
            path,
        },
        Intent::Accept(from, id, dir) => Answer::Accepted {
            result: client
                .accept_file(&from, id, &dir)
                .await
                .map_err(|e| e.to_string()),
            from,
            id,
            dir,
        },
        Intent::Decline(from, id) => Answer::Declined {
            result: client
                .decline_file(&from, id)
                .await
                .map_err(|e| e.to_string()),
            from,
            id,
        },
        Intent::Cancel(peer, id, direction) => Answer::Cancelled {
            result: client
                .cancel_file(&peer, id, direction)
                .await
                .map_err(|e| e.to_string()),
            peer,
            id,
            direction,
        },
    };
    Some(answer)
}
