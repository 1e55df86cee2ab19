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
for many runs against one service. Accounts beyond telegram.max_clients_per_user
(50; the node holds telegram.client_pool_size, 500) stay `waiting`: raise
TGVISOR__TELEGRAM__MAX_CLIENTS_PER_USER for more --accounts.
scripts/bench-send does all of this, for SQLite and PostgreSQL.

Exit code: 0 when every request was accepted, 1 when some failed, 2 when the
run could not happen (bad input, server unreachable, setup refused).";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register a user, import sim accounts, then send messages from
    /// concurrent clients and report accepted sends/s and latency.
    #[command(after_help = AFTER_HELP)]
    Send(SendArgs),
    /// Register a user, import one sim account, open --connections
    /// WebSocket connections subscribed to its topic, then publish events
    /// through POST /debug/events and report fan-out deliveries/s,
    /// delivery latency, gaps and duplicates, and server memory per idle
    /// connection.
    #[command(after_help = WS_AFTER_HELP)]
    Ws(WsArgs),
    /// Register a user, import the account a fake MTProto server printed
    /// (--phone, --session), stream --mib MiB through
    /// POST /accounts/{id}/uploads and report throughput and the
    /// service's memory growth.
    Upload(UploadArgs),
    /// Register a user, then spray POST /auth/login with random usernames
    /// from --workers connections on --addresses loopback addresses for
    /// --duration while the real user logs in every --real-every; report
    /// the spray's answers, the real user's login latency and the
    /// service's memory (before, peak, settled after --settle).
    Spray(SprayArgs),
}

/// `spray`'s arguments.
#[derive(Debug, Args)]
pub struct SprayArgs {
    /// The service's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Concurrent spraying connections, each one attempt at a time.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(1..=5_000).map(usize::from))]
    pub workers: usize,
    /// Client addresses the spray comes from (127.0.1.1 onwards).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub addresses: u16,
    /// How long the spray lasts.
    #[arg(long, default_value = "90s", value_parser = duration::parse_positive)]
    pub duration: Duration,
    /// How often the real user logs in during the spray.
    #[arg(long, default_value = "500ms", value_parser = duration::parse_positive)]
    pub real_every: Duration,
    /// How long after the spray the settled memory is read.
    #[arg(long, default_value = "30s", value_parser = duration::parse_positive)]
    pub settle: Duration,
    /// The service's process id: its VmRSS is read from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `upload`'s arguments.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The service's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The account's phone number (as the fake server printed it).
    #[arg(long)]
    pub phone: String,
    /// The account's Telethon session string (as the fake server printed it).
    #[arg(long)]
    pub session: String,
    /// The file's size in MiB (generated on the fly, never held whole).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=2000))]
    pub mib: u32,
    /// The service's process id: its memory and CPU time are read from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Give up on the upload request after this long.
    #[arg(long, default_value = "600s", value_parser = duration::parse_positive)]
    pub timeout: Duration,
    /// How long the imported account may take to become `connected`.
    #[arg(long, default_value = "30s", value_parser = duration::parse_positive)]
    pub connect_timeout: Duration,
}

/// Shown by `ws --help`.
const WS_AFTER_HELP: &str = "\
The service must run with fault injection on (development or test
environment: POST /debug/events publishes the events) and with raised
limits, e.g.:

  TGVISOR_ENV=development \\
  TGVISOR__RATE_LIMITS__WEBSOCKET__CONNECTIONS__PER_USER=20000 \\
  TGVISOR__RATE_LIMITS__WEBSOCKET__CONNECTIONS__TOTAL=20000 \\
  TGVISOR__SERVER__MAX_CONNECTIONS_PER_ADDRESS=20000 \\
  TGVISOR__RATE_LIMITS__API__STANDARD__MAX=100000000 \\
  TGVISOR__RATE_LIMITS__API__AUTH__MAX=1000 tgvisor serve

Each connection is a file descriptor here and in the service: raise
`ulimit -n` above --connections. Latency is the receive time minus the
event's published_at_us (the same machine's clock). scripts/bench-ws does
all of this.

Exit code: 0 when every connection opened and saw every event exactly once
and in order, 1 otherwise, 2 when the run could not happen.";

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

impl SendArgs {
    /// What setup needs.
    pub fn setup(&self) -> crate::setup::Plan {
        crate::setup::Plan {
            accounts: self.accounts,
            chats: self.chats,
            connect_timeout: self.connect_timeout,
            keep_accounts: self.keep_accounts,
        }
    }
}

#[derive(Debug, Args)]
pub struct WsArgs {
    /// The service's base URL (plain http; the WebSocket is ws://<host>/ws).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// WebSocket connections to open, all subscribed to the account's topic.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000).map(|n| n as usize))]
    pub connections: usize,
    /// Connections being opened (upgrade and subscribe) at a time.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(1..=10_000).map(usize::from))]
    pub open_concurrency: usize,
    /// How long every connection sits subscribed and idle before the
    /// server's memory is read (phase "idle").
    #[arg(long, default_value = "3s", value_parser = duration::parse)]
    pub idle: Duration,
    /// How long to publish (phase "fan-out").
    #[arg(long, default_value = "20s", value_parser = duration::parse_positive)]
    pub duration: Duration,
    /// Events published per second (each goes to every connection).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub events_per_sec: u32,
    /// Bytes of padding per event.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=65_536).map(|n| n as usize))]
    pub size: usize,
    /// After publishing, how long to wait for the deliveries still under way.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub drain: Duration,
    /// The service's process id: its VmRSS is read from /proc before the
    /// connections open and once they are idle (KiB per idle connection),
    /// and its CPU time during the fan-out.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Give up on an HTTP request, or on opening one connection, after this long.
    #[arg(long, default_value = "30s", value_parser = duration::parse_positive)]
    pub timeout: Duration,
    /// How long the imported account may take to become `connected`.
    #[arg(long, default_value = "30s", value_parser = duration::parse_positive)]
    pub connect_timeout: Duration,
    /// Leave the imported account in place (deleted by default).
    #[arg(long)]
    pub keep_accounts: bool,
}

impl WsArgs {
    /// What setup needs: one account, no chats beyond `me`.
    pub fn setup(&self) -> crate::setup::Plan {
        crate::setup::Plan {
            accounts: 1,
            chats: 1,
            connect_timeout: self.connect_timeout,
            keep_accounts: self.keep_accounts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn send(args: &[&str]) -> Result<SendArgs, clap::Error> {
        let argv = ["tgvisor-load", "send"].iter().chain(args);
        Cli::try_parse_from(argv).map(|cli| match cli.command {
            Command::Send(a) => a,
            Command::Ws(_) | Command::Upload(_) | Command::Spray(_) => {
                unreachable!("send parses as send")
            }
        })
    }

    fn ws(args: &[&str]) -> Result<WsArgs, clap::Error> {
        let argv = ["tgvisor-load", "ws"].iter().chain(args);
        Cli::try_parse_from(argv).map(|cli| match cli.command {
            Command::Ws(a) => a,
            Command::Send(_) | Command::Upload(_) | Command::Spray(_) => {
                unreachable!("ws parses as ws")
            }
        })
    }

    #[test]
    fn ws_arguments_parse() {
        let a = ws(&[
            "--connections",
            "10000",
            "--events-per-sec",
            "10",
            "--duration",
            "20s",
            "--idle",
            "3s",
            "--server-pid",
            "1234",
            "--size",
            "100",
            "--json",
        ])
        .expect("parses");
        assert_eq!(a.connections, 10_000);
        assert_eq!(a.events_per_sec, 10);
        assert_eq!(a.duration, Duration::from_secs(20));
        assert_eq!(a.idle, Duration::from_secs(3));
        assert_eq!(a.server_pid, Some(1234));
        assert_eq!(a.size, 100);
        assert!(a.json);
        let setup = a.setup();
        assert_eq!((setup.accounts, setup.chats), (1, 1));
    }

    #[test]
    fn ws_defaults_and_bad_values() {
        let a = ws(&[]).expect("parses");
        assert_eq!((a.connections, a.open_concurrency), (1000, 200));
        assert_eq!((a.events_per_sec, a.size, a.server_pid), (10, 0, None));
        assert_eq!(a.idle, Duration::from_secs(3));
        assert!(ws(&["--connections", "0"]).is_err());
        assert!(ws(&["--connections", "100001"]).is_err());
        assert!(ws(&["--events-per-sec", "0"]).is_err());
        assert!(ws(&["--size", "65537"]).is_err());
        assert!(ws(&["--duration", "0s"]).is_err());
        assert!(ws(&["--server-pid", "x"]).is_err());
    }

    #[test]
    fn ws_help_names_the_limits_to_raise() {
        let help = Cli::command()
            .find_subcommand_mut("ws")
            .expect("ws")
            .render_help()
            .to_string();
        assert!(help.contains("TGVISOR__RATE_LIMITS__WEBSOCKET__CONNECTIONS__PER_USER=20000"));
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
