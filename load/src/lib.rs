//! tgvisor-load: a load generator for tgvisor's HTTP API.
//!
//! `send` sets up a fresh user with imported sim accounts through the public
//! API ([`setup`]), then keeps `--clients` concurrent senders posting
//! messages ([`load`]) and reports throughput and latency ([`report`]).
//! `ws` opens many WebSocket connections to one topic and measures the
//! fan-out of events published through the debug route ([`ws`],
//! [`ws_report`]).
//! `main.rs` only parses the command line ([`cli`]) and picks the exit code.

pub mod api;
pub mod cli;
pub mod duration;
pub mod load;
pub mod report;
pub mod session;
pub mod setup;
pub mod spray;
pub mod upload;
pub mod ws;
pub mod ws_report;

/// Exit code when the run finished without a single error.
pub const EXIT_OK: u8 = 0;
/// Exit code when the run finished but some requests failed.
pub const EXIT_ERRORS: u8 = 1;
/// Exit code when the run could not happen (bad input, server unreachable,
/// setup refused). clap uses the same code for usage errors.
pub const EXIT_FATAL: u8 = 2;

/// Runs `send`: setup, load, clean-up. Returns the report; errors are fatal
/// (nothing was measured).
pub async fn send(args: &cli::SendArgs) -> anyhow::Result<report::Report> {
    let api = api::Api::new(&args.url, args.clients, args.timeout)?;
    let fixture = setup::prepare(&api, &args.setup())
        .await
        .map_err(hint_at_api_limit)?;
    let plan = load::Plan {
        accounts: fixture.accounts.iter().map(|a| a.id).collect(),
        chats: fixture.chats.clone(),
        clients: args.clients,
        warmup: args.warmup,
        duration: args.duration,
        idempotency: args.idempotency,
    };
    eprintln!(
        "tgvisor-load: {} clients; warm-up {}, then measuring {}",
        args.clients,
        duration::format(args.warmup),
        duration::format(args.duration)
    );
    let outcome = load::run(&fixture.api, &plan).await;
    if !args.keep_accounts {
        setup::remove_accounts(&fixture.api, &fixture.accounts).await;
    }
    let stats = outcome?;
    Ok(report::Report::new(args, &plan, &stats))
}

/// A 429 during setup is the per-user API limit: say which setting raises it.
fn hint_at_api_limit(e: anyhow::Error) -> anyhow::Error {
    let limited = e.chain().any(|c| {
        c.downcast_ref::<api::Failure>()
            .is_some_and(|f| f.status() == Some(429))
    });
    if limited {
        e.context(
            "the service's per-user API limit refused setup requests; start it with \
             TGVISOR__RATE_LIMITS__API__STANDARD__MAX=100000000 for a benchmark",
        )
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn a_429_in_setup_names_the_limit_to_raise() {
        let limited: anyhow::Result<()> = Err(api::Failure::Status {
            status: 429,
            code: "rate_limited".to_owned(),
            message: "too many requests".to_owned(),
        })
        .context("reading account 7");
        let message = format!("{:#}", hint_at_api_limit(limited.unwrap_err()));
        assert!(
            message.contains("TGVISOR__RATE_LIMITS__API__STANDARD__MAX"),
            "{message}"
        );
        assert!(message.contains("HTTP 429 rate_limited"), "{message}");

        let other = anyhow::anyhow!("HTTP 500 internal");
        assert_eq!(
            format!("{:#}", hint_at_api_limit(other)),
            "HTTP 500 internal"
        );
    }
}
