//! Read-only queries behind the public dashboard routes (`/v1/jobs`, `/v1/jobs/{id}/attestations`,
//! `/v1/slashings`, `/v1/stats`, and the node registrations of `/v1/network`). Nothing here
//! writes: the watcher and the aggregator own every table these read.

use super::{
    chain::decode_err,
    jobs::{job_key, parse, unsigned},
};
use crate::{Error, Store};
use alloy::{
    primitives::{Address, B256, Bytes, Log, U256},
    sol_types::SolEvent,
};
use attesta_sdk::{bindings::StakingRegistry, relay::JobView};
use sqlx::Row;
use std::collections::BTreeMap;

/// One attestation as stored (`GET /v1/jobs/{id}/attestations`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAttestation {
    /// The node's signing key.
    pub signer: Address,
    /// The result it attested.
    pub result_hash: B256,
    /// The runtime it ran.
    pub runtime_id: B256,
    /// Its 65-byte EIP-712 signature.
    pub signature: Bytes,
    /// Unix time the relayer received it.
    pub received_at: u64,
}

/// A confirmed `StakingRegistry.Slashed` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlashRecord {
    /// The operator that lost stake.
    pub operator: Address,
    /// Stake taken.
    pub amount: U256,
    /// Who reported the offence.
    pub reporter: Address,
    /// The reporter's share of `amount`.
    pub bounty: U256,
    /// Whether the operator was jailed (removed from the active set).
    pub jailed: bool,
    /// Block of the event.
    pub block_number: u64,
    /// That block's timestamp.
    pub block_time: u64,
    /// The slashing transaction.
    pub tx_hash: B256,
}

/// Equivocation evidence the aggregator recorded (one signer, one job, two results).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EquivocationRecord {
    /// The job.
    pub job_id: U256,
    /// The signer that contradicted itself.
    pub signer: Address,
    /// The first result it attested.
    pub result_a: B256,
    /// The second.
    pub result_b: B256,
    /// Unix time it was recorded.
    pub created_at: u64,
}

/// A node registration as the dashboard shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRecord {
    /// The node's signing key.
    pub signer: Address,
    /// Its software version.
    pub version: String,
    /// Unix time of its last heartbeat (or registration).
    pub last_heartbeat: u64,
    /// Jobs it reported running.
    pub running: u32,
}

/// Counts over the whole database, and settled jobs per window of chain time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Jobs per stored status (`open`, `settling`, `settled`, …).
    pub jobs: BTreeMap<String, u64>,
    /// Attestations received, all jobs.
    pub attestations: u64,
    /// `(window seconds, jobs settled in it)`, ending at `chain_time`.
    pub settled: Vec<(u64, u64)>,
    /// The newest block timestamp the watcher stored: the windows end here, so a chain whose
    /// clock runs ahead of the wall (a devnet that skipped time) is still measured right.
    pub chain_time: Option<u64>,
}

impl Store {
    /// The newest jobs, newest first: at most `limit`, with ids below `before` when given.
    pub async fn recent_jobs(
        &self,
        limit: u32,
        before: Option<U256>,
    ) -> Result<Vec<JobView>, Error> {
        let before = before.map_or(i64::MAX, |b| job_key(b).unwrap_or(i64::MAX));
        let rows =
            sqlx::query("SELECT job_id FROM jobs WHERE job_id < $1 ORDER BY job_id DESC LIMIT $2")
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let id = U256::from(unsigned(row.get(0)));
            // A job deleted between the two reads (a reorg) is simply left out.
            if let Some(view) = self.job_view(id).await? {
                jobs.push(view);
            }
        }
        Ok(jobs)
    }

    /// Every attestation stored for a job, by signer; `None` when the job is unknown.
    pub async fn job_attestations(
        &self,
        job_id: U256,
    ) -> Result<Option<Vec<StoredAttestation>>, Error> {
        let Some(id) = job_key(job_id) else { return Ok(None) };
        let known: Option<(i64,)> = sqlx::query_as("SELECT job_id FROM jobs WHERE job_id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        if known.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT signer, result_hash, runtime_id, signature, received_at FROM attestations \
             WHERE job_id = $1 ORDER BY signer, result_hash",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredAttestation {
                    signer: parse("signer", &r.get::<String, _>(0))?,
                    result_hash: parse("result hash", &r.get::<String, _>(1))?,
                    runtime_id: parse("runtime id", &r.get::<String, _>(2))?,
                    signature: Bytes::from(r.get::<Vec<u8>, _>(3)),
                    received_at: unsigned(r.get(4)),
                })
            })
            .collect::<Result<Vec<_>, Error>>()
            .map(Some)
    }

    /// Confirmed `Slashed` events of the registry, newest first (at most `limit`).
    pub async fn slash_events(&self, limit: u32) -> Result<Vec<SlashRecord>, Error> {
        let rows = sqlx::query(
            "SELECT data, block_number, block_time, tx_hash FROM events WHERE kind = 'Slashed' \
             ORDER BY block_number DESC, log_index DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let log: Log = serde_json::from_str(&r.get::<String, _>(0))
                    .map_err(|e| decode_err("event", e))?;
                let e = StakingRegistry::Slashed::decode_log_data(&log.data)
                    .map_err(|e| decode_err("Slashed event", e))?;
                Ok(SlashRecord {
                    operator: e.operator,
                    amount: e.amount,
                    reporter: e.reporter,
                    bounty: e.bounty,
                    jailed: e.jailed,
                    block_number: unsigned(r.get(1)),
                    block_time: unsigned(r.get(2)),
                    tx_hash: parse("tx hash", &r.get::<String, _>(3))?,
                })
            })
            .collect()
    }

    /// Equivocations the aggregator recorded, newest first (at most `limit`).
    pub async fn equivocations(&self, limit: u32) -> Result<Vec<EquivocationRecord>, Error> {
        let rows = sqlx::query(
            "SELECT job_id, signer, result_a, result_b, created_at FROM equivocations \
             ORDER BY created_at DESC, job_id DESC, signer LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EquivocationRecord {
                    job_id: U256::from(unsigned(r.get(0))),
                    signer: parse("signer", &r.get::<String, _>(1))?,
                    result_a: parse("result hash", &r.get::<String, _>(2))?,
                    result_b: parse("result hash", &r.get::<String, _>(3))?,
                    created_at: unsigned(r.get(4)),
                })
            })
            .collect()
    }

    /// Nodes registered with this relayer.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>, Error> {
        let rows = sqlx::query(
            "SELECT signer, version, last_heartbeat, running FROM nodes ORDER BY signer",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(NodeRecord {
                    signer: parse("signer", &r.get::<String, _>(0))?,
                    version: r.get(1),
                    last_heartbeat: unsigned(r.get(2)),
                    running: u32::try_from(r.get::<i64, _>(3)).unwrap_or(0),
                })
            })
            .collect()
    }

    /// Job counts per status, the attestation count, and jobs settled within each of
    /// `windows` (seconds) before the newest stored block time.
    pub async fn stats(&self, windows: &[u64]) -> Result<Stats, Error> {
        let mut stats = Stats::default();
        let rows = sqlx::query("SELECT status, COUNT(*) FROM jobs GROUP BY status")
            .fetch_all(self.pool())
            .await?;
        for r in &rows {
            stats.jobs.insert(r.get(0), unsigned(r.get(1)));
        }
        let (attestations,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM attestations").fetch_one(self.pool()).await?;
        stats.attestations = unsigned(attestations);
        let (newest,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(block_time) FROM events").fetch_one(self.pool()).await?;
        stats.chain_time = newest.map(unsigned);
        for &window in windows {
            let settled = match newest {
                None => 0,
                Some(now) => {
                    let since = now.saturating_sub(i64::try_from(window).unwrap_or(i64::MAX));
                    let (n,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM jobs WHERE settled_at IS NOT NULL AND settled_at > $1",
                    )
                    .bind(since)
                    .fetch_one(self.pool())
                    .await?;
                    unsigned(n)
                }
            };
            stats.settled.push((window, settled));
        }
        Ok(stats)
    }
}
