//! Batch signing: the node's side of batch settlement (`docs/protocol.md`, 4b).
//!
//! The relayer offers proposals (`GET /v1/nodes/batches`): a runtime id and `(jobId,
//! resultHash)` entries under a Merkle root. A batch leaf names a job by id only, so a
//! signature over a root would settle whatever job the chain has under that id. The node
//! therefore signs `BatchAttestation(root, runtimeId)` only when, for every entry:
//!
//! 1. it ran the job itself in this process and signed the same result hash under the same
//!    runtime ([`Results`], a bounded record kept from its own single attestations);
//! 2. the chain's job with that id (`JobEscrow.job`, read through the node's own `rpc_url`) has
//!    the model id and input hash of the bytes the node ran, and is still `Created`;
//!
//! and the root it rebuilds from the entries is the proposal's root. Anything else is refused,
//! logged and counted (`node_batches_refused_total`). Without `rpc_url` the node signs no
//! batches (check 2 would have to trust the relayer, which is trusted for liveness only); the
//! relayer then settles the node's jobs one by one.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::DynProvider;
use attesta_sdk::BatchAttestation;
use attesta_sdk::bindings::JobEscrow;
use attesta_sdk::merkle::BatchTree;
use attesta_sdk::relay::{BatchProposal, BatchSignatureSubmission};
use tracing::{info, warn};

use super::{Context, RelayError, Shutdown};

/// Most results remembered; the oldest are forgotten first (a job past its deadline cannot be
/// batched anyway).
pub const MAX_RESULTS: usize = 65_536;

/// Most proposal roots remembered as signed or refused, so a proposal the relayer keeps
/// offering is judged once.
const MAX_SEEN: usize = 4_096;

/// What this node computed and signed for one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnResult {
    /// The model the node ran.
    pub model_id: B256,
    /// The input the node ran.
    pub input_hash: B256,
    /// keccak256 of the canonical output it produced.
    pub result_hash: B256,
    /// The runtime it attested under.
    pub runtime_id: B256,
}

/// A bounded record of this node's own results, by job id.
#[derive(Debug, Default)]
pub struct Results {
    inner: Mutex<(HashMap<U256, OwnResult>, VecDeque<U256>)>,
}

impl Results {
    /// Remembers a result the node signed; beyond [`MAX_RESULTS`] the oldest is forgotten.
    pub fn insert(&self, job_id: U256, result: OwnResult) {
        let Ok(mut guard) = self.inner.lock() else { return };
        let (map, order) = &mut *guard;
        if map.insert(job_id, result).is_none() {
            order.push_back(job_id);
        }
        while order.len() > MAX_RESULTS {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    /// The result this node signed for `job_id`, if remembered.
    pub fn get(&self, job_id: U256) -> Option<OwnResult> {
        self.inner.lock().ok().and_then(|g| g.0.get(&job_id).copied())
    }
}

/// Why the node refused to sign a proposal.
#[derive(Debug, thiserror::Error)]
pub enum BatchRefusal {
    /// The proposal names another runtime than this node's.
    #[error("the proposal's runtime {got} is not this node's runtime {own}")]
    Runtime {
        /// This node's runtime id.
        own: B256,
        /// The proposal's.
        got: B256,
    },
    /// The entries do not hash to the proposal's root (or are not a valid batch).
    #[error("the entries hash to {computed}, not to the proposed root {root}")]
    Root {
        /// The proposed root.
        root: B256,
        /// What the entries hash to.
        computed: B256,
    },
    /// The node has no record of running this job (or forgot it).
    #[error("job {0} was not run by this node (or is no longer remembered)")]
    NotRun(U256),
    /// The node computed another result for this job.
    #[error("job {job_id}: this node computed {own}, the proposal says {proposed}")]
    ResultMismatch {
        /// The job.
        job_id: U256,
        /// What the node computed.
        own: B256,
        /// What the proposal says.
        proposed: B256,
    },
    /// The chain's job under this id is not the model and input the node ran.
    #[error(
        "job {0} on chain has another model or input than the bytes this node ran: the relayer mislabelled the job"
    )]
    ChainMismatch(U256),
    /// The job is no longer `Created` on chain.
    #[error("job {job_id} is in status {status} on chain, not Created")]
    NotCreated {
        /// The job.
        job_id: U256,
        /// Its on-chain status.
        status: u8,
    },
    /// The chain could not be read; the proposal is judged again later.
    #[error("cannot read job {job_id} on chain: {message}: check rpc_url")]
    Chain {
        /// The job.
        job_id: U256,
        /// The RPC error.
        message: String,
    },
}

impl BatchRefusal {
    /// Whether judging the proposal again later can give another answer.
    fn is_transient(&self) -> bool {
        matches!(self, Self::Chain { .. })
    }
}

/// Checks a proposal against this node's own results and the chain (see the module docs).
pub async fn check(
    proposal: &BatchProposal,
    own_runtime: B256,
    results: &Results,
    chain: &DynProvider,
    escrow: Address,
) -> Result<(), BatchRefusal> {
    if proposal.runtime_id != own_runtime {
        return Err(BatchRefusal::Runtime { own: own_runtime, got: proposal.runtime_id });
    }
    let tree = BatchTree::new(proposal.entries.iter().map(|e| (e.job_id, e.result_hash)))
        .map_err(|_| BatchRefusal::Root { root: proposal.root, computed: B256::ZERO })?;
    if tree.root() != proposal.root {
        return Err(BatchRefusal::Root { root: proposal.root, computed: tree.root() });
    }
    let mut mine = Vec::with_capacity(proposal.entries.len());
    for entry in &proposal.entries {
        let own = results.get(entry.job_id).ok_or(BatchRefusal::NotRun(entry.job_id))?;
        if own.result_hash != entry.result_hash || own.runtime_id != proposal.runtime_id {
            return Err(BatchRefusal::ResultMismatch {
                job_id: entry.job_id,
                own: own.result_hash,
                proposed: entry.result_hash,
            });
        }
        mine.push((entry.job_id, own));
    }
    let escrow = JobEscrow::new(escrow, chain);
    for (job_id, own) in mine {
        let job = escrow
            .job(job_id)
            .call()
            .await
            .map_err(|e| BatchRefusal::Chain { job_id, message: e.to_string() })?;
        if job.modelId != own.model_id || job.inputHash != own.input_hash {
            return Err(BatchRefusal::ChainMismatch(job_id));
        }
        // IJobEscrow.JobStatus.Created. The escrow's `job` reports a job settled by an earlier
        // batch as Settled (its own word still says Created; its bit in the batch bitmap is set).
        if job.status != 1 {
            return Err(BatchRefusal::NotCreated { job_id, status: job.status });
        }
    }
    Ok(())
}

/// Polls for proposals until shutdown; signs the ones that pass [`check`].
pub(super) async fn batch_loop(ctx: Arc<Context>, chain: DynProvider, shutdown: Shutdown) {
    let mut seen: HashSet<B256> = HashSet::new();
    let mut seen_order: VecDeque<B256> = VecDeque::new();
    let mut failures = 0u32;
    let backoff = super::Backoff { base: super::BACKOFF_BASE, cap: ctx.settings.max_backoff };
    loop {
        if shutdown.is_started() {
            return;
        }
        let proposals = match ctx.client.batches(ctx.settings.poll_wait, &shutdown).await {
            Ok(p) => {
                failures = 0;
                p.proposals
            }
            Err(RelayError::Cancelled) => return,
            Err(e) => {
                warn!(code = e.code().unwrap_or(""), error = %e, "batch proposals request failed");
                failures = failures.saturating_add(1);
                if shutdown.sleep(backoff.delay(failures)).await {
                    return;
                }
                continue;
            }
        };
        let mut judged = 0usize;
        for proposal in proposals {
            if seen.contains(&proposal.root) {
                continue;
            }
            judged += 1;
            let root = proposal.root;
            let verdict = check(
                &proposal,
                ctx.runtime_id,
                &ctx.results,
                &chain,
                ctx.domain.verifying_contract.unwrap_or_default(),
            )
            .await;
            match verdict {
                Ok(()) => match sign_and_submit(&ctx, &proposal).await {
                    Ok(accepted) => {
                        ctx.metrics.batches_signed.inc();
                        info!(%root, jobs = proposal.entries.len(), signers = accepted.signers, threshold = accepted.threshold, "batch signed");
                    }
                    Err(e) => {
                        ctx.metrics.batches_refused.inc();
                        warn!(%root, code = e.code().unwrap_or(""), error = %e, "batch signature not accepted");
                    }
                },
                Err(e) if e.is_transient() => {
                    warn!(%root, error = %e, "cannot judge the batch now; will retry");
                    continue;
                }
                Err(e) => {
                    ctx.metrics.batches_refused.inc();
                    warn!(%root, jobs = proposal.entries.len(), error = %e, "refusing to sign the batch");
                }
            }
            seen.insert(root);
            seen_order.push_back(root);
            while seen_order.len() > MAX_SEEN {
                if let Some(old) = seen_order.pop_front() {
                    seen.remove(&old);
                }
            }
        }
        if judged == 0 {
            // Only proposals judged already: do not spin while the relayer keeps offering them.
            let pause = ctx.settings.poll_wait.min(std::time::Duration::from_secs(2));
            if shutdown.sleep(pause).await {
                return;
            }
        }
    }
}

async fn sign_and_submit(
    ctx: &Context,
    proposal: &BatchProposal,
) -> Result<attesta_sdk::relay::BatchSignatureAccepted, RelayError> {
    let statement = BatchAttestation { root: proposal.root, runtimeId: proposal.runtime_id };
    let (_, signature) = statement.sign(&ctx.signer, &ctx.domain)?;
    let submission = BatchSignatureSubmission {
        root: proposal.root,
        runtime_id: proposal.runtime_id,
        signature: Bytes::from(signature.as_bytes().to_vec()),
    };
    ctx.client.submit_batch(&submission).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_is_bounded_and_forgets_the_oldest() {
        let results = Results::default();
        let r = OwnResult {
            model_id: B256::ZERO,
            input_hash: B256::ZERO,
            result_hash: B256::repeat_byte(1),
            runtime_id: B256::ZERO,
        };
        for i in 0..(MAX_RESULTS + 10) {
            results.insert(U256::from(i), r);
        }
        assert!(results.get(U256::from(0)).is_none());
        assert!(results.get(U256::from(9)).is_none());
        assert_eq!(results.get(U256::from(10)), Some(r));
        assert_eq!(results.get(U256::from(MAX_RESULTS + 9)), Some(r));
    }
}
