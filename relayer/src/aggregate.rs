//! Attestations from nodes: verified on arrival, tallied per (result hash, runtime), settled
//! at M, kept as equivocation evidence when one signer contradicts itself.
//!
//! The quorum decision and the queued settlement commit in one database transaction with the
//! job row locked, so concurrent submissions can neither miss the M-th signature nor queue two
//! settlements (the outbox key `settle:<jobId>` is unique as well).

use crate::{
    Store,
    chain::ActiveSet,
    store::jobs::{AttestationRow, JobRow, job_key},
};
use alloy::{
    primitives::{Address, B256, Bytes, keccak256},
    signers::Signature,
    sol_types::{Eip712Domain, SolCall},
};
use attesta_sdk::{
    Attestation, Deployment,
    bindings::{JobEscrow, Slashing},
    quorum::pack_signatures,
    relay::{AttestationAccepted, AttestationSubmission},
};
use std::{collections::BTreeSet, fmt, sync::Arc};

/// Why an attestation was refused. Each has a stable API code ([`AttestError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// The attestation names another signer than the one that signed the request.
    #[error(
        "attestation signer {claimed} is not the request signer {request}: sign the request with the attesting key"
    )]
    SignerMismatch {
        /// Signer named in the attestation.
        claimed: Address,
        /// Signer of the HTTP request.
        request: Address,
    },
    /// The EIP-712 signature does not recover to the named signer (or is high-s).
    #[error(
        "attestation signature does not recover to {signer} in this escrow's EIP-712 domain: sign with the deployment's chain id and escrow address"
    )]
    BadSignature {
        /// The named signer.
        signer: Address,
    },
    /// The signer is not in the registry's active set.
    #[error("signer {0} is not an active signer: stake, register the key and activate first")]
    InactiveSigner(Address),
    /// No confirmed `JobCreated` with this id.
    #[error("unknown job {0}: wait until the job's creation is confirmed, then retry")]
    UnknownJob(String),
    /// The attestation's model or input differs from the job's.
    #[error(
        "attestation for job {0} names another model or input than the job: fetch the job's model and input again"
    )]
    JobMismatch(String),
    /// The job is not waiting for attestations any more.
    #[error("job {job_id} is {status}, not open: it needs no more attestations")]
    JobNotOpen {
        /// The job.
        job_id: String,
        /// Its status.
        status: String,
    },
    /// The job's deadline passed; it can no longer be settled.
    #[error("job {job_id}'s deadline {deadline} has passed: it can only be refunded now")]
    DeadlinePassed {
        /// The job.
        job_id: String,
        /// Its deadline (unix seconds).
        deadline: u64,
    },
    /// The runtime is not on the escrow's allow-list.
    #[error("runtime {0} is not allowed by the escrow: upgrade the node to an allowed runtime")]
    RuntimeNotAllowed(B256),
    /// keccak256(output) is not the attested result hash.
    #[error(
        "keccak256 of the output is {actual}, not the attested result hash {attested}: send the canonical output bytes"
    )]
    OutputMismatch {
        /// The attested result hash.
        attested: B256,
        /// Hash of the bytes sent.
        actual: B256,
    },
    /// The output is longer than the escrow's `maxOutputBytes`: no settlement could carry it.
    #[error(
        "the output is {length} bytes, above the escrow's maxOutputBytes {max}: no settlement can publish it"
    )]
    OutputTooLarge {
        /// Length of the output sent.
        length: usize,
        /// The escrow's limit.
        max: u32,
    },
    /// The signer already attested another result for this job; evidence is kept for slashing.
    #[error(
        "signer {signer} already attested another result for job {job_id}: the contradiction is recorded as equivocation evidence"
    )]
    Equivocation {
        /// The job.
        job_id: String,
        /// The signer.
        signer: Address,
    },
    /// Database or chain trouble; retrying later can help.
    #[error("internal: {0}")]
    Internal(#[from] crate::Error),
}

impl AttestError {
    /// The stable snake_case code the API returns.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SignerMismatch { .. } => "signer_mismatch",
            Self::BadSignature { .. } => "bad_signature",
            Self::InactiveSigner(_) => "inactive_signer",
            Self::UnknownJob(_) => "unknown_job",
            Self::JobMismatch(_) => "job_mismatch",
            Self::JobNotOpen { .. } => "job_not_open",
            Self::DeadlinePassed { .. } => "deadline_passed",
            Self::RuntimeNotAllowed(_) => "runtime_not_allowed",
            Self::OutputMismatch { .. } => "output_mismatch",
            Self::OutputTooLarge { .. } => "output_too_large",
            Self::Equivocation { .. } => "equivocation",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<sqlx::Error> for AttestError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

/// The aggregator's clock (unix seconds); replaceable in tests.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Verifies, stores and tallies attestations; queues settlements and slashing evidence.
#[derive(Clone)]
pub struct Aggregator {
    store: Store,
    active: ActiveSet,
    deployment: Deployment,
    domain: Eip712Domain,
    clock: Clock,
    /// Woken after a commit that queued a transaction (the transaction manager's notifier).
    outbox_ready: Option<Arc<tokio::sync::Notify>>,
    /// Hand jobs at quorum to the batcher (`batch_ready`) instead of queuing `settle:<jobId>`.
    batching: bool,
}

impl fmt::Debug for Aggregator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aggregator").field("deployment", &self.deployment).finish_non_exhaustive()
    }
}

impl Aggregator {
    /// An aggregator over `store`, checking signers against `active`.
    pub fn new(store: Store, active: ActiveSet) -> Self {
        let deployment = active.deployment().clone();
        let domain = deployment.attestation_domain();
        let clock: Clock = Arc::new(|| u64::try_from(crate::store::unix_now()).unwrap_or_default());
        Self { store, active, deployment, domain, clock, outbox_ready: None, batching: false }
    }

    /// Wakes `notify` (the transaction manager's) whenever a settlement or slash is queued, so
    /// it is sent at once rather than at the manager's next poll.
    pub fn with_outbox_notify(mut self, notify: Arc<tokio::sync::Notify>) -> Self {
        self.outbox_ready = Some(notify);
        self
    }

    fn outbox_changed(&self) {
        if let Some(notify) = &self.outbox_ready {
            notify.notify_one();
        }
    }

    /// With `batching`, a job at quorum is marked ready for the batcher ([`crate::batch`])
    /// rather than settled alone at once.
    pub fn with_batching(mut self, batching: bool) -> Self {
        self.batching = batching;
        self
    }

    /// Queues `settle:<jobId>` for a job that has M agreeing attestations of `(result_hash,
    /// runtime_id)`, inside the caller's transaction (the batcher's fallback to settling a job
    /// alone). Returns whether a new outbox entry was queued; `false` also when the agreeing
    /// active signers fell below M (the job then waits for more attestations).
    pub(crate) async fn queue_single(
        &self,
        conn: &mut sqlx::AnyConnection,
        job_id: i64,
        result_hash: B256,
        runtime_id: B256,
    ) -> Result<bool, AttestError> {
        let backend = self.store.backend();
        let Some(job) = Store::job_row(conn, backend, job_id, true).await? else {
            return Ok(false);
        };
        let stored = Store::attestations(conn, job_id).await?;
        let Some(output) = Store::output_of(conn, job_id, result_hash).await? else {
            return Ok(false);
        };
        let Some(mine) = stored
            .iter()
            .find(|s| s.result_hash == result_hash && s.runtime_id == runtime_id)
            .cloned()
        else {
            return Ok(false);
        };
        let threshold = self.active.threshold();
        let agreeing = self.agreeing(&stored, &mine).len();
        if threshold == 0 || agreeing < threshold as usize {
            return Ok(false);
        }
        let calldata = self.settle_calldata(&job, &stored, &mine, &output)?;
        let queued = crate::txm::enqueue(
            conn,
            &format!("settle:{job_id}"),
            self.deployment.job_escrow,
            &calldata,
        )
        .await?;
        if queued {
            metrics::counter!("relayer_settlements_queued_total").increment(1);
        }
        Ok(queued)
    }

    /// Replaces the wall clock used for deadline checks (tests follow anvil's clock).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Takes one node's attestation; `request_signer` is who signed the HTTP request.
    ///
    /// Re-submitting a stored attestation returns the current tally. At M agreeing active
    /// signers the job becomes `settling` and `settle:<jobId>` is queued, in one transaction.
    pub async fn submit(
        &self,
        request_signer: Address,
        submission: AttestationSubmission,
    ) -> Result<AttestationAccepted, AttestError> {
        let signed = &submission.attestation;
        let a = &signed.attestation;
        let signer = signed.signer;
        let job_text = a.jobId.to_string();
        if signer != request_signer {
            return Err(AttestError::SignerMismatch { claimed: signer, request: request_signer });
        }
        signed.verify(&self.domain).map_err(|_| AttestError::BadSignature { signer })?;
        if !self.active.contains(signer) {
            return Err(AttestError::InactiveSigner(signer));
        }
        let Some(job_id) = job_key(a.jobId) else { return Err(AttestError::UnknownJob(job_text)) };
        let backend = self.store.backend();
        let mine = AttestationRow {
            signer,
            result_hash: a.resultHash,
            runtime_id: a.runtimeId,
            signature: signed.signature.as_bytes().to_vec(),
        };
        // One transaction for the checks and the insert (each statement is a round trip to
        // the database, and on SQLite a hand-off to its worker thread). Chain look-ups stay
        // outside it, SQLite having one connection: a runtime the cache does not know yet is
        // fetched with the transaction dropped, and the checks start over.
        let (mut tx, job, stored) = loop {
            let runtime_allowed = self.active.runtime_allowed_cached(a.runtimeId);
            let mut tx = self.store.pool().begin().await?;
            let job = Store::job_row(&mut tx, backend, job_id, true)
                .await?
                .ok_or_else(|| AttestError::UnknownJob(job_text.clone()))?;
            if job.model_id != a.modelId || job.input_hash != a.inputHash {
                return Err(AttestError::JobMismatch(job_text));
            }
            let stored = Store::attestations(&mut tx, job_id).await?;
            if stored.iter().any(|s| same_vote(s, &mine)) {
                return Ok(self.tally(&stored, &mine));
            }
            let Some(allowed) = runtime_allowed else {
                drop(tx);
                self.active.runtime_allowed(a.runtimeId).await?;
                continue;
            };
            if !allowed {
                return Err(AttestError::RuntimeNotAllowed(a.runtimeId));
            }
            break (tx, job, stored);
        };
        let actual = keccak256(&submission.output);
        if actual != a.resultHash {
            return Err(AttestError::OutputMismatch { attested: a.resultHash, actual });
        }
        let max = self.active.max_output_bytes();
        if submission.output.len() > max as usize {
            return Err(AttestError::OutputTooLarge { length: submission.output.len(), max });
        }

        if let Some(first) =
            stored.iter().find(|s| s.signer == signer && s.result_hash != a.resultHash)
        {
            if Store::insert_equivocation(&mut tx, &job, first, &mine).await? {
                let calldata = self.slash_calldata(&job, first, &mine)?;
                let key = format!("slash:{job_id}:{}", crate::store::chain::hex(signer));
                crate::txm::enqueue(&mut tx, &key, self.deployment.slashing, &calldata).await?;
                metrics::counter!("relayer_equivocations_total").increment(1);
                tracing::warn!(job_id, %signer, "equivocation: slashing evidence queued");
            }
            tx.commit().await?;
            self.outbox_changed();
            return Err(AttestError::Equivocation { job_id: job_text, signer });
        }
        // With batching, a job at quorum still takes attestations until it is placed in a
        // proposal: more signers of each job make larger batches possible (a batch needs M
        // signers common to every entry).
        let waiting_for_batch = self.batching
            && job.status == "settling"
            && Store::ready_unassigned(&mut tx, job_id).await?;
        if job.status != "open" && !waiting_for_batch {
            return Err(AttestError::JobNotOpen { job_id: job_text, status: job.status });
        }
        if (self.clock)() > job.deadline {
            return Err(AttestError::DeadlinePassed { job_id: job_text, deadline: job.deadline });
        }
        Store::insert_attestation(&mut tx, job_id, &mine, &submission.output).await?;
        if waiting_for_batch {
            tx.commit().await?;
            metrics::counter!("relayer_attestations_total").increment(1);
            let mut stored = stored;
            stored.push(mine.clone());
            return Ok(self.tally(&stored, &mine));
        }
        let mut stored = stored;
        stored.push(mine.clone());
        let accepted = self.tally(&stored, &mine);
        let at_quorum = accepted.agreeing >= accepted.threshold && accepted.threshold > 0;
        // A batch needs M signers that sign batches (nodes registered with `signs_batches`):
        // with fewer among this job's, it settles alone now instead of waiting for the batcher.
        let to_batch = at_quorum && self.batching && {
            let capable = Store::batch_signers(&mut tx).await?;
            let signers = self.agreeing(&stored, &mine);
            let batchable = signers.iter().filter(|r| capable.contains(&r.signer)).count();
            u32::try_from(batchable).unwrap_or(u32::MAX) >= accepted.threshold
        };
        if to_batch {
            // The batcher settles it, in a batch or alone (crate::batch).
            let now_ms = crate::store::outbox::unix_now_ms();
            if Store::insert_ready(&mut tx, job_id, mine.result_hash, mine.runtime_id, now_ms)
                .await?
            {
                tracing::info!(
                    job_id,
                    signers = accepted.agreeing,
                    "quorum reached: ready to batch"
                );
            }
            Store::mark_quorum(&mut tx, job_id).await?;
        } else if at_quorum {
            let calldata = self.settle_calldata(&job, &stored, &mine, &submission.output)?;
            let key = format!("settle:{job_id}");
            if crate::txm::enqueue(&mut tx, &key, self.deployment.job_escrow, &calldata).await? {
                tracing::info!(
                    job_id,
                    signers = accepted.agreeing,
                    "quorum reached: settlement queued"
                );
                metrics::counter!("relayer_settlements_queued_total").increment(1);
            }
            Store::mark_quorum(&mut tx, job_id).await?;
        }
        tx.commit().await?;
        if at_quorum && !to_batch {
            self.outbox_changed();
        }
        metrics::counter!("relayer_attestations_total").increment(1);
        Ok(accepted)
    }

    /// Distinct active signers agreeing with `mine`'s (result hash, runtime).
    fn agreeing<'a>(
        &self,
        stored: &'a [AttestationRow],
        mine: &AttestationRow,
    ) -> Vec<&'a AttestationRow> {
        let mut seen = BTreeSet::new();
        let mut rows: Vec<&AttestationRow> = stored
            .iter()
            .filter(|s| s.result_hash == mine.result_hash && s.runtime_id == mine.runtime_id)
            .filter(|s| self.active.contains(s.signer))
            .filter(|s| seen.insert(s.signer))
            .collect();
        rows.sort_by_key(|s| s.signer);
        rows
    }

    fn tally(&self, stored: &[AttestationRow], mine: &AttestationRow) -> AttestationAccepted {
        let agreeing = u32::try_from(self.agreeing(stored, mine).len()).unwrap_or(u32::MAX);
        AttestationAccepted { agreeing, threshold: self.active.threshold() }
    }

    fn settle_calldata(
        &self,
        job: &JobRow,
        stored: &[AttestationRow],
        mine: &AttestationRow,
        output: &[u8],
    ) -> Result<Vec<u8>, AttestError> {
        let m = usize::try_from(self.active.threshold()).unwrap_or(usize::MAX);
        let chosen = self
            .agreeing(stored, mine)
            .into_iter()
            .take(m)
            .map(|s| Ok((s.signer, signature(&s.signature)?)))
            .collect::<Result<Vec<_>, AttestError>>()?;
        let (signatures, _) = pack_signatures(chosen);
        Ok(JobEscrow::settleCall {
            jobId: alloy::primitives::U256::from(job.job_id.max(0).cast_unsigned()),
            runtimeId: mine.runtime_id,
            resultHash: mine.result_hash,
            output: Bytes::copy_from_slice(output),
            signatures,
        }
        .abi_encode())
    }

    fn slash_calldata(
        &self,
        job: &JobRow,
        first: &AttestationRow,
        second: &AttestationRow,
    ) -> Result<Vec<u8>, AttestError> {
        let attestation = |r: &AttestationRow| {
            Attestation::new(
                alloy::primitives::U256::from(job.job_id.max(0).cast_unsigned()),
                job.model_id,
                job.input_hash,
                r.result_hash,
                r.runtime_id,
            )
        };
        // Both were verified on arrival; re-parse to fail loudly on a corrupt row.
        signature(&first.signature)?;
        signature(&second.signature)?;
        Ok(Slashing::slashEquivocationCall {
            a: attestation(first).into(),
            sigA: Bytes::copy_from_slice(&first.signature),
            b: attestation(second).into(),
            sigB: Bytes::copy_from_slice(&second.signature),
        }
        .abi_encode())
    }
}

fn same_vote(a: &AttestationRow, b: &AttestationRow) -> bool {
    a.signer == b.signer && a.result_hash == b.result_hash && a.runtime_id == b.runtime_id
}

fn signature(bytes: &[u8]) -> Result<Signature, AttestError> {
    Signature::try_from(bytes)
        .map_err(|e| AttestError::Internal(crate::store::chain::decode_err("signature", e)))
}
