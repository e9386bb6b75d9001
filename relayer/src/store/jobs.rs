//! Job and attestation queries: the aggregator's writes and the API's reads.

use super::chain::{decode_err, hex};
use crate::{Error, Store, store::Backend};
use alloy::primitives::{Address, B256, Bytes, U256};
use attesta_sdk::relay::{JobResult, JobView, RelayJobStatus, ResultTally, WorkItem};
use sqlx::{AnyConnection, Row, any::AnyRow};
use std::str::FromStr;

/// A `jobs` row.
#[derive(Clone, Debug)]
pub(crate) struct JobRow {
    pub(crate) job_id: i64,
    pub(crate) client: Address,
    pub(crate) model_id: B256,
    pub(crate) input_hash: B256,
    pub(crate) fee: U256,
    pub(crate) deadline: u64,
    pub(crate) status: String,
    pub(crate) created_block: u64,
    pub(crate) result_hash: Option<B256>,
    pub(crate) signers: Vec<Address>,
    pub(crate) output: Option<Vec<u8>>,
    pub(crate) settle_tx: Option<B256>,
    pub(crate) settled_at: Option<u64>,
    /// The batch that settled the job, if `settleBatch` did.
    pub(crate) batch_root: Option<B256>,
}

/// One stored attestation.
#[derive(Clone, Debug)]
pub(crate) struct AttestationRow {
    pub(crate) signer: Address,
    pub(crate) result_hash: B256,
    pub(crate) runtime_id: B256,
    pub(crate) signature: Vec<u8>,
}

const JOB_COLUMNS: &str = "job_id, client, model_id, input_hash, fee, deadline, status, \
                           created_block, result_hash, signers, output, settle_tx, settled_at, \
                           batch_root";

pub(super) fn parse<T: FromStr>(what: &str, text: &str) -> Result<T, Error>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| decode_err(what, e))
}

pub(super) fn unsigned(v: i64) -> u64 {
    v.max(0).cast_unsigned()
}

impl JobRow {
    fn from_row(r: &AnyRow) -> Result<Self, Error> {
        let opt_hash = |col: &str| -> Result<Option<B256>, Error> {
            r.get::<Option<String>, _>(col).map(|s| parse("hash", &s)).transpose()
        };
        let signers: Option<String> = r.get("signers");
        let signers = signers
            .filter(|s| !s.is_empty())
            .map(|s| s.split(',').map(|a| parse("signer", a)).collect::<Result<Vec<_>, _>>())
            .transpose()?
            .unwrap_or_default();
        Ok(Self {
            job_id: r.get("job_id"),
            client: parse("client", &r.get::<String, _>("client"))?,
            model_id: parse("model id", &r.get::<String, _>("model_id"))?,
            input_hash: parse("input hash", &r.get::<String, _>("input_hash"))?,
            fee: parse("fee", &r.get::<String, _>("fee"))?,
            deadline: unsigned(r.get("deadline")),
            status: r.get("status"),
            created_block: unsigned(r.get("created_block")),
            result_hash: opt_hash("result_hash")?,
            signers,
            output: r.get("output"),
            settle_tx: opt_hash("settle_tx")?,
            settled_at: r.get::<Option<i64>, _>("settled_at").map(unsigned),
            batch_root: opt_hash("batch_root")?,
        })
    }

    pub(crate) fn relay_status(&self) -> RelayJobStatus {
        match self.status.as_str() {
            "settling" => RelayJobStatus::Settling,
            "settled" => RelayJobStatus::Settled,
            "challenged" => RelayJobStatus::Challenged,
            "released" => RelayJobStatus::Released,
            "refunded" => RelayJobStatus::Refunded,
            _ => RelayJobStatus::Open,
        }
    }
}

/// A job id as stored, or `None` when it cannot exist in this database.
pub(crate) fn job_key(job_id: U256) -> Option<i64> {
    i64::try_from(job_id).ok()
}

impl Store {
    /// `GET /v1/jobs/{id}`: the job with its attestation tallies, or `None` if unknown.
    pub async fn job_view(&self, job_id: U256) -> Result<Option<JobView>, Error> {
        let Some(id) = job_key(job_id) else { return Ok(None) };
        let mut conn = self.pool().acquire().await?;
        let Some(job) = Self::job_row(&mut conn, self.backend(), id, false).await? else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT result_hash, COUNT(DISTINCT signer) FROM attestations WHERE job_id = $1 \
             GROUP BY result_hash ORDER BY COUNT(DISTINCT signer) DESC, result_hash",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        let attestations = rows
            .iter()
            .map(|r| {
                Ok(ResultTally {
                    result_hash: parse("result hash", &r.get::<String, _>(0))?,
                    signers: u32::try_from(r.get::<i64, _>(1)).unwrap_or(u32::MAX),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Some(JobView {
            job_id,
            client: job.client,
            model_id: job.model_id,
            input_hash: job.input_hash,
            fee: job.fee,
            deadline: job.deadline,
            status: job.relay_status(),
            created_block: job.created_block,
            attestations,
            result_hash: job.result_hash,
            signers: job.signers.clone(),
            settle_tx: job.settle_tx,
            batch_root: job.batch_root,
        }))
    }

    /// `GET /v1/jobs/{id}/result`: the settled output, once `JobSettled` is confirmed.
    pub async fn job_result(&self, job_id: U256) -> Result<Option<JobResult>, Error> {
        let Some(id) = job_key(job_id) else { return Ok(None) };
        let mut conn = self.pool().acquire().await?;
        let Some(job) = Self::job_row(&mut conn, self.backend(), id, false).await? else {
            return Ok(None);
        };
        match (job.result_hash, job.output) {
            (Some(result_hash), Some(output)) => Ok(Some(JobResult {
                job_id,
                result_hash,
                output: Bytes::from(output),
                signers: job.signers,
            })),
            _ => Ok(None),
        }
    }

    /// `GET /v1/nodes/work`: open jobs (and, with batching, jobs at quorum still waiting for
    /// a batch proposal) whose deadline has not passed at `now` and that
    /// `signer` has not attested, oldest first; each carries the escrow's `max_output_bytes`.
    pub async fn open_work(
        &self,
        signer: Address,
        now: u64,
        limit: u32,
        max_output_bytes: u32,
    ) -> Result<Vec<WorkItem>, Error> {
        let rows = sqlx::query(
            "SELECT job_id, model_id, input_hash, deadline FROM jobs j \
             WHERE (status = 'open' OR (status = 'settling' AND EXISTS (SELECT 1 FROM \
             batch_ready r WHERE r.job_id = j.job_id AND r.proposal IS NULL))) \
             AND deadline >= $1 AND NOT EXISTS \
             (SELECT 1 FROM attestations a WHERE a.job_id = j.job_id AND a.signer = $2) \
             ORDER BY job_id LIMIT $3",
        )
        .bind(i64::try_from(now).unwrap_or(i64::MAX))
        .bind(hex(signer))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WorkItem {
                    job_id: U256::from(unsigned(r.get(0))),
                    model_id: parse("model id", &r.get::<String, _>(1))?,
                    input_hash: parse("input hash", &r.get::<String, _>(2))?,
                    deadline: unsigned(r.get(3)),
                    max_output_bytes,
                })
            })
            .collect()
    }

    /// Reads a job; with `lock`, holds its row until the transaction ends (PostgreSQL; SQLite
    /// serialises writers anyway), so two submissions for one job never both miss the quorum.
    pub(crate) async fn job_row(
        conn: &mut AnyConnection,
        backend: Backend,
        job_id: i64,
        lock: bool,
    ) -> Result<Option<JobRow>, Error> {
        let lock = if lock && backend == Backend::Postgres { " FOR UPDATE" } else { "" };
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = $1{lock}");
        let row = sqlx::query(&sql).bind(job_id).fetch_optional(conn).await?;
        row.as_ref().map(JobRow::from_row).transpose()
    }

    /// Settled jobs whose challenge window (`window` seconds from settlement) is over at `now`.
    pub(crate) async fn due_releases(
        &self,
        now: u64,
        window: u64,
        limit: u32,
    ) -> Result<Vec<JobRow>, Error> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'settled' AND settled_at + $1 <= $2 \
             ORDER BY job_id LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(i64::try_from(window).unwrap_or(i64::MAX / 2))
            .bind(i64::try_from(now).unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(JobRow::from_row).collect()
    }

    /// Jobs matching `filter` (a constant SQL condition with one `$1` parameter), by id.
    pub(crate) async fn jobs_where(&self, filter: &str, value: &str) -> Result<Vec<JobRow>, Error> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE {filter} ORDER BY job_id");
        let rows = sqlx::query(&sql).bind(value).fetch_all(self.pool()).await?;
        rows.iter().map(JobRow::from_row).collect()
    }

    /// The output stored with an attestation of `result_hash` for the job.
    pub(crate) async fn output_of(
        conn: &mut AnyConnection,
        job_id: i64,
        result_hash: B256,
    ) -> Result<Option<Vec<u8>>, Error> {
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT output FROM outputs WHERE job_id = $1 AND result_hash = $2")
                .bind(job_id)
                .bind(hex(result_hash))
                .fetch_optional(conn)
                .await?;
        Ok(row.map(|(o,)| o))
    }

    /// Unsettled jobs whose deadline passed before `now` (refundable).
    pub(crate) async fn due_refunds(&self, now: u64, limit: u32) -> Result<Vec<i64>, Error> {
        let rows = sqlx::query(
            "SELECT job_id FROM jobs WHERE status IN ('open', 'settling') AND deadline < $1 \
             ORDER BY job_id LIMIT $2",
        )
        .bind(i64::try_from(now).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Every attestation stored for a job.
    pub(crate) async fn attestations(
        conn: &mut AnyConnection,
        job_id: i64,
    ) -> Result<Vec<AttestationRow>, Error> {
        let rows = sqlx::query(
            "SELECT signer, result_hash, runtime_id, signature FROM attestations \
             WHERE job_id = $1 ORDER BY signer",
        )
        .bind(job_id)
        .fetch_all(conn)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AttestationRow {
                    signer: parse("signer", &r.get::<String, _>(0))?,
                    result_hash: parse("result hash", &r.get::<String, _>(1))?,
                    runtime_id: parse("runtime id", &r.get::<String, _>(2))?,
                    signature: r.get(3),
                })
            })
            .collect()
    }

    /// Stores an attestation and its output; `false` if it was already stored.
    pub(crate) async fn insert_attestation(
        conn: &mut AnyConnection,
        job_id: i64,
        a: &AttestationRow,
        output: &[u8],
    ) -> Result<bool, Error> {
        let n = sqlx::query(
            "INSERT INTO attestations (job_id, signer, result_hash, runtime_id, signature, \
             received_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(job_id)
        .bind(hex(a.signer))
        .bind(hex(a.result_hash))
        .bind(hex(a.runtime_id))
        .bind(a.signature.clone())
        .bind(super::unix_now())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        sqlx::query(
            "INSERT INTO outputs (job_id, result_hash, output) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(job_id)
        .bind(hex(a.result_hash))
        .bind(output.to_vec())
        .execute(&mut *conn)
        .await?;
        Ok(n == 1)
    }

    /// Stores equivocation evidence; `false` if this signer's evidence for the job exists.
    pub(crate) async fn insert_equivocation(
        conn: &mut AnyConnection,
        job: &JobRow,
        first: &AttestationRow,
        second: &AttestationRow,
    ) -> Result<bool, Error> {
        let n = sqlx::query(
            "INSERT INTO equivocations (job_id, signer, result_a, runtime_a, signature_a, \
             result_b, runtime_b, signature_b, model_id, input_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
        )
        .bind(job.job_id)
        .bind(hex(first.signer))
        .bind(hex(first.result_hash))
        .bind(hex(first.runtime_id))
        .bind(first.signature.clone())
        .bind(hex(second.result_hash))
        .bind(hex(second.runtime_id))
        .bind(second.signature.clone())
        .bind(hex(job.model_id))
        .bind(hex(job.input_hash))
        .bind(super::unix_now())
        .execute(conn)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Marks a job as having reached its quorum (status `settling`).
    pub(crate) async fn mark_quorum(conn: &mut AnyConnection, job_id: i64) -> Result<(), Error> {
        // One statement: the quorum mark, and `open` → `settling` (the only move forward to
        // `settling`, as `advance_status` would make it).
        sqlx::query(
            "UPDATE jobs SET quorum_at = $2, \
             status = CASE WHEN status = 'open' THEN 'settling' ELSE status END \
             WHERE job_id = $1",
        )
        .bind(job_id)
        .bind(super::unix_now())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// How many equivocations are recorded (all jobs).
    pub async fn equivocation_count(&self) -> Result<u64, Error> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM equivocations").fetch_one(self.pool()).await?;
        Ok(unsigned(n))
    }
}
