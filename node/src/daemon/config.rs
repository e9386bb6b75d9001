//! The daemon's configuration: a TOML file (see `node/node.example.toml`), then environment
//! variables on top.
//!
//! | key | environment | default |
//! | --- | --- | --- |
//! | `relayer_url` | `ATTESTA_RELAYER_URL` | required |
//! | `deployment` | `ATTESTA_DEPLOYMENT` | required |
//! | `data_dir` | `ATTESTA_DATA_DIR` | required |
//! | `keystore` | `ATTESTA_KEYSTORE` (or `--keystore`) | `~/.attesta/keystore` |
//! | `password_file` | (`--password-file`; else `ATTESTA_KEYSTORE_PASSWORD`, else a prompt) | none |
//! | `max_concurrent_jobs` | `ATTESTA_MAX_CONCURRENT_JOBS` | number of cores, at least 1 |
//! | `sandbox_pool_size` | `ATTESTA_SANDBOX_POOL_SIZE` | `max_concurrent_jobs` (0: every job starts a cold worker) |
//! | `heartbeat_interval_secs` | `ATTESTA_HEARTBEAT_INTERVAL_SECS` | 30 |
//! | `poll_wait_secs` | `ATTESTA_POLL_WAIT_SECS` | 30 |
//! | `shutdown_grace_secs` | `ATTESTA_SHUTDOWN_GRACE_SECS` | 60 |
//! | `request_timeout_secs` | `ATTESTA_REQUEST_TIMEOUT_SECS` | 30 |
//! | `max_backoff_secs` | `ATTESTA_MAX_BACKOFF_SECS` | 30 |
//! | `metrics_addr` | `ATTESTA_METRICS_ADDR` (or `--metrics-addr`) | none (counters go to the log) |
//! | `rpc_url` | `ATTESTA_RPC_URL` | none: no batch signing (see [`super::batch`]) |
//! | `allow_degraded_sandbox` | (`--allow-degraded-sandbox`) | false |
//! | `[limits]` | | [`Limits::default`] |
//!
//! The sandbox opt-out has no environment variable on purpose: weakening isolation must be
//! written down in the config file or typed on the command line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::sandbox::Limits;

/// Why the configuration cannot be used. Each message names the key and what to write.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the config file {path}: {source}; pass --config FILE")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("the config file {path} is invalid: {message}; see node/node.example.toml")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// An environment variable cannot be parsed.
    #[error("${name}={value:?} is invalid: {expected}")]
    Env {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it should look like.
        expected: &'static str,
    },
    /// A required key is missing.
    #[error("the config has no `{key}`: set it in the config file or ${env}")]
    Missing {
        /// The key.
        key: &'static str,
        /// Its environment variable.
        env: &'static str,
    },
    /// A value is out of range or malformed.
    #[error("`{key}` {problem}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// What is wrong and what to write instead.
        problem: String,
    },
}

/// Sandbox limits of each job; every key is optional and defaults to [`Limits::default`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Address space (`RLIMIT_AS`), bytes.
    pub address_space: Option<u64>,
    /// CPU time, seconds.
    pub cpu_seconds: Option<u64>,
    /// Wall-clock time, seconds.
    pub wall_clock_secs: Option<u64>,
    /// Open file descriptors.
    pub open_files: Option<u64>,
    /// Processes of the user.
    pub processes: Option<u64>,
    /// Largest file the job may write, bytes.
    pub file_size: Option<u64>,
    /// Largest input, bytes.
    pub max_input: Option<u64>,
    /// Largest output, bytes.
    pub max_output: Option<u64>,
}

impl LimitsConfig {
    /// The sandbox limits: the defaults with the configured values on top.
    pub fn limits(&self) -> Limits {
        let d = Limits::default();
        Limits {
            address_space: self.address_space.unwrap_or(d.address_space),
            cpu_seconds: self.cpu_seconds.unwrap_or(d.cpu_seconds),
            wall_clock: self.wall_clock_secs.map(Duration::from_secs).unwrap_or(d.wall_clock),
            open_files: self.open_files.unwrap_or(d.open_files),
            processes: self.processes.unwrap_or(d.processes),
            file_size: self.file_size.unwrap_or(d.file_size),
            max_input: self.max_input.unwrap_or(d.max_input),
            max_output: self.max_output.unwrap_or(d.max_output),
        }
    }
}

/// The config file as written (see the module docs for keys and defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Base URL of the relayer, e.g. `https://relayer.example.org`.
    pub relayer_url: Option<String>,
    /// The deployment file (`deployments/<chainId>.json`): chain id and escrow, the EIP-712
    /// domain attestations are signed in.
    pub deployment: Option<PathBuf>,
    /// Model and input cache, and per-job scratch directories.
    pub data_dir: Option<PathBuf>,
    /// Keystore directory.
    pub keystore: Option<PathBuf>,
    /// File holding the keystore password.
    pub password_file: Option<PathBuf>,
    /// Jobs run at the same time.
    pub max_concurrent_jobs: Option<usize>,
    /// Sandboxed workers kept prepared ahead of their job ([`crate::sandbox::Pool`]); 0 turns
    /// the pool off.
    pub sandbox_pool_size: Option<usize>,
    /// Seconds between heartbeats.
    pub heartbeat_interval_secs: Option<u64>,
    /// Seconds the relayer may hold a work request open.
    pub poll_wait_secs: Option<u64>,
    /// Seconds running jobs get to finish after SIGINT/SIGTERM.
    pub shutdown_grace_secs: Option<u64>,
    /// Seconds any other request to the relayer may take.
    pub request_timeout_secs: Option<u64>,
    /// Longest wait between retries when the relayer is unreachable or busy.
    pub max_backoff_secs: Option<u64>,
    /// Serve Prometheus metrics at `http://ADDR/metrics`.
    pub metrics_addr: Option<SocketAddr>,
    /// JSON-RPC endpoint of the deployment's chain (http(s)). With it the node signs batch
    /// proposals after checking each job on-chain; without it, it signs none.
    pub rpc_url: Option<String>,
    /// Run jobs even if the kernel lacks sandbox features (weaker isolation; loudly logged).
    pub allow_degraded_sandbox: bool,
    /// Sandbox limits of each job.
    pub limits: LimitsConfig,
}

impl NodeConfig {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text)
            .map_err(|message| ConfigError::Parse { path: path.to_path_buf(), message })
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().replace('\n', " "))
    }

    /// Makes the file's relative paths relative to `base` (the config file's directory), so the
    /// daemon does not depend on where it was started from.
    pub fn resolve_paths(&mut self, base: &Path) {
        for path in
            [&mut self.deployment, &mut self.data_dir, &mut self.keystore, &mut self.password_file]
                .into_iter()
                .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// Applies the environment variables of the module docs; `get` looks one up.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn number<T: std::str::FromStr>(
            name: &'static str,
            value: String,
        ) -> Result<T, ConfigError> {
            value.trim().parse().map_err(|_| ConfigError::Env {
                name,
                value,
                expected: "a whole number",
            })
        }
        if let Some(v) = get("ATTESTA_RELAYER_URL") {
            self.relayer_url = Some(v);
        }
        if let Some(v) = get("ATTESTA_DEPLOYMENT") {
            self.deployment = Some(v.into());
        }
        if let Some(v) = get("ATTESTA_RPC_URL") {
            self.rpc_url = Some(v);
        }
        if let Some(v) = get("ATTESTA_DATA_DIR") {
            self.data_dir = Some(v.into());
        }
        if let Some(v) = get("ATTESTA_KEYSTORE") {
            self.keystore = Some(v.into());
        }
        if let Some(v) = get("ATTESTA_MAX_CONCURRENT_JOBS") {
            self.max_concurrent_jobs = Some(number("ATTESTA_MAX_CONCURRENT_JOBS", v)?);
        }
        if let Some(v) = get("ATTESTA_SANDBOX_POOL_SIZE") {
            self.sandbox_pool_size = Some(number("ATTESTA_SANDBOX_POOL_SIZE", v)?);
        }
        if let Some(v) = get("ATTESTA_HEARTBEAT_INTERVAL_SECS") {
            self.heartbeat_interval_secs = Some(number("ATTESTA_HEARTBEAT_INTERVAL_SECS", v)?);
        }
        if let Some(v) = get("ATTESTA_POLL_WAIT_SECS") {
            self.poll_wait_secs = Some(number("ATTESTA_POLL_WAIT_SECS", v)?);
        }
        if let Some(v) = get("ATTESTA_SHUTDOWN_GRACE_SECS") {
            self.shutdown_grace_secs = Some(number("ATTESTA_SHUTDOWN_GRACE_SECS", v)?);
        }
        if let Some(v) = get("ATTESTA_REQUEST_TIMEOUT_SECS") {
            self.request_timeout_secs = Some(number("ATTESTA_REQUEST_TIMEOUT_SECS", v)?);
        }
        if let Some(v) = get("ATTESTA_MAX_BACKOFF_SECS") {
            self.max_backoff_secs = Some(number("ATTESTA_MAX_BACKOFF_SECS", v)?);
        }
        if let Some(v) = get("ATTESTA_METRICS_ADDR") {
            self.metrics_addr = Some(v.trim().parse().map_err(|_| ConfigError::Env {
                name: "ATTESTA_METRICS_ADDR",
                value: v,
                expected: "an address like 127.0.0.1:9100",
            })?);
        }
        Ok(())
    }

    /// Checks the values and fills in defaults: the settings the daemon runs with.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let url = self
            .relayer_url
            .as_deref()
            .ok_or(ConfigError::Missing { key: "relayer_url", env: "ATTESTA_RELAYER_URL" })?;
        let relayer_url: reqwest::Url = url.parse().map_err(|e| ConfigError::Invalid {
            key: "relayer_url",
            problem: format!("{url:?} is not a URL ({e}): write e.g. \"http://127.0.0.1:8080\""),
        })?;
        if !matches!(relayer_url.scheme(), "http" | "https") {
            return Err(ConfigError::Invalid {
                key: "relayer_url",
                problem: format!("{url:?} must start with http:// or https://"),
            });
        }
        let rpc_url = match self.rpc_url.as_deref() {
            None => None,
            Some(url) => {
                let parsed: reqwest::Url = url.parse().map_err(|e| ConfigError::Invalid {
                    key: "rpc_url",
                    problem: format!(
                        "{url:?} is not a URL ({e}): write e.g. \"http://127.0.0.1:8545\""
                    ),
                })?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(ConfigError::Invalid {
                        key: "rpc_url",
                        problem: format!("{url:?} must start with http:// or https://"),
                    });
                }
                Some(parsed)
            }
        };
        let data_dir = self
            .data_dir
            .clone()
            .ok_or(ConfigError::Missing { key: "data_dir", env: "ATTESTA_DATA_DIR" })?;
        let secs = |key: &'static str, value: Option<u64>, default: u64, max: u64| {
            let v = value.unwrap_or(default);
            if v == 0 || v > max {
                return Err(ConfigError::Invalid {
                    key,
                    problem: format!("is {v}: give seconds between 1 and {max}"),
                });
            }
            Ok(Duration::from_secs(v))
        };
        let max_concurrent_jobs = match self.max_concurrent_jobs {
            Some(0) => {
                return Err(ConfigError::Invalid {
                    key: "max_concurrent_jobs",
                    problem: "is 0: give at least 1 (or leave it out for one per core)".into(),
                });
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map(usize::from).unwrap_or(1).max(1),
        };
        let limits = self.limits.limits();
        if limits.wall_clock.is_zero() {
            return Err(ConfigError::Invalid {
                key: "limits.wall_clock_secs",
                problem: "is 0: give the seconds a job may run".into(),
            });
        }
        let max_output = attesta_sdk::canonical::MAX_OUTPUT_BYTES as u64;
        if limits.max_output == 0 || limits.max_output > max_output {
            return Err(ConfigError::Invalid {
                key: "limits.max_output",
                problem: format!(
                    "is {}: give 1 to {max_output} bytes (no escrow accepts a longer output)",
                    limits.max_output
                ),
            });
        }
        Ok(Settings {
            relayer_url,
            data_dir,
            max_concurrent_jobs,
            sandbox_pool_size: self.sandbox_pool_size.unwrap_or(max_concurrent_jobs),
            heartbeat_interval: secs(
                "heartbeat_interval_secs",
                self.heartbeat_interval_secs,
                30,
                3600,
            )?,
            poll_wait: secs("poll_wait_secs", self.poll_wait_secs, 30, 300)?,
            shutdown_grace: secs("shutdown_grace_secs", self.shutdown_grace_secs, 60, 86_400)?,
            request_timeout: secs("request_timeout_secs", self.request_timeout_secs, 30, 3600)?,
            max_backoff: secs("max_backoff_secs", self.max_backoff_secs, 30, 3600)?,
            metrics_addr: self.metrics_addr,
            rpc_url,
            allow_degraded_sandbox: self.allow_degraded_sandbox,
            limits,
            worker: None,
        })
    }
}

/// What the daemon runs with: a checked [`NodeConfig`] with defaults filled in.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Base URL of the relayer.
    pub relayer_url: reqwest::Url,
    /// Cache and scratch directories live here.
    pub data_dir: PathBuf,
    /// Jobs run at the same time (at least 1).
    pub max_concurrent_jobs: usize,
    /// Sandboxed workers kept prepared ahead of their job; 0: none.
    pub sandbox_pool_size: usize,
    /// Time between heartbeats.
    pub heartbeat_interval: Duration,
    /// How long the relayer may hold a work request open.
    pub poll_wait: Duration,
    /// How long running jobs get to finish after shutdown starts.
    pub shutdown_grace: Duration,
    /// Timeout of requests other than long polls and blob downloads.
    pub request_timeout: Duration,
    /// Longest wait between retries.
    pub max_backoff: Duration,
    /// Serve Prometheus metrics here.
    pub metrics_addr: Option<SocketAddr>,
    /// The chain endpoint batch proposals are checked against; `None`: no batch signing.
    pub rpc_url: Option<reqwest::Url>,
    /// Run jobs in a degraded sandbox when the kernel lacks features.
    pub allow_degraded_sandbox: bool,
    /// Sandbox limits of each job.
    pub limits: Limits,
    /// The worker executable [default: this binary]. Tests that run the daemon in-process point
    /// it at the `attesta-node` binary.
    pub worker: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MINIMAL: &str = r#"
        relayer_url = "http://127.0.0.1:8080"
        deployment = "deployments/31337.json"
        data_dir = "/var/lib/attesta-node"
    "#;

    #[test]
    fn defaults_fill_in_what_the_file_leaves_out() {
        let s = NodeConfig::parse(MINIMAL).unwrap().settings().unwrap();
        assert_eq!(s.relayer_url.as_str(), "http://127.0.0.1:8080/");
        assert!(s.max_concurrent_jobs >= 1);
        assert_eq!(s.sandbox_pool_size, s.max_concurrent_jobs);
        assert_eq!(s.heartbeat_interval, Duration::from_secs(30));
        assert_eq!(s.limits, Limits::default());
        assert!(!s.allow_degraded_sandbox);
    }

    #[test]
    fn environment_overrides_the_file() {
        let mut c = NodeConfig::parse(MINIMAL).unwrap();
        c.apply_env(|name| match name {
            "ATTESTA_RELAYER_URL" => Some("https://relayer.example.org".into()),
            "ATTESTA_MAX_CONCURRENT_JOBS" => Some("3".into()),
            "ATTESTA_METRICS_ADDR" => Some("127.0.0.1:9100".into()),
            _ => None,
        })
        .unwrap();
        let s = c.settings().unwrap();
        assert_eq!(s.relayer_url.as_str(), "https://relayer.example.org/");
        assert_eq!(s.max_concurrent_jobs, 3);
        assert_eq!(s.metrics_addr, Some("127.0.0.1:9100".parse().unwrap()));
        let bad = c.apply_env(|n| (n == "ATTESTA_POLL_WAIT_SECS").then(|| "soon".into()));
        assert!(matches!(bad, Err(ConfigError::Env { name: "ATTESTA_POLL_WAIT_SECS", .. })));
    }

    #[test]
    fn limits_override_only_what_is_given() {
        let c = NodeConfig::parse(&format!("{MINIMAL}\n[limits]\nwall_clock_secs = 5\n")).unwrap();
        let limits = c.settings().unwrap().limits;
        assert_eq!(limits.wall_clock, Duration::from_secs(5));
        assert_eq!(limits.cpu_seconds, Limits::default().cpu_seconds);
    }

    #[test]
    fn the_example_config_parses() {
        let c = NodeConfig::parse(include_str!("../../node.example.toml")).unwrap();
        assert_eq!(c.settings().unwrap().limits, Limits::default());
    }

    #[test]
    fn typos_missing_keys_and_bad_values_are_refused() {
        assert!(NodeConfig::parse(&format!("{MINIMAL}\nrelayer_ulr = \"x\"\n")).is_err());
        assert!(NodeConfig::parse(&format!("{MINIMAL}\n[limits]\nwall_clock = 5\n")).is_err());
        let missing = NodeConfig::parse("data_dir = \"/x\"").unwrap().settings();
        assert!(matches!(missing, Err(ConfigError::Missing { key: "relayer_url", .. })));
        for extra in
            ["max_concurrent_jobs = 0", "poll_wait_secs = 0", "heartbeat_interval_secs = 0"]
        {
            let c = NodeConfig::parse(&format!("{MINIMAL}\n{extra}\n")).unwrap();
            assert!(matches!(c.settings(), Err(ConfigError::Invalid { .. })), "{extra}");
        }
        let ftp = NodeConfig::parse(&MINIMAL.replace("http://", "ftp://")).unwrap();
        assert!(matches!(ftp.settings(), Err(ConfigError::Invalid { key: "relayer_url", .. })));
    }
}
