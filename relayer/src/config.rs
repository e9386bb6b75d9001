//! The relayer's configuration: a TOML file, then environment variables on top.
//!
//! Owner: core.

use serde::Deserialize;

/// Everything `attesta-relayer run` needs.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[api]`.
    pub api: crate::api::ApiConfig,
    /// `[tx]`.
    pub tx: crate::txm::TxConfig,
}
