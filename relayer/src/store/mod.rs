//! Persistent state through sqlx: a SQLite file by default, PostgreSQL when the URL says so.
//!
//! One schema, written twice (`migrations/sqlite`, `migrations/postgres`) only where the two
//! dialects differ (auto-increment keys, `BLOB` vs `BYTEA`). Queries use `$N` placeholders,
//! which both drivers accept, and only the types sqlx's `Any` driver maps on both (`i64`,
//! `String`, `Vec<u8>`, `bool`): hashes and addresses are lowercase 0x-hex text, token
//! amounts decimal text, block numbers, job ids and unix times `BIGINT`.

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
        sqlx::any::install_default_drivers();
        let backend = url.parse()?;
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            // One writer at a time is SQLite's model; a single connection also makes
            // `sqlite::memory:` one database rather than one per connection.
            options = options.max_connections(1);
        } else {
            options = options.max_connections(16);
        }
        let pool = options.connect(url).await?;
        let store = Self { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies pending migrations of this backend's dialect.
    pub async fn migrate(&self) -> Result<(), Error> {
        match self.backend {
            Backend::Sqlite => SQLITE.run(&self.pool).await?,
            Backend::Postgres => POSTGRES.run(&self.pool).await?,
        }
        Ok(())
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
    async fn sqlite_file_migrates_and_enqueue_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
        let store = Store::connect(&url).await.unwrap();
        let mut conn = store.pool().acquire().await.unwrap();
        let to = alloy::primitives::Address::repeat_byte(1);
        assert!(crate::txm::enqueue(&mut conn, "settle:1", to, b"x").await.unwrap());
        assert!(!crate::txm::enqueue(&mut conn, "settle:1", to, b"y").await.unwrap());
        drop(conn);
        // Reconnecting re-runs the migrator, which must be a no-op on an up-to-date schema.
        let again = Store::connect(&url).await.unwrap();
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM outbox").fetch_one(again.pool()).await.unwrap();
        assert_eq!(n, 1);
    }
}
