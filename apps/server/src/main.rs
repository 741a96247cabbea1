//! `breeze-server`: the Breeze server binary.
//!
//! With no subcommand it serves (`serve.rs`): the first line on stdout is `listening on ADDR`,
//! logs go to stderr (or `--log-file`). `user …` manages the account store in the data
//! directory, and may run while a server is using the same directory.

mod announce;
mod key_listing;
mod serve;

use std::io::{self, BufRead};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use breeze_core::secure::Fingerprint;
use breeze_core::server::ServerConfig;
use breeze_server::{RevokeError, Store, StoreError};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "breeze-server",
    version,
    about = "Breeze LAN messenger server",
    long_about = "Breeze LAN messenger server.\n\n\
        Without a subcommand it serves: once listening it prints `listening on ADDR` (the \
        actual address, useful with --listen 127.0.0.1:0) as the first line on stdout. Logs go \
        to stderr, or to --log-file; RUST_LOG sets the level (default info). Ctrl-C or SIGTERM \
        stops it gracefully, telling every client."
)]
struct Cli {
    /// Directory holding the server's database (created if missing).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "./breeze-data",
        global = true
    )]
    data: PathBuf,

    /// Address to accept client connections on (serve mode).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:7300")]
    listen: SocketAddr,

    /// Let clients create their own accounts at login (serve mode).
    #[arg(long)]
    open_registration: bool,

    /// Connections one IP address may hold open, logins in progress included (serve mode).
    /// Raise it when many clients share one address (NAT, load tests on loopback).
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().max_connections_per_ip)]
    max_connections_per_ip: usize,

    /// Failed logins one IP address may make per minute before it is refused without a
    /// password check; logins still being checked count as failures until answered (serve
    /// mode). Raise it when many clients share one address.
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().max_login_failures_per_ip)]
    max_login_failures_per_ip: u32,

    /// Connections in their handshake and login at once (serve mode); later ones wait,
    /// accepted, for a slot. Bounds what a storm of logins (every client back after a
    /// restart) holds at once; the login timeout still applies to each.
    #[arg(long, value_name = "N", default_value_t = breeze_smol::DEFAULT_MAX_PENDING_LOGINS)]
    max_pending_logins: NonZeroUsize,

    /// File data one user may have relayed through the server, per second, as bytes with an
    /// optional K, M or G suffix (powers of 1024), e.g. 512K or 16M (serve mode). Direct
    /// transfers are not limited. Bursts of up to an eighth of a second's worth go at once.
    #[arg(long, value_name = "RATE", value_parser = parse_rate, default_value = "16M")]
    file_relay_rate: u64,

    /// Members one group may have, its owner included (serve mode).
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().max_group_members)]
    max_group_members: usize,

    /// Groups one user may be in (serve mode).
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().max_groups_per_user)]
    max_groups_per_user: usize,

    /// Do not announce the server on the LAN (mDNS/DNS-SD `_breeze._tcp` with the key's
    /// fingerprint), which it otherwise does on the interface of --listen (every interface
    /// for 0.0.0.0), so that clients find it without --server (serve mode).
    #[arg(long)]
    no_announce: bool,

    /// Write the log to this file instead of stderr (serve mode).
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,

    /// What to do; without one, the server runs.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// List and revoke the profile keys of an account (each client profile enrols its own
    /// key with the password once, then logs in with the key alone).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Print the server key's fingerprint (what clients pin and users can compare), making
    /// the key if the data directory has none yet.
    Key,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account; asks for the password twice unless --password-stdin.
    Add {
        /// Account name: 1–32 ASCII letters, digits, `_`, `-` or `.`.
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Print every account name, one per line, sorted.
    List,
    /// Delete an account and the offline messages waiting for it.
    Del {
        /// Account name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Print the account's profile keys, one a line: fingerprint, when it was added, when it
    /// last logged in, and whether it is good or revoked.
    Keys {
        /// Account name.
        name: String,
    },
    /// Revoke one of the account's keys: its next login is refused, even with the password.
    /// A session already logged in with it is not ended: revocation takes effect at the
    /// key's next login (restart the server to end it at once).
    Revoke {
        /// Account name.
        name: String,
        /// The key's fingerprint, as `account keys` lists it.
        #[arg(value_parser = parse_fingerprint)]
        fingerprint: Fingerprint,
    },
}

fn parse_fingerprint(text: &str) -> Result<Fingerprint, String> {
    Fingerprint::parse(text).ok_or_else(|| {
        "a fingerprint is 32 hex digits, in groups of four (e.g. 98dd:d8b2:027d:…)".into()
    })
}

/// See `Cargo.toml`: memory per idle connection stays flat as connections grow.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        None => return serve(&cli),
        Some(Command::User(command)) => user(&cli.data, command),
        Some(Command::Account(command)) => account(&cli.data, command),
        Some(Command::Key) => {
            breeze_smol::key_file::load_or_create(&breeze_server::key_path(&cli.data))
                .map(|key| println!("{}", key.public().fingerprint()))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("breeze-server: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Serve mode: accept clients on `--listen` until stopped.
fn serve(cli: &Cli) -> ExitCode {
    let options = serve::ServeOptions {
        listen: cli.listen,
        data: &cli.data,
        open_registration: cli.open_registration,
        max_connections_per_ip: cli.max_connections_per_ip,
        max_login_failures_per_ip: cli.max_login_failures_per_ip,
        max_pending_logins: cli.max_pending_logins,
        file_relay_rate: cli.file_relay_rate,
        max_group_members: cli.max_group_members,
        max_groups_per_user: cli.max_groups_per_user,
        log_file: cli.log_file.as_ref(),
        announce: !cli.no_announce,
    };
    match serve::serve(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("breeze-server: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `RATE` for `--file-relay-rate`: bytes per second, with an optional K, M or G suffix.
fn parse_rate(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_uppercase()),
        _ => (text, 'B'),
    };
    let scale: u64 = match unit {
        'B' => 1,
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        other => return Err(format!("unknown unit {other:?}: use K, M or G")),
    };
    let count: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a rate like 512K or 16M"))?;
    match count.checked_mul(scale) {
        Some(0) => Err("the rate must be above zero".into()),
        Some(rate) => Ok(rate),
        None => Err(format!("{text:?} is too large")),
    }
}

/// The store in `data`, for a subcommand; the error is the message for the user.
fn open_store(data: &Path) -> Result<Store, String> {
    Store::open(data).map_err(|e| match e {
        StoreError::DataDir { .. } => e.to_string(),
        e => format!("cannot open the store in {}: {e}", data.display()),
    })
}

/// Runs a `user` subcommand; the error is the message for the user.
fn user(data: &Path, command: &UserCommand) -> Result<(), String> {
    let open = || open_store(data);
    match command {
        UserCommand::Add {
            name,
            password_stdin,
        } => {
            let password = if *password_stdin {
                password_from_stdin()?
            } else {
                password_from_terminal(name)?
            };
            if password.is_empty() {
                return Err("refusing an empty password".into());
            }
            open()?.add_user(name, &password).map_err(|e| match e {
                StoreError::UserExists(_) | StoreError::BadName { .. } => e.to_string(),
                e => format!("cannot add user {name}: {e}"),
            })?;
            eprintln!("added user {name}");
        }
        UserCommand::List => {
            let names = open()?
                .list_users()
                .map_err(|e| format!("cannot list users: {e}"))?;
            for name in names {
                println!("{name}");
            }
        }
        UserCommand::Del { name } => {
            let removed = open()?
                .remove_user(name)
                .map_err(|e| format!("cannot delete user {name}: {e}"))?;
            if !removed {
                return Err(format!("no user named {name:?}"));
            }
            eprintln!("deleted user {name}");
        }
    }
    Ok(())
}

/// Runs an `account` subcommand; the error is the message for the user.
fn account(data: &Path, command: &AccountCommand) -> Result<(), String> {
    let mut store = open_store(data)?;
    let exists = |store: &Store, name: &str| match store.user_exists(name) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("no user named {name:?}")),
        Err(e) => Err(format!("cannot look up user {name}: {e}")),
    };
    match command {
        AccountCommand::Keys { name } => {
            exists(&store, name)?;
            let keys = store
                .account_keys(name)
                .map_err(|e| format!("cannot list the keys of {name}: {e}"))?;
            if keys.is_empty() {
                eprintln!("{name} has no key yet: none of its profiles has logged in");
            }
            for key in &keys {
                println!("{}", key_listing::line(key));
            }
        }
        AccountCommand::Revoke { name, fingerprint } => {
            exists(&store, name)?;
            let revoked = store
                .revoke_key(name, fingerprint, breeze_server::host::unix_now())
                .map_err(|e| format!("cannot revoke a key of {name}: {e}"))?;
            match revoked {
                Ok(_) => eprintln!(
                    "revoked {fingerprint} for {name}: its next login is refused (a session \
                     logged in with it now goes on until it ends)"
                ),
                Err(RevokeError::NoSuchKey) => {
                    return Err(format!(
                        "{name} has no key {fingerprint} (see `breeze-server account keys {name}`)"
                    ))
                }
                Err(RevokeError::AlreadyRevoked(at)) => {
                    return Err(format!(
                        "{fingerprint} was revoked for {name} already, at {}",
                        key_listing::utc(at)
                    ))
                }
            }
        }
    }
    Ok(())
}

/// The first line of standard input, without its line ending.
fn password_from_stdin() -> Result<String, String> {
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = line
        .strip_suffix('\n')
        .map(|rest| rest.strip_suffix('\r').unwrap_or(rest))
        .unwrap_or(&line);
    Ok(password.to_owned())
}

/// Asks for the password twice on the terminal, without echo.
fn password_from_terminal(name: &str) -> Result<String, String> {
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt).map_err(|e| {
            format!("cannot read the password from the terminal ({e}); use --password-stdin")
        })
    };
    let first = ask(&format!("Password for {name}: "))?;
    if first.is_empty() {
        return Err("refusing an empty password".into());
    }
    let second = ask("Repeat the password: ")?;
    if first != second {
        return Err("the passwords do not match".into());
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_systemd_unit_starts_the_server_with_flags_it_knows() {
        let unit = include_str!("../../../packaging/systemd/breeze-server.service");
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("an ExecStart line");
        let mut args = exec.split_whitespace();
        assert_eq!(args.next(), Some("/usr/local/bin/breeze-server"));
        let cli = Cli::try_parse_from(std::iter::once("breeze-server").chain(args)).unwrap();
        assert!(cli.command.is_none(), "it serves");
        assert_eq!(cli.data, PathBuf::from("/var/lib/breeze"));
        for line in ["User=breeze", "StateDirectory=breeze", "Restart=on-failure"] {
            assert!(unit.lines().any(|l| l == line), "{line}");
        }
    }

    #[test]
    fn no_subcommand_means_serve_with_the_defaults() {
        let cli = Cli::try_parse_from(["breeze-server"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.data, PathBuf::from("./breeze-data"));
        assert_eq!(cli.listen, "0.0.0.0:7300".parse().unwrap());
        assert!(!cli.open_registration);
        assert_eq!(
            cli.max_connections_per_ip,
            ServerConfig::default().max_connections_per_ip
        );
        assert!(cli.log_file.is_none());
    }

    #[test]
    fn the_per_address_connection_limit_can_be_raised_for_load_tests() {
        let cli = Cli::try_parse_from([
            "breeze-server",
            "--listen",
            "127.0.0.1:0",
            "--max-connections-per-ip",
            "20000",
        ])
        .unwrap();
        assert_eq!(cli.max_connections_per_ip, 20_000);
    }

    #[test]
    fn login_failure_limit_and_file_relay_rate_are_configurable() {
        let cli = Cli::try_parse_from([
            "breeze-server",
            "--max-login-failures-per-ip",
            "5000",
            "--file-relay-rate",
            "512K",
        ])
        .unwrap();
        assert_eq!(cli.max_login_failures_per_ip, 5000);
        assert_eq!(cli.file_relay_rate, 512 * 1024);
        let defaults = Cli::try_parse_from(["breeze-server"]).unwrap();
        assert_eq!(
            defaults.max_login_failures_per_ip,
            ServerConfig::default().max_login_failures_per_ip
        );
        assert_eq!(
            defaults.file_relay_rate,
            ServerConfig::default().file_relay.bytes_per_second
        );
    }

    #[test]
    fn rates_take_a_binary_suffix_and_refuse_nonsense() {
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert_eq!(parse_rate("2k"), Ok(2048));
        assert_eq!(parse_rate("16M"), Ok(16 << 20));
        assert_eq!(parse_rate("1G"), Ok(1 << 30));
        for bad in [
            "",
            "M",
            "0",
            "0M",
            "-1M",
            "1.5M",
            "3T",
            "99999999999G",
            "十M",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn data_may_come_before_or_after_the_user_subcommand() {
        for args in [
            &[
                "breeze-server",
                "--data",
                "/d",
                "user",
                "add",
                "alice",
                "--password-stdin",
            ][..],
            &[
                "breeze-server",
                "user",
                "add",
                "alice",
                "--password-stdin",
                "--data",
                "/d",
            ][..],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert_eq!(cli.data, PathBuf::from("/d"));
            match cli.command {
                Some(Command::User(UserCommand::Add {
                    name,
                    password_stdin,
                })) => {
                    assert_eq!(name, "alice");
                    assert!(password_stdin);
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
