//! Finalisation duties: `release:<jobId>` once a settled job's challenge window is over, and
//! `refund:<jobId>` for unsettled jobs past their deadline (when `refund_expired = true`).
//!
//! Duties are queued in the outbox under unique keys, so a tick that runs twice (or two
//! relayers sharing a database) queues each duty once. The chain's clock (the latest block's
//! timestamp) decides, as it does for the contract.

use crate::{Error, Store};
use alloy::{
    eips::BlockNumberOrTag,
    primitives::U256,
    providers::{DynProvider, Provider},
    sol_types::SolCall,
};
use attesta_sdk::{Deployment, bindings::JobEscrow};
use std::time::Duration;
use tokio::sync::watch;

/// `[duties]` knobs.
#[derive(Clone, Debug)]
pub struct DutyConfig {
    /// Time between ticks.
    pub interval: Duration,
    /// Queue refunds of expired unsettled jobs (costs gas; the client can refund too).
    pub refund_expired: bool,
    /// Most duties of each kind queued per tick.
    pub batch: u32,
}

impl Default for DutyConfig {
    fn default() -> Self {
        Self { interval: Duration::from_secs(15), refund_expired: false, batch: 500 }
    }
}

/// Duties newly queued by one tick.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DutyReport {
    /// `release:<jobId>` entries queued.
    pub releases: u32,
    /// `refund:<jobId>` entries queued.
    pub refunds: u32,
}

/// Queues release and refund transactions as jobs become due.
#[derive(Clone, Debug)]
pub struct Duties {
    store: Store,
    provider: DynProvider,
    deployment: Deployment,
    config: DutyConfig,
    /// Woken after duties were queued (the transaction manager's notifier).
    outbox_ready: Option<std::sync::Arc<tokio::sync::Notify>>,
}

impl Duties {
    /// Duties for `deployment`.
    pub fn new(
        store: Store,
        provider: DynProvider,
        deployment: Deployment,
        config: DutyConfig,
    ) -> Self {
        Self { store, provider, deployment, config, outbox_ready: None }
    }

    /// Wakes `notify` (the transaction manager's) whenever duties were queued.
    pub fn with_outbox_notify(mut self, notify: std::sync::Arc<tokio::sync::Notify>) -> Self {
        self.outbox_ready = Some(notify);
        self
    }

    /// One tick against the chain's current time and the escrow's current challenge window.
    pub async fn tick(&self) -> Result<DutyReport, Error> {
        let rpc = |e: alloy::transports::TransportError| {
            Error::Sdk(attesta_sdk::Error::from(alloy::contract::Error::from(e)))
        };
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(rpc)?
            .ok_or_else(|| Error::Config("the node returned no latest block".into()))?;
        let config = JobEscrow::new(self.deployment.job_escrow, &self.provider)
            .config()
            .call()
            .await
            .map_err(attesta_sdk::Error::from)?;
        self.tick_at(block.header.timestamp, config.challengeWindow.to::<u64>()).await
    }

    /// Queues `release-batch:<root>` (`releaseBatch` of the whole batch, its entries in
    /// `settleBatch` order so the escrow finds the batch by its recomputed root) once the batch's
    /// challenge window is over and a job of it is still `settled`. A job challenged meanwhile is
    /// skipped on chain (its dispute decides it), so the batch is released in one call whatever
    /// happened to its other jobs; a batch-settled job cannot be released alone (`release` is for
    /// jobs settled with `settle`).
    async fn release_batch(
        &self,
        root: alloy::primitives::B256,
        now: u64,
        window: u64,
        report: &mut DutyReport,
    ) -> Result<(), Error> {
        let key = format!("release-batch:{root}");
        if self.store.outbox_status(&key).await?.is_some() {
            return Ok(());
        }
        let jobs = self.store.batch_jobs(root).await?;
        let due = jobs.iter().any(|j| {
            j.status == "settled" && j.settled_at.is_some_and(|t| t.saturating_add(window) <= now)
        });
        if !due {
            return Ok(());
        }
        let Some(entries) = jobs
            .iter()
            .map(|j| Some((U256::from(j.job_id.max(0).cast_unsigned()), j.result_hash?)))
            .collect::<Option<Vec<_>>>()
        else {
            tracing::warn!(%root, "a job of the batch has no result hash here; cannot release the batch");
            return Ok(());
        };
        let tree = match attesta_sdk::merkle::BatchTree::new(entries) {
            Ok(tree) if tree.root() == root => tree,
            Ok(tree) => {
                tracing::warn!(%root, rebuilt = %tree.root(), "the stored jobs of the batch do not rebuild its root; cannot release it");
                return Ok(());
            }
            Err(error) => {
                tracing::warn!(%root, %error, "the stored jobs of the batch do not form a batch; cannot release it");
                return Ok(());
            }
        };
        let calldata = JobEscrow::releaseBatchCall {
            entries: tree.batch_entries(),
            signers: jobs[0].signers.clone(),
        }
        .abi_encode();
        let mut conn = self.store.pool().acquire().await?;
        if crate::txm::enqueue(&mut conn, &key, self.deployment.job_escrow, &calldata).await? {
            let settled = jobs.iter().filter(|j| j.status == "settled").count();
            report.releases += u32::try_from(settled).unwrap_or(u32::MAX);
            tracing::info!(%root, jobs = jobs.len(), settled, "releaseBatch queued");
        }
        Ok(())
    }

    /// One tick at chain time `now` with a challenge window of `challenge_window` seconds.
    pub async fn tick_at(&self, now: u64, challenge_window: u64) -> Result<DutyReport, Error> {
        let escrow = self.deployment.job_escrow;
        let mut report = DutyReport::default();
        let mut batches = std::collections::BTreeSet::new();
        for job in self.store.due_releases(now, challenge_window, self.config.batch).await? {
            let Some(result_hash) = job.result_hash else { continue };
            if let Some(root) = job.batch_root {
                if !batches.insert(root) {
                    continue;
                }
                self.release_batch(root, now, challenge_window, &mut report).await?;
                continue;
            }
            let calldata = JobEscrow::releaseCall {
                jobId: U256::from(job.job_id.max(0).cast_unsigned()),
                resultHash: result_hash,
                signers: job.signers.clone(),
            }
            .abi_encode();
            let mut conn = self.store.pool().acquire().await?;
            let key = format!("release:{}", job.job_id);
            if crate::txm::enqueue(&mut conn, &key, escrow, &calldata).await? {
                report.releases += 1;
            }
        }
        if self.config.refund_expired {
            for job_id in self.store.due_refunds(now, self.config.batch).await? {
                let calldata =
                    JobEscrow::refundCall { jobId: U256::from(job_id.max(0).cast_unsigned()) }
                        .abi_encode();
                let mut conn = self.store.pool().acquire().await?;
                let key = format!("refund:{job_id}");
                if crate::txm::enqueue(&mut conn, &key, escrow, &calldata).await? {
                    report.refunds += 1;
                }
            }
        }
        if report != DutyReport::default() {
            if let Some(notify) = &self.outbox_ready {
                notify.notify_one();
            }
            tracing::info!(releases = report.releases, refunds = report.refunds, "duties queued");
            metrics::counter!("relayer_duties_queued_total", "kind" => "release")
                .increment(report.releases.into());
            metrics::counter!("relayer_duties_queued_total", "kind" => "refund")
                .increment(report.refunds.into());
        }
        Ok(report)
    }

    /// Ticks every `interval` until `shutdown` turns true; errors are logged and retried.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "duties tick failed; retrying next tick");
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(self.config.interval) => {}
            }
        }
    }
}
