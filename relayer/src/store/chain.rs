//! The watcher's queries: cursor, block-hash window, events, and the jobs derived from them.
//!
//! Every function that changes state takes the caller's connection so a whole block range (its
//! events, the jobs they touch, the cursor and the block hashes) commits in one transaction.

use crate::{Error, Store, watcher::ChainEvent};
use alloy::primitives::{B256, Log};
use sqlx::{AnyConnection, Row};

/// One confirmed log, decoded, with where it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// Block it was mined in.
    pub block_number: u64,
    /// Its index in that block.
    pub log_index: u64,
    /// Hash of that block.
    pub block_hash: B256,
    /// Transaction that emitted it.
    pub tx_hash: B256,
    /// Timestamp of that block (unix seconds).
    pub block_time: u64,
    /// The job it concerns, if any (checked to fit `BIGINT`).
    pub job_id: Option<i64>,
    /// What it says.
    pub event: ChainEvent,
    /// The raw log, kept so a job can be re-derived after a reorg.
    pub log: Log,
}

/// A confirmed block range, read from the chain and ready to commit.
#[derive(Clone, Debug)]
pub struct RangeBatch {
    /// Chain the cursor belongs to.
    pub chain_id: u64,
    /// First block of the range; must equal the stored cursor.
    pub from: u64,
    /// Last block of the range (inclusive).
    pub to: u64,
    /// Hash of block `to`, checked before the next range (reorg detection).
    pub to_hash: B256,
    /// Parent hash of block `to`.
    pub to_parent: B256,
    /// Logs in the range, ascending by (block, index).
    pub events: Vec<StoredEvent>,
    /// How many blocks of hashes to keep below `to`.
    pub window: u64,
}

/// What committing a range changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeOutcome {
    /// Events stored for the first time (a replayed range stores none).
    pub new_events: u64,
    /// Whether a new event may change the active set or the runtime allow-list.
    pub set_changed: bool,
}

/// A job to insert from its `JobCreated`.
struct NewJob {
    job_id: i64,
    client: alloy::primitives::Address,
    model_id: B256,
    input_hash: B256,
    fee: alloy::primitives::U256,
    deadline: alloy::primitives::U256,
    block: u64,
}

/// One job's share of a `BatchSettled`.
struct BatchSettlement<'a> {
    root: B256,
    runtime_id: B256,
    signers: &'a [alloy::primitives::Address],
    result_hash: B256,
}

/// Lifecycle states, in the only order a job may move through.
const STATUS_RANK: [(&str, u8); 6] = [
    ("open", 0),
    ("settling", 1),
    ("settled", 2),
    ("challenged", 3),
    ("released", 4),
    ("refunded", 4),
];

fn rank(status: &str) -> u8 {
    STATUS_RANK.iter().find(|(s, _)| *s == status).map_or(u8::MAX, |(_, r)| *r)
}

/// Rows per multi-row `INSERT`: at 8 columns, 800 parameters, well below SQLite's (32,766)
/// and PostgreSQL's (65,535) limits.
const ROWS_PER_STATEMENT: usize = 100;

/// `($1, …, $k), ($k+1, …), …` for `rows` rows of `columns` parameters.
fn values_list(rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for column in 0..columns {
            if column > 0 {
                out.push_str(", ");
            }
            out.push_str(&format!("${}", row * columns + column + 1));
        }
        out.push(')');
    }
    out
}

/// Hex text as stored (lowercase 0x-hex).
pub(crate) fn hex<T: std::fmt::LowerHex>(value: T) -> String {
    format!("{value:#x}")
}

pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn decode_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Database(sqlx::Error::Decode(format!("stored {what} is corrupt: {e}").into()))
}

impl Store {
    /// The next block the watcher reads for `chain_id`, if it has started.
    pub async fn cursor(&self, chain_id: u64) -> Result<Option<u64>, Error> {
        let mut conn = self.pool().acquire().await?;
        Self::cursor_in(&mut conn, chain_id).await
    }

    async fn cursor_in(conn: &mut AnyConnection, chain_id: u64) -> Result<Option<u64>, Error> {
        let row = sqlx::query("SELECT next_block FROM cursor WHERE chain_id = $1")
            .bind(to_i64(chain_id))
            .fetch_optional(conn)
            .await?;
        Ok(row.map(|r| r.get::<i64, _>(0).max(0).cast_unsigned()))
    }

    /// Stored block hashes, newest first: the reorg window.
    pub async fn stored_blocks(&self) -> Result<Vec<(u64, B256)>, Error> {
        let rows = sqlx::query("SELECT number, hash FROM blocks ORDER BY number DESC")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let hash: String = r.get(1);
                let hash = hash.parse().map_err(|e| decode_err("block hash", e))?;
                Ok((r.get::<i64, _>(0).max(0).cast_unsigned(), hash))
            })
            .collect()
    }

    /// How many events are stored (all kinds).
    pub async fn event_count(&self) -> Result<u64, Error> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM events").fetch_one(self.pool()).await?;
        Ok(n.max(0).cast_unsigned())
    }

    /// Commits a range in one transaction. `None` when the cursor is no longer at
    /// `batch.from` (another writer got there first); nothing is changed then.
    pub async fn commit_range(&self, batch: &RangeBatch) -> Result<Option<RangeOutcome>, Error> {
        let mut tx = self.pool().begin().await?;
        let outcome = Self::apply_range(&mut tx, batch).await?;
        if outcome.is_some() {
            tx.commit().await?;
        }
        Ok(outcome)
    }

    /// Applies a range inside the caller's transaction: stores new events (a replayed event
    /// is skipped by its `(block_number, log_index)` key), derives the jobs they touch,
    /// records the range end's hash, prunes hashes below the window and advances the cursor.
    pub async fn apply_range(
        conn: &mut AnyConnection,
        batch: &RangeBatch,
    ) -> Result<Option<RangeOutcome>, Error> {
        match Self::cursor_in(conn, batch.chain_id).await? {
            Some(next) if next != batch.from => return Ok(None),
            Some(_) => {}
            None => {
                sqlx::query("INSERT INTO cursor (chain_id, next_block) VALUES ($1, $2)")
                    .bind(to_i64(batch.chain_id))
                    .bind(to_i64(batch.from))
                    .execute(&mut *conn)
                    .await?;
            }
        }
        let mut outcome = RangeOutcome::default();
        let fresh = Self::insert_events(conn, &batch.events).await?;
        // New jobs go in with one multi-row statement per run of consecutive `JobCreated`s;
        // any other event first flushes the run, so events still apply in chain order.
        let mut created: Vec<NewJob> = Vec::new();
        // Events come ascending by block: one hash upsert per block, not per event.
        let mut last_block_put = None;
        for (ev, new) in batch.events.iter().zip(fresh) {
            // Only a first sighting changes jobs: a replay must change nothing.
            if !new {
                continue;
            }
            outcome.new_events += 1;
            outcome.set_changed |= ev.event.changes_set();
            if last_block_put != Some(ev.block_number) && ev.block_number != batch.to {
                Self::put_block(conn, ev.block_number, ev.block_hash, None).await?;
                last_block_put = Some(ev.block_number);
            }
            if let (
                ChainEvent::JobCreated { client, model_id, input_hash, fee, deadline, .. },
                Some(job_id),
            ) = (&ev.event, ev.job_id)
            {
                created.push(NewJob {
                    job_id,
                    client: *client,
                    model_id: *model_id,
                    input_hash: *input_hash,
                    fee: *fee,
                    deadline: *deadline,
                    block: ev.block_number,
                });
                continue;
            }
            Self::insert_jobs(conn, &created).await?;
            created.clear();
            if let ChainEvent::BatchSettled { root, runtime_id, signers, entries } = &ev.event {
                for (job_id, result_hash) in entries {
                    sqlx::query(
                        "INSERT INTO settled_entries (block_number, log_index, job_id, result_hash) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    )
                    .bind(to_i64(ev.block_number))
                    .bind(to_i64(ev.log_index))
                    .bind(*job_id)
                    .bind(hex(*result_hash))
                    .execute(&mut *conn)
                    .await?;
                    let settled = BatchSettlement {
                        root: *root,
                        runtime_id: *runtime_id,
                        signers,
                        result_hash: *result_hash,
                    };
                    Self::apply_batch_settlement(
                        conn,
                        *job_id,
                        &settled,
                        ev.tx_hash,
                        ev.block_time,
                    )
                    .await?;
                }
            }
            if let Some(job_id) = ev.job_id {
                Self::apply_event(
                    conn,
                    job_id,
                    &ev.event,
                    ev.block_number,
                    ev.tx_hash,
                    ev.block_time,
                )
                .await?;
            }
        }
        Self::insert_jobs(conn, &created).await?;
        Self::put_block(conn, batch.to, batch.to_hash, Some(batch.to_parent)).await?;
        sqlx::query("DELETE FROM blocks WHERE number < $1")
            .bind(to_i64(batch.to.saturating_sub(batch.window)))
            .execute(&mut *conn)
            .await?;
        sqlx::query("UPDATE cursor SET next_block = $2 WHERE chain_id = $1")
            .bind(to_i64(batch.chain_id))
            .bind(to_i64(batch.to + 1))
            .execute(&mut *conn)
            .await?;
        Ok(Some(outcome))
    }

    /// Stores events with multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING`, a chunk of
    /// rows per statement rather than one statement each. Returns, per event, whether it was
    /// new (a replayed `(block_number, log_index)` is not).
    async fn insert_events(
        conn: &mut AnyConnection,
        events: &[StoredEvent],
    ) -> Result<Vec<bool>, Error> {
        const COLUMNS: usize = 8;
        let mut fresh = Vec::with_capacity(events.len());
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO events (block_number, log_index, block_hash, tx_hash, kind, job_id, \
                 block_time, data) VALUES {} ON CONFLICT (block_number, log_index) DO NOTHING \
                 RETURNING block_number, log_index",
                values_list(chunk.len(), COLUMNS)
            );
            let mut query = sqlx::query(&sql);
            for ev in chunk {
                let data = serde_json::to_string(&ev.log).map_err(|e| decode_err("log", e))?;
                query = query
                    .bind(to_i64(ev.block_number))
                    .bind(to_i64(ev.log_index))
                    .bind(hex(ev.block_hash))
                    .bind(hex(ev.tx_hash))
                    .bind(ev.event.kind())
                    .bind(ev.job_id)
                    .bind(to_i64(ev.block_time))
                    .bind(data);
            }
            let inserted: std::collections::HashSet<(i64, i64)> =
                query.fetch_all(&mut *conn).await?.iter().map(|r| (r.get(0), r.get(1))).collect();
            fresh.extend(
                chunk
                    .iter()
                    .map(|ev| inserted.contains(&(to_i64(ev.block_number), to_i64(ev.log_index)))),
            );
        }
        Ok(fresh)
    }

    /// Inserts the jobs of new `JobCreated` events (multi-row, a chunk per statement); a job
    /// that exists is left as it is, as `apply_event` does.
    async fn insert_jobs(conn: &mut AnyConnection, created: &[NewJob]) -> Result<(), Error> {
        for chunk in created.chunks(ROWS_PER_STATEMENT) {
            // Seven parameters a row; the status is the constant 'open'.
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p = |k: usize| format!("${}", i * 7 + k);
                    format!(
                        "({}, {}, {}, {}, {}, {}, 'open', {})",
                        p(1),
                        p(2),
                        p(3),
                        p(4),
                        p(5),
                        p(6),
                        p(7)
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO jobs (job_id, client, model_id, input_hash, fee, deadline, status, \
                 created_block) VALUES {} ON CONFLICT (job_id) DO NOTHING",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for job in chunk {
                query = query
                    .bind(job.job_id)
                    .bind(hex(job.client))
                    .bind(hex(job.model_id))
                    .bind(hex(job.input_hash))
                    .bind(job.fee.to_string())
                    .bind(i64::try_from(job.deadline).unwrap_or(i64::MAX))
                    .bind(to_i64(job.block));
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn put_block(
        conn: &mut AnyConnection,
        number: u64,
        hash: B256,
        parent: Option<B256>,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO blocks (number, hash, parent_hash) VALUES ($1, $2, $3) \
             ON CONFLICT (number) DO UPDATE SET hash = excluded.hash, \
             parent_hash = COALESCE(excluded.parent_hash, blocks.parent_hash)",
        )
        .bind(to_i64(number))
        .bind(hex(hash))
        .bind(parent.map(hex))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Undoes everything above `fork` (the newest block still on the canonical chain):
    /// deletes its events and block hashes, re-derives the jobs they touched from the events
    /// that remain, and moves the cursor back to `fork + 1`. Returns the re-derived job ids.
    pub async fn rollback_to(&self, chain_id: u64, fork: u64) -> Result<Vec<i64>, Error> {
        let mut tx = self.pool().begin().await?;
        let rows = sqlx::query(
            "SELECT job_id FROM events WHERE block_number > $1 AND job_id IS NOT NULL \
             UNION SELECT job_id FROM settled_entries WHERE block_number > $1",
        )
        .bind(to_i64(fork))
        .fetch_all(&mut *tx)
        .await?;
        let jobs: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        sqlx::query("DELETE FROM settled_entries WHERE block_number > $1")
            .bind(to_i64(fork))
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM events WHERE block_number > $1")
            .bind(to_i64(fork))
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM blocks WHERE number > $1")
            .bind(to_i64(fork))
            .execute(&mut *tx)
            .await?;
        for job_id in &jobs {
            Self::rederive_job(&mut tx, *job_id).await?;
        }
        sqlx::query("UPDATE cursor SET next_block = $2 WHERE chain_id = $1")
            .bind(to_i64(chain_id))
            .bind(to_i64(fork + 1))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(jobs)
    }

    /// Rebuilds one job from its stored events. A job whose `JobCreated` is gone is deleted
    /// with its attestations (a later job may reuse the id with other inputs); the
    /// aggregator's quorum mark survives, so a job that had a quorum is `settling` again.
    async fn rederive_job(conn: &mut AnyConnection, job_id: i64) -> Result<(), Error> {
        let quorum_at: Option<i64> = sqlx::query("SELECT quorum_at FROM jobs WHERE job_id = $1")
            .bind(job_id)
            .fetch_optional(&mut *conn)
            .await?
            .and_then(|r| r.get(0));
        // The job's own events, and the batches that settled it (whose log has no job id).
        let rows = sqlx::query(
            "SELECT e.data, e.block_number, e.tx_hash, e.block_time, e.log_index, NULL \
             FROM events e WHERE e.job_id = $1 \
             UNION ALL SELECT e.data, e.block_number, e.tx_hash, e.block_time, e.log_index, \
             s.result_hash FROM events e JOIN settled_entries s ON s.block_number = \
             e.block_number AND s.log_index = e.log_index WHERE s.job_id = $1 \
             ORDER BY 2, 5",
        )
        .bind(job_id)
        .fetch_all(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM jobs WHERE job_id = $1").bind(job_id).execute(&mut *conn).await?;
        let mut created = false;
        for row in &rows {
            let data: String = row.get(0);
            let log: Log = serde_json::from_str(&data).map_err(|e| decode_err("event", e))?;
            let Some(event) = ChainEvent::decode(&log).map_err(|e| decode_err("event", e))? else {
                continue;
            };
            created |= matches!(event, ChainEvent::JobCreated { .. });
            let tx_hash: String = row.get(2);
            let tx_hash = tx_hash.parse().map_err(|e| decode_err("tx hash", e))?;
            let block: i64 = row.get(1);
            let time: i64 = row.get(3);
            if let ChainEvent::BatchSettled { root, runtime_id, signers, .. } = &event {
                let Some(result_hash) = row.get::<Option<String>, _>(5) else { continue };
                let result_hash = result_hash.parse().map_err(|e| decode_err("result hash", e))?;
                let settled =
                    BatchSettlement { root: *root, runtime_id: *runtime_id, signers, result_hash };
                Self::apply_batch_settlement(
                    conn,
                    job_id,
                    &settled,
                    tx_hash,
                    time.max(0).cast_unsigned(),
                )
                .await?;
                continue;
            }
            Self::apply_event(
                conn,
                job_id,
                &event,
                block.max(0).cast_unsigned(),
                tx_hash,
                time.max(0).cast_unsigned(),
            )
            .await?;
        }
        if !created {
            for table in ["attestations", "outputs"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE job_id = $1"))
                    .bind(job_id)
                    .execute(&mut *conn)
                    .await?;
            }
        } else if let Some(at) = quorum_at {
            sqlx::query("UPDATE jobs SET quorum_at = $2 WHERE job_id = $1")
                .bind(job_id)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            Self::advance_status(conn, job_id, "settling").await?;
        }
        Ok(())
    }

    /// Settles one job of a confirmed `BatchSettled`: the result, signers and batch root from
    /// the chain, the output from the attestation that carried it (batches publish none).
    async fn apply_batch_settlement(
        conn: &mut AnyConnection,
        job_id: i64,
        settled: &BatchSettlement<'_>,
        tx_hash: B256,
        block_time: u64,
    ) -> Result<(), Error> {
        let signers: Vec<String> = settled.signers.iter().map(|s| hex(*s)).collect();
        sqlx::query(
            "UPDATE jobs SET status = 'settled', result_hash = $2, runtime_id = $3, signers = $4, \
             output = (SELECT o.output FROM outputs o WHERE o.job_id = $1 AND o.result_hash = $2), \
             settle_tx = $5, settled_at = $6, batch_root = $7 \
             WHERE job_id = $1 AND status IN ('open', 'settling')",
        )
        .bind(job_id)
        .bind(hex(settled.result_hash))
        .bind(hex(settled.runtime_id))
        .bind(signers.join(","))
        .bind(hex(tx_hash))
        .bind(to_i64(block_time))
        .bind(hex(settled.root))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Applies one event to its job, idempotently; status only moves forward.
    async fn apply_event(
        conn: &mut AnyConnection,
        job_id: i64,
        event: &ChainEvent,
        block: u64,
        tx_hash: B256,
        block_time: u64,
    ) -> Result<(), Error> {
        match event {
            ChainEvent::JobCreated { client, model_id, input_hash, fee, deadline, .. } => {
                sqlx::query(
                    "INSERT INTO jobs (job_id, client, model_id, input_hash, fee, deadline, \
                     status, created_block) VALUES ($1, $2, $3, $4, $5, $6, 'open', $7) \
                     ON CONFLICT (job_id) DO NOTHING",
                )
                .bind(job_id)
                .bind(hex(*client))
                .bind(hex(*model_id))
                .bind(hex(*input_hash))
                .bind(fee.to_string())
                .bind(i64::try_from(*deadline).unwrap_or(i64::MAX))
                .bind(to_i64(block))
                .execute(&mut *conn)
                .await?;
            }
            ChainEvent::JobSettled { result_hash, runtime_id, signers, output, .. } => {
                let signers: Vec<String> = signers.iter().map(|s| hex(*s)).collect();
                sqlx::query(
                    "UPDATE jobs SET status = 'settled', result_hash = $2, runtime_id = $3, \
                     signers = $4, output = $5, settle_tx = $6, settled_at = $7 \
                     WHERE job_id = $1 AND status IN ('open', 'settling')",
                )
                .bind(job_id)
                .bind(hex(*result_hash))
                .bind(hex(*runtime_id))
                .bind(signers.join(","))
                .bind(output.to_vec())
                .bind(hex(tx_hash))
                .bind(to_i64(block_time))
                .execute(&mut *conn)
                .await?;
            }
            ChainEvent::JobChallenged { .. } => {
                Self::advance_status(conn, job_id, "challenged").await?;
            }
            ChainEvent::PaymentReleased { .. }
            | ChainEvent::DisputeResolved { stands: true, .. } => {
                Self::advance_status(conn, job_id, "released").await?;
            }
            ChainEvent::JobRefunded { .. }
            | ChainEvent::DisputeResolved { stands: false, .. }
            | ChainEvent::DisputeExpired { .. } => {
                Self::advance_status(conn, job_id, "refunded").await?;
            }
            ChainEvent::RuntimeAllowed { .. }
            | ChainEvent::SetChanged { .. }
            | ChainEvent::BatchSettled { .. } => {}
        }
        Ok(())
    }

    /// Moves a job to `status` if that is forward from where it is.
    pub(crate) async fn advance_status(
        conn: &mut AnyConnection,
        job_id: i64,
        status: &str,
    ) -> Result<bool, Error> {
        let to = rank(status);
        // The list holds only the constant status names above, never input.
        let lower: Vec<String> =
            STATUS_RANK.iter().filter(|(_, r)| *r < to).map(|(s, _)| format!("'{s}'")).collect();
        if lower.is_empty() {
            return Ok(false);
        }
        let sql = format!(
            "UPDATE jobs SET status = $2 WHERE job_id = $1 AND status IN ({})",
            lower.join(", ")
        );
        let n = sqlx::query(&sql).bind(job_id).bind(status).execute(conn).await?.rows_affected();
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranks_only_move_forward() {
        assert!(rank("open") < rank("settling"));
        assert!(rank("settling") < rank("settled"));
        assert!(rank("settled") < rank("challenged"));
        assert!(rank("challenged") < rank("released"));
        assert_eq!(rank("released"), rank("refunded"));
    }
}
