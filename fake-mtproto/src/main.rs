//! `tgvisor-fake-mtproto`: the loopback fake MTProto server as a process,
//! for benchmarks that run tgvisor (grammers backend) against it.
//!
//! It signs in the sim numbers it is given (`+9996621234` when none),
//! prints one JSON line `{"addr", "phone", "session"}` for each (the
//! session as a Telethon string whose DC address is this server), and
//! serves until it gets SIGTERM or SIGINT.

use fake_mtproto::FakeServer;
use std::io::Write as _;
use std::process::ExitCode;
use tgvisor::sessions::SessionData;
use tgvisor::telegram::sim::SimWorld;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut phones: Vec<String> = std::env::args().skip(1).collect();
    if phones.is_empty() {
        phones.push("+9996621234".to_owned());
    }
    let server = match FakeServer::start(SimWorld::default()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tgvisor-fake-mtproto: cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    for phone in &phones {
        let Some(session) = server
            .authorize(phone)
            .as_ref()
            .and_then(SessionData::to_telethon_string)
        else {
            eprintln!("tgvisor-fake-mtproto: {phone} is not a sim number (+99966XYYYY, X in 1-3)");
            return ExitCode::FAILURE;
        };
        // Only digits, '+', an address and URL-safe base64: nothing to escape.
        println!(
            "{{\"addr\":\"{}\",\"phone\":\"{phone}\",\"session\":\"{session}\"}}",
            server.addr()
        );
    }
    let _ = std::io::stdout().flush();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tgvisor-fake-mtproto: cannot wait for SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    ExitCode::SUCCESS
}
