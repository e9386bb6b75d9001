//! The transaction manager: one nonce manager per key, EIP-1559 fee bumping, and a persisted
//! outbox so a crash between send and receipt neither loses nor duplicates a transaction.
//!
//! [`enqueue`] is the contract other modules use to owe the chain a transaction;
//! [`TxManager`] sends what is owed.
//!
//! # How a duty travels
//!
//! 1. `queued`: [`enqueue`] stored it. [`TxManager::tick`] estimates its gas. An estimate that
//!    reverts with an error meaning the work is done or can no longer be done
//!    (`JobEscrowWrongStatus`, `JobEscrowDeadlinePassed`, `SlashingAlreadySlashed`, …) ends it
//!    as `noop` with the decoded reason, before any nonce is taken (R13). A "not yet" revert
//!    (`JobEscrowDeadlineNotReached`, …) retries after `retry_after_secs`; any other revert is
//!    `failed`; an RPC error retries on the next tick.
//! 2. `pending`: in ONE database transaction the next nonce is taken from `nonces`, the signed
//!    raw transaction is stored in `tx_attempts` and the duty moves to `pending`; only then is
//!    it broadcast (R2, R9). A crash, a lost response or a send error after that commit is
//!    repaired by broadcasting the stored raw transaction again on every tick until a receipt
//!    shows up, so no nonce is skipped and nothing is signed twice for one nonce except as a
//!    deliberate replacement.
//! 3. Each tick, for each pending duty: a receipt for ANY hash stored for its nonce counts (R8).
//!    Buried `confirmations` deep it becomes `confirmed`, or, if it reverted, `noop`/`failed`
//!    with the reason found by re-running the call at that block. A receipt that disappears (a
//!    reorg) sends the duty back to waiting and its transaction is broadcast again. Not mined
//!    `bump_after_blocks` after the last signature: re-signed with the same nonce and fees
//!    raised by `bump_percent` (at least the 12.5 % replacement minimum of geth-family nodes),
//!    capped at `max_fee_gwei` (R7); if the call would now revert with a "done" error, the
//!    replacement is a zero-value transfer to self that only uses up the nonce (R13). The
//!    account's nonce at the confirmation depth passing ours with none of our hashes mined
//!    means another process used the nonce: the stored nonce is resynced from the chain and the
//!    duty requeued, instead of bumping forever (R10).
//!
//! Shutdown: [`TxManager::run`] takes a future; when it completes the loop stops, even in the
//! middle of a tick. That is safe by construction, since every step above is one database
//! transaction and everything after a commit is repeated by the next tick.

use crate::{
    Error, Store,
    store::{
        outbox::{OutboxEntry, OutboxStatus, TxAttempt, unix_now_ms},
        unix_now,
    },
};
use alloy::{
    consensus::{SignableTransaction as _, TxEip1559, TxEnvelope},
    eips::{BlockId, eip2718::Encodable2718 as _},
    network::TxSignerSync as _,
    primitives::{Address, Bytes, TxKind, U256},
    providers::{DynProvider, Provider as _},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    transports::{RpcError, TransportErrorKind},
};
use serde::Deserialize;
use std::{future::Future, sync::Arc, time::Duration};
use tokio::sync::Notify;

/// The replacement rule of geth-family nodes is +10 %, of some others +12.5 %: a bump must
/// raise both fees by at least an eighth or the node drops the replacement.
const REPLACEMENT_MIN_DIVISOR: u128 = 8;

/// How many queued duties one tick signs at most, so tracking is never starved.
const QUEUED_PER_TICK: i64 = 32;

/// Gas of a plain transfer: the no-op replacement that frees a nonce (R13).
const TRANSFER_GAS: u64 = 21_000;

/// `[tx]` section of the relayer's configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TxConfig {
    /// Blocks a receipt must be buried under (1 = in the tip block) before a duty is final.
    pub confirmations: u64,
    /// Blocks without inclusion after which a transaction is re-signed with higher fees.
    pub bump_after_blocks: u64,
    /// Percent by which each bump raises both fees; at least 13 (nodes drop replacements that
    /// raise fees by less than 10–12.5 %).
    pub bump_percent: u64,
    /// Cap on `maxFeePerGas`, in gwei: no transaction is ever signed above it.
    pub max_fee_gwei: u64,
    /// Milliseconds between ticks when nothing wakes the manager.
    pub poll_interval_ms: u64,
    /// Gas limit = estimate × this (the estimate can fall short when state changes).
    pub gas_limit_multiplier: f64,
    /// Seconds before a duty whose call reverts with "not yet" (deadline not reached, challenge
    /// window open) is tried again.
    pub retry_after_secs: u64,
}

impl Default for TxConfig {
    fn default() -> Self {
        Self {
            confirmations: 3,
            bump_after_blocks: 3,
            bump_percent: 20,
            max_fee_gwei: 500,
            poll_interval_ms: 1000,
            gas_limit_multiplier: 1.2,
            retry_after_secs: 15,
        }
    }
}

impl TxConfig {
    /// Rejects settings that would break the guarantees above.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what: &str| Err(Error::Config(format!("[tx] {what}")));
        if self.confirmations == 0 {
            return bad("confirmations must be at least 1");
        }
        if self.bump_after_blocks == 0 {
            return bad("bump_after_blocks must be at least 1");
        }
        if self.bump_percent < 13 {
            return bad(
                "bump_percent must be at least 13: nodes drop replacements that raise fees by \
                 less than 10-12.5 %",
            );
        }
        if self.max_fee_gwei == 0 {
            return bad("max_fee_gwei must be above 0");
        }
        if !(1.0..=10.0).contains(&self.gas_limit_multiplier) {
            return bad("gas_limit_multiplier must lie between 1.0 and 10.0");
        }
        Ok(())
    }

    fn max_fee_wei(&self) -> u128 {
        u128::from(self.max_fee_gwei) * 1_000_000_000
    }
}

/// Queues a call to `to` under a unique duty `key` (e.g. `settle:42`), inside the caller's
/// database transaction so the duty and the state that caused it commit together.
///
/// Returns `false`, changing nothing, when a duty with this key already exists: handling the
/// same trigger twice never sends twice. Wake the manager with [`TxManager::notifier`] after
/// committing to have it sent without waiting for the next poll.
pub async fn enqueue(
    conn: &mut sqlx::AnyConnection,
    key: &str,
    to: Address,
    calldata: &[u8],
) -> Result<bool, Error> {
    let now = crate::store::unix_now();
    let inserted = sqlx::query(
        "INSERT INTO outbox (key, to_address, calldata, status, created_at, updated_at) \
         VALUES ($1, $2, $3, 'queued', $4, $4) ON CONFLICT (key) DO NOTHING",
    )
    .bind(key)
    .bind(to.to_string().to_lowercase())
    .bind(calldata.to_vec())
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// What a revert means for a duty.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    /// The work is done or can no longer be done: stop, consuming no nonce.
    Done(String),
    /// Not yet possible: try again later.
    NotYet(String),
    /// Will not succeed.
    Fail(String),
    /// RPC trouble: try again on the next tick.
    Retry(String),
}

/// Custom errors that mean the duty's work is done (by us or another relayer) or can no
/// longer be done, so sending it would only burn gas.
const DONE_ERRORS: &[&str] = &[
    "JobEscrowWrongStatus",
    "JobEscrowDeadlinePassed",
    "JobEscrowChallengeWindowClosed",
    "JobEscrowDisputeTimedOut",
    "JobEscrowNothingToClaim",
    "SlashingAlreadySlashed",
    "SlashingEpochTooOld",
];

/// Custom errors that mean "not yet": the same call succeeds later.
const NOT_YET_ERRORS: &[&str] = &[
    "JobEscrowDeadlineNotReached",
    "JobEscrowChallengeWindowOpen",
    "JobEscrowDisputeNotTimedOut",
    "SlashingEpochNotOver",
];

fn classify(err: RpcError<TransportErrorKind>) -> Verdict {
    let err = attesta_sdk::Error::from(alloy::contract::Error::TransportError(err));
    match &err {
        attesta_sdk::Error::Revert { name, .. } if DONE_ERRORS.contains(&name.as_str()) => {
            Verdict::Done(err.to_string())
        }
        attesta_sdk::Error::Revert { name, .. } if NOT_YET_ERRORS.contains(&name.as_str()) => {
            Verdict::NotYet(err.to_string())
        }
        e if e.is_retryable() => Verdict::Retry(err.to_string()),
        _ => Verdict::Fail(err.to_string()),
    }
}

fn rpc(e: RpcError<TransportErrorKind>) -> Error {
    Error::Sdk(attesta_sdk::Error::Rpc(e))
}

/// `x` raised by `percent`, rounded up, and by at least one wei.
fn raise(x: u128, percent: u64) -> u128 {
    x.saturating_add((x.saturating_mul(u128::from(percent)).div_ceil(100)).max(1))
}

/// The least fee a node accepts as a replacement of `x`.
fn replacement_min(x: u128) -> u128 {
    x.saturating_add(x.div_ceil(REPLACEMENT_MIN_DIVISOR).max(1))
}

/// What one [`TxManager::tick`] did; the counts also feed the metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Duties given a nonce and broadcast.
    pub sent: usize,
    /// Replacements signed (fee bumps and no-op replacements).
    pub bumped: usize,
    /// Duties that became `confirmed`.
    pub confirmed: usize,
    /// Duties that became `noop`.
    pub noop: usize,
    /// Duties that became `failed`.
    pub failed: usize,
    /// Duties requeued because another transaction used their nonce.
    pub resynced: usize,
    /// Broadcasts the node refused or that failed in transport (retried next tick).
    pub send_errors: usize,
}

/// Sends outbox duties from one key; see the module docs for the life of a duty.
///
/// Run exactly one `TxManager` per key per database; several relayers with different keys
/// may share a PostgreSQL database (each sends and tracks only its own nonces).
#[derive(Debug)]
pub struct TxManager {
    store: Store,
    provider: DynProvider,
    signer: PrivateKeySigner,
    chain_id: u64,
    config: TxConfig,
    notify: Arc<Notify>,
    synced: std::sync::atomic::AtomicBool,
    /// The last fee estimate and the tip it was made at.
    fees: std::sync::Mutex<Option<(u64, (u128, u128))>>,
}

impl TxManager {
    /// A manager for `signer`'s account on chain `chain_id`, reading and broadcasting through
    /// `provider`.
    pub fn new(
        store: Store,
        provider: DynProvider,
        signer: PrivateKeySigner,
        chain_id: u64,
        config: TxConfig,
    ) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            store,
            provider,
            signer,
            chain_id,
            config,
            notify: Arc::new(Notify::new()),
            synced: false.into(),
            fees: std::sync::Mutex::new(None),
        })
    }

    /// The sending account.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// A handle that wakes the manager: call `notify_one()` after committing an [`enqueue`].
    pub fn notifier(&self) -> Arc<Notify> {
        Arc::clone(&self.notify)
    }

    /// Wakes the manager now.
    pub fn notify(&self) {
        self.notify.notify_one();
    }

    /// The duty stored under `key`, if any.
    pub async fn outbox_status(&self, key: &str) -> Result<Option<OutboxEntry>, Error> {
        self.store.outbox_status(key).await
    }

    /// Ticks every `poll_interval_ms`, or sooner when notified, until `shutdown` completes.
    /// A failed tick is logged and retried on the next one.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let poll = Duration::from_millis(self.config.poll_interval_ms);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                result = self.tick() => if let Err(e) = result {
                    tracing::warn!(error = %e, "transaction manager tick failed; retrying");
                },
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(poll) => {}
                () = self.notify.notified() => {}
            }
        }
        tracing::info!(address = %self.address(), "transaction manager stopped");
    }

    /// One pass: tracks pending duties (receipts, reorgs, bumps, nonce resync), then signs and
    /// broadcasts queued ones.
    pub async fn tick(&self) -> Result<TickReport, Error> {
        let mut report = TickReport::default();
        let from = self.address();
        if !self.synced.load(std::sync::atomic::Ordering::Relaxed) {
            let chain = self.provider.get_transaction_count(from).await.map_err(rpc)?;
            let next = self.store.sync_nonce(from, chain).await?;
            tracing::info!(address = %from, chain_nonce = chain, next_nonce = next, "nonce synced");
            self.synced.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        // The nonce first, then receipts: a transaction mined in between then shows up as a
        // receipt rather than as someone else using our nonce.
        let tip = self.provider.get_block_number().await.map_err(rpc)?;
        let pending = self.store.pending_duties(from).await?;
        if !pending.is_empty() {
            let depth_block = tip.saturating_sub(self.config.confirmations - 1);
            let buried_nonce = self
                .provider
                .get_transaction_count(from)
                .block_id(BlockId::number(depth_block))
                .await
                .map_err(rpc)?;
            for duty in pending {
                self.track(duty, tip, buried_nonce, &mut report).await?;
            }
        }
        self.send_queued(tip, &mut report).await?;
        record(&report);
        Ok(report)
    }

    async fn send_queued(&self, tip: u64, report: &mut TickReport) -> Result<(), Error> {
        let from = self.address();
        for duty in self.store.queued_duties(unix_now(), QUEUED_PER_TICK).await? {
            let request = TransactionRequest::default()
                .from(from)
                .to(duty.to)
                .input(Bytes::from(duty.calldata.clone()).into());
            let gas = match self.provider.estimate_gas(request).await {
                Ok(gas) => gas,
                Err(e) => match classify(e) {
                    Verdict::Retry(reason) => {
                        tracing::warn!(key = duty.key, reason, "gas estimate failed; retrying");
                        return Ok(());
                    }
                    Verdict::NotYet(reason) => {
                        let later =
                            unix_now().saturating_add_unsigned(self.config.retry_after_secs.max(1));
                        self.store
                            .settle_queued(duty.id, OutboxStatus::Queued, &reason, later)
                            .await?;
                        tracing::debug!(key = duty.key, reason, "not yet possible; deferred");
                        continue;
                    }
                    Verdict::Done(reason) => {
                        if self.store.settle_queued(duty.id, OutboxStatus::Noop, &reason, 0).await?
                        {
                            tracing::info!(key = duty.key, reason, "duty is a no-op; not sent");
                            report.noop += 1;
                        }
                        continue;
                    }
                    Verdict::Fail(reason) => {
                        if self
                            .store
                            .settle_queued(duty.id, OutboxStatus::Failed, &reason, 0)
                            .await?
                        {
                            tracing::error!(key = duty.key, reason, "duty cannot succeed; dropped");
                            report.failed += 1;
                        }
                        continue;
                    }
                },
            };
            let gas_limit = (gas as f64 * self.config.gas_limit_multiplier).ceil() as u64;
            let (max_fee, priority_fee) = self.market_fees(tip).await?;
            let stored = self
                .store
                .assign_nonce_and_store(duty.id, from, |nonce| {
                    self.sign(
                        nonce,
                        TxKind::Call(duty.to),
                        &duty.calldata,
                        gas_limit,
                        max_fee,
                        priority_fee,
                        tip,
                        false,
                    )
                })
                .await?;
            let Some(attempt) = stored else { continue };
            tracing::info!(key = duty.key, nonce = attempt.nonce, hash = %attempt.tx_hash, "sending");
            report.sent += 1;
            self.broadcast(&attempt, report).await;
        }
        Ok(())
    }

    async fn track(
        &self,
        duty: OutboxEntry,
        tip: u64,
        buried_nonce: u64,
        report: &mut TickReport,
    ) -> Result<(), Error> {
        let Some(nonce) = duty.nonce else { return Ok(()) };
        let attempts = self.store.attempts_for(duty.id, nonce).await?;
        let Some(latest) = attempts.last().cloned() else {
            // Cannot happen (a nonce is only assigned with an attempt); requeue to be safe.
            self.store.requeue(duty.id, "pending without a stored transaction").await?;
            return Ok(());
        };
        // R8: any hash ever signed for this nonce may be the one that mined.
        let mut found = None;
        for a in attempts.iter().rev() {
            if let Some(receipt) =
                self.provider.get_transaction_receipt(a.tx_hash).await.map_err(rpc)?
                && let Some(block) = receipt.block_number
            {
                found = Some((a.clone(), block, receipt.status(), receipt.gas_used));
                break;
            }
        }
        if let Some((attempt, block, success, gas_used)) = found {
            let newly_mined = (duty.mined_hash != Some(attempt.tx_hash)
                || duty.mined_block != Some(block))
            .then_some((attempt.tx_hash, block));
            if tip.saturating_sub(block) + 1 < self.config.confirmations {
                if let Some(mined) = newly_mined {
                    self.store.set_mined(duty.id, Some(mined)).await?;
                }
                return Ok(());
            }
            let (status, reason) = if attempt.is_noop {
                (OutboxStatus::Noop, None)
            } else if success {
                (OutboxStatus::Confirmed, None)
            } else {
                match self.simulate(&duty, BlockId::number(block)).await {
                    Some(Verdict::Done(reason)) => (OutboxStatus::Noop, Some(reason)),
                    Some(Verdict::NotYet(reason) | Verdict::Fail(reason)) => {
                        (OutboxStatus::Failed, Some(reason))
                    }
                    Some(Verdict::Retry(_)) => return Ok(()),
                    None => (
                        OutboxStatus::Failed,
                        Some(format!(
                            "transaction {} reverted on chain (gas used {gas_used} of {}); the \
                             call succeeds when re-run: raise gas_limit_multiplier",
                            attempt.tx_hash, attempt.gas_limit
                        )),
                    ),
                }
            };
            // Recording the receipt and the final status is one statement when both are new.
            self.store.finish(duty.id, status, reason.as_deref(), newly_mined).await?;
            match status {
                OutboxStatus::Confirmed => report.confirmed += 1,
                OutboxStatus::Noop => report.noop += 1,
                _ => report.failed += 1,
            }
            if let Some(sent) = duty.first_sent_ms {
                let included = duty.included_ms.unwrap_or_else(unix_now_ms);
                metrics::histogram!("relayer_tx_inclusion_seconds")
                    .record((included - sent).max(0) as f64 / 1000.0);
            }
            tracing::info!(key = duty.key, nonce, hash = %attempt.tx_hash, status = status.as_str(), reason, "duty final");
            return Ok(());
        }
        if duty.mined_hash.is_some() {
            // A reorg removed the receipt: wait again, and make sure a node has it.
            tracing::warn!(key = duty.key, nonce, "receipt gone after a reorg; rebroadcasting");
            metrics::counter!("relayer_tx_reorged_total").increment(1);
            self.store.set_mined(duty.id, None).await?;
        }
        if buried_nonce > nonce {
            // R10: the nonce is used, deep enough, by a transaction that is not ours.
            let chain = self.provider.get_transaction_count(self.address()).await.map_err(rpc)?;
            let next = self.store.sync_nonce(self.address(), chain).await?;
            let reason = format!(
                "nonce {nonce} was used by another transaction from this key; requeued (next \
                 nonce {next}): do not share the relayer's key with other software"
            );
            tracing::warn!(key = duty.key, nonce, next, "nonce used elsewhere; requeued");
            self.store.requeue(duty.id, &reason).await?;
            report.resynced += 1;
            return Ok(());
        }
        if tip >= latest.sent_block.saturating_add(self.config.bump_after_blocks)
            && let Some((attempt, reason)) = self.replacement(&duty, &latest, tip).await?
        {
            self.store.add_attempt(duty.id, self.address(), &attempt, reason.as_deref()).await?;
            tracing::info!(
                key = duty.key, nonce, hash = %attempt.tx_hash, max_fee = attempt.max_fee,
                priority_fee = attempt.priority_fee, noop = attempt.is_noop, "fee bumped"
            );
            report.bumped += 1;
            self.broadcast(&attempt, report).await;
            return Ok(());
        }
        // Not mined yet: the node may have lost it (restart, eviction, a send that failed).
        self.broadcast(&latest, report).await;
        Ok(())
    }

    /// The next transaction for a stuck nonce, or `None` when the fee cap leaves no room for a
    /// replacement a node would accept (then the current one is broadcast again).
    async fn replacement(
        &self,
        duty: &OutboxEntry,
        latest: &TxAttempt,
        tip: u64,
    ) -> Result<Option<(TxAttempt, Option<String>)>, Error> {
        let cap = self.config.max_fee_wei();
        let (market_max, market_priority) = self.market_fees(tip).await?;
        let max_fee = raise(latest.max_fee, self.config.bump_percent).max(market_max).min(cap);
        let priority_fee =
            raise(latest.priority_fee, self.config.bump_percent).max(market_priority).min(max_fee);
        if max_fee < replacement_min(latest.max_fee)
            || priority_fee < replacement_min(latest.priority_fee)
        {
            tracing::warn!(
                key = duty.key,
                max_fee = latest.max_fee,
                cap,
                "stuck at the fee cap max_fee_gwei; not bumping further"
            );
            metrics::counter!("relayer_tx_fee_capped_total").increment(1);
            return Ok(None);
        }
        let nonce = latest.nonce;
        // R13: if the call would now revert because the work is done, spend the nonce on a
        // transfer to self instead of a revert that costs the whole gas limit.
        let done = if latest.is_noop {
            Some(None)
        } else {
            match self.simulate(duty, BlockId::latest()).await {
                Some(Verdict::Done(reason)) => Some(Some(reason)),
                _ => None,
            }
        };
        let attempt = match &done {
            Some(_) => self.sign(
                nonce,
                TxKind::Call(self.address()),
                &[],
                TRANSFER_GAS,
                max_fee,
                priority_fee,
                tip,
                true,
            )?,
            None => self.sign(
                nonce,
                TxKind::Call(duty.to),
                &duty.calldata,
                latest.gas_limit,
                max_fee,
                priority_fee,
                tip,
                false,
            )?,
        };
        Ok(Some((attempt, done.flatten())))
    }

    /// Re-runs the duty's call at `block`: `None` when it succeeds.
    async fn simulate(&self, duty: &OutboxEntry, block: BlockId) -> Option<Verdict> {
        let request = TransactionRequest::default()
            .from(self.address())
            .to(duty.to)
            .input(Bytes::from(duty.calldata.clone()).into());
        self.provider.call(request).block(block).await.err().map(classify)
    }

    /// EIP-1559 fees for the block after `tip`, capped at `max_fee_gwei`. The estimate
    /// (`eth_feeHistory` up to the latest block) is kept for as long as the tip stays, so
    /// several duties sent at one tip, and ticks between blocks, ask the node once.
    async fn market_fees(&self, tip: u64) -> Result<(u128, u128), Error> {
        if let Some((at, fees)) =
            *self.fees.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
            && at == tip
        {
            return Ok(fees);
        }
        let est = self.provider.estimate_eip1559_fees().await.map_err(rpc)?;
        let max_fee = est.max_fee_per_gas.min(self.config.max_fee_wei());
        let fees = (max_fee, est.max_priority_fee_per_gas.min(max_fee));
        *self.fees.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((tip, fees));
        Ok(fees)
    }

    #[allow(clippy::too_many_arguments)]
    fn sign(
        &self,
        nonce: u64,
        to: TxKind,
        calldata: &[u8],
        gas_limit: u64,
        max_fee: u128,
        priority_fee: u128,
        tip: u64,
        is_noop: bool,
    ) -> Result<TxAttempt, Error> {
        let mut tx = TxEip1559 {
            chain_id: self.chain_id,
            nonce,
            gas_limit,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: priority_fee,
            to,
            value: U256::ZERO,
            input: Bytes::copy_from_slice(calldata),
            ..Default::default()
        };
        let signature = self
            .signer
            .sign_transaction_sync(&mut tx)
            .map_err(|e| Error::Sdk(attesta_sdk::Error::Signer(e)))?;
        let envelope = TxEnvelope::from(tx.into_signed(signature));
        Ok(TxAttempt {
            tx_hash: *envelope.tx_hash(),
            nonce,
            raw: envelope.encoded_2718(),
            max_fee,
            priority_fee,
            gas_limit,
            is_noop,
            sent_block: tip,
        })
    }

    /// Broadcasts a stored transaction. Failures are logged, not returned: the transaction is
    /// stored, and the next tick broadcasts it again (R9).
    async fn broadcast(&self, attempt: &TxAttempt, report: &mut TickReport) {
        if let Err(e) = self.provider.send_raw_transaction(&attempt.raw).await {
            let message = e.to_string();
            // The node already has it (our own rebroadcast) or has mined it: not an error.
            let benign =
                ["already known", "already imported", "nonce too low", "known transaction"]
                    .iter()
                    .any(|m| message.to_lowercase().contains(m));
            if !benign {
                tracing::warn!(hash = %attempt.tx_hash, nonce = attempt.nonce, error = message,
                    "broadcast failed; the stored transaction is sent again next tick");
                report.send_errors += 1;
            }
        }
    }
}

fn record(report: &TickReport) {
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    metrics::counter!("relayer_tx_sent_total").increment(count(report.sent));
    metrics::counter!("relayer_tx_bumped_total").increment(count(report.bumped));
    metrics::counter!("relayer_tx_confirmed_total").increment(count(report.confirmed));
    metrics::counter!("relayer_tx_noop_total").increment(count(report.noop));
    metrics::counter!("relayer_tx_failed_total").increment(count(report.failed));
    metrics::counter!("relayer_tx_nonce_resync_total").increment(count(report.resynced));
    metrics::counter!("relayer_tx_send_errors_total").increment(count(report.send_errors));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bumps_clear_the_node_replacement_minimum() {
        for x in [1u128, 7, 8, 100, 1_000_000_007, 30_000_000_000] {
            let bumped = raise(x, 13);
            assert!(bumped >= replacement_min(x), "{x}: {bumped} < {}", replacement_min(x));
            // geth's rule: new >= old * 1.1
            assert!(bumped * 10 >= x * 11);
        }
    }

    #[test]
    fn config_rejects_bumps_below_the_replacement_minimum() {
        let config = TxConfig { bump_percent: 10, ..TxConfig::default() };
        assert!(config.validate().is_err());
        assert!(TxConfig::default().validate().is_ok());
        let parsed: TxConfig = toml::from_str("confirmations = 5\nmax_fee_gwei = 40").unwrap();
        assert_eq!((parsed.confirmations, parsed.max_fee_gwei, parsed.bump_percent), (5, 40, 20));
        assert!(toml::from_str::<TxConfig>("bump = 5").is_err());
    }
}
