//! The dApp-facing client: create jobs, follow them, verify their settlement without trusting any
//! relayer, and move money (refund, release, claim).

use crate::{
    Attestation, BatchAttestation, Error,
    bindings::{JobEscrow, StakingRegistry, TestToken},
    deployment::Deployment,
    merkle::BatchTree,
    quorum, result_hash,
    revert::STATUS_NAMES,
};
use alloy::{
    consensus::Transaction as _,
    contract::{CallBuilder, CallDecoder},
    eips::BlockId,
    primitives::{Address, B256, Bytes, FixedBytes, TxHash, U256},
    providers::Provider,
    rpc::types::{Filter, Log, TransactionReceipt},
    sol_types::{SolCall, SolEvent},
};
use futures::StreamExt;
use std::{collections::HashSet, fmt, time::Duration};

/// A job's lifecycle state, as `IJobEscrow.JobStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JobStatus {
    /// No such job.
    None,
    /// Escrowed, waiting for M-of-N attestations.
    Created,
    /// Settled; the challenge window is running.
    Settled,
    /// Challenged; waiting for the arbiter.
    Disputed,
    /// Paid to the signers.
    Released,
    /// Refunded to the client.
    Refunded,
    /// The arbiter overturned the result; the client was refunded.
    Overturned,
}

impl JobStatus {
    fn from_u8(status: u8) -> Self {
        match status {
            1 => Self::Created,
            2 => Self::Settled,
            3 => Self::Disputed,
            4 => Self::Released,
            5 => Self::Refunded,
            6 => Self::Overturned,
            _ => Self::None,
        }
    }

    /// Whether the job has a settled result (settled, disputed or paid).
    pub fn has_result(self) -> bool {
        matches!(self, Self::Settled | Self::Disputed | Self::Released)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(STATUS_NAMES[*self as usize])
    }
}

/// A job as the escrow stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobInfo {
    /// The job id.
    pub id: U256,
    /// Who paid.
    pub client: Address,
    /// The escrowed fee.
    pub fee: U256,
    /// Lifecycle state.
    pub status: JobStatus,
    /// Settlement deadline (unix seconds).
    pub deadline: u64,
    /// When it was settled or challenged.
    pub updated_at: u64,
    /// The settlement commitment (zero until settled).
    pub settlement: FixedBytes<20>,
    /// keccak256 of the model file.
    pub model_id: B256,
    /// keccak256 of the input.
    pub input_hash: B256,
}

/// A settlement as the chain reports it: `JobSettled` for a job settled alone (`settle`);
/// `BatchSettled` and the `settleBatch` calldata for a job settled in a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    /// The job.
    pub job_id: U256,
    /// The attested result hash.
    pub result_hash: B256,
    /// The runtime that produced it.
    pub runtime_id: B256,
    /// The signers, ascending.
    pub signers: Vec<Address>,
    /// The canonical output bytes, published by `settle`. Empty for a job settled in a batch:
    /// batches publish no outputs, so fetch it from the relayer (`GET /v1/jobs/{id}/result`)
    /// and check it with [`Settlement::check_output`].
    pub output: Bytes,
    /// The block it settled in.
    pub block_number: u64,
    /// The settling transaction.
    pub tx_hash: TxHash,
    /// The batch it settled in (every entry, from the `settleBatch` calldata), or `None` for
    /// a job settled alone.
    pub batch: Option<BatchTree>,
}

impl Settlement {
    /// Checks output bytes obtained anywhere (a relayer, a cache) against the attested result
    /// hash; needed for a batch-settled job, whose output is not on chain.
    pub fn check_output(&self, output: &[u8]) -> Result<(), Error> {
        let actual = result_hash(output);
        if actual != self.result_hash {
            return Err(Error::OutputMismatch {
                job_id: self.job_id,
                expected: self.result_hash,
                actual,
            });
        }
        Ok(())
    }
}

/// A settlement whose signatures this client re-checked itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSettlement {
    /// What was verified.
    pub settlement: Settlement,
    /// The threshold M at the settlement block.
    pub threshold: usize,
}

/// Client for dApps and CLIs: one account, one deployment.
#[derive(Clone, Debug)]
pub struct AttestaClient<P> {
    provider: P,
    deployment: Deployment,
    account: Address,
    poll_interval: Duration,
}

impl<P: Provider + Clone> AttestaClient<P> {
    /// A client that sends transactions from `account` (the provider must be able to sign for it).
    pub fn new(provider: P, deployment: Deployment, account: Address) -> Self {
        Self { provider, deployment, account, poll_interval: Duration::from_millis(500) }
    }

    /// How often [`Self::wait_settled`] polls when the transport has no subscriptions.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The deployment this client talks to.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The account transactions are sent from.
    pub fn account(&self) -> Address {
        self.account
    }

    /// The escrow binding.
    pub fn escrow(&self) -> JobEscrow::JobEscrowInstance<P> {
        JobEscrow::new(self.deployment.job_escrow, self.provider.clone())
    }

    /// The registry binding.
    pub fn registry(&self) -> StakingRegistry::StakingRegistryInstance<P> {
        StakingRegistry::new(self.deployment.staking_registry, self.provider.clone())
    }

    /// The token binding.
    pub fn token(&self) -> TestToken::TestTokenInstance<P> {
        TestToken::new(self.deployment.token, self.provider.clone())
    }

    /// Escrows `fee` for running `model_id` on `input_hash` by `deadline` (unix seconds),
    /// approving the escrow first if the allowance is short. Returns the new job id.
    pub async fn create_job(
        &self,
        model_id: B256,
        input_hash: B256,
        fee: U256,
        deadline: u64,
    ) -> Result<U256, Error> {
        let token = self.token();
        let allowance = token.allowance(self.account, self.deployment.job_escrow).call().await?;
        if allowance < fee {
            send(token.approve(self.deployment.job_escrow, fee), self.account).await?;
        }
        let call = self.escrow();
        let call = call.createJob(model_id, input_hash, fee, U256::from(deadline));
        let receipt = send(call, self.account).await?;
        let created = decode_log::<JobEscrow::JobCreated>(receipt.inner.logs()).ok_or(
            Error::MissingEvent { event: "JobCreated", tx_hash: receipt.transaction_hash },
        )?;
        Ok(created.jobId)
    }

    /// The job as stored on-chain.
    pub async fn job(&self, job_id: U256) -> Result<JobInfo, Error> {
        let j = self.escrow().job(job_id).call().await?;
        Ok(JobInfo {
            id: job_id,
            client: j.client,
            fee: U256::from(j.fee),
            status: JobStatus::from_u8(j.status),
            deadline: j.deadline.to::<u64>(),
            updated_at: j.updatedAt.to::<u64>(),
            settlement: j.settlement,
            model_id: j.modelId,
            input_hash: j.inputHash,
        })
    }

    /// The job's settlement: its `JobSettled` event, or for a job settled in a batch, the
    /// `BatchSettled` event and entries of its batch. [`Error::NotSettled`] until then.
    pub async fn settlement(&self, job_id: U256) -> Result<Settlement, Error> {
        let logs = self.provider.get_logs(&self.settled_filter(job_id)).await?;
        if let Some(found) = logs.iter().find_map(settlement_from_log) {
            return Ok(found);
        }
        self.batch_settlement(job_id).await
    }

    /// Finds the batch that settled `job_id`. Batch events do not name their jobs, so this
    /// asks the escrow first (one call while the job is unsettled), then reads the entries of
    /// each `BatchSettled` since the job was created from its `settleBatch` calldata.
    async fn batch_settlement(&self, job_id: U256) -> Result<Settlement, Error> {
        let status = self.job(job_id).await?.status;
        if !status.has_result() && status != JobStatus::Overturned {
            return Err(Error::NotSettled { job_id });
        }
        let escrow = self.deployment.job_escrow;
        let created = Filter::new()
            .address(escrow)
            .event_signature(JobEscrow::JobCreated::SIGNATURE_HASH)
            .topic1(B256::from(job_id))
            .from_block(self.deployment.block_number);
        let from = self
            .provider
            .get_logs(&created)
            .await?
            .first()
            .and_then(|log| log.block_number)
            .unwrap_or(self.deployment.block_number);
        let batches = Filter::new()
            .address(escrow)
            .event_signature(JobEscrow::BatchSettled::SIGNATURE_HASH)
            .from_block(from);
        for log in self.provider.get_logs(&batches).await? {
            if let Some(found) = self.settlement_in_batch(&log, job_id).await? {
                return Ok(found);
            }
        }
        Err(Error::Unverifiable {
            job_id,
            reason: "the escrow reports it settled, but no JobSettled event and no direct \
                     settleBatch call carrying it was found (logs pruned, or settled through \
                     another contract)",
        })
    }

    /// `job_id`'s settlement in the batch `log` (a `BatchSettled`) announces, read from its
    /// `settleBatch` calldata, or `None` if the job is not in it.
    async fn settlement_in_batch(
        &self,
        log: &Log,
        job_id: U256,
    ) -> Result<Option<Settlement>, Error> {
        let (Ok(event), Some(tx_hash), Some(block_number)) =
            (log.log_decode::<JobEscrow::BatchSettled>(), log.transaction_hash, log.block_number)
        else {
            return Ok(None);
        };
        let event = event.inner.data;
        let Some(tx) = self.provider.get_transaction_by_hash(tx_hash).await? else {
            return Ok(None);
        };
        // Only a direct call carries the entries in its calldata; the root check also rejects
        // calldata that merely decodes as one.
        let Ok(call) = JobEscrow::settleBatchCall::abi_decode(tx.input()) else { return Ok(None) };
        let Some(entry) = call.entries.iter().find(|e| e.jobId == job_id) else {
            return Ok(None);
        };
        let Ok(tree) = BatchTree::new(call.entries.iter().map(|e| (e.jobId, e.resultHash))) else {
            return Ok(None);
        };
        if tree.root() != event.root || call.runtimeId != event.runtimeId {
            return Ok(None);
        }
        Ok(Some(Settlement {
            job_id,
            result_hash: entry.resultHash,
            runtime_id: event.runtimeId,
            signers: event.signers,
            output: Bytes::new(),
            block_number,
            tx_hash,
            batch: Some(tree),
        }))
    }

    /// Waits until the job settles: a log subscription where the transport has one (WebSocket),
    /// polling otherwise. Fails with [`Error::Timeout`] after `timeout`.
    pub async fn wait_settled(&self, job_id: U256, timeout: Duration) -> Result<Settlement, Error> {
        let wait = async {
            // Subscribe before reading history, so a settlement between the two is not missed.
            // Batch events do not name their jobs: each one is a cue to look again.
            let filter = Filter::new()
                .address(self.deployment.job_escrow)
                .event_signature(vec![
                    JobEscrow::JobSettled::SIGNATURE_HASH,
                    JobEscrow::BatchSettled::SIGNATURE_HASH,
                ])
                .from_block(self.deployment.block_number);
            if let Ok(subscription) = self.provider.subscribe_logs(&filter).await {
                if let Ok(found) = self.settlement(job_id).await {
                    return Ok(found);
                }
                let mut stream = subscription.into_stream();
                while let Some(log) = stream.next().await {
                    if let Some(found) = settlement_from_log(&log) {
                        if found.job_id == job_id {
                            return Ok(found);
                        }
                    } else if let Ok(Some(found)) = self.settlement_in_batch(&log, job_id).await {
                        // Only this batch is read: the history was checked above.
                        return Ok(found);
                    }
                }
            }
            loop {
                match self.settlement(job_id).await {
                    Err(Error::NotSettled { .. }) => tokio::time::sleep(self.poll_interval).await,
                    other => return other,
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.map_err(|_| Error::Timeout {
            what: format!("job {job_id} to settle"),
            seconds: timeout.as_secs(),
        })?
    }

    /// Re-checks a settlement from the chain alone, trusting no relayer: recovers every signature
    /// from the settling transaction's calldata, requires them sorted, distinct, active and at
    /// least M at the settlement block, checks the published output against the result hash, and
    /// checks the escrow's commitment. For a batch-settled job the signatures are over the root
    /// of the batch's entries, which must include (job, result); its output is not on chain:
    /// check the bytes you fetch with [`Settlement::check_output`].
    pub async fn verify_settlement(&self, job_id: U256) -> Result<VerifiedSettlement, Error> {
        let settlement = self.settlement(job_id).await?;
        let tx = self
            .provider
            .get_transaction_by_hash(settlement.tx_hash)
            .await?
            .ok_or(Error::NotSettled { job_id })?;
        if tx.to() != Some(self.deployment.job_escrow) {
            return Err(Error::Unverifiable {
                job_id,
                reason: "the settling transaction did not call this deployment's escrow directly",
            });
        }
        let job = self.job(job_id).await?;
        // The settlement event stays in the log after an arbiter overturns the result.
        if !job.status.has_result() {
            return Err(Error::Unverifiable {
                job_id,
                reason: "the arbiter overturned this result (the client was refunded); do not use it",
            });
        }
        let domain = self.deployment.attestation_domain();
        let (digest, signatures) = match &settlement.batch {
            None => {
                let call = JobEscrow::settleCall::abi_decode(tx.input()).map_err(|_| {
                    Error::Unverifiable {
                        job_id,
                        reason: "the settling transaction is not a direct settle call",
                    }
                })?;
                if call.jobId != job_id
                    || call.resultHash != settlement.result_hash
                    || call.runtimeId != settlement.runtime_id
                {
                    return Err(Error::SettlementMismatch { job_id });
                }
                settlement.check_output(&settlement.output)?;
                let attestation = Attestation::new(
                    job_id,
                    job.model_id,
                    job.input_hash,
                    settlement.result_hash,
                    settlement.runtime_id,
                );
                (attestation.digest(&domain), call.signatures)
            }
            Some(tree) => {
                // `settlement` found the entry in this calldata; decode it again here so the
                // check stands on its own: the signatures are over the root of exactly these
                // entries, one of which is (job_id, result_hash).
                let call = JobEscrow::settleBatchCall::abi_decode(tx.input()).map_err(|_| {
                    Error::Unverifiable {
                        job_id,
                        reason: "the settling transaction is not a direct settleBatch call",
                    }
                })?;
                let entries = call.entries.iter().map(|e| (e.jobId, e.resultHash));
                let again =
                    BatchTree::new(entries).map_err(|_| Error::SettlementMismatch { job_id })?;
                if again.root() != tree.root()
                    || call.runtimeId != settlement.runtime_id
                    || tree.proof(job_id, settlement.result_hash).is_none()
                {
                    return Err(Error::SettlementMismatch { job_id });
                }
                let attestation = BatchAttestation::of(tree, settlement.runtime_id);
                (attestation.digest(&domain), call.signatures)
            }
        };
        let signers = quorum::recover_ascending(digest, &signatures)?;
        if signers != settlement.signers {
            return Err(Error::SettlementMismatch { job_id });
        }

        // The active set as it stood when the job settled.
        let at = BlockId::number(settlement.block_number);
        let registry = self.registry();
        let mut active = HashSet::new();
        for signer in &signers {
            if registry.isActiveSigner(*signer).block(at).call().await? {
                active.insert(*signer);
            }
        }
        let threshold = registry.threshold().block(at).call().await?.to::<usize>();
        quorum::check_quorum(&signers, &active, threshold)?;

        let committed = match &settlement.batch {
            None => {
                let escrow = self.escrow();
                escrow.verifySettlement(job_id, settlement.result_hash, signers).call().await?
            }
            Some(tree) => {
                self.verify_batch_settlement(tree, job_id, settlement.result_hash, signers).await?
            }
        };
        if !committed {
            return Err(Error::SettlementMismatch { job_id });
        }
        Ok(VerifiedSettlement { settlement, threshold })
    }

    /// Returns the fee of an unsettled job to its client after the deadline (anyone may call).
    pub async fn refund(&self, job_id: U256) -> Result<TransactionReceipt, Error> {
        send(self.escrow().refund(job_id), self.account).await
    }

    /// Releases a settled job's payment once the challenge window is over (anyone may call).
    /// For a job settled in a batch this releases the whole batch (`releaseBatch`).
    pub async fn release(&self, job_id: U256) -> Result<TransactionReceipt, Error> {
        let s = self.settlement(job_id).await?;
        match &s.batch {
            None => {
                send(self.escrow().release(job_id, s.result_hash, s.signers), self.account).await
            }
            Some(tree) => self.release_batch(tree, s.signers).await,
        }
    }

    /// Whether `settleBatch` settled the job. Such a job reads as [`JobStatus::Settled`] from
    /// [`Self::job`] with no per-job settlement: its (result, signers) are in its batch's record.
    pub async fn is_batch_settled(&self, job_id: U256) -> Result<bool, Error> {
        self.escrow().isBatchSettled(job_id).call().await.map_err(Error::from)
    }

    /// Whether the escrow confirms that `settleBatch` settled the job of `tree` (the batch's
    /// entries, from the `settleBatch` calldata) with `result_hash` and `signers` (from its
    /// `BatchSettled` event). `false` also when the job is not in `tree`.
    pub async fn verify_batch_settlement(
        &self,
        tree: &BatchTree,
        job_id: U256,
        result_hash: B256,
        signers: Vec<Address>,
    ) -> Result<bool, Error> {
        let Some(proof) = tree.proof(job_id, result_hash) else { return Ok(false) };
        self.escrow()
            .verifyBatchSettlement(job_id, tree.root(), result_hash, signers, proof)
            .call()
            .await
            .map_err(Error::from)
    }

    /// Releases every job of a batch settled by `settleBatch` once the batch's challenge window
    /// is over (anyone may call); jobs challenged meanwhile are skipped (their dispute decides).
    /// `signers` are the batch's, from its `BatchSettled` event.
    pub async fn release_batch(
        &self,
        tree: &BatchTree,
        signers: Vec<Address>,
    ) -> Result<TransactionReceipt, Error> {
        send(self.escrow().releaseBatch(tree.batch_entries(), signers), self.account).await
    }

    /// Challenges one job of a batch within the batch's challenge window, posting the challenge
    /// bond (approving the escrow first if the allowance is short). The job then has its own
    /// Disputed state and the arbiter resolves it as for a job settled alone.
    pub async fn challenge_batched(
        &self,
        tree: &BatchTree,
        job_id: U256,
        result_hash: B256,
    ) -> Result<TransactionReceipt, Error> {
        let proof = tree.proof(job_id, result_hash).ok_or(Error::Unverifiable {
            job_id,
            reason: "the job with this result is not an entry of the batch",
        })?;
        let bond = U256::from(self.escrow().config().call().await?.challengeBond);
        let token = self.token();
        let allowance = token.allowance(self.account, self.deployment.job_escrow).call().await?;
        if allowance < bond {
            send(token.approve(self.deployment.job_escrow, bond), self.account).await?;
        }
        send(self.escrow().challengeBatched(job_id, tree.root(), result_hash, proof), self.account)
            .await
    }

    /// What this client's account can claim.
    pub async fn owed(&self) -> Result<U256, Error> {
        self.escrow().owed(self.account).call().await.map_err(Error::from)
    }

    /// Withdraws everything credited to this client's account; returns the amount.
    pub async fn claim(&self) -> Result<U256, Error> {
        let receipt = send(self.escrow().claim(), self.account).await?;
        let claimed = decode_log::<JobEscrow::Claimed>(receipt.inner.logs())
            .ok_or(Error::MissingEvent { event: "Claimed", tx_hash: receipt.transaction_hash })?;
        Ok(claimed.amount)
    }

    fn settled_filter(&self, job_id: U256) -> Filter {
        Filter::new()
            .address(self.deployment.job_escrow)
            .event_signature(JobEscrow::JobSettled::SIGNATURE_HASH)
            .topic1(B256::from(job_id))
            .from_block(self.deployment.block_number)
    }
}

fn settlement_from_log(log: &Log) -> Option<Settlement> {
    let decoded = log.log_decode::<JobEscrow::JobSettled>().ok()?;
    let e = decoded.inner.data;
    Some(Settlement {
        job_id: e.jobId,
        result_hash: e.resultHash,
        runtime_id: e.runtimeId,
        signers: e.signers,
        output: e.output,
        block_number: log.block_number?,
        tx_hash: log.transaction_hash?,
        batch: None,
    })
}

/// The first log of event `E` among `logs`.
pub(crate) fn decode_log<E: SolEvent>(logs: &[Log]) -> Option<E> {
    logs.iter().find_map(|log| log.log_decode::<E>().ok().map(|l| l.inner.data))
}

/// Sends a call from `from`, waits for its receipt, and decodes reverts into the contracts' errors.
pub(crate) async fn send<P: Provider, D: CallDecoder>(
    call: CallBuilder<P, D>,
    from: Address,
) -> Result<TransactionReceipt, Error> {
    // Estimate before the provider's fillers run: a revert must surface here, before a cached nonce
    // manager hands out a nonce that no transaction will ever use (which would stall every later one).
    let call = call.from(from);
    let gas = call.estimate_gas().await?;
    let pending = call.gas(gas + gas / 5).send().await?;
    let receipt = pending.get_receipt().await?;
    if !receipt.status() {
        return Err(Error::TransactionFailed { tx_hash: receipt.transaction_hash });
    }
    Ok(receipt)
}
