//! The relayer's configuration: a TOML file, then environment variables on top.
//!
//! ```toml
//! database_url = "sqlite://attesta-relayer.db?mode=rwc"   # env DATABASE_URL
//!
//! [chain]
//! rpc_url = "ws://127.0.0.1:8545"        # env ATTESTA_RPC_URL; ws(s):// subscribes to heads
//! deployment = "deployments/31337.json"  # env ATTESTA_DEPLOYMENT
//! confirmations = 2
//! poll_interval_ms = 2000
//! max_range = 2000
//! reorg_window = 256
//!
//! [key]                                  # the relayer's transaction key
//! keystore = "relayer.json"              # env ATTESTA_KEYSTORE
//! password_file = "relayer.pass"         # or env ATTESTA_KEYSTORE_PASSWORD
//! # local devnets only: env ATTESTA_RELAYER_KEY = hex private key
//!
//! [duties]
//! interval_ms = 15000
//! refund_expired = false
//!
//! [batch]                                # settleBatch; nodes must sign batches (rpc_url set)
//! enabled = false
//! max_jobs = 256
//! max_wait_ms = 30000
//! sign_timeout_ms = 60000
//! ```
//!
//! Secrets (the password, a raw key) are read when the key is loaded and never stored in
//! [`Config`], so logging the configuration cannot leak them.

use crate::{Error, duties::DutyConfig, watcher::WatcherConfig};
use alloy::signers::local::PrivateKeySigner;
use serde::Deserialize;
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

/// Environment variable overriding `database_url`.
pub const ENV_DATABASE_URL: &str = "DATABASE_URL";
/// Environment variable overriding `[chain] rpc_url`.
pub const ENV_RPC_URL: &str = "ATTESTA_RPC_URL";
/// Environment variable overriding `[chain] deployment`.
pub const ENV_DEPLOYMENT: &str = "ATTESTA_DEPLOYMENT";
/// Environment variable overriding `[key] keystore`.
pub const ENV_KEYSTORE: &str = "ATTESTA_KEYSTORE";
/// Environment variable holding the keystore password.
pub const ENV_KEYSTORE_PASSWORD: &str = "ATTESTA_KEYSTORE_PASSWORD";
/// Environment variable holding a hex private key (local devnets only).
pub const ENV_RELAYER_KEY: &str = "ATTESTA_RELAYER_KEY";

/// Everything `attesta-relayer run` needs.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// `[chain]`.
    pub chain: ChainConfig,
    /// `[key]`: where the transaction key comes from.
    pub key: KeyConfig,
    /// `[duties]`.
    pub duties: DutiesConfig,
    /// `[api]`.
    pub api: crate::api::ApiConfig,
    /// `[tx]`.
    pub tx: crate::txm::TxConfig,
    /// `[batch]`: batch settlement (on by default, for jobs whose signers sign batches).
    pub batch: crate::batch::BatchConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://attesta-relayer.db?mode=rwc".into(),
            chain: ChainConfig::default(),
            key: KeyConfig::default(),
            duties: DutiesConfig::default(),
            api: crate::api::ApiConfig::default(),
            tx: crate::txm::TxConfig::default(),
            batch: crate::batch::BatchConfig::default(),
        }
    }
}

/// `[chain]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// JSON-RPC endpoint; `ws://`/`wss://` subscribes to new heads, `http(s)://` polls.
    pub rpc_url: String,
    /// The `deployments/<chainId>.json` the deploy script wrote.
    pub deployment: PathBuf,
    /// Blocks below the tip before a block is processed.
    pub confirmations: u64,
    /// Head polling interval (also the fallback with a subscription).
    pub poll_interval_ms: u64,
    /// Largest `eth_getLogs` block range.
    pub max_range: u64,
    /// Blocks of hashes kept to detect and roll back reorgs.
    pub reorg_window: u64,
    /// First block to read on an empty database (default: the deployment block).
    pub start_block: Option<u64>,
    /// Time limit of one RPC call.
    pub rpc_timeout_ms: u64,
}

impl Default for ChainConfig {
    fn default() -> Self {
        let w = WatcherConfig::default();
        Self {
            rpc_url: "http://127.0.0.1:8545".into(),
            deployment: PathBuf::from("deployments/31337.json"),
            confirmations: w.confirmations,
            poll_interval_ms: 2_000,
            max_range: w.max_range,
            reorg_window: w.reorg_window,
            start_block: None,
            rpc_timeout_ms: 20_000,
        }
    }
}

/// `[key]`: an encrypted keystore; the password comes from `password_file` or
/// `ATTESTA_KEYSTORE_PASSWORD`. `ATTESTA_RELAYER_KEY` (hex) overrides both for local devnets.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyConfig {
    /// Web3 Secret Storage file.
    pub keystore: Option<PathBuf>,
    /// File whose first line is the keystore password.
    pub password_file: Option<PathBuf>,
}

/// `[duties]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DutiesConfig {
    /// Time between duty ticks.
    pub interval_ms: u64,
    /// Queue refunds of unsettled jobs past their deadline.
    pub refund_expired: bool,
}

impl Default for DutiesConfig {
    fn default() -> Self {
        Self { interval_ms: 15_000, refund_expired: false }
    }
}

impl Config {
    /// Reads `path` (if given), then applies environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Self, Error> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::Config(format!(
                        "cannot read {}: {e}: pass --config FILE",
                        path.display()
                    ))
                })?;
                Self::from_toml(&text)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?
            }
            None => Self::default(),
        };
        config.apply_env(|name| std::env::var(name).ok());
        Ok(config)
    }

    /// Parses a TOML document (no environment overrides).
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| Error::Config(format!("invalid configuration: {e}")))
    }

    /// Applies `DATABASE_URL`, `ATTESTA_RPC_URL`, `ATTESTA_DEPLOYMENT`, `ATTESTA_KEYSTORE`
    /// as returned by `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) {
        let get = |name| get(name).filter(|v: &String| !v.is_empty());
        if let Some(v) = get(ENV_DATABASE_URL) {
            self.database_url = v;
        }
        if let Some(v) = get(ENV_RPC_URL) {
            self.chain.rpc_url = v;
        }
        if let Some(v) = get(ENV_DEPLOYMENT) {
            self.chain.deployment = v.into();
        }
        if let Some(v) = get(ENV_KEYSTORE) {
            self.key.keystore = Some(v.into());
        }
    }

    /// Whether the RPC URL is a WebSocket one (heads by subscription).
    pub fn subscribes(&self) -> bool {
        self.chain.rpc_url.starts_with("ws://") || self.chain.rpc_url.starts_with("wss://")
    }

    /// The watcher's settings.
    pub fn watcher(&self) -> WatcherConfig {
        WatcherConfig {
            confirmations: self.chain.confirmations,
            poll_interval: Duration::from_millis(self.chain.poll_interval_ms.max(10)),
            max_range: self.chain.max_range.max(1),
            reorg_window: self.chain.reorg_window.max(1),
            start_block: self.chain.start_block,
            subscribe: self.subscribes(),
            rpc_timeout: Duration::from_millis(self.chain.rpc_timeout_ms.max(100)),
        }
    }

    /// The duties' settings.
    pub fn duties(&self) -> DutyConfig {
        DutyConfig {
            interval: Duration::from_millis(self.duties.interval_ms.max(100)),
            refund_expired: self.duties.refund_expired,
            ..DutyConfig::default()
        }
    }

    /// Loads the relayer's transaction key: `ATTESTA_RELAYER_KEY` if set (devnets), else the
    /// keystore with its password. The key and password are never logged.
    pub fn relayer_key(&self) -> Result<PrivateKeySigner, Error> {
        self.relayer_key_with(|name| std::env::var(name).ok())
    }

    /// [`Config::relayer_key`] with environment look-ups through `get`.
    pub fn relayer_key_with(
        &self,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<PrivateKeySigner, Error> {
        if let Some(hex) = get(ENV_RELAYER_KEY).filter(|v| !v.trim().is_empty()) {
            // The parse error could echo the input; say only that it is malformed.
            return hex.trim().parse().map_err(|_| {
                Error::Config(format!("{ENV_RELAYER_KEY} is not a 32-byte hex private key"))
            });
        }
        let Some(keystore) = &self.key.keystore else {
            return Err(Error::Config(format!(
                "no transaction key: set [key] keystore (with password_file or {ENV_KEYSTORE_PASSWORD}), or {ENV_RELAYER_KEY} on a local devnet"
            )));
        };
        let password = match (&self.key.password_file, get(ENV_KEYSTORE_PASSWORD)) {
            (_, Some(p)) if !p.is_empty() => p,
            (Some(file), _) => std::fs::read_to_string(file)
                .map_err(|e| {
                    Error::Config(format!("cannot read password file {}: {e}", file.display()))
                })?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            (None, _) => {
                return Err(Error::Config(format!(
                    "no keystore password: set [key] password_file or {ENV_KEYSTORE_PASSWORD}"
                )));
            }
        };
        PrivateKeySigner::decrypt_keystore(keystore, password).map_err(|e| {
            Error::Config(format!(
                "cannot open keystore {}: {e}: check the password and the file",
                keystore.display()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn toml_then_env_overrides() {
        let mut config = Config::from_toml(
            "database_url = \"sqlite::memory:\"\n[chain]\nrpc_url = \"ws://a\"\nconfirmations = 5\n",
        )
        .unwrap();
        assert_eq!(config.chain.confirmations, 5);
        assert!(config.subscribes());
        config.apply_env(|name| (name == ENV_RPC_URL).then(|| "http://b".to_owned()));
        assert_eq!(config.chain.rpc_url, "http://b");
        assert!(!config.subscribes());
        assert_eq!(config.database_url, "sqlite::memory:");
    }

    #[test]
    fn defaults_and_unknown_keys() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config.database_url, "sqlite://attesta-relayer.db?mode=rwc");
        assert_eq!(config.chain.confirmations, 2);
        assert!(Config::from_toml("[chain]\nconfirmation = 3\n").is_err());
    }

    #[test]
    fn key_from_env_and_keystore_without_leaking() {
        let config = Config::default();
        let hex = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
        let key = config.relayer_key_with(|n| (n == ENV_RELAYER_KEY).then(|| hex.into())).unwrap();
        assert_eq!(
            key.address(),
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
                .parse::<alloy::primitives::Address>()
                .unwrap()
        );
        let err = config
            .relayer_key_with(|n| (n == ENV_RELAYER_KEY).then(|| "0xsecretzz".into()))
            .unwrap_err();
        assert!(!err.to_string().contains("secretzz"));
        assert!(config.relayer_key_with(|_| None).is_err());

        let dir = tempfile::tempdir().unwrap();
        let mut rng = alloy::signers::k256::elliptic_curve::rand_core::OsRng;
        let (_, name) = PrivateKeySigner::new_keystore(dir.path(), &mut rng, "pw", None).unwrap();
        let mut config = Config::default();
        config.key.keystore = Some(dir.path().join(name));
        assert!(config.relayer_key_with(|_| None).is_err());
        let ok = config.relayer_key_with(|n| (n == ENV_KEYSTORE_PASSWORD).then(|| "pw".into()));
        assert!(ok.is_ok());
        let wrong = config.relayer_key_with(|n| (n == ENV_KEYSTORE_PASSWORD).then(|| "no".into()));
        assert!(wrong.is_err());
    }
}
