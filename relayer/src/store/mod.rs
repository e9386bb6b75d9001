//! Persistent state through sqlx: a SQLite file by default, PostgreSQL when the URL says so.
//!
//! One schema, written twice (`migrations/sqlite`, `migrations/postgres`) only where the two
//! dialects differ (auto-increment keys, `BLOB` vs `BYTEA`). Queries use `$N` placeholders,
//! which both drivers accept, and only the types sqlx's `Any` driver maps on both (`i64`,
//! `String`, `Vec<u8>`, `bool`): hashes and addresses are lowercase 0x-hex text, token
//! amounts decimal text, block numbers, job ids and unix times `BIGINT`.

mod api;
pub mod batch;
pub mod chain;
pub mod jobs;
pub mod outbox;
pub mod stats;

use crate::Error;
use sqlx::{AnyPool, any::AnyPoolOptions, migrate::Migrator};
use std::{str::FromStr, time::Duration};

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file (`sqlite://path?mode=rwc`, or `sqlite::memory:`).
    Sqlite,
    /// A PostgreSQL server (`postgres://…`).
    Postgres,
}

impl FromStr for Backend {
    type Err = Error;

    fn from_str(url: &str) -> Result<Self, Error> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(Error::Config(format!(
                "database URL {url:?} is neither sqlite: nor postgres://: set DATABASE_URL to e.g. sqlite://relayer.db?mode=rwc"
            )))
        }
    }
}

/// The relayer's database: a pool plus which dialect it speaks.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let store = Self::connect_unmigrated(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without touching the schema (administration and tests).
    pub async fn connect_unmigrated(url: &str) -> Result<Self, Error> {
        sqlx::any::install_default_drivers();
        let backend = url.parse()?;
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            // One writer at a time is SQLite's model; a single connection also makes
            // `sqlite::memory:` one database rather than one per connection.
            options = options.max_connections(1);
            // No liveness ping before every use of the pool: a SQLite connection is a file
            // handle that cannot drop, and the ping is a full round trip to sqlx's SQLite
            // worker thread, which doubled the hand-offs of every single-statement query.
            options = options.test_before_acquire(false);
            // Write-ahead log with `synchronous = NORMAL`: a commit is an append, not a journal
            // file created, synced and deleted. It survives a killed process (R1, R2); after a
            // power loss the last commits may be gone, which the outbox recovers from (a nonce
            // used on chain but missing here is resynced, R10; a duty done twice is a no-op, R13).
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;").await?;
                    Ok(())
                })
            });
        } else {
            options = options.max_connections(16);
        }
        let pool = options.connect(url).await?;
        Ok(Self { pool, backend })
    }

    /// Applies pending migrations of this backend's dialect.
    ///
    /// PostgreSQL serialises concurrent migrators with an advisory lock; SQLite has none, so a
    /// second process opening the same file mid-migration sees a half-applied version and
    /// retries until the first has finished.
    pub async fn migrate(&self) -> Result<(), Error> {
        let mut attempt = 0;
        loop {
            let result = match self.backend {
                Backend::Sqlite => SQLITE.run(&self.pool).await,
                Backend::Postgres => POSTGRES.run(&self.pool).await,
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) if self.backend == Backend::Sqlite && attempt < 20 => {
                    tracing::debug!(error = %e, "sqlite migration raced another process; retrying");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The connection pool, for the modules that add queries in `impl Store` blocks.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

/// Unix time in seconds, as stored in `*_at` columns.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrations_rerun_cleanly_and_enqueue_is_idempotent() {
        for (backend, test) in testing::all().await {
            let mut conn = test.store.pool().acquire().await.unwrap();
            let to = alloy::primitives::Address::repeat_byte(1);
            assert!(crate::txm::enqueue(&mut conn, "settle:1", to, b"x").await.unwrap());
            assert!(!crate::txm::enqueue(&mut conn, "settle:1", to, b"y").await.unwrap());
            drop(conn);
            // Reconnecting re-runs the migrator, which must be a no-op on an up-to-date schema.
            let again = Store::connect(&test.url).await.unwrap();
            assert_eq!(again.backend(), backend);
            let rows: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT key, calldata FROM outbox")
                .fetch_all(again.pool())
                .await
                .unwrap();
            assert_eq!(rows, vec![("settle:1".to_owned(), b"x".to_vec())], "{backend:?}");
        }
    }
}

/// Fresh stores for tests: always a new SQLite file, plus a new PostgreSQL database when
/// `ATTESTA_TEST_POSTGRES_URL` names a server (`tools/pg start` prints one). With
/// `ATTESTA_REQUIRE_POSTGRES=1` (the test command sets it) a missing server is an error
/// rather than a skipped backend.
#[cfg(feature = "test-utils")]
pub mod testing {
    use super::{Backend, Store};

    /// A store and what keeps it alive (the SQLite file's directory).
    pub struct TestStore {
        /// The store.
        pub store: Store,
        /// Its connection URL (to reconnect, as a restarted relayer would).
        pub url: String,
        _dir: Option<tempfile::TempDir>,
    }

    /// A fresh, migrated SQLite store in a temporary directory.
    pub async fn sqlite() -> TestStore {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("relayer.db").display());
        let store = Store::connect(&url).await.expect("sqlite store");
        TestStore { store, url, _dir: Some(dir) }
    }

    /// A fresh, migrated PostgreSQL database, or `None` when no server is configured.
    pub async fn postgres() -> Option<TestStore> {
        let Ok(server) = std::env::var("ATTESTA_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var("ATTESTA_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "ATTESTA_REQUIRE_POSTGRES=1 but ATTESTA_TEST_POSTGRES_URL is unset: run `tools/pg start`"
            );
            tracing::warn!("ATTESTA_TEST_POSTGRES_URL unset; skipping the PostgreSQL backend");
            return None;
        };
        let name = format!("attesta_test_{}", alloy::primitives::B64::random());
        let admin = Store::connect_unmigrated(&server).await.expect("postgres server");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(admin.pool())
            .await
            .expect("create test database");
        let (base, _) = server.rsplit_once('/').expect("server URL has a database path");
        let url = format!("{base}/{name}");
        let store = Store::connect(&url).await.expect("postgres store");
        Some(TestStore { store, url, _dir: None })
    }

    /// SQLite, and PostgreSQL when configured: run a storage test on each.
    pub async fn all() -> Vec<(Backend, TestStore)> {
        let mut stores = vec![(Backend::Sqlite, sqlite().await)];
        if let Some(pg) = postgres().await {
            stores.push((Backend::Postgres, pg));
        }
        stores
    }
}
