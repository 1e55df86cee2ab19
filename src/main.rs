//! The `tgvisor` command: thin; everything lives in the library.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use tgvisor::config::Settings;
use tgvisor::startup::Application;

#[derive(Parser)]
#[command(
    name = "tgvisor",
    version,
    about = "A supervised gateway for Telegram user accounts"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Load and validate the configuration, then exit.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tgvisor: {e}");
            return ExitCode::from(2);
        }
    };
    tgvisor::telemetry::init(&settings.telemetry);
    tgvisor::supervisor::install_panic_hook();
    let command = cli.command.unwrap_or(Command::Serve);
    let result = actix_rt::System::new().block_on(async move {
        match command {
            Command::Serve => {
                Application::build(settings)
                    .await?
                    .run_until_stopped()
                    .await
            }
            Command::Migrate => {
                let db = tgvisor::db::connect(&settings.database_url(), &settings.database).await?;
                tgvisor::db::migrate(&db).await?;
                tracing::info!("migrations applied");
                Ok(())
            }
            Command::CheckConfig => {
                println!(
                    "configuration for {} is valid",
                    settings.environment.as_str()
                );
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "tgvisor stopped with an error");
            ExitCode::FAILURE
        }
    }
}
