//! Persistent state through sqlx: a SQLite file by default, PostgreSQL when the URL says so.
//!
//! One schema, written twice (`migrations/sqlite`, `migrations/postgres`) only where the two
//! dialects differ (auto-increment keys, `BLOB` vs `BYTEA`). Queries use `$N` placeholders,
//! which both drivers accept, and only the types sqlx's `Any` driver maps on both (`i64`,
//! `String`, `Vec<u8>`, `bool`): hashes and addresses are lowercase 0x-hex text, token
//! amounts decimal text, block numbers, job ids and unix times `BIGINT`.

use crate::Error;
use sqlx::{
    AnyPool,
    any::AnyPoolOptions,
    migrate::Migrator,
};
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
