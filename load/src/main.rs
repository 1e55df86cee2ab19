//! The `tgvisor-load` command: thin; everything lives in the library.

use clap::Parser as _;
use std::process::ExitCode;
use tgvisor_load::cli::{Cli, Command};
use tgvisor_load::{EXIT_ERRORS, EXIT_FATAL, EXIT_OK};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Command::Send(args) => args,
        Command::Ws(args) => return ws(&args).await,
        Command::Upload(args) => return upload(&args).await,
    };
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

async fn ws(args: &tgvisor_load::cli::WsArgs) -> ExitCode {
    match tgvisor_load::ws::run(args).await {
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

async fn upload(args: &tgvisor_load::cli::UploadArgs) -> ExitCode {
    match tgvisor_load::upload::run(args).await {
        Ok(report) => {
            if args.json {
                match serde_json::to_string(&report) {
                    Ok(j) => println!("{j}"),
                    Err(e) => {
                        eprintln!("tgvisor-load: error: {e}");
                        return ExitCode::from(EXIT_FATAL);
                    }
                }
            } else {
                print!("{}", report.to_text());
            }
            ExitCode::from(EXIT_OK)
        }
        Err(e) => {
            eprintln!("tgvisor-load: error: {e:#}");
            ExitCode::from(EXIT_FATAL)
        }
    }
}
