//! Command-line plumbing shared by `attesta` (clients) and `attesta-node` (operators): where the
//! chain is, which account signs, one-line output and logging. Behind the `cli` feature.

use crate::{Deployment, Error, keys};
use alloy::{
    network::EthereumWallet,
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use clap::Args;
use std::{io::Write, path::PathBuf};

/// The chain: deployment file and RPC endpoint.
#[derive(Clone, Debug, Args)]
pub struct ChainArgs {
    /// The deployment file (deployments/<chainId>.json).
    #[arg(long, value_name = "FILE", env = "ATTESTA_DEPLOYMENT")]
    pub deployment: PathBuf,
    /// JSON-RPC endpoint of the chain.
    #[arg(long, value_name = "URL", env = "ATTESTA_RPC_URL")]
    pub rpc_url: Option<String>,
}

impl ChainArgs {
    /// Reads the deployment file.
    pub fn load_deployment(&self) -> Result<Deployment, Error> {
        Deployment::load(&self.deployment)
    }

    /// Connects (signing as `wallet` if given) and checks the endpoint serves the deployment's
    /// chain, which also surfaces a dead endpoint before anything is sent.
    pub async fn connect(
        &self,
        deployment: &Deployment,
        wallet: Option<PrivateKeySigner>,
    ) -> Result<DynProvider, Error> {
        let Some(url) = self.rpc_url.as_deref() else {
            return Err(Error::Usage(
                "no RPC endpoint: pass --rpc-url URL or set $ATTESTA_RPC_URL".into(),
            ));
        };
        let parsed: alloy::transports::http::reqwest::Url = url.parse().map_err(|e| {
            Error::Usage(format!(
                "--rpc-url {url} is not a URL ({e}): pass e.g. http://127.0.0.1:8545"
            ))
        })?;
        let provider = match wallet {
            Some(key) => ProviderBuilder::new()
                .wallet(EthereumWallet::from(key))
                .connect_http(parsed)
                .erased(),
            None => ProviderBuilder::new().connect_http(parsed).erased(),
        };
        let chain_id = provider.get_chain_id().await.map_err(|e| {
            Error::Usage(format!(
                "cannot reach the RPC endpoint {url} ({e}): start the chain node or pass the right --rpc-url"
            ))
        })?;
        if chain_id != deployment.chain_id {
            return Err(Error::Usage(format!(
                "the RPC endpoint {url} serves chain {chain_id}, but the deployment file {} is for chain {}: pass matching --rpc-url and --deployment",
                self.deployment.display(),
                deployment.chain_id
            )));
        }
        Ok(provider)
    }
}

/// The account that sends transactions: a private-key file or a keystore directory.
#[derive(Clone, Debug, Args)]
pub struct AccountArgs {
    /// File holding the account's private key in hex.
    #[arg(
        long,
        value_name = "FILE",
        env = "ATTESTA_PRIVATE_KEY_FILE",
        conflicts_with = "account_keystore"
    )]
    pub private_key_file: Option<PathBuf>,
    /// Keystore directory holding the account's key.
    #[arg(long, value_name = "DIR")]
    pub account_keystore: Option<PathBuf>,
    /// Password file of --account-keystore (else $ATTESTA_KEYSTORE_PASSWORD, else a prompt).
    #[arg(long, value_name = "FILE")]
    pub account_password_file: Option<PathBuf>,
}

impl AccountArgs {
    /// Opens the account key.
    pub fn key(&self) -> Result<PrivateKeySigner, Error> {
        if let Some(file) = &self.private_key_file {
            return Ok(keys::load_private_key_file(file)?);
        }
        if let Some(dir) = &self.account_keystore {
            if !keys::key_path(dir).is_file() {
                return Err(keys::KeyError::NotFound { path: keys::key_path(dir) }.into());
            }
            let password = keys::read_password(self.account_password_file.as_deref(), false)?;
            return Ok(keys::load(dir, &password)?);
        }
        Err(Error::Usage(
            "no account: pass --private-key-file FILE (or $ATTESTA_PRIVATE_KEY_FILE) or --account-keystore DIR".into(),
        ))
    }
}

/// Writes `text` and a newline to stdout. A closed stdout (e.g. `| head`) is not an error worth
/// reporting.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
}

/// Prints a JSON value on one line.
pub fn out_json(value: &serde_json::Value) {
    out(&value.to_string());
}

/// Prints `error: …` on one line to stderr.
pub fn report_error(error: &dyn std::fmt::Display) {
    // One line, whatever the underlying error's formatting.
    let message = error.to_string().replace('\n', " ");
    let _ = writeln!(std::io::stderr().lock(), "error: {message}");
}

/// Logs to stderr: `-v` info, `-vv` debug, default warnings; `RUST_LOG` overrides it.
pub fn init_tracing(verbose: u8) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(match verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        })
    });
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .try_init();
}
