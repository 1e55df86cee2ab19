//! The `tgvisor` command: thin; everything lives in the library.

use clap::{Parser, Subcommand, ValueEnum};
use std::ops::ControlFlow;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Session encryption keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Users.
    #[command(subcommand)]
    Users(UsersCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new random key (base64 of 32 bytes) for secrets.session or secrets.jwt.
    Generate,
    /// Re-encrypt every stored session under the active key of
    /// secrets.session. Restart the service with the new active key first;
    /// remove the old key only when no session uses it. Interrupt any time
    /// and run again to resume.
    Rotate {
        /// Sessions per transaction.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        batch_size: u64,
        /// Only report how many sessions each key seals.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Give a user a role (revokes the user's tokens).
    SetRole {
        username: String,
        #[arg(value_enum)]
        role: RoleArg,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    User,
    Admin,
}

fn main() -> ExitCode {
    tgvisor::allocator::tune();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Keys(KeysCommand::Generate) = command {
        println!("{}", tgvisor::config::random_key());
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tgvisor: {e}");
            return ExitCode::from(2);
        }
    };
    tgvisor::telemetry::init(&settings.telemetry);
    tgvisor::supervisor::install_panic_hook();
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
            Command::Keys(KeysCommand::Rotate {
                batch_size,
                dry_run,
            }) => rotate(&settings, batch_size, dry_run).await,
            Command::Keys(KeysCommand::Generate) => Ok(()),
            Command::Users(UsersCommand::SetRole { username, role }) => {
                let role = match role {
                    RoleArg::User => tgvisor::security::jwt::Role::User,
                    RoleArg::Admin => tgvisor::security::jwt::Role::Admin,
                };
                tgvisor::ops::set_role(&settings, &username, role).await?;
                println!(
                    "{username} now has the {} role; their tokens are revoked and stop \
                     working within {} ms on every running node (auth.revocation_check_ms)",
                    match role {
                        tgvisor::security::jwt::Role::Admin => "admin",
                        tgvisor::security::jwt::Role::User => "user",
                    },
                    settings.auth.revocation_check_ms.as_millis()
                );
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "tgvisor stopped with an error");
            eprintln!("tgvisor: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `tgvisor keys rotate`: progress on stderr, the report as JSON on stdout.
async fn rotate(settings: &Settings, batch_size: u64, dry_run: bool) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        actix_rt::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: finishing the current batch");
                stop.store(true, Ordering::SeqCst);
            }
        });
    }
    let rotation = tgvisor::ops::rotate_session_keys(settings, batch_size, dry_run, |r| {
        eprintln!(
            "batch {}: {} re-encrypted, {} changed meanwhile, {} failed",
            r.batches,
            r.rewrapped,
            r.raced,
            r.failed.len()
        );
        if stop.load(Ordering::SeqCst) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .await?;
    println!("{}", serde_json::to_string_pretty(&rotation)?);
    if rotation.interrupted {
        anyhow::bail!("interrupted; run `tgvisor keys rotate` again to finish");
    }
    if !rotation.report.failed.is_empty() {
        anyhow::bail!(
            "{} session(s) could not be decrypted with any configured key: ids {:?}",
            rotation.report.failed.len(),
            rotation.report.failed
        );
    }
    if !dry_run && !rotation.complete() {
        anyhow::bail!(
            "sessions are still sealed with other keys ({:?}): is a node still running with an old active key?",
            rotation.after
        );
    }
    Ok(())
}
