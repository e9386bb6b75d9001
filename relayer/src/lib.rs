//! `attesta-relayer`: watches the escrow, hands confirmed jobs to nodes, gathers their
//! attestations, settles once M agree, and finalises (release, refund, slashing evidence).
//!
//! The relayer is trusted for liveness only: the escrow accepts nothing but signatures of
//! staked nodes, so a relayer can delay a job but never forge its result. Every step is
//! idempotent and persisted (see `docs/relayer.md`), so a crash, a reorg or a second relayer
//! changes nothing but timing.

pub mod aggregate;
pub mod api;
pub mod chain;
pub mod config;
pub mod error;
pub mod store;
pub mod txm;
pub mod watcher;

pub use config::Config;
pub use error::Error;
pub use store::Store;
