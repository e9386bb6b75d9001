//! The HTTP API's tables: content-addressed blobs, registered nodes, and the request nonces
//! that make every signed node request usable once (A3).

use super::Store;
use crate::Error;
use alloy::primitives::{Address, B256};
use attesta_sdk::relay::NodeHello;

/// Hex as stored: lowercase with 0x, the same for every writer so lookups match.
fn hex(value: impl std::fmt::Display) -> String {
    value.to_string().to_lowercase()
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Store {
    /// Stores `data` under `hash` (the caller's keccak256 of it). Returns `false`, changing
    /// nothing, when the hash is already stored: content addressing makes a second upload of
    /// the same bytes a no-op.
    pub async fn put_blob(&self, hash: B256, data: &[u8], now: u64) -> Result<bool, Error> {
        let inserted = sqlx::query(
            "INSERT INTO blobs (hash, size, data, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (hash) DO NOTHING",
        )
        .bind(hex(hash))
        .bind(i64::try_from(data.len()).unwrap_or(i64::MAX))
        .bind(data.to_vec())
        .bind(to_i64(now))
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// The bytes stored under `hash`, exactly as stored: the caller re-hashes them before
    /// serving, so a corrupted row is detected rather than served.
    pub async fn blob(&self, hash: B256) -> Result<Option<Vec<u8>>, Error> {
        let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT data FROM blobs WHERE hash = $1")
            .bind(hex(hash))
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|(data,)| data))
    }

    /// Deletes the row stored under `hash` (used for a row whose bytes no longer match its
    /// hash, so that a fresh upload of the right bytes can take its place).
    pub async fn delete_blob(&self, hash: B256) -> Result<bool, Error> {
        let deleted = sqlx::query("DELETE FROM blobs WHERE hash = $1")
            .bind(hex(hash))
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(deleted == 1)
    }

    /// Records (or refreshes) a node's registration; a re-registration replaces what the
    /// node said before and counts as a heartbeat.
    pub async fn register_node(
        &self,
        signer: Address,
        hello: &NodeHello,
        now: u64,
    ) -> Result<(), Error> {
        let models = serde_json::to_string(&hello.models)
            .map_err(|e| Error::Config(format!("cannot encode model list: {e}")))?;
        sqlx::query(
            "INSERT INTO nodes (signer, runtime_id, models, version, registered_at, last_heartbeat, running, signs_batches) \
             VALUES ($1, $2, $3, $4, $5, $5, 0, $6) \
             ON CONFLICT (signer) DO UPDATE SET runtime_id = excluded.runtime_id, \
             models = excluded.models, version = excluded.version, \
             registered_at = excluded.registered_at, last_heartbeat = excluded.last_heartbeat, \
             signs_batches = excluded.signs_batches",
        )
        .bind(hex(signer))
        .bind(hex(hello.runtime_id))
        .bind(models)
        .bind(&hello.version)
        .bind(to_i64(now))
        .bind(i64::from(hello.signs_batches))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The signers whose nodes registered as signing batch proposals.
    pub async fn batch_signers(
        conn: &mut sqlx::AnyConnection,
    ) -> Result<std::collections::HashSet<Address>, Error> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT signer FROM nodes WHERE signs_batches = 1")
                .fetch_all(&mut *conn)
                .await?;
        rows.into_iter()
            .map(|(s,)| {
                s.parse()
                    .map_err(|_| Error::Config(format!("nodes.signer {s:?} is not an address")))
            })
            .collect()
    }

    /// Records a heartbeat. Returns `false` when the signer never registered.
    pub async fn node_heartbeat(
        &self,
        signer: Address,
        running: u32,
        now: u64,
    ) -> Result<bool, Error> {
        let updated =
            sqlx::query("UPDATE nodes SET last_heartbeat = $2, running = $3 WHERE signer = $1")
                .bind(hex(signer))
                .bind(to_i64(now))
                .bind(i64::from(running))
                .execute(self.pool())
                .await?
                .rows_affected();
        Ok(updated == 1)
    }

    /// A registered node as stored: `(runtime_id, version, last_heartbeat, running)`.
    pub async fn node(&self, signer: Address) -> Result<Option<(B256, String, u64, u32)>, Error> {
        let row: Option<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT runtime_id, version, last_heartbeat, running FROM nodes WHERE signer = $1",
        )
        .bind(hex(signer))
        .fetch_optional(self.pool())
        .await?;
        row.map(|(runtime, version, heartbeat, running)| {
            let runtime = runtime.parse().map_err(|_| {
                Error::Config(format!("nodes.runtime_id {runtime:?} is not a hash"))
            })?;
            Ok((
                runtime,
                version,
                u64::try_from(heartbeat).unwrap_or(0),
                u32::try_from(running).unwrap_or(0),
            ))
        })
        .transpose()
    }

    /// Claims `(signer, nonce)` until `expires_at`. Returns `false` when the pair was already
    /// claimed: the request is a replay. One atomic insert, so two concurrent copies of one
    /// request cannot both pass.
    pub async fn claim_request_nonce(
        &self,
        signer: Address,
        nonce: B256,
        expires_at: u64,
    ) -> Result<bool, Error> {
        let inserted = sqlx::query(
            "INSERT INTO request_nonces (signer, nonce, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (signer, nonce) DO NOTHING",
        )
        .bind(hex(signer))
        .bind(hex(nonce))
        .bind(to_i64(expires_at))
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Forgets nonces whose requests can no longer pass the timestamp check (`expires_at` <
    /// `now`). Returns how many were deleted.
    pub async fn purge_request_nonces(&self, now: u64) -> Result<u64, Error> {
        Ok(sqlx::query("DELETE FROM request_nonces WHERE expires_at < $1")
            .bind(to_i64(now))
            .execute(self.pool())
            .await?
            .rows_affected())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }

    /// The watcher's next block, if it has started. `None` also when its table does not
    /// exist yet: health reporting must not fail on what it only reports.
    pub async fn watcher_next_block(&self) -> Option<u64> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT next_block FROM cursor ORDER BY next_block DESC LIMIT 1")
                .fetch_optional(self.pool())
                .await
                .ok()
                .flatten();
        row.and_then(|(block,)| u64::try_from(block).ok())
    }
}

#[cfg(all(test, feature = "test-utils"))]
mod tests {
    use super::*;
    use alloy::primitives::keccak256;

    #[tokio::test]
    async fn blobs_nodes_and_nonces_on_every_backend() {
        for (backend, test) in crate::store::testing::all().await {
            let store = &test.store;
            let data = vec![0u8, 1, 2, 255];
            let hash = keccak256(&data);
            assert!(store.put_blob(hash, &data, 1).await.unwrap(), "{backend:?}");
            assert!(!store.put_blob(hash, b"other", 2).await.unwrap(), "{backend:?}: first wins");
            assert_eq!(store.blob(hash).await.unwrap(), Some(data.clone()), "{backend:?}");
            assert!(store.delete_blob(hash).await.unwrap());
            assert_eq!(store.blob(hash).await.unwrap(), None);

            let signer = Address::repeat_byte(0xab);
            assert!(!store.node_heartbeat(signer, 1, 5).await.unwrap(), "unregistered");
            let hello = NodeHello {
                runtime_id: B256::repeat_byte(3),
                models: vec![B256::repeat_byte(4)],
                version: "v1".into(),
                signs_batches: false,
            };
            store.register_node(signer, &hello, 10).await.unwrap();
            store
                .register_node(signer, &NodeHello { version: "v2".into(), ..hello }, 11)
                .await
                .unwrap();
            assert!(store.node_heartbeat(signer, 2, 12).await.unwrap());
            assert_eq!(
                store.node(signer).await.unwrap(),
                Some((B256::repeat_byte(3), "v2".into(), 12, 2)),
                "{backend:?}"
            );

            let nonce = B256::repeat_byte(7);
            assert!(store.claim_request_nonce(signer, nonce, 100).await.unwrap());
            assert!(!store.claim_request_nonce(signer, nonce, 100).await.unwrap(), "replay");
            assert!(store.claim_request_nonce(Address::ZERO, nonce, 100).await.unwrap());
            assert_eq!(store.purge_request_nonces(100).await.unwrap(), 0, "kept until expiry");
            assert_eq!(store.purge_request_nonces(101).await.unwrap(), 2);
            assert!(store.claim_request_nonce(signer, nonce, 500).await.unwrap());
            store.ping().await.unwrap();
        }
    }
}
