//! `breeze-bench`: end-to-end benchmarks of Breeze over loopback sockets.
//!
//! Each subcommand is bounded in count and time, stops by itself, uses 127.0.0.1 and
//! ephemeral ports only, and prints a short table on stdout (progress goes to stderr). Nothing
//! is written to files except the throw-away data directory of a `breeze-server` process.
//!
//! - `relay` (`relay.rs`): relayed chat throughput and latency through the real server driver,
//!   side by side with a raw encrypted forwarder (`raw.rs`) under the same load, and the
//!   server's memory as a separate process (`server_process.rs`).
//! - `idle` (`idle.rs`): many idle logged-in clients on a `breeze-server` process: no
//!   disconnects allowed, memory per connection.
//! - `direct` (`direct.rs`): full clients chatting over direct channels; the server relays
//!   nothing.
//!
//! The load clients: `breeze_wire.rs` speaks Breeze's protocol at the wire with the least
//! work per message (the relay's default); `core_client.rs` drives `breeze_core::Client`
//! cores over plain sockets, many per thread; `wire_client.rs` is a hello-login-ping client for the idle crowd, which
//! speaks the encrypted wire itself (`secure_link.rs`: the XX handshake, then records), as do
//! the raw forwarder and its clients. What they share (the plan, counters, timestamps,
//! latency) is in `load.rs`; `system.rs` reads memory and load from /proc and raises the
//! open-files limit.

mod bare_argon2;
mod breeze_wire;
mod core_client;
mod direct;
mod idle;
mod in_process;
mod load;
mod profiles;
mod raw;
mod relay;
mod secure_link;
mod server_process;
mod system;
mod wire_client;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "breeze-bench",
    about = "End-to-end benchmarks of Breeze over loopback sockets (see BENCHMARKS.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Relayed chat: throughput, latency and server memory, against a raw encrypted forwarder.
    Relay(relay::Args),
    /// Idle logged-in clients on a breeze-server process: disconnects and memory per connection.
    Idle(idle::Args),
    /// Full clients over direct channels: the server must relay nothing.
    Direct(direct::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Relay(args) => relay::run(args),
        Command::Idle(args) => idle::run(args),
        Command::Direct(args) => direct::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("breeze-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
