//! The command line: where the server is, who we are, and which mode to run.

use breeze_core::secure::Fingerprint;
use clap::{Parser, Subcommand};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "breeze",
    version,
    about = "Breeze LAN messenger client",
    long_about = "Breeze LAN messenger client.\n\n\
        With a terminal on stdin and without --json it runs an interactive chat screen. \
        With --json (or when stdin is not a terminal) it reads commands from stdin, one per \
        line (send USER TEXT…, file USER PATH, accept ID [DIR], decline ID, cancel ID, who, \
        verify USER, group …, groups, gsend GROUP TEXT…, history USER [N], ghistory GROUP [N], \
        quit), and writes events to stdout as JSON objects, one per line; the end of stdin \
        counts as quit. `breeze … send USER TEXT…` sends one message \
        and exits once it is delivered or stored; `breeze discover` lists the servers announced \
        on the LAN.\n\n\
        The password comes from the BREEZE_PASSWORD environment variable, or is asked for on \
        the terminal. Logs go to stderr (or --log-file) when RUST_LOG is set (e.g. RUST_LOG=debug)."
)]
pub struct Cli {
    /// The Breeze server, as HOST:PORT. Default: `server` in the settings file, else the
    /// server announced on the LAN (with several, the chat screen asks which; line mode
    /// lists them in an error).
    #[arg(long, value_name = "HOST:PORT")]
    pub server: Option<String>,

    /// Your user name. Default: `user` in the settings file.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Create the account at first login (the server must allow registration).
    #[arg(long)]
    pub register: bool,

    /// Where to listen for direct connections from peers.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:0")]
    pub p2p_listen: SocketAddr,

    /// Scriptable line mode: commands on stdin, JSON events on stdout.
    #[arg(long, global = true)]
    pub json: bool,

    /// Never open direct channels: everything goes through the server relay, no P2P port is
    /// opened, and peers are told not to dial this client.
    #[arg(long)]
    pub no_direct: bool,

    /// Hold at most N direct channels. With more peers online, channels open only to the
    /// peers talked to (a message, a file, the conversation opened) and close when idle.
    /// Default: `max_direct_channels` in the settings file, else 64.
    #[arg(long, value_name = "N")]
    pub max_direct_channels: Option<usize>,

    /// With more peers online than the cap, close a direct channel that carried nothing for
    /// this many seconds. Default: `channel_idle_secs` in the settings file, else 180.
    #[arg(long, value_name = "SECONDS")]
    pub channel_idle: Option<u64>,

    /// Where accepted files go when no directory is given (`accept ID` in line mode, the
    /// accept key in the chat screen). Created when needed. Default: `download_dir` in the
    /// settings file, else the current directory.
    #[arg(long, value_name = "DIR")]
    pub download_dir: Option<PathBuf>,

    /// The profile directory: this user's key, the pinned server key, the peers' keys and
    /// the history (history.sqlite).
    /// Default: $XDG_DATA_HOME/breeze/profiles/USER@SERVER (~/.local/share/… without XDG).
    #[arg(long, value_name = "DIR")]
    pub profile: Option<PathBuf>,

    /// The settings file (server, user, download_dir, history_days, max_direct_channels,
    /// channel_idle_secs; flags win over it).
    /// Default: $XDG_CONFIG_HOME/breeze/config.toml (~/.config/… without XDG), if present.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Forget history older than N days, at every start. Default: `history_days` in the
    /// settings file, else keep everything.
    #[arg(long, value_name = "N")]
    pub history_days: Option<u32>,

    /// Trust only a server whose key has this fingerprint (as `breeze-server key` prints
    /// it), instead of the key pinned in the profile; the key is pinned once it matches.
    /// This is how to accept a server key that changed on purpose.
    #[arg(long, value_name = "FINGERPRINT", value_parser = parse_fingerprint)]
    pub server_key: Option<Fingerprint>,

    /// Write logs to this file instead of stderr (when RUST_LOG is set).
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<OneShot>,
}

#[derive(Debug, Subcommand)]
pub enum OneShot {
    /// List the Breeze servers announced on the LAN (mDNS/DNS-SD `_breeze._tcp`), one JSON
    /// object a line with `addr` and `fingerprint`, and exit. Needs no --server or --user.
    Discover {
        /// Listen for announcements this many milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 1500)]
        wait: u64,
    },
    /// Log in, send one message, wait until it is delivered (or stored for an offline
    /// recipient), and exit.
    Send {
        /// The recipient.
        to: String,
        /// The message; several words are joined with spaces.
        #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
        text: Vec<String>,
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 30)]
        timeout: u64,
    },
}

fn parse_fingerprint(text: &str) -> Result<Fingerprint, String> {
    Fingerprint::parse(text).ok_or_else(|| {
        "a fingerprint is 32 hex digits, in groups of four (e.g. 98dd:d8b2:027d:…)".into()
    })
}

/// Resolves `HOST:PORT` (a name or an address) to the first address it names.
pub fn resolve(server: &str) -> Result<SocketAddr, String> {
    server
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve server address {server:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("server address {server:?} names no address"))
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
    fn discover_needs_neither_server_nor_user() {
        let cli = Cli::try_parse_from(["breeze", "discover"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(OneShot::Discover { wait: 1500 })
        ));
    }

    #[test]
    fn one_shot_send_joins_the_words_of_the_message() {
        let cli = Cli::try_parse_from([
            "breeze", "--server", "h:1", "--user", "alice", "send", "bob", "hi", "-", "there",
        ])
        .unwrap();
        match cli.command {
            Some(OneShot::Send { to, text, timeout }) => {
                assert_eq!(to, "bob");
                assert_eq!(text.join(" "), "hi - there");
                assert_eq!(timeout, 30);
            }
            _ => panic!("not a send"),
        }
    }

    #[test]
    fn line_mode_flags_parse() {
        let cli = Cli::try_parse_from([
            "breeze",
            "--server",
            "127.0.0.1:7300",
            "--user",
            "bob",
            "--json",
            "--no-direct",
            "--register",
            "--p2p-listen",
            "127.0.0.1:0",
            "--max-direct-channels",
            "8",
            "--channel-idle",
            "30",
        ])
        .unwrap();
        assert!(cli.json && cli.no_direct && cli.register);
        assert_eq!(cli.max_direct_channels, Some(8));
        assert_eq!(cli.channel_idle, Some(30));
        assert!(cli.command.is_none());
        assert_eq!(
            resolve(cli.server.as_deref().unwrap()).unwrap(),
            "127.0.0.1:7300".parse().unwrap()
        );
    }
}
