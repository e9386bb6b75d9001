//! `attesta-relayer`: the relayer's command line (`attesta-relayer --help`).

use attesta_relayer::{Config, Store};
use clap::{Parser, Subcommand};
use std::{path::PathBuf, process::ExitCode};

/// Attesta's relayer: watches the escrow, hands jobs to nodes, settles once M agree.
#[derive(Debug, Parser)]
#[command(name = "attesta-relayer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the relayer until SIGINT or SIGTERM.
    Run {
        /// TOML configuration file (environment variables override it).
        #[arg(long, short, env = "ATTESTA_RELAYER_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Brings the database schema up to date and exits.
    Migrate {
        /// TOML configuration file (environment variables override it).
        #[arg(long, short, env = "ATTESTA_RELAYER_CONFIG")]
        config: Option<PathBuf>,
    },
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = terminate => tracing::info!("SIGTERM received"),
    }
}

async fn main_inner(cli: Cli) -> Result<(), attesta_relayer::Error> {
    match cli.command {
        Command::Run { config } => {
            let config = Config::load(config.as_deref())?;
            attesta_relayer::run(config, shutdown_signal()).await
        }
        Command::Migrate { config } => {
            let config = Config::load(config.as_deref())?;
            // `connect` migrates.
            Store::connect(&config.database_url).await?;
            tracing::info!("schema is up to date");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main_inner(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
