//! `attesta-node run`: the long-running node (see [`attesta_node::daemon`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use attesta_node::daemon::{Daemon, NodeConfig, shutdown_channel};
use attesta_node::keys::{self, KeyError};
use attesta_sdk::Deployment;
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use super::{CliError, KeystoreArgs};

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The node's config file (TOML; see node/node.example.toml). Relative paths in it are
    /// relative to the file; ATTESTA_* environment variables override its keys.
    #[arg(long, value_name = "FILE", env = "ATTESTA_NODE_CONFIG")]
    config: PathBuf,
    #[command(flatten)]
    keystore: KeystoreArgs,
    /// Run even if the kernel lacks sandbox features (weaker isolation; loudly logged).
    #[arg(long)]
    allow_degraded_sandbox: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (overrides metrics_addr).
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
}

fn user(e: impl std::fmt::Display) -> CliError {
    CliError::User(e.to_string())
}

pub(crate) fn run(args: RunArgs) -> Result<(), CliError> {
    let mut config = NodeConfig::load(&args.config).map_err(user)?;
    config.resolve_paths(args.config.parent().unwrap_or(Path::new(".")));
    config.apply_env(|name| std::env::var(name).ok()).map_err(user)?;
    if args.allow_degraded_sandbox {
        tracing::warn!(
            "--allow-degraded-sandbox: jobs run with whatever isolation this kernel offers; \
             do not serve untrusted models or inputs like this"
        );
        config.allow_degraded_sandbox = true;
    }
    if args.metrics_addr.is_some() {
        config.metrics_addr = args.metrics_addr;
    }
    let settings = config.settings().map_err(user)?;
    let Some(deployment_path) = config.deployment.as_deref() else {
        return Err(CliError::User(
            "the config has no `deployment`: set it to deployments/<chainId>.json or set $ATTESTA_DEPLOYMENT"
                .into(),
        ));
    };
    let deployment = Deployment::load(deployment_path)?;

    // --keystore / $ATTESTA_KEYSTORE, then the config file, then the default.
    let dir = args
        .keystore
        .keystore
        .clone()
        .or_else(|| config.keystore.clone())
        .unwrap_or_else(keys::default_keystore_dir);
    if !keys::key_path(&dir).is_file() {
        return Err(KeyError::NotFound { path: keys::key_path(&dir) }.into());
    }
    let password_file =
        args.keystore.password_file.clone().or_else(|| config.password_file.clone());
    let password = keys::read_password(password_file.as_deref(), false)?;
    let signer = keys::load(&dir, &password)?;
    drop(password);

    let daemon = Daemon::new(settings, signer, &deployment);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::User(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(async move {
        let mut terminate = signal(SignalKind::terminate())
            .map_err(|e| CliError::User(format!("cannot handle SIGTERM: {e}")))?;
        let mut interrupt = signal(SignalKind::interrupt())
            .map_err(|e| CliError::User(format!("cannot handle SIGINT: {e}")))?;
        let (trigger, shutdown) = shutdown_channel();
        let daemon = daemon.run(shutdown);
        tokio::pin!(daemon);
        let mut stopping = false;
        loop {
            let name = tokio::select! {
                result = &mut daemon => return result.map_err(user),
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            };
            if stopping {
                return Err(CliError::User(format!(
                    "{name} again during shutdown: stopped without waiting for running jobs"
                )));
            }
            stopping = true;
            tracing::info!(
                signal = name,
                "stopping: no new work; running jobs may finish (signal again to stop at once)"
            );
            trigger.trigger();
        }
    });
    // Abandoned jobs' blocking threads must not hold the process; their sandboxed workers die
    // with them (PR_SET_PDEATHSIG).
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}
