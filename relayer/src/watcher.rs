//! The chain watcher: confirmed escrow and registry logs in block ranges, reorg-safe.
//!
//! Owner: core.
