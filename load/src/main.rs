//! The `tgvisor-load` command: thin; everything lives in the library.

use clap::Parser as _;
use std::process::ExitCode;
use tgvisor_load::cli::{Cli, Command};
use tgvisor_load::{EXIT_ERRORS, EXIT_FATAL, EXIT_OK};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let Command::Send(args) = cli.command;
    match tgvisor_load::send(&args).await {
        Ok(report) => {
            if args.json {
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
