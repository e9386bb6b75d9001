//! Outbox, nonce and transaction-attempt queries for the transaction manager (`crate::txm`).
//!
//! The one invariant these queries keep: a nonce is taken from `nonces` only in the
//! database transaction that also stores the signed transaction using it, so every nonce ever
//! handed out has a raw transaction that can be broadcast again (R2, R9).

use crate::{Error, Store, store::unix_now};
use alloy::primitives::{Address, B256};
use sqlx::Row as _;

/// Where a duty stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxStatus {
    /// Waiting to be given a nonce and sent.
    Queued,
    /// Signed and broadcast with a nonce; waiting for a receipt at the confirmation depth.
    Pending,
    /// Mined, succeeded and buried `confirmations` deep.
    Confirmed,
    /// Not needed any more (the work was done by someone else, or can no longer be done);
    /// `reason` says why.
    Noop,
    /// Cannot succeed; `reason` says why.
    Failed,
}

impl OutboxStatus {
    /// The text stored in `outbox.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Noop => "noop",
            Self::Failed => "failed",
        }
    }

    /// Parses `outbox.status`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "queued" => Self::Queued,
            "pending" => Self::Pending,
            "confirmed" => Self::Confirmed,
            "noop" => Self::Noop,
            "failed" => Self::Failed,
            other => {
                return Err(Error::Config(format!(
                    "outbox status {other:?} is unknown: the database was written by a newer relayer"
                )));
            }
        })
    }

    /// Whether the duty is finished (nothing more will be sent for it).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Confirmed | Self::Noop | Self::Failed)
    }
}

/// One signed transaction for a duty, as stored before it was broadcast.
#[derive(Clone, Debug)]
pub struct TxAttempt {
    /// Its hash.
    pub tx_hash: B256,
    /// The nonce it uses.
    pub nonce: u64,
    /// The EIP-2718 encoded signed transaction.
    pub raw: Vec<u8>,
    /// `maxFeePerGas`, wei.
    pub max_fee: u128,
    /// `maxPriorityFeePerGas`, wei.
    pub priority_fee: u128,
    /// Gas limit.
    pub gas_limit: u64,
    /// A zero-value transfer to self that only uses up the nonce (R13).
    pub is_noop: bool,
    /// Chain tip when it was signed.
    pub sent_block: u64,
}

/// A duty and what happened to it.
#[derive(Clone, Debug)]
pub struct OutboxEntry {
    /// Row id (duties are sent in id order).
    pub id: i64,
    /// The unique duty key, e.g. `refund:7`.
    pub key: String,
    /// The contract called.
    pub to: Address,
    /// The call.
    pub calldata: Vec<u8>,
    /// Where it stands.
    pub status: OutboxStatus,
    /// The nonce it holds while pending, or used when final.
    pub nonce: Option<u64>,
    /// Why it is `noop` or `failed`, or the last retryable problem.
    pub reason: Option<String>,
    /// The key that sends it.
    pub from: Option<Address>,
    /// The hash whose receipt was last seen.
    pub mined_hash: Option<B256>,
    /// The block of that receipt.
    pub mined_block: Option<u64>,
    /// Unix milliseconds of the first broadcast.
    pub first_sent_ms: Option<i64>,
    /// Unix milliseconds when its receipt was first seen.
    pub included_ms: Option<i64>,
}

const ENTRY_COLUMNS: &str = "id, key, to_address, calldata, status, nonce, reason, from_address, \
     mined_hash, mined_block, first_sent_ms, included_ms";

fn entry(row: &sqlx::any::AnyRow) -> Result<OutboxEntry, Error> {
    let status: String = row.try_get("status")?;
    let to: String = row.try_get("to_address")?;
    let from: Option<String> = row.try_get("from_address")?;
    let mined_hash: Option<String> = row.try_get("mined_hash")?;
    Ok(OutboxEntry {
        id: row.try_get("id")?,
        key: row.try_get("key")?,
        to: parse(&to)?,
        calldata: row.try_get("calldata")?,
        status: OutboxStatus::parse(&status)?,
        nonce: row.try_get::<Option<i64>, _>("nonce")?.map(to_u64),
        reason: row.try_get("reason")?,
        from: from.as_deref().map(parse).transpose()?,
        mined_hash: mined_hash.as_deref().map(parse).transpose()?,
        mined_block: row.try_get::<Option<i64>, _>("mined_block")?.map(to_u64),
        first_sent_ms: row.try_get("first_sent_ms")?,
        included_ms: row.try_get("included_ms")?,
    })
}

fn attempt(row: &sqlx::any::AnyRow) -> Result<TxAttempt, Error> {
    let hash: String = row.try_get("tx_hash")?;
    let max_fee: String = row.try_get("max_fee")?;
    let priority_fee: String = row.try_get("priority_fee")?;
    Ok(TxAttempt {
        tx_hash: parse(&hash)?,
        nonce: to_u64(row.try_get("nonce")?),
        raw: row.try_get("raw")?,
        max_fee: parse(&max_fee)?,
        priority_fee: parse(&priority_fee)?,
        gas_limit: to_u64(row.try_get("gas_limit")?),
        is_noop: row.try_get::<i64, _>("is_noop")? != 0,
        sent_block: to_u64(row.try_get("sent_block")?),
    })
}

fn parse<T: std::str::FromStr>(s: &str) -> Result<T, Error>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e| Error::Config(format!("corrupt outbox value {s:?}: {e}")))
}

// Nonces, gas and block numbers are far below i64::MAX; the casts only guard the types.
fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn hex(v: impl std::fmt::Display) -> String {
    v.to_string().to_lowercase()
}

/// Unix time in milliseconds.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Store {
    /// The duty stored under `key`, if any.
    pub async fn outbox_status(&self, key: &str) -> Result<Option<OutboxEntry>, Error> {
        let row = sqlx::query(&format!("SELECT {ENTRY_COLUMNS} FROM outbox WHERE key = $1"))
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(entry).transpose()
    }

    /// Every transaction signed for the duty `outbox_id`, oldest first.
    pub async fn outbox_attempts(&self, outbox_id: i64) -> Result<Vec<TxAttempt>, Error> {
        let rows = sqlx::query(
            "SELECT tx_hash, nonce, raw, max_fee, priority_fee, gas_limit, is_noop, sent_block \
             FROM tx_attempts WHERE outbox_id = $1",
        )
        .bind(outbox_id)
        .fetch_all(self.pool())
        .await?;
        let mut attempts = rows.iter().map(attempt).collect::<Result<Vec<_>, _>>()?;
        // Replacements of one nonce only raise fees; a later nonce (R10) is signed later.
        attempts.sort_by_key(|a| (a.sent_block, a.max_fee));
        Ok(attempts)
    }

    /// The next nonce the store would hand out for `address`, if it tracks that key.
    pub async fn next_nonce(&self, address: Address) -> Result<Option<u64>, Error> {
        let n: Option<(i64,)> = sqlx::query_as("SELECT next_nonce FROM nonces WHERE address = $1")
            .bind(hex(address))
            .fetch_optional(self.pool())
            .await?;
        Ok(n.map(|(n,)| to_u64(n)))
    }

    /// Raises the stored next nonce of `address` to `chain_nonce` (the account's transaction
    /// count on chain) if it is below; never lowers it, since nonces above the chain's may
    /// belong to our own pending transactions.
    pub async fn sync_nonce(&self, address: Address, chain_nonce: u64) -> Result<u64, Error> {
        let (n,): (i64,) = sqlx::query_as(
            "INSERT INTO nonces (address, next_nonce) VALUES ($1, $2) \
             ON CONFLICT (address) DO UPDATE SET next_nonce = CASE \
               WHEN nonces.next_nonce < excluded.next_nonce THEN excluded.next_nonce \
               ELSE nonces.next_nonce END \
             RETURNING next_nonce",
        )
        .bind(hex(address))
        .bind(to_i64(chain_nonce))
        .fetch_one(self.pool())
        .await?;
        Ok(to_u64(n))
    }

    /// Queued duties due at `now` (unix seconds), in id order.
    pub(crate) async fn queued_duties(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM outbox WHERE status = 'queued' AND not_before <= $1 \
             ORDER BY id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(entry).collect()
    }

    /// Pending duties sent by `from`, by nonce.
    pub(crate) async fn pending_duties(&self, from: Address) -> Result<Vec<OutboxEntry>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM outbox WHERE status = 'pending' AND from_address = $1 \
             ORDER BY nonce, id"
        ))
        .bind(hex(from))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(entry).collect()
    }

    /// Attempts of duty `outbox_id` with `nonce`, oldest first.
    pub(crate) async fn attempts_for(
        &self,
        outbox_id: i64,
        nonce: u64,
    ) -> Result<Vec<TxAttempt>, Error> {
        Ok(self
            .outbox_attempts(outbox_id)
            .await?
            .into_iter()
            .filter(|a| a.nonce == nonce)
            .collect())
    }

    /// Finishes a still-queued duty without sending it (R13: no nonce is consumed), or defers
    /// it (`status` queued with a `not_before`). Returns whether the row was still queued.
    pub(crate) async fn settle_queued(
        &self,
        id: i64,
        status: OutboxStatus,
        reason: &str,
        not_before: i64,
    ) -> Result<bool, Error> {
        let n = sqlx::query(
            "UPDATE outbox SET status = $1, reason = $2, not_before = $3, updated_at = $4 \
             WHERE id = $5 AND status = 'queued'",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(not_before)
        .bind(unix_now())
        .bind(id)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Takes the next nonce of `from`, lets `sign` build the transaction with it, and stores
    /// the signed transaction and the duty's move to `pending` in one database transaction.
    ///
    /// Returns `None`, taking no nonce, if the duty is no longer queued (another relayer on
    /// the same database took it). A signing error rolls everything back.
    pub(crate) async fn assign_nonce_and_store(
        &self,
        id: i64,
        from: Address,
        sign: impl FnOnce(u64) -> Result<TxAttempt, Error>,
    ) -> Result<Option<TxAttempt>, Error> {
        let mut tx = self.pool().begin().await?;
        // An UPDATE … RETURNING takes the row lock on PostgreSQL, so two relayers sharing a
        // key and a database never get the same nonce.
        let taken: Option<(i64,)> = sqlx::query_as(
            "UPDATE nonces SET next_nonce = next_nonce + 1 WHERE address = $1 \
             RETURNING next_nonce - 1",
        )
        .bind(hex(from))
        .fetch_optional(&mut *tx)
        .await?;
        let Some((nonce,)) = taken else {
            return Err(Error::Config(format!(
                "no nonce is tracked for {from}: the transaction manager syncs it from the chain \
                 on its first tick; run TxManager::tick or run"
            )));
        };
        let attempt = sign(to_u64(nonce))?;
        let now_ms = unix_now_ms();
        let moved = sqlx::query(
            "UPDATE outbox SET status = 'pending', nonce = $1, from_address = $2, reason = NULL, \
             mined_hash = NULL, mined_block = NULL, included_ms = NULL, \
             first_sent_ms = COALESCE(first_sent_ms, $3), updated_at = $4 \
             WHERE id = $5 AND status = 'queued'",
        )
        .bind(nonce)
        .bind(hex(from))
        .bind(now_ms)
        .bind(unix_now())
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        insert_attempt(&mut tx, id, from, &attempt).await?;
        tx.commit().await?;
        Ok(Some(attempt))
    }

    /// Stores a replacement (fee bump or no-op) for a pending duty's nonce, and the reason
    /// when it is a no-op replacement.
    pub(crate) async fn add_attempt(
        &self,
        id: i64,
        from: Address,
        attempt: &TxAttempt,
        reason: Option<&str>,
    ) -> Result<(), Error> {
        let mut tx = self.pool().begin().await?;
        insert_attempt(&mut tx, id, from, attempt).await?;
        if let Some(reason) = reason {
            sqlx::query("UPDATE outbox SET reason = $1, updated_at = $2 WHERE id = $3")
                .bind(reason)
                .bind(unix_now())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records the receipt seen for a pending duty (or clears it when a reorg removed it).
    pub(crate) async fn set_mined(&self, id: i64, mined: Option<(B256, u64)>) -> Result<(), Error> {
        sqlx::query(
            "UPDATE outbox SET mined_hash = $1, mined_block = $2, \
             included_ms = CASE WHEN $1 IS NULL THEN included_ms \
                                ELSE COALESCE(included_ms, $3) END, \
             updated_at = $4 WHERE id = $5 AND status = 'pending'",
        )
        .bind(mined.map(|(h, _)| hex(h)))
        .bind(mined.map(|(_, b)| to_i64(b)))
        .bind(unix_now_ms())
        .bind(unix_now())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Moves a pending duty to a final status; with `mined`, records that receipt too (as
    /// [`Store::set_mined`] would), in the same statement.
    pub(crate) async fn finish(
        &self,
        id: i64,
        status: OutboxStatus,
        reason: Option<&str>,
        mined: Option<(B256, u64)>,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE outbox SET status = $1, reason = COALESCE($2, reason), updated_at = $3, \
             mined_hash = COALESCE($5, mined_hash), mined_block = COALESCE($6, mined_block), \
             included_ms = CASE WHEN $5 IS NULL THEN included_ms \
                                ELSE COALESCE(included_ms, $7) END \
             WHERE id = $4 AND status = 'pending'",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(unix_now())
        .bind(id)
        .bind(mined.map(|(h, _)| hex(h)))
        .bind(mined.map(|(_, b)| to_i64(b)))
        .bind(unix_now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Puts a pending duty whose nonce another transaction used back in the queue (R10).
    pub(crate) async fn requeue(&self, id: i64, reason: &str) -> Result<(), Error> {
        sqlx::query(
            "UPDATE outbox SET status = 'queued', nonce = NULL, reason = $1, mined_hash = NULL, \
             mined_block = NULL, not_before = 0, updated_at = $2 \
             WHERE id = $3 AND status = 'pending'",
        )
        .bind(reason)
        .bind(unix_now())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

async fn insert_attempt(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: i64,
    from: Address,
    a: &TxAttempt,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO tx_attempts (tx_hash, outbox_id, from_address, nonce, raw, max_fee, \
         priority_fee, gas_limit, is_noop, sent_block, sent_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(hex(a.tx_hash))
    .bind(id)
    .bind(hex(from))
    .bind(to_i64(a.nonce))
    .bind(a.raw.clone())
    .bind(a.max_fee.to_string())
    .bind(a.priority_fee.to_string())
    .bind(to_i64(a.gas_limit))
    .bind(i64::from(a.is_noop))
    .bind(to_i64(a.sent_block))
    .bind(unix_now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
