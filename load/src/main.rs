//! The `tgvisor-load` command: thin; everything lives in the library.

use clap::Parser as _;
use std::process::ExitCode;
use tgvisor_load::cli::{Cli, Command};
use tgvisor_load::{EXIT_ERRORS, EXIT_FATAL, EXIT_OK};

/// What every command's report offers `main`.
trait Outcome {
    fn to_json(&self) -> String;
    fn to_text(&self) -> String;
    fn failed(&self) -> bool;
}

impl Outcome for tgvisor_load::report::Report {
    fn to_json(&self) -> String {
        self.to_json()
    }
    fn to_text(&self) -> String {
        self.to_text()
    }
    fn failed(&self) -> bool {
        self.failed()
    }
}

impl Outcome for tgvisor_load::ws_report::WsReport {
    fn to_json(&self) -> String {
        self.to_json()
    }
    fn to_text(&self) -> String {
        self.to_text()
    }
    fn failed(&self) -> bool {
        self.failed()
    }
}

impl Outcome for tgvisor_load::spray::SprayReport {
    fn to_json(&self) -> String {
        self.to_json()
    }
    fn to_text(&self) -> String {
        self.to_text()
    }
    fn failed(&self) -> bool {
        self.failed()
    }
}

impl Outcome for tgvisor_load::upload::UploadReport {
    fn to_json(&self) -> String {
        self.to_json()
    }
    fn to_text(&self) -> String {
        self.to_text()
    }
    fn failed(&self) -> bool {
        false
    }
}

/// Prints the report (JSON or text) and picks the exit code.
fn finish(result: anyhow::Result<impl Outcome>, json: bool) -> ExitCode {
    match result {
        Ok(report) => {
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            ExitCode::from(if report.failed() {
                EXIT_ERRORS
            } else {
                EXIT_OK
            })
        }
        Err(e) => {
            eprintln!("tgvisor-load: error: {e:#}");
            ExitCode::from(EXIT_FATAL)
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Send(args) => finish(tgvisor_load::send(&args).await, args.json),
        Command::Ws(args) => finish(tgvisor_load::ws::run(&args).await, args.json),
        Command::Upload(args) => finish(tgvisor_load::upload::run(&args).await, args.json),
        Command::Spray(args) => finish(tgvisor_load::spray::run(&args).await, args.json),
    }
}
