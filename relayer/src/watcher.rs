//! The chain watcher: confirmed escrow and registry logs in block ranges, reorg-safe.
//!
//! Each step reads one range `[cursor, min(cursor + range - 1, tip - confirmations)]` by
//! `eth_getLogs` and commits it in one database transaction (events, derived jobs, cursor,
//! block hash), so a crash before the commit replays the range and a crash after it skips
//! nothing (R1). Before each range the stored hash of the last processed block is compared
//! with the chain; on a mismatch the watcher walks back to the newest stored block that still
//! matches, rolls back above it and replays (R3), or stops with [`WatchError::ReorgTooDeep`]
//! when no stored block matches (R4). New heads come from a WebSocket subscription when the
//! URL is `ws(s)://`, from polling otherwise; either way ranges are read from the cursor, so a
//! dropped socket loses nothing (R6, R12). RPC errors are retried with backoff and the range
//! is never skipped (R11).

use crate::{
    Store,
    chain::ActiveSet,
    store::chain::{RangeBatch, RangeOutcome, StoredEvent},
};
use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256, Bytes, Log, U256},
    providers::{DynProvider, Provider},
    rpc::types::Filter,
    sol_types::SolEvent,
};
use attesta_sdk::{
    Deployment,
    bindings::{JobEscrow, StakingRegistry},
};
use futures::StreamExt;
use std::{collections::HashMap, future::IntoFuture, sync::Arc, time::Duration};
use tokio::sync::{Notify, watch};

/// A log the relayer acts on, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainEvent {
    /// `JobEscrow.JobCreated`.
    JobCreated {
        /// The job.
        job_id: U256,
        /// Who paid.
        client: Address,
        /// keccak256 of the model.
        model_id: B256,
        /// keccak256 of the input.
        input_hash: B256,
        /// Escrowed fee.
        fee: U256,
        /// Last second at which the job can be settled.
        deadline: U256,
    },
    /// `JobEscrow.JobSettled`.
    JobSettled {
        /// The job.
        job_id: U256,
        /// keccak256(output).
        result_hash: B256,
        /// Runtime that produced it.
        runtime_id: B256,
        /// Settling signers, ascending.
        signers: Vec<Address>,
        /// Canonical output.
        output: Bytes,
    },
    /// `JobEscrow.BatchSettled`: many jobs settled by one `settleBatch`. The log names only
    /// the root; `entries` are filled in by the watcher from the settling transaction's
    /// calldata (or this relayer's own proposal), empty when decoded from a log alone.
    BatchSettled {
        /// The batch's Merkle root.
        root: B256,
        /// Runtime that produced every entry.
        runtime_id: B256,
        /// Settling signers, ascending.
        signers: Vec<Address>,
        /// `(jobId, resultHash)` of every entry, as stored (`settled_entries`).
        entries: Vec<(i64, B256)>,
    },
    /// `JobEscrow.PaymentReleased`.
    PaymentReleased {
        /// The job.
        job_id: U256,
    },
    /// `JobEscrow.JobRefunded`.
    JobRefunded {
        /// The job.
        job_id: U256,
    },
    /// `JobEscrow.JobChallenged`.
    JobChallenged {
        /// The job.
        job_id: U256,
    },
    /// `JobEscrow.DisputeResolved`.
    DisputeResolved {
        /// The job.
        job_id: U256,
        /// Whether the result stood.
        stands: bool,
    },
    /// `JobEscrow.DisputeExpired`.
    DisputeExpired {
        /// The job.
        job_id: U256,
    },
    /// `JobEscrow.RuntimeAllowed`: the allow-list changed.
    RuntimeAllowed {
        /// The runtime.
        runtime_id: B256,
        /// Allowed or not.
        allowed: bool,
    },
    /// A registry event that changes the active set (`OperatorActivated`,
    /// `OperatorDeactivated`, `Slashed`).
    SetChanged {
        /// Which event.
        kind: &'static str,
    },
}

/// Topic 0 of every log the watcher reads.
pub fn event_signatures() -> Vec<B256> {
    vec![
        JobEscrow::JobCreated::SIGNATURE_HASH,
        JobEscrow::JobSettled::SIGNATURE_HASH,
        JobEscrow::PaymentReleased::SIGNATURE_HASH,
        JobEscrow::BatchSettled::SIGNATURE_HASH,
        JobEscrow::JobRefunded::SIGNATURE_HASH,
        JobEscrow::JobChallenged::SIGNATURE_HASH,
        JobEscrow::DisputeResolved::SIGNATURE_HASH,
        JobEscrow::DisputeExpired::SIGNATURE_HASH,
        JobEscrow::RuntimeAllowed::SIGNATURE_HASH,
        StakingRegistry::OperatorActivated::SIGNATURE_HASH,
        StakingRegistry::OperatorDeactivated::SIGNATURE_HASH,
        StakingRegistry::Slashed::SIGNATURE_HASH,
    ]
}

impl ChainEvent {
    /// Decodes a log by its topic 0; `None` for a log the relayer does not act on. The caller
    /// filters by contract address (escrow and registry signatures do not overlap).
    pub fn decode(log: &Log) -> Result<Option<Self>, alloy::sol_types::Error> {
        use JobEscrow as E;
        use StakingRegistry as R;
        let Some(topic) = log.topics().first().copied() else { return Ok(None) };
        let data = &log.data;
        let event = if topic == E::JobCreated::SIGNATURE_HASH {
            let e = E::JobCreated::decode_log_data(data)?;
            Self::JobCreated {
                job_id: e.jobId,
                client: e.client,
                model_id: e.modelId,
                input_hash: e.inputHash,
                fee: e.fee,
                deadline: e.deadline,
            }
        } else if topic == E::JobSettled::SIGNATURE_HASH {
            let e = E::JobSettled::decode_log_data(data)?;
            Self::JobSettled {
                job_id: e.jobId,
                result_hash: e.resultHash,
                runtime_id: e.runtimeId,
                signers: e.signers,
                output: e.output,
            }
        } else if topic == E::BatchSettled::SIGNATURE_HASH {
            let e = E::BatchSettled::decode_log_data(data)?;
            Self::BatchSettled {
                root: e.root,
                runtime_id: e.runtimeId,
                signers: e.signers,
                entries: Vec::new(),
            }
        } else if topic == E::PaymentReleased::SIGNATURE_HASH {
            Self::PaymentReleased { job_id: E::PaymentReleased::decode_log_data(data)?.jobId }
        } else if topic == E::JobRefunded::SIGNATURE_HASH {
            Self::JobRefunded { job_id: E::JobRefunded::decode_log_data(data)?.jobId }
        } else if topic == E::JobChallenged::SIGNATURE_HASH {
            Self::JobChallenged { job_id: E::JobChallenged::decode_log_data(data)?.jobId }
        } else if topic == E::DisputeResolved::SIGNATURE_HASH {
            let e = E::DisputeResolved::decode_log_data(data)?;
            Self::DisputeResolved { job_id: e.jobId, stands: e.resultStands }
        } else if topic == E::DisputeExpired::SIGNATURE_HASH {
            Self::DisputeExpired { job_id: E::DisputeExpired::decode_log_data(data)?.jobId }
        } else if topic == E::RuntimeAllowed::SIGNATURE_HASH {
            let e = E::RuntimeAllowed::decode_log_data(data)?;
            Self::RuntimeAllowed { runtime_id: e.runtimeId, allowed: e.allowed }
        } else if topic == R::OperatorActivated::SIGNATURE_HASH {
            Self::SetChanged { kind: "OperatorActivated" }
        } else if topic == R::OperatorDeactivated::SIGNATURE_HASH {
            Self::SetChanged { kind: "OperatorDeactivated" }
        } else if topic == R::Slashed::SIGNATURE_HASH {
            Self::SetChanged { kind: "Slashed" }
        } else {
            return Ok(None);
        };
        Ok(Some(event))
    }

    /// The event's name, stored in `events.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::JobCreated { .. } => "JobCreated",
            Self::JobSettled { .. } => "JobSettled",
            Self::BatchSettled { .. } => "BatchSettled",
            Self::PaymentReleased { .. } => "PaymentReleased",
            Self::JobRefunded { .. } => "JobRefunded",
            Self::JobChallenged { .. } => "JobChallenged",
            Self::DisputeResolved { .. } => "DisputeResolved",
            Self::DisputeExpired { .. } => "DisputeExpired",
            Self::RuntimeAllowed { .. } => "RuntimeAllowed",
            Self::SetChanged { kind } => kind,
        }
    }

    /// The job it concerns, if any.
    pub fn job_id(&self) -> Option<U256> {
        match self {
            Self::JobCreated { job_id, .. }
            | Self::JobSettled { job_id, .. }
            | Self::PaymentReleased { job_id }
            | Self::JobRefunded { job_id }
            | Self::JobChallenged { job_id }
            | Self::DisputeResolved { job_id, .. }
            | Self::DisputeExpired { job_id } => Some(*job_id),
            Self::RuntimeAllowed { .. } | Self::SetChanged { .. } | Self::BatchSettled { .. } => {
                None
            }
        }
    }

    /// Whether the cached active set or runtime allow-list must be re-read.
    pub fn changes_set(&self) -> bool {
        matches!(self, Self::RuntimeAllowed { .. } | Self::SetChanged { .. })
    }
}

/// Why the watcher failed a step.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The RPC endpoint failed or timed out; the same range is retried.
    #[error("rpc: {0}: retrying the same range; check ATTESTA_RPC_URL if this persists")]
    Rpc(String),
    /// A reorg went below every stored block hash: the relayer will not guess.
    #[error(
        "reorg deeper than the stored window: no stored block in {oldest}..={newest} is still canonical; \
         stopped. Investigate the chain, then raise [chain] reorg_window or reset the database"
    )]
    ReorgTooDeep {
        /// Oldest stored block.
        oldest: u64,
        /// Newest stored block.
        newest: u64,
    },
    /// A job id does not fit the database's `BIGINT`.
    #[error("job id {0} exceeds i64::MAX: this relayer's schema cannot store it")]
    JobIdOverflow(U256),
    /// A log from the escrow or registry did not decode: the ABI has drifted.
    #[error("log at block {block} index {index} did not decode ({reason}): upgrade the relayer")]
    Decode {
        /// Block.
        block: u64,
        /// Log index.
        index: u64,
        /// Decoder message.
        reason: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::Error),
}

impl WatchError {
    /// Whether retrying the same step can help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Rpc(_) | Self::Store(crate::Error::Database(_)))
    }
}

/// The watcher's knobs (`[chain]` in the configuration).
#[derive(Clone, Debug)]
pub struct WatcherConfig {
    /// Blocks below the tip a block must be to be processed.
    pub confirmations: u64,
    /// How often to look for new blocks without a subscription (and as a fallback with one).
    pub poll_interval: Duration,
    /// Largest `eth_getLogs` range.
    pub max_range: u64,
    /// Blocks of hashes kept for reorg detection.
    pub reorg_window: u64,
    /// First block to read when no cursor is stored (the deployment block by default).
    pub start_block: Option<u64>,
    /// Subscribe to new heads (the provider must be a WebSocket one).
    pub subscribe: bool,
    /// Time limit of one RPC call.
    pub rpc_timeout: Duration,
}

impl Default for WatcherConfig {
    fn default() -> Self {
        Self {
            confirmations: 2,
            poll_interval: Duration::from_secs(2),
            max_range: 2_000,
            reorg_window: 256,
            start_block: None,
            subscribe: false,
            rpc_timeout: Duration::from_secs(20),
        }
    }
}

/// What one [`Watcher::step`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing confirmed beyond the cursor.
    Idle {
        /// The chain's tip when checked.
        tip: u64,
    },
    /// A range was committed.
    Committed {
        /// First block.
        from: u64,
        /// Last block.
        to: u64,
        /// What changed.
        outcome: RangeOutcome,
    },
    /// A reorg was rolled back to `fork`; the range above it will be replayed.
    RolledBack {
        /// Newest stored block still canonical.
        fork: u64,
        /// Jobs re-derived.
        jobs: usize,
    },
}

/// Reads confirmed logs into the database. See the module docs.
#[derive(Debug)]
pub struct Watcher {
    store: Store,
    provider: DynProvider,
    deployment: Deployment,
    config: WatcherConfig,
    active: Option<ActiveSet>,
    notify: Arc<Notify>,
    range: u64,
}

impl Watcher {
    /// A watcher over `deployment` through `provider`.
    pub fn new(
        store: Store,
        provider: DynProvider,
        deployment: Deployment,
        config: WatcherConfig,
    ) -> Self {
        let range = config.max_range.max(1);
        Self { store, provider, deployment, config, active: None, notify: Arc::default(), range }
    }

    /// Refreshes `active` after a range with registry or allow-list events.
    pub fn with_active_set(mut self, active: ActiveSet) -> Self {
        self.active = Some(active);
        self
    }

    /// Woken (`notify_waiters`) after every committed range or rollback: long-polls wait on it.
    pub fn notify(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    /// The current `eth_getLogs` range size (adaptive).
    pub fn range(&self) -> u64 {
        self.range
    }

    async fn rpc<T, E: std::fmt::Display>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, WatchError> {
        match tokio::time::timeout(self.config.rpc_timeout, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(WatchError::Rpc(format!("{what}: {e}"))),
            Err(_) => Err(WatchError::Rpc(format!("{what}: timed out"))),
        }
    }

    async fn block_hash(&self, number: u64) -> Result<Option<(B256, B256, u64)>, WatchError> {
        let block = self
            .rpc(
                "eth_getBlockByNumber",
                self.provider.get_block_by_number(number.into()).into_future(),
            )
            .await?;
        Ok(block.map(|b| (b.header.hash, b.header.parent_hash, b.header.timestamp)))
    }

    /// Checks the stored window against the chain; rolls back a reorg inside it.
    async fn check_reorg(&mut self) -> Result<Option<Step>, WatchError> {
        let stored = self.store.stored_blocks().await?;
        let Some(&(newest, newest_hash)) = stored.first() else { return Ok(None) };
        if self.block_hash(newest).await?.map(|b| b.0) == Some(newest_hash) {
            return Ok(None);
        }
        metrics::counter!("relayer_reorgs_total").increment(1);
        for &(number, hash) in &stored[1..] {
            if self.block_hash(number).await?.map(|b| b.0) == Some(hash) {
                let jobs = self.store.rollback_to(self.deployment.chain_id, number).await?;
                tracing::warn!(
                    fork = number,
                    replaced_from = number + 1,
                    jobs = jobs.len(),
                    "reorg: rolled back"
                );
                self.notify.notify_waiters();
                return Ok(Some(Step::RolledBack { fork: number, jobs: jobs.len() }));
            }
        }
        let oldest = stored.last().map_or(newest, |b| b.0);
        metrics::gauge!("relayer_reorg_too_deep").set(1.0);
        tracing::error!(oldest, newest, "reorg deeper than the stored window; watcher stopped");
        Err(WatchError::ReorgTooDeep { oldest, newest })
    }

    /// Reads the next confirmed range from the chain without committing it. `None` when
    /// nothing new is confirmed. On an RPC error the range size halves (a provider's result
    /// cap or a timeout is the usual cause) and the same start is retried next time.
    pub async fn fetch_range(&mut self) -> Result<Result<RangeBatch, u64>, WatchError> {
        let chain_id = self.deployment.chain_id;
        let from = match self.store.cursor(chain_id).await? {
            Some(next) => next,
            None => self.config.start_block.unwrap_or(self.deployment.block_number),
        };
        let tip = self.rpc("eth_blockNumber", self.provider.get_block_number()).await?;
        let safe = tip.saturating_sub(self.config.confirmations);
        if from > safe {
            return Ok(Err(tip));
        }
        let to = safe.min(from.saturating_add(self.range - 1));
        match self.read_range(from, to).await {
            Ok(batch) => {
                self.range = (self.range.saturating_mul(2)).min(self.config.max_range.max(1));
                Ok(Ok(batch))
            }
            Err(e) => {
                if matches!(e, WatchError::Rpc(_)) {
                    self.range = (self.range / 2).max(1);
                    metrics::counter!("relayer_rpc_errors_total").increment(1);
                }
                Err(e)
            }
        }
    }

    async fn read_range(&self, from: u64, to: u64) -> Result<RangeBatch, WatchError> {
        let missing = || WatchError::Rpc(format!("block {to} not found: the node is behind"));
        let (to_hash, to_parent, to_time) = self.block_hash(to).await?.ok_or_else(missing)?;
        let filter = Filter::new()
            .address(vec![self.deployment.job_escrow, self.deployment.staking_registry])
            .event_signature(event_signatures())
            .from_block(BlockNumberOrTag::Number(from))
            .to_block(BlockNumberOrTag::Number(to));
        let logs = self.rpc("eth_getLogs", self.provider.get_logs(&filter)).await?;
        // The same hash for `to` after the read means the logs come from one chain.
        if self.block_hash(to).await?.map(|b| b.0) != Some(to_hash) {
            return Err(WatchError::Rpc(format!("block {to} changed during the read")));
        }
        let mut times = HashMap::from([(to, to_time)]);
        let mut events = Vec::with_capacity(logs.len());
        for log in logs {
            let incomplete = || WatchError::Rpc("log without block or index (pending?)".into());
            let block_number = log.block_number.ok_or_else(incomplete)?;
            let log_index = log.log_index.ok_or_else(incomplete)?;
            let block_hash = log.block_hash.ok_or_else(incomplete)?;
            let tx_hash = log.transaction_hash.ok_or_else(incomplete)?;
            if log.removed {
                return Err(WatchError::Rpc(format!("removed log at block {block_number}")));
            }
            let decode_err = |e: alloy::sol_types::Error| WatchError::Decode {
                block: block_number,
                index: log_index,
                reason: e.to_string(),
            };
            let Some(mut event) = ChainEvent::decode(&log.inner).map_err(decode_err)? else {
                continue;
            };
            if let ChainEvent::BatchSettled { root, entries, .. } = &mut event {
                *entries = self.batch_entries(tx_hash, *root).await?;
            }
            let job_id = match event.job_id() {
                Some(id) => Some(i64::try_from(id).map_err(|_| WatchError::JobIdOverflow(id))?),
                None => None,
            };
            let block_time = match (log.block_timestamp, times.get(&block_number)) {
                (Some(t), _) => t,
                (None, Some(t)) => *t,
                (None, None) => {
                    let t = self.block_hash(block_number).await?.ok_or_else(missing)?.2;
                    times.insert(block_number, t);
                    t
                }
            };
            events.push(StoredEvent {
                block_number,
                log_index,
                block_hash,
                tx_hash,
                block_time,
                job_id,
                event,
                log: log.inner,
            });
        }
        Ok(RangeBatch {
            chain_id: self.deployment.chain_id,
            from,
            to,
            to_hash,
            to_parent,
            events,
            window: self.config.reorg_window,
        })
    }

    /// The entries of the batch `root` settled by transaction `tx_hash`: decoded from its
    /// calldata when it called `settleBatch` on the escrow directly, else from this relayer's
    /// own proposal with that root; each set is accepted only if it hashes to `root`. A batch
    /// sent through another contract by someone else cannot be attributed: it is logged and
    /// counted (`relayer_batch_unresolved_total`), and its jobs keep their status here.
    async fn batch_entries(
        &self,
        tx_hash: B256,
        root: B256,
    ) -> Result<Vec<(i64, B256)>, WatchError> {
        use alloy::{consensus::Transaction as _, sol_types::SolCall};
        let tx = self
            .rpc(
                "eth_getTransactionByHash",
                self.provider.get_transaction_by_hash(tx_hash).into_future(),
            )
            .await?;
        let mut candidates: Vec<Vec<(U256, B256)>> = Vec::new();
        if let Some(tx) = tx
            && tx.to() == Some(self.deployment.job_escrow)
            && let Ok(call) = JobEscrow::settleBatchCall::abi_decode(tx.input())
        {
            candidates.push(call.entries.iter().map(|e| (e.jobId, e.resultHash)).collect());
        }
        let mut conn = self.store.pool().acquire().await.map_err(crate::Error::from)?;
        let own = Store::proposal_entries(&mut conn, root).await?;
        drop(conn);
        candidates
            .push(own.iter().map(|(id, h)| (U256::from(id.max(&0).cast_unsigned()), *h)).collect());
        for entries in candidates {
            let Ok(tree) = attesta_sdk::merkle::BatchTree::new(entries.iter().copied()) else {
                continue;
            };
            if tree.root() == root {
                return entries
                    .into_iter()
                    .map(|(id, h)| {
                        i64::try_from(id)
                            .map(|id| (id, h))
                            .map_err(|_| WatchError::JobIdOverflow(id))
                    })
                    .collect();
            }
        }
        metrics::counter!("relayer_batch_unresolved_total").increment(1);
        tracing::warn!(%root, %tx_hash, "BatchSettled whose entries cannot be read (not a direct settleBatch call, not our proposal); its jobs stay as they are here");
        Ok(Vec::new())
    }

    /// One unit of work: a reorg check, then at most one range read and committed.
    pub async fn step(&mut self) -> Result<Step, WatchError> {
        if let Some(step) = self.check_reorg().await? {
            return Ok(step);
        }
        let batch = match self.fetch_range().await? {
            Ok(batch) => batch,
            Err(tip) => return Ok(Step::Idle { tip }),
        };
        let Some(outcome) = self.store.commit_range(&batch).await? else {
            // Another writer moved the cursor; read from where it is now.
            return Ok(Step::Idle { tip: batch.to });
        };
        metrics::gauge!("relayer_watcher_next_block").set((batch.to + 1) as f64);
        metrics::counter!("relayer_events_total").increment(outcome.new_events);
        tracing::debug!(
            from = batch.from,
            to = batch.to,
            events = outcome.new_events,
            "range committed"
        );
        if outcome.set_changed
            && let Some(active) = &self.active
            && let Err(e) = active.refresh().await
        {
            // The set is also refreshed on a timer; a miss here only delays a check.
            tracing::warn!(error = %e, "active set refresh after registry events failed");
        }
        self.notify.notify_waiters();
        Ok(Step::Committed { from: batch.from, to: batch.to, outcome })
    }

    /// Runs until `shutdown` turns true or a terminal error (a reorg too deep, a log that
    /// does not decode). A step in progress always finishes, so a commit is never cut short.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), WatchError> {
        let mut heads = None;
        let mut backoff = Duration::from_millis(100);
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            match self.step().await {
                Ok(Step::Idle { .. }) => {
                    backoff = Duration::from_millis(100);
                    if self.config.subscribe && heads.is_none() {
                        match self.provider.subscribe_blocks().await {
                            Ok(sub) => heads = Some(sub.into_stream()),
                            Err(e) => {
                                tracing::warn!(error = %e, "newHeads subscription failed; polling")
                            }
                        }
                    }
                    let poll = tokio::time::sleep(self.config.poll_interval);
                    tokio::select! {
                        _ = shutdown.changed() => {}
                        _ = poll => {}
                        head = async {
                            match heads.as_mut() {
                                Some(s) => s.next().await,
                                None => std::future::pending().await,
                            }
                        } => {
                            // A closed stream means a dropped socket: poll and resubscribe;
                            // the cursor makes sure no range is lost (R12).
                            if head.is_none() {
                                heads = None;
                            }
                        }
                    }
                }
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) if e.is_retryable() => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "watcher step failed");
                    tokio::select! {
                        _ = shutdown.changed() => {}
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                Err(e) => {
                    tracing::error!(error = %e, "watcher stopped");
                    return Err(e);
                }
            }
        }
    }
}
