//! The relayer's error type. Messages say what went wrong and what to do about it.

/// Everything the relayer's components can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused or failed a statement.
    #[error("database: {0}: check DATABASE_URL and that the database is reachable")]
    Database(#[from] sqlx::Error),
    /// A schema migration failed.
    #[error("database migration: {0}: the database may belong to a newer relayer version")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The sdk (chain, signatures, encodings) failed.
    #[error(transparent)]
    Sdk(#[from] attesta_sdk::Error),
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
}
