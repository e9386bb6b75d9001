//! Batch settlement queries: jobs ready to batch, proposals, node signatures over them.
//!
//! The batcher (`crate::batch`) and the node routes write here; every change that decides a
//! settlement (a proposal reaching M signatures, a proposal dropped) runs in the caller's
//! database transaction together with the outbox entry it queues.

use super::{
    Backend,
    chain::hex,
    jobs::{parse, unsigned},
};
use crate::{Error, Store};
use alloy::primitives::{Address, B256, U256};
use attesta_sdk::relay::{BatchEntryView, BatchProposal};
use sqlx::{AnyConnection, Row};

/// A job waiting in `batch_ready`, with what the batcher needs to place it.
#[derive(Clone, Debug)]
pub(crate) struct ReadyJob {
    pub(crate) job_id: i64,
    pub(crate) result_hash: B256,
    pub(crate) runtime_id: B256,
    pub(crate) ready_at_ms: i64,
    pub(crate) attempts: i64,
    /// The job's status in `jobs` (`settling` while it still needs settling).
    pub(crate) status: String,
    pub(crate) deadline: u64,
}

/// A stored proposal.
#[derive(Clone, Debug)]
pub(crate) struct ProposalRow {
    pub(crate) root: B256,
    pub(crate) runtime_id: B256,
    pub(crate) status: String,
    pub(crate) created_ms: i64,
}

impl Store {
    /// Marks a job as ready to batch with the result M signers agreed on; `false` if it
    /// already was.
    pub(crate) async fn insert_ready(
        conn: &mut AnyConnection,
        job_id: i64,
        result_hash: B256,
        runtime_id: B256,
        now_ms: i64,
    ) -> Result<bool, Error> {
        let n = sqlx::query(
            "INSERT INTO batch_ready (job_id, result_hash, runtime_id, ready_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (job_id) DO NOTHING",
        )
        .bind(job_id)
        .bind(hex(result_hash))
        .bind(hex(runtime_id))
        .bind(now_ms)
        .execute(conn)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Whether the job waits in `batch_ready` without a proposal (it still takes attestations).
    pub(crate) async fn ready_unassigned(
        conn: &mut AnyConnection,
        job_id: i64,
    ) -> Result<bool, Error> {
        let row = sqlx::query("SELECT 1 FROM batch_ready WHERE job_id = $1 AND proposal IS NULL")
            .bind(job_id)
            .fetch_optional(conn)
            .await?;
        Ok(row.is_some())
    }

    /// Ready jobs that no live proposal holds, oldest first.
    pub(crate) async fn unassigned_ready(&self, limit: i64) -> Result<Vec<ReadyJob>, Error> {
        let rows = sqlx::query(
            "SELECT r.job_id, r.result_hash, r.runtime_id, r.ready_at, r.attempts, \
             COALESCE(j.status, 'gone'), COALESCE(j.deadline, 0) \
             FROM batch_ready r LEFT JOIN jobs j ON j.job_id = r.job_id \
             WHERE r.proposal IS NULL ORDER BY r.ready_at, r.job_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReadyJob {
                    job_id: r.get(0),
                    result_hash: parse("result hash", &r.get::<String, _>(1))?,
                    runtime_id: parse("runtime id", &r.get::<String, _>(2))?,
                    ready_at_ms: r.get(3),
                    attempts: r.get(4),
                    status: r.get(5),
                    deadline: unsigned(r.get(6)),
                })
            })
            .collect()
    }

    /// Removes a job from `batch_ready` (settled alone, or no longer needing settlement).
    pub(crate) async fn remove_ready(conn: &mut AnyConnection, job_id: i64) -> Result<(), Error> {
        sqlx::query("DELETE FROM batch_ready WHERE job_id = $1").bind(job_id).execute(conn).await?;
        Ok(())
    }

    /// Whether a proposal with this root was ever stored (whatever became of it).
    pub(crate) async fn proposal_exists(
        conn: &mut AnyConnection,
        root: B256,
    ) -> Result<bool, Error> {
        let row = sqlx::query("SELECT 1 FROM batch_proposals WHERE root = $1")
            .bind(hex(root))
            .fetch_optional(conn)
            .await?;
        Ok(row.is_some())
    }

    /// Stores a new proposal in `signing` and assigns its jobs to it.
    pub(crate) async fn insert_proposal(
        conn: &mut AnyConnection,
        root: B256,
        runtime_id: B256,
        entries: &[(i64, B256)],
        now_ms: i64,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO batch_proposals (root, runtime_id, status, job_count, created_ms, \
             updated_ms) VALUES ($1, $2, 'signing', $3, $4, $4)",
        )
        .bind(hex(root))
        .bind(hex(runtime_id))
        .bind(i64::try_from(entries.len()).unwrap_or(i64::MAX))
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
        for (job_id, result_hash) in entries {
            sqlx::query(
                "INSERT INTO batch_entries (root, job_id, result_hash) VALUES ($1, $2, $3)",
            )
            .bind(hex(root))
            .bind(*job_id)
            .bind(hex(*result_hash))
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE batch_ready SET proposal = $2 WHERE job_id = $1")
                .bind(*job_id)
                .bind(hex(root))
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// A proposal by root; with `lock`, holds its row until the transaction ends (PostgreSQL),
    /// so two signatures arriving together cannot both miss, or both queue, the settlement.
    pub(crate) async fn proposal(
        conn: &mut AnyConnection,
        backend: Backend,
        root: B256,
        lock: bool,
    ) -> Result<Option<ProposalRow>, Error> {
        let lock = if lock && backend == Backend::Postgres { " FOR UPDATE" } else { "" };
        let sql = format!(
            "SELECT root, runtime_id, status, created_ms FROM batch_proposals WHERE root = $1{lock}"
        );
        let row = sqlx::query(&sql).bind(hex(root)).fetch_optional(conn).await?;
        row.map(|r| {
            Ok(ProposalRow {
                root: parse("root", &r.get::<String, _>(0))?,
                runtime_id: parse("runtime id", &r.get::<String, _>(1))?,
                status: r.get(2),
                created_ms: r.get(3),
            })
        })
        .transpose()
    }

    /// Proposals in `status`, oldest first.
    pub(crate) async fn proposals_in(&self, status: &str) -> Result<Vec<ProposalRow>, Error> {
        let rows = sqlx::query(
            "SELECT root, runtime_id, status, created_ms FROM batch_proposals WHERE status = $1 \
             ORDER BY created_ms, root",
        )
        .bind(status)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ProposalRow {
                    root: parse("root", &r.get::<String, _>(0))?,
                    runtime_id: parse("runtime id", &r.get::<String, _>(1))?,
                    status: r.get(2),
                    created_ms: r.get(3),
                })
            })
            .collect()
    }

    /// Moves a proposal from `from` to `to` (with a reason); `false` if it was not in `from`.
    pub(crate) async fn move_proposal(
        conn: &mut AnyConnection,
        root: B256,
        from: &str,
        to: &str,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, Error> {
        let n = sqlx::query(
            "UPDATE batch_proposals SET status = $3, reason = COALESCE($4, reason), \
             updated_ms = $5 WHERE root = $1 AND status = $2",
        )
        .bind(hex(root))
        .bind(from)
        .bind(to)
        .bind(reason)
        .bind(now_ms)
        .execute(conn)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// The entries of a proposal this relayer made (any status).
    pub(crate) async fn proposal_entries(
        conn: &mut AnyConnection,
        root: B256,
    ) -> Result<Vec<(i64, B256)>, Error> {
        let rows = sqlx::query(
            "SELECT job_id, result_hash FROM batch_entries WHERE root = $1 ORDER BY job_id",
        )
        .bind(hex(root))
        .fetch_all(conn)
        .await?;
        rows.iter().map(|r| Ok((r.get(0), parse("result hash", &r.get::<String, _>(1))?))).collect()
    }

    /// Whether `signer` attested every entry of proposal `root` with the entry's result hash
    /// under `runtime_id` (only such signers are offered the proposal or may sign it).
    pub(crate) async fn attested_every_entry(
        conn: &mut AnyConnection,
        root: B256,
        runtime_id: B256,
        signer: Address,
    ) -> Result<bool, Error> {
        let missing = sqlx::query(
            "SELECT 1 FROM batch_entries e WHERE e.root = $1 AND NOT EXISTS (SELECT 1 FROM \
             attestations a WHERE a.job_id = e.job_id AND a.signer = $2 AND \
             a.result_hash = e.result_hash AND a.runtime_id = $3) LIMIT 1",
        )
        .bind(hex(root))
        .bind(hex(signer))
        .bind(hex(runtime_id))
        .fetch_optional(conn)
        .await?;
        Ok(missing.is_none())
    }

    /// `GET /v1/nodes/batches`: proposals in `signing` that `signer` attested every entry of
    /// and has not signed, oldest first.
    pub async fn open_proposals_for(
        &self,
        signer: Address,
        limit: u32,
    ) -> Result<Vec<BatchProposal>, Error> {
        let rows = sqlx::query(
            "SELECT p.root, p.runtime_id FROM batch_proposals p WHERE p.status = 'signing' \
             AND NOT EXISTS (SELECT 1 FROM batch_signatures s WHERE s.root = p.root AND \
             s.signer = $1) \
             AND NOT EXISTS (SELECT 1 FROM batch_entries e WHERE e.root = p.root AND NOT EXISTS \
             (SELECT 1 FROM attestations a WHERE a.job_id = e.job_id AND a.signer = $1 AND \
             a.result_hash = e.result_hash AND a.runtime_id = p.runtime_id)) \
             ORDER BY p.created_ms, p.root LIMIT $2",
        )
        .bind(hex(signer))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        let mut conn = self.pool().acquire().await?;
        let mut proposals = Vec::with_capacity(rows.len());
        for r in &rows {
            let root: B256 = parse("root", &r.get::<String, _>(0))?;
            let runtime_id = parse("runtime id", &r.get::<String, _>(1))?;
            let entries = Self::proposal_entries(&mut conn, root).await?;
            let tree = attesta_sdk::merkle::BatchTree::new(
                entries.iter().map(|(id, h)| (U256::from(unsigned(*id)), *h)),
            )
            .map_err(|e| super::chain::decode_err("batch", e))?;
            proposals.push(BatchProposal {
                root,
                runtime_id,
                entries: tree
                    .entries()
                    .iter()
                    .map(|e| BatchEntryView { job_id: e.job_id, result_hash: e.result_hash })
                    .collect(),
            });
        }
        Ok(proposals)
    }

    /// Stores a verified batch signature; `false` if this signer's was stored already.
    pub(crate) async fn insert_batch_signature(
        conn: &mut AnyConnection,
        root: B256,
        signer: Address,
        signature: &[u8],
    ) -> Result<bool, Error> {
        let n = sqlx::query(
            "INSERT INTO batch_signatures (root, signer, signature, received_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(hex(root))
        .bind(hex(signer))
        .bind(signature.to_vec())
        .bind(super::unix_now())
        .execute(conn)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Every signature stored for a root, ascending by signer.
    pub(crate) async fn batch_signatures(
        conn: &mut AnyConnection,
        root: B256,
    ) -> Result<Vec<(Address, Vec<u8>)>, Error> {
        let rows = sqlx::query(
            "SELECT signer, signature FROM batch_signatures WHERE root = $1 ORDER BY signer",
        )
        .bind(hex(root))
        .fetch_all(conn)
        .await?;
        rows.iter().map(|r| Ok((parse("signer", &r.get::<String, _>(0))?, r.get(1)))).collect()
    }

    /// Frees the jobs of a dropped proposal: each goes back to unassigned with one more
    /// attempt counted.
    pub(crate) async fn release_proposal_jobs(
        conn: &mut AnyConnection,
        root: B256,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE batch_ready SET proposal = NULL, attempts = attempts + 1 WHERE proposal = $1",
        )
        .bind(hex(root))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Settled jobs of batch `root` as the chain recorded them (`settled_entries`), with
    /// their store status.
    pub(crate) async fn batch_jobs(&self, root: B256) -> Result<Vec<super::jobs::JobRow>, Error> {
        self.jobs_where("batch_root = $1", &hex(root)).await
    }
}
