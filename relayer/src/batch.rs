//! Batch settlement off-chain: jobs at quorum are grouped into proposals, nodes that attested
//! every entry sign the proposal's Merkle root, and at M signatures one `settleBatch` is
//! queued (`batch:<root>`). See `docs/relayer.md` ("Batch settlement").
//!
//! With `[batch] enabled = true` (the default) the aggregator marks a job at quorum as ready
//! (`batch_ready`) instead of queuing `settle:<jobId>`, when M of its agreeing signers sign
//! batches (`NodeHello::signs_batches`); other jobs are queued alone at quorum. Each [`Batcher::tick`]:
//!
//! 1. follows queued proposals: a confirmed `batch:<root>` marks the proposal `settled`; a
//!    `noop`/`failed` one (an entry was settled by someone else, or its deadline passed)
//!    drops it, and each of its jobs that is still `Created` on chain goes back to the pool
//!    (after `max_attempts` dropped proposals it settles alone);
//! 2. drops proposals still `signing` after `sign_timeout_ms` and settles their jobs alone:
//!    those jobs already hold M single attestations, so batching never costs liveness;
//! 3. forms proposals from the pool, per runtime id, once `max_jobs` are waiting or the oldest
//!    has waited `max_wait_ms`. A proposal only holds jobs that at least M active signers
//!    whose nodes sign batches (`NodeHello::signs_batches`) attested with the same results
//!    (the signers a proposal is offered to); a job with fewer such signers settles alone at
//!    once, as do a group of one and a job whose deadline is too close for a signing round.
//!
//! Every step is one database transaction (the proposal or drop with the outbox entries it
//! causes), and a root is proposed at most once, so a crash or restart neither loses a job nor
//! queues a settlement twice.

use crate::{Error, Store, aggregate::Aggregator, chain::ActiveSet, store::outbox::unix_now_ms};
use alloy::{
    primitives::{Address, B256, Bytes, U256},
    signers::Signature,
    sol_types::{Eip712Domain, SolCall},
};
use attesta_sdk::{
    BatchAttestation,
    bindings::JobEscrow,
    merkle::{BatchTree, MAX_BATCH_JOBS},
    quorum::pack_signatures,
    relay::{BatchSignatureAccepted, BatchSignatureSubmission},
};
use serde::Deserialize;
use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
    time::Duration,
};
use tokio::sync::{Notify, watch};

/// `[batch]` section of the relayer's configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// Settle jobs in batches (`settleBatch`); on by default. Only jobs that M nodes able to
    /// sign batches (`signs_batches`: `rpc_url` set) attested wait for a batch; every other job
    /// settles alone at quorum, as with this off.
    pub enabled: bool,
    /// Most jobs in one batch (1 to 1024, the escrow's `MAX_BATCH_JOBS`).
    pub max_jobs: usize,
    /// Longest time a ready job waits for its batch to fill before a smaller one is proposed.
    pub max_wait_ms: u64,
    /// A proposal without M signatures after this long is dropped and its jobs settle alone.
    pub sign_timeout_ms: u64,
    /// Dropped proposals a job may be part of before it settles alone.
    pub max_attempts: u32,
    /// A job whose deadline is closer than this (seconds, plus the signing timeout) settles
    /// alone: one late entry would revert a whole batch.
    pub deadline_margin_secs: u64,
    /// Milliseconds between ticks.
    pub tick_ms: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_jobs: 256,
            max_wait_ms: 30_000,
            sign_timeout_ms: 60_000,
            max_attempts: 2,
            deadline_margin_secs: 120,
            tick_ms: 500,
        }
    }
}

impl BatchConfig {
    /// Rejects settings the escrow or the batcher cannot work with.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what: &str| Err(Error::Config(format!("[batch] {what}")));
        if !(2..=MAX_BATCH_JOBS).contains(&self.max_jobs) {
            return bad("max_jobs must lie between 2 and 1024 (the escrow's MAX_BATCH_JOBS)");
        }
        if self.sign_timeout_ms == 0 || self.tick_ms == 0 {
            return bad("sign_timeout_ms and tick_ms must be above 0");
        }
        Ok(())
    }
}

/// Why a batch signature was refused. Each has a stable API code ([`BatchError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The signature is not 65 bytes, or does not recover to the request's signer.
    #[error(
        "the signature does not recover to {signer} over BatchAttestation(root, runtimeId) in this escrow's EIP-712 domain: sign the proposal's root and runtime id with the deployment's chain id and escrow"
    )]
    BadSignature {
        /// The request's signer.
        signer: Address,
    },
    /// The signer is not in the registry's active set.
    #[error("signer {0} is not an active signer: stake, register the key and activate first")]
    InactiveSigner(Address),
    /// No proposal with this root.
    #[error("no batch proposal {0}: fetch proposals from GET /v1/nodes/batches")]
    UnknownBatch(B256),
    /// The runtime id is not the proposal's.
    #[error(
        "batch {root} was proposed under runtime {expected}, not {got}: sign the proposal as served"
    )]
    RuntimeMismatch {
        /// The proposal.
        root: B256,
        /// Its runtime.
        expected: B256,
        /// What the node sent.
        got: B256,
    },
    /// The proposal is settling, settled or dropped: it takes no more signatures.
    #[error("batch {root} is {status}: it takes no more signatures")]
    NotOpen {
        /// The proposal.
        root: B256,
        /// Its status.
        status: String,
    },
    /// The signer did not attest every entry with the entry's result.
    #[error(
        "{signer} did not attest every entry of batch {root} with that result: only signers of every entry may sign it"
    )]
    NotAnAttester {
        /// The proposal.
        root: B256,
        /// The signer.
        signer: Address,
    },
    /// Database trouble; retrying later can help.
    #[error("internal: {0}")]
    Internal(#[from] Error),
}

impl BatchError {
    /// The stable snake_case code the API returns.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadSignature { .. } => "bad_signature",
            Self::InactiveSigner(_) => "inactive_signer",
            Self::UnknownBatch(_) => "unknown_batch",
            Self::RuntimeMismatch { .. } => "batch_mismatch",
            Self::NotOpen { .. } => "batch_not_open",
            Self::NotAnAttester { .. } => "not_an_attester",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<sqlx::Error> for BatchError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

/// `(jobId, resultHash)` entries of a batch being formed.
type Entries = Vec<(i64, B256)>;

/// What one [`Batcher::tick`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Proposals formed.
    pub proposed: usize,
    /// Jobs placed in those proposals.
    pub proposed_jobs: usize,
    /// Jobs queued to settle alone (`settle:<jobId>`).
    pub single: usize,
    /// Proposals whose `settleBatch` confirmed.
    pub settled: usize,
    /// Proposals dropped (signing timed out, or their transaction was a no-op or failed).
    pub dropped: usize,
}

/// Forms batch proposals, takes node signatures over them, and queues `settleBatch`.
#[derive(Clone)]
pub struct Batcher {
    store: Store,
    active: ActiveSet,
    aggregator: Aggregator,
    domain: Eip712Domain,
    escrow: Address,
    config: BatchConfig,
    /// Woken (`notify_waiters`) when proposals are formed: long polls of nodes wait on it.
    proposals: Arc<Notify>,
    outbox_ready: Option<Arc<Notify>>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Batcher {
    /// A batcher over `store`; `aggregator` builds the single settlements it falls back to.
    pub fn new(
        store: Store,
        active: ActiveSet,
        aggregator: Aggregator,
        config: BatchConfig,
    ) -> Result<Self, Error> {
        config.validate()?;
        let deployment = active.deployment().clone();
        Ok(Self {
            store,
            domain: deployment.attestation_domain(),
            escrow: deployment.job_escrow,
            active,
            aggregator,
            config,
            proposals: Arc::default(),
            outbox_ready: None,
        })
    }

    /// Wakes `notify` (the transaction manager's) whenever a transaction was queued.
    pub fn with_outbox_notify(mut self, notify: Arc<Notify>) -> Self {
        self.outbox_ready = Some(notify);
        self
    }

    /// Woken when new proposals are formed (for `GET /v1/nodes/batches` long polls).
    pub fn proposals_notify(&self) -> Arc<Notify> {
        self.proposals.clone()
    }

    fn outbox_changed(&self) {
        if let Some(n) = &self.outbox_ready {
            n.notify_one();
        }
    }

    /// One pass: follow queued proposals, expire unsigned ones, form new ones.
    pub async fn tick(&self) -> Result<BatchReport, Error> {
        self.tick_at(unix_now_ms()).await
    }

    /// [`Batcher::tick`] at `now_ms` (unix milliseconds; tests move time by hand).
    pub async fn tick_at(&self, now_ms: i64) -> Result<BatchReport, Error> {
        let mut report = BatchReport::default();
        self.follow_queued(now_ms, &mut report).await?;
        self.expire_signing(now_ms, &mut report).await?;
        self.form(now_ms, &mut report).await?;
        if report.single > 0 || report.dropped > 0 {
            self.outbox_changed();
        }
        if report.proposed > 0 {
            self.proposals.notify_waiters();
        }
        if report != BatchReport::default() {
            tracing::info!(?report, "batcher tick");
        }
        metrics::counter!("relayer_batches_proposed_total").increment(report.proposed as u64);
        metrics::counter!("relayer_batch_jobs_proposed_total")
            .increment(report.proposed_jobs as u64);
        metrics::counter!("relayer_batch_single_fallbacks_total").increment(report.single as u64);
        metrics::counter!("relayer_batches_settled_total").increment(report.settled as u64);
        metrics::counter!("relayer_batches_dropped_total").increment(report.dropped as u64);
        Ok(report)
    }

    /// Ticks every `tick_ms` until `shutdown` turns true; errors are logged and retried.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let every = Duration::from_millis(self.config.tick_ms);
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "batcher tick failed; retrying next tick");
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Queued proposals: confirmed → settled; no-op or failed → dropped, jobs back to the pool.
    async fn follow_queued(&self, now_ms: i64, report: &mut BatchReport) -> Result<(), Error> {
        for p in self.store.proposals_in("queued").await? {
            let key = batch_key(p.root);
            let Some(entry) = self.store.outbox_status(&key).await? else { continue };
            use crate::store::outbox::OutboxStatus as S;
            match entry.status {
                S::Confirmed => {
                    let mut tx = self.store.pool().begin().await?;
                    if Store::move_proposal(&mut tx, p.root, "queued", "settled", None, now_ms)
                        .await?
                    {
                        for (job_id, _) in Store::proposal_entries(&mut tx, p.root).await? {
                            Store::remove_ready(&mut tx, job_id).await?;
                        }
                        report.settled += 1;
                    }
                    tx.commit().await?;
                }
                S::Noop | S::Failed => {
                    let reason =
                        entry.reason.unwrap_or_else(|| "settleBatch did not succeed".into());
                    self.drop_queued(p.root, &reason, now_ms, report).await?;
                }
                S::Queued | S::Pending => {}
            }
        }
        Ok(())
    }

    /// A queued batch that will not settle: each job still `Created` on chain returns to the
    /// pool (the others were settled or refunded elsewhere; the watcher records that).
    async fn drop_queued(
        &self,
        root: B256,
        reason: &str,
        now_ms: i64,
        report: &mut BatchReport,
    ) -> Result<(), Error> {
        let entries = {
            let mut conn = self.store.pool().acquire().await?;
            Store::proposal_entries(&mut conn, root).await?
        };
        // Chain reads stay outside the transaction (SQLite has one connection).
        let escrow = JobEscrow::new(self.escrow, self.active.provider());
        let mut gone = Vec::new();
        for (job_id, _) in &entries {
            let job = escrow
                .job(U256::from(job_id.max(&0).cast_unsigned()))
                .call()
                .await
                .map_err(attesta_sdk::Error::from)?;
            if job.status != 1 {
                gone.push(*job_id);
            }
        }
        let mut tx = self.store.pool().begin().await?;
        if Store::move_proposal(&mut tx, root, "queued", "dropped", Some(reason), now_ms).await? {
            for job_id in &gone {
                Store::remove_ready(&mut tx, *job_id).await?;
            }
            Store::release_proposal_jobs(&mut tx, root).await?;
            report.dropped += 1;
            tracing::warn!(%root, reason, no_longer_created = gone.len(), "batch dropped; its open jobs return to the pool");
        }
        tx.commit().await?;
        Ok(())
    }

    /// Proposals still signing after `sign_timeout_ms`: dropped, their jobs settled alone.
    async fn expire_signing(&self, now_ms: i64, report: &mut BatchReport) -> Result<(), Error> {
        let timeout = i64::try_from(self.config.sign_timeout_ms).unwrap_or(i64::MAX);
        for p in self.store.proposals_in("signing").await? {
            if p.created_ms.saturating_add(timeout) > now_ms {
                continue;
            }
            let mut tx = self.store.pool().begin().await?;
            let reason = "fewer than M signatures before sign_timeout_ms; jobs settle alone";
            if Store::move_proposal(&mut tx, p.root, "signing", "dropped", Some(reason), now_ms)
                .await?
            {
                for (job_id, result_hash) in Store::proposal_entries(&mut tx, p.root).await? {
                    report.single += usize::from(
                        self.settle_alone(&mut tx, job_id, result_hash, p.runtime_id).await?,
                    );
                }
                report.dropped += 1;
                tracing::warn!(root = %p.root, "batch signing timed out; its jobs settle alone");
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// Queues `settle:<jobId>` and takes the job out of the pool.
    async fn settle_alone(
        &self,
        conn: &mut sqlx::AnyConnection,
        job_id: i64,
        result_hash: B256,
        runtime_id: B256,
    ) -> Result<bool, Error> {
        let queued =
            self.aggregator.queue_single(conn, job_id, result_hash, runtime_id).await.map_err(
                |e| match e {
                    crate::aggregate::AttestError::Internal(e) => e,
                    other => Error::Config(format!(
                        "cannot build the settlement of job {job_id}: {other}"
                    )),
                },
            )?;
        Store::remove_ready(conn, job_id).await?;
        Ok(queued)
    }

    /// Groups the pool into proposals (or single settlements) once they are due.
    async fn form(&self, now_ms: i64, report: &mut BatchReport) -> Result<(), Error> {
        let ready = self.store.unassigned_ready(4 * MAX_BATCH_JOBS as i64).await?;
        if ready.is_empty() {
            return Ok(());
        }
        let threshold = self.active.threshold() as usize;
        let now_s = u64::try_from(now_ms / 1000).unwrap_or(0);
        let margin = self.config.deadline_margin_secs + self.config.sign_timeout_ms / 1000;
        let mut groups: BTreeMap<B256, Vec<_>> = BTreeMap::new();
        let mut tx = self.store.pool().begin().await?;
        let capable = Store::batch_signers(&mut tx).await?;
        for job in ready {
            if job.status != "settling" {
                // Settled (or refunded) meanwhile: nothing left to do for it here.
                Store::remove_ready(&mut tx, job.job_id).await?;
                continue;
            }
            if job.deadline < now_s.saturating_add(margin)
                || job.attempts >= i64::from(self.config.max_attempts)
            {
                report.single += usize::from(
                    self.settle_alone(&mut tx, job.job_id, job.result_hash, job.runtime_id).await?,
                );
                continue;
            }
            // Only nodes that sign batches can sign this job's batch: with fewer than M of them
            // among its signers, waiting for one would only delay the job.
            let signers = self
                .agreeing(&mut tx, job.job_id, job.result_hash, job.runtime_id, &capable)
                .await?;
            if signers.len() < threshold {
                report.single += usize::from(
                    self.settle_alone(&mut tx, job.job_id, job.result_hash, job.runtime_id).await?,
                );
                continue;
            }
            groups.entry(job.runtime_id).or_default().push((job, signers));
        }
        let max_wait = i64::try_from(self.config.max_wait_ms).unwrap_or(i64::MAX);
        for (runtime_id, mut jobs) in groups {
            let oldest = jobs.iter().map(|(j, _)| j.ready_at_ms).min().unwrap_or(now_ms);
            if jobs.len() < self.config.max_jobs && oldest.saturating_add(max_wait) > now_ms {
                continue;
            }
            jobs.sort_by_key(|(j, _)| j.job_id);
            // Greedy: a job joins the current batch while at least M signers attested every
            // entry with its result (they are who can sign the batch).
            let mut batches: Vec<(Entries, Vec<Address>)> = Vec::new();
            for (job, signers) in jobs {
                if let Some((entries, common)) = batches.last_mut() {
                    let joined: Vec<Address> =
                        common.iter().copied().filter(|s| signers.contains(s)).collect();
                    if joined.len() >= threshold && entries.len() < self.config.max_jobs {
                        entries.push((job.job_id, job.result_hash));
                        *common = joined;
                        continue;
                    }
                }
                batches.push((vec![(job.job_id, job.result_hash)], signers));
            }
            for (entries, _) in batches {
                if entries.len() < 2 {
                    for (job_id, result_hash) in entries {
                        report.single += usize::from(
                            self.settle_alone(&mut tx, job_id, result_hash, runtime_id).await?,
                        );
                    }
                    continue;
                }
                let tree = BatchTree::new(
                    entries.iter().map(|(id, h)| (U256::from(id.max(&0).cast_unsigned()), *h)),
                )
                .map_err(|e| Error::Config(format!("batch tree: {e}")))?;
                if Store::proposal_exists(&mut tx, tree.root()).await? {
                    // The same set was proposed before and did not settle: do not repeat it.
                    for (job_id, result_hash) in entries {
                        report.single += usize::from(
                            self.settle_alone(&mut tx, job_id, result_hash, runtime_id).await?,
                        );
                    }
                    continue;
                }
                Store::insert_proposal(&mut tx, tree.root(), runtime_id, &entries, now_ms).await?;
                tracing::info!(root = %tree.root(), jobs = entries.len(), "batch proposed");
                report.proposed += 1;
                report.proposed_jobs += entries.len();
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Active signers that attested `(result_hash, runtime_id)` for the job.
    async fn agreeing(
        &self,
        conn: &mut sqlx::AnyConnection,
        job_id: i64,
        result_hash: B256,
        runtime_id: B256,
        capable: &HashSet<Address>,
    ) -> Result<Vec<Address>, Error> {
        Ok(Store::attestations(conn, job_id)
            .await?
            .into_iter()
            .filter(|a| a.result_hash == result_hash && a.runtime_id == runtime_id)
            .map(|a| a.signer)
            .filter(|s| self.active.contains(*s) && capable.contains(s))
            .collect())
    }

    /// Takes one node's signature over a proposal; `request_signer` signed the HTTP request.
    ///
    /// At M distinct active signers the proposal moves to `queued` and `batch:<root>` is queued
    /// with the first M signatures (ascending), in one transaction with the proposal locked.
    pub async fn submit_signature(
        &self,
        request_signer: Address,
        submission: BatchSignatureSubmission,
    ) -> Result<BatchSignatureAccepted, BatchError> {
        let root = submission.root;
        let bad = || BatchError::BadSignature { signer: request_signer };
        let digest =
            BatchAttestation { root, runtimeId: submission.runtime_id }.digest(&self.domain);
        // The contract's own rules: 65 bytes, v 27/28, low s, a non-zero signer.
        let recovered = attesta_sdk::quorum::recover_ascending(digest, &submission.signature)
            .map_err(|_| bad())?;
        if recovered != [request_signer] {
            return Err(bad());
        }
        if !self.active.contains(request_signer) {
            return Err(BatchError::InactiveSigner(request_signer));
        }
        let threshold = self.active.threshold();
        let mut tx = self.store.pool().begin().await?;
        let proposal = Store::proposal(&mut tx, self.store.backend(), root, true)
            .await?
            .ok_or(BatchError::UnknownBatch(root))?;
        if proposal.runtime_id != submission.runtime_id {
            return Err(BatchError::RuntimeMismatch {
                root,
                expected: proposal.runtime_id,
                got: submission.runtime_id,
            });
        }
        let signed = Store::batch_signatures(&mut tx, root).await?;
        let count = |s: &[(Address, Vec<u8>)]| {
            u32::try_from(s.iter().filter(|(a, _)| self.active.contains(*a)).count())
                .unwrap_or(u32::MAX)
        };
        if signed.iter().any(|(a, _)| *a == request_signer) {
            return Ok(BatchSignatureAccepted { signers: count(&signed), threshold });
        }
        if proposal.status != "signing" {
            return Err(BatchError::NotOpen { root, status: proposal.status });
        }
        if !Store::attested_every_entry(&mut tx, root, proposal.runtime_id, request_signer).await? {
            return Err(BatchError::NotAnAttester { root, signer: request_signer });
        }
        Store::insert_batch_signature(&mut tx, root, request_signer, &submission.signature).await?;
        let signed = Store::batch_signatures(&mut tx, root).await?;
        let accepted = BatchSignatureAccepted { signers: count(&signed), threshold };
        let mut queued = None;
        if threshold > 0 && accepted.signers >= threshold {
            let entries = Store::proposal_entries(&mut tx, root).await?;
            let tree = BatchTree::new(
                entries.iter().map(|(id, h)| (U256::from(id.max(&0).cast_unsigned()), *h)),
            )
            .map_err(|e| Error::Config(format!("stored batch {root}: {e}")))?;
            if tree.root() != root {
                return Err(Error::Config(format!(
                    "stored entries of batch {root} hash to {}: the database is corrupt",
                    tree.root()
                ))
                .into());
            }
            let chosen = signed
                .iter()
                .filter(|(a, _)| self.active.contains(*a))
                .take(threshold as usize)
                .map(|(a, sig)| {
                    Signature::try_from(sig.as_slice()).map(|s| (*a, s)).map_err(|e| {
                        Error::Config(format!("stored batch signature of {a} is corrupt: {e}"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let (signatures, _) = pack_signatures(chosen);
            let calldata = JobEscrow::settleBatchCall {
                runtimeId: proposal.runtime_id,
                entries: tree.batch_entries(),
                signatures: Bytes::from(signatures.to_vec()),
            }
            .abi_encode();
            crate::txm::enqueue(&mut tx, &batch_key(root), self.escrow, &calldata).await?;
            Store::move_proposal(&mut tx, root, "signing", "queued", None, unix_now_ms()).await?;
            queued = Some(entries.len());
        }
        tx.commit().await?;
        metrics::counter!("relayer_batch_signatures_total").increment(1);
        if let Some(jobs) = queued {
            tracing::info!(%root, jobs, "batch quorum reached: settleBatch queued");
            self.outbox_changed();
        }
        Ok(accepted)
    }
}

/// The outbox key of a batch's `settleBatch`.
pub fn batch_key(root: B256) -> String {
    format!("batch:{root}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_are_on_and_bounds_are_checked() {
        let c = BatchConfig::default();
        assert!(c.enabled);
        c.validate().unwrap();
        assert!(BatchConfig { max_jobs: 1025, ..c.clone() }.validate().is_err());
        assert!(BatchConfig { max_jobs: 1, ..c.clone() }.validate().is_err());
        let parsed: BatchConfig = toml::from_str("enabled = false\nmax_jobs = 8").unwrap();
        assert!(!parsed.enabled && parsed.max_jobs == 8 && parsed.max_wait_ms == 30_000);
        assert!(toml::from_str::<BatchConfig>("max_job = 8").is_err());
    }
}
