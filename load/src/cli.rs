//! The command line.

use crate::duration;
use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand};
use std::time::Duration;

/// The `tgvisor-load` command; `--help` names the service settings a run needs.
#[derive(Debug, Parser)]
#[command(name = "tgvisor-load", version, about = "Load generator for tgvisor's HTTP API", long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Shown by `-h`/`--help`: what the service needs for a run, and the exit codes.
const AFTER_HELP: &str = "\
Start the service with a raised per-user API limit first (the default, 100
requests per minute, answers 429 within the first second):

  TGVISOR__RATE_LIMITS__API__STANDARD__MAX=100000000 tgvisor serve

Each run registers a new user, and registrations are limited per client IP
(rate_limits.api.auth, 5 per 15 minutes): raise TGVISOR__RATE_LIMITS__API__AUTH__MAX
for many runs against one service. Accounts beyond telegram.client_pool_size (5)
stay `waiting`: raise TGVISOR__TELEGRAM__CLIENT_POOL_SIZE for more --accounts.
scripts/bench-send does all of this, for SQLite and PostgreSQL.

Exit code: 0 when every request was accepted, 1 when some failed, 2 when the
run could not happen (bad input, server unreachable, setup refused).";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register a user, import sim accounts, then send messages from
    /// concurrent clients and report accepted sends/s and latency.
    #[command(after_help = AFTER_HELP)]
    Send(SendArgs),
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The service's base URL (plain http).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Concurrent senders, each one request at a time over a kept-alive connection.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=10_000).map(usize::from))]
    pub clients: usize,
    /// How long to measure, after the warm-up (e.g. 20s, 2m).
    #[arg(long, default_value = "20s", value_parser = duration::parse_positive)]
    pub duration: Duration,
    /// Load before measuring, not counted (connections, caches).
    #[arg(long, default_value = "3s", value_parser = duration::parse)]
    pub warmup: Duration,
    /// Sim accounts to import; client i sends from account i mod N.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1_000).map(usize::from))]
    pub accounts: usize,
    /// Chats to rotate over, from: me, @echo, then the numeric user ids of
    /// the imported accounts.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1_002).map(usize::from))]
    pub chats: usize,
    /// Send an `Idempotency-Key: <uuid v4>` header with every request.
    #[arg(long)]
    pub idempotency: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Give up on a request after this long (counted as a `timeout` error).
    #[arg(long, default_value = "10s", value_parser = duration::parse_positive)]
    pub timeout: Duration,
    /// How long the imported accounts may take to become `connected`.
    #[arg(long, default_value = "30s", value_parser = duration::parse_positive)]
    pub connect_timeout: Duration,
    /// Leave the imported accounts in place (they are deleted by default,
    /// which frees their slots in the node's client pool).
    #[arg(long)]
    pub keep_accounts: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn send(args: &[&str]) -> Result<SendArgs, clap::Error> {
        let argv = ["tgvisor-load", "send"].iter().chain(args);
        Cli::try_parse_from(argv).map(|cli| match cli.command {
            Command::Send(a) => a,
        })
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_documented_example_parses() {
        let a = send(&[
            "--url",
            "http://127.0.0.1:8080",
            "--clients",
            "64",
            "--duration",
            "20s",
            "--accounts",
            "4",
            "--chats",
            "2",
            "--warmup",
            "3s",
            "--idempotency",
            "--json",
        ])
        .expect("parses");
        assert_eq!(a.clients, 64);
        assert_eq!(a.duration, Duration::from_secs(20));
        assert_eq!(a.warmup, Duration::from_secs(3));
        assert_eq!((a.accounts, a.chats), (4, 2));
        assert!(a.idempotency && a.json && !a.keep_accounts);
    }

    #[test]
    fn defaults_make_a_short_single_account_run() {
        let a = send(&[]).expect("parses");
        assert_eq!(a.url, "http://127.0.0.1:8080");
        assert_eq!((a.clients, a.accounts, a.chats), (64, 1, 1));
        assert_eq!(a.warmup, Duration::from_secs(3));
    }

    #[test]
    fn bad_values_are_usage_errors() {
        assert!(send(&["--clients", "0"]).is_err());
        assert!(send(&["--duration", "0s"]).is_err());
        assert!(send(&["--duration", "soon"]).is_err());
        assert!(send(&["--warmup", "-1s"]).is_err());
        assert!(send(&["--accounts", "0"]).is_err());
    }

    #[test]
    fn help_names_the_rate_limit_to_raise() {
        let help = Cli::command()
            .find_subcommand_mut("send")
            .expect("send")
            .render_help()
            .to_string();
        assert!(help.contains("TGVISOR__RATE_LIMITS__API__STANDARD__MAX=100000000"));
    }
}
