//! `breeze`: the Breeze LAN messenger client.
//!
//! - `cli.rs`: the command line;
//! - `tui/`: the interactive screen (stdin is a terminal, no `--json`), with
//!   `tui/slash_commands.rs` (the `/file`, `/accept`… input) and `tui/files_pane.rs` (the files
//!   pane);
//! - `line_mode.rs`: the contract for scripts (docs/ARCHITECTURE.md §9), with `command.rs` (what
//!   scripts type) and `json.rs` (the events they read);
//! - `transfers.rs`: the file transfers of this session, for both modes, with
//!   `transfer_rate.rs` (rate and ETA); the files themselves are `breeze_smol::DiskFiles`;
//! - `oneshot.rs`: `breeze … send USER TEXT…`;
//! - `history/`: every message in the profile's SQLite, written before it is shown;
//! - `settings.rs`: the settings file; `discovery.rs`: servers announced on the LAN
//!   (`breeze discover`, and `breeze` without a server);
//! - `enrolment.rs`: key logins once the profile is enrolled, the password otherwise.

mod cli;
mod command;
mod discovery;
mod enrolment;
mod group_lines;
mod history;
mod json;
mod keys;
mod line_mode;
mod oneshot;
mod profile;
mod settings;
mod transfer_rate;
mod transfers;
mod tui;

use breeze_core::client::ClientConfig;
use breeze_core::wire::UserName;
use breeze_smol::{Client, ClientOptions, DiskFiles};
use clap::Parser;
use cli::{Cli, OneShot};
use history::{History, Journal};
use keys::KeyBook;
use profile::Profile;
use settings::Settings;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// See `Cargo.toml`: file chunks are allocated on one thread and freed on another.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs only when RUST_LOG is set: stdout belongs to the events, and the screen to the TUI.
    if let Err(message) = breeze_smol::init_logging(None, cli.log_file.as_deref()) {
        eprintln!("breeze: {message}");
        return ExitCode::FAILURE;
    }
    if let Some(OneShot::Discover { wait }) = cli.command {
        return discover(Duration::from_millis(wait));
    }
    let files = Arc::new(DiskFiles::new());
    let Start {
        options,
        keys,
        mut journal,
        download_dir,
    } = match start(&cli, files.clone()) {
        Ok(start) => start,
        Err(message) => {
            eprintln!("breeze: {message}");
            // Line mode's contract: a script reads its errors on stdout too.
            if cli.json || !std::io::stdin().is_terminal() {
                let _ = json::LineEvent::fatal_error(message).emit(&mut std::io::stdout());
            }
            return ExitCode::FAILURE;
        }
    };
    if let Some(problem) = journal.problem() {
        eprintln!("breeze: {problem}");
    }
    let client = match Client::start(options) {
        Ok(client) => client,
        Err(error) => {
            eprintln!(
                "breeze: cannot listen on {} for peers: {error}",
                cli.p2p_listen
            );
            return ExitCode::FAILURE;
        }
    };
    let json = cli.json;
    let register = cli.register;
    smol::block_on(async {
        match cli.command {
            Some(OneShot::Send { to, text, timeout }) => {
                let timeout = Duration::from_secs(timeout);
                let text = text.join(" ");
                let how = oneshot::How { json, register };
                oneshot::run(client, keys, &mut journal, &to, text, timeout, how).await
            }
            Some(OneShot::Discover { .. }) => ExitCode::SUCCESS,
            None if !json && std::io::stdin().is_terminal() => {
                tui::terminal::run(client, keys, journal, files, download_dir, register).await
            }
            None => {
                let mut session =
                    line_mode::Session::new(client, keys, journal, files, download_dir);
                session.register = register;
                line_mode::run(session).await
            }
        }
    })
}

/// What a session starts with, from the command line, the settings file and the profile.
struct Start {
    options: ClientOptions,
    keys: KeyBook,
    journal: Journal,
    download_dir: PathBuf,
}

/// The client's options from the command line, the settings and the profile; the profile's
/// keys and history.
fn start(cli: &Cli, files: Arc<DiskFiles>) -> Result<Start, String> {
    let settings = match &cli.config {
        Some(path) => Settings::load(path, true)?,
        None => match Settings::default_path() {
            Some(path) => Settings::load(&path, false)?,
            None => Settings::default(),
        },
    };
    let (server_name, announced_key) = match cli.server.clone().or(settings.server) {
        Some(server) => (server, None),
        None => {
            let interactive = !cli.json && cli.command.is_none() && std::io::stdin().is_terminal();
            let found = choose_server(interactive)?;
            let key = found.key();
            (found.addr, key)
        }
    };
    let user_name = cli
        .user
        .clone()
        .or(settings.user)
        .ok_or("no user: give --user NAME or set `user` in the settings file")?;
    let server = cli::resolve(&server_name)?;
    let user = UserName::new(user_name.as_str()).map_err(|e| format!("bad user name: {e}"))?;
    let dir = match &cli.profile {
        Some(dir) => dir.clone(),
        None => Profile::default_dir(&server_name, &user)?,
    };
    let profile = Profile::open(&dir)?;
    let identity = profile.identity()?;
    let peer_keys = profile.peer_keys()?;
    let keys = KeyBook::new(profile.clone(), identity.public(), &peer_keys);
    let history_days = cli.history_days.or(settings.history_days);
    let journal = open_history(&dir, &user, history_days);
    // Past every id this profile sent before: a peer's history tells a message sent again
    // from a new one by its id.
    let first_message_id = journal.next_message_id();
    // An enrolled profile logs in with its key: no password is asked for, or sent.
    let key_login = profile.is_enrolled(&user);
    let password = if key_login {
        String::new()
    } else {
        enrolment::password(&user)?
    };
    let mut options = ClientOptions::new(server, user, password);
    options.key_login = key_login;
    options.identity = Some(identity);
    options.peer_keys = peer_keys;
    // A fingerprint given on the command line overrides the pin: it is how a user trusts a
    // server key that changed on purpose (the new key is pinned once it is met).
    // A key announced on the LAN is only a first expectation: a key pinned before wins.
    match cli.server_key {
        Some(fingerprint) => options.server_fingerprint = Some(fingerprint),
        None => {
            options.server_key = profile.server_key()?;
            if options.server_key.is_none() {
                options.server_fingerprint = announced_key;
            }
        }
    }
    options.register = cli.register;
    options.p2p_listen = cli.p2p_listen;
    options.direct_channels = !cli.no_direct;
    options.files = files;
    let max_direct_channels = cli.max_direct_channels.or(settings.max_direct_channels);
    let channel_idle = cli
        .channel_idle
        .or(settings.channel_idle_secs)
        .map(Duration::from_secs);
    options.tweak = Some(Arc::new(move |config: &mut ClientConfig| {
        config.first_message_id = first_message_id;
        if let Some(cap) = max_direct_channels {
            config.max_direct_channels = cap;
        }
        if let Some(idle) = channel_idle {
            config.channel_idle = idle;
        }
    }));
    let download_dir = cli
        .download_dir
        .clone()
        .or(settings.download_dir)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(Start {
        options,
        keys,
        journal,
        download_dir,
    })
}

/// `breeze discover`: the servers heard on the LAN, one JSON object a line.
fn discover(wait: Duration) -> ExitCode {
    match discovery::browse(wait) {
        Ok(servers) => {
            for server in servers {
                if let Ok(line) = serde_json::to_string(&server) {
                    println!("{line}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("breeze: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The server to use when none was given: the one announced on the LAN; with several, the
/// user's choice on the terminal (`interactive`), else an error naming them.
fn choose_server(interactive: bool) -> Result<discovery::Found, String> {
    let mut servers = discovery::browse(discovery::DEFAULT_WAIT)?;
    match servers.len() {
        0 => Err(
            "no server given (--server HOST:PORT, or `server` in the settings file), \
                  and none announced itself on the LAN"
                .into(),
        ),
        1 => Ok(servers.remove(0)),
        _ if interactive => ask_which(servers),
        _ => Err(format!(
            "several servers announce themselves on the LAN: {}; pick one with --server",
            discovery::listing(&servers)
        )),
    }
}

/// Lists `servers` on the terminal and reads the number of the one to use.
fn ask_which(mut servers: Vec<discovery::Found>) -> Result<discovery::Found, String> {
    eprintln!("Several Breeze servers announce themselves on the LAN:");
    for (n, server) in servers.iter().enumerate() {
        let key = server.fingerprint.as_deref().unwrap_or("no key announced");
        eprintln!("  {}) {}  key {key}", n + 1, server.addr);
    }
    eprint!("Which one (1–{})? ", servers.len());
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    match answer.trim().parse::<usize>() {
        Ok(n) if (1..=servers.len()).contains(&n) => Ok(servers.remove(n - 1)),
        _ => Err(format!(
            "{:?} is not one of the servers listed",
            answer.trim()
        )),
    }
}

/// The profile's history, pruned to `days` when given; without history (and saying why)
/// when it cannot be used.
fn open_history(dir: &std::path::Path, user: &UserName, days: Option<u32>) -> Journal {
    let history = History::open(&dir.join(history::FILE), user).and_then(|mut history| {
        if let Some(days) = days {
            history.prune(days, SystemTime::now())?;
        }
        Ok(history)
    });
    Journal::new(history)
}
