//! `attesta-relayer`: watches the escrow, hands confirmed jobs to nodes, gathers their
//! attestations, settles once M agree, and finalises (release, refund, slashing evidence).
//!
//! The relayer is trusted for liveness only: the escrow accepts nothing but signatures of
//! staked nodes, so a relayer can delay a job but never forge its result. Every step is
//! idempotent and persisted (see `docs/relayer.md`), so a crash, a reorg or a second relayer
//! changes nothing but timing.

pub mod aggregate;
pub mod api;
pub mod batch;
pub mod chain;
pub mod config;
pub mod duties;
pub mod error;
pub mod store;
pub mod txm;
pub mod watcher;

pub use config::Config;
pub use error::Error;
pub use store::Store;

use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use attesta_sdk::Deployment;
use std::{future::Future, time::Duration};
use tokio::sync::watch;

/// How often the active set is re-read even without registry events.
const ACTIVE_SET_REFRESH: Duration = Duration::from_secs(60);

/// Connects a read-only provider: WebSocket for `ws(s)://`, HTTP otherwise.
pub async fn connect_provider(url: &str) -> Result<DynProvider, Error> {
    let provider = ProviderBuilder::new().connect(url).await.map_err(|e| {
        Error::Config(format!("cannot connect to {url}: {e}: check ATTESTA_RPC_URL"))
    })?;
    Ok(provider.erased())
}

/// Runs the relayer until `shutdown` resolves: the watcher, the duties, and (once merged) the
/// HTTP API and the transaction manager. On shutdown every task finishes its current step,
/// so a database transaction in flight commits or rolls back whole, never halfway.
///
/// A watcher that stops on a terminal error (a reorg deeper than the window, R4) is logged and
/// raised as the `relayer_reorg_too_deep` metric; the API keeps answering until shutdown.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let store = Store::connect(&config.database_url).await?;
    let deployment = Deployment::load(&config.chain.deployment)?;
    let provider = connect_provider(&config.chain.rpc_url).await?;
    let chain_id = provider
        .get_chain_id()
        .await
        .map_err(|e| Error::Config(format!("eth_chainId failed: {e}: check ATTESTA_RPC_URL")))?;
    if chain_id != deployment.chain_id {
        return Err(Error::Config(format!(
            "the RPC endpoint is chain {chain_id} but the deployment file is for chain {}: point them at the same chain",
            deployment.chain_id
        )));
    }
    let key = config.relayer_key()?;
    tracing::info!(chain_id, relayer = %key.address(), escrow = %deployment.job_escrow, "starting");
    let active = chain::ActiveSet::load(provider.clone(), deployment.clone()).await?;
    let watcher = watcher::Watcher::new(
        store.clone(),
        provider.clone(),
        deployment.clone(),
        config.watcher(),
    )
    .with_active_set(active.clone());
    let work_ready = watcher.notify();
    let txm =
        txm::TxManager::new(store.clone(), provider.clone(), key, chain_id, config.tx.clone())?;
    let aggregator = aggregate::Aggregator::new(store.clone(), active.clone())
        .with_outbox_notify(txm.notifier())
        .with_batching(config.batch.enabled);
    let batcher = if config.batch.enabled {
        Some(
            batch::Batcher::new(
                store.clone(),
                active.clone(),
                aggregator.clone(),
                config.batch.clone(),
            )?
            .with_outbox_notify(txm.notifier()),
        )
    } else {
        None
    };
    let duties =
        duties::Duties::new(store.clone(), provider.clone(), deployment.clone(), config.duties())
            .with_outbox_notify(txm.notifier());

    let (stop, stopped) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    {
        let stopped = stopped.clone();
        tasks.spawn(async move {
            if let Err(e) = watcher.run(stopped).await {
                tracing::error!(error = %e, "watcher stopped; jobs will not progress until it is restarted");
            }
        });
    }
    tasks.spawn(duties.run(stopped.clone()));
    if let Some(batcher) = batcher.clone() {
        tasks.spawn(batcher.run(stopped.clone()));
    }
    {
        let mut stopped = stopped.clone();
        let active = active.clone();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped.changed() => return,
                    _ = tokio::time::sleep(ACTIVE_SET_REFRESH) => {}
                }
                if let Err(e) = active.refresh().await {
                    tracing::warn!(error = %e, "active set refresh failed");
                }
            }
        });
    }
    tasks.spawn(txm.run(stopped_future(stopped.clone())));
    {
        let state = api::ApiState::new(store.clone(), aggregator, active.clone(), work_ready)
            .with_batcher(batcher);
        let (api_config, stopped) = (config.api.clone(), stopped.clone());
        let stop = stop.clone();
        tasks.spawn(async move {
            if let Err(e) = api::serve(api_config, state, stopped_future(stopped)).await {
                tracing::error!(error = %e, "the HTTP API stopped; shutting the relayer down");
                let _ = stop.send(true);
            }
        });
    }

    // A task that cannot go on (the API lost its socket) stops the relayer like a signal.
    tokio::select! {
        () = shutdown => {}
        () = stopped_future(stopped.clone()) => {}
    }
    tracing::info!("shutting down: finishing in-flight work");
    let _ = stop.send(true);
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            tracing::error!(error = %e, "a relayer task panicked");
        }
    }
    store.pool().close().await;
    Ok(())
}

/// Resolves once `stopped` turns true (or its sender is gone).
async fn stopped_future(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}
