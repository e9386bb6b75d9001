//! The transaction manager: one nonce manager per key, EIP-1559 fee bumping, and a persisted
//! outbox so a crash between send and receipt neither loses nor duplicates a transaction.
//!
//! Owner: txm. `enqueue` is the contract other modules use to owe the chain a transaction.

use crate::Error;
use alloy::primitives::Address;
use serde::Deserialize;

/// `[tx]` section of the relayer's configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TxConfig {}

/// Queues a call to `to` under a unique duty `key` (e.g. `settle:42`), inside the caller's
/// database transaction so the duty and the state that caused it commit together.
///
/// Returns `false`, changing nothing, when a duty with this key already exists: handling the
/// same trigger twice never sends twice.
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
