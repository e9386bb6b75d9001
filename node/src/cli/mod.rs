//! The command line: argument parsing, logging, exit codes and the shared plumbing of the
//! commands (one module per command group).
//!
//! Exit codes: 0 success, 1 a user-fixable error (the message says what to do), 2 bad usage.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use alloy::signers::local::PrivateKeySigner;
use attesta_node::keys::{self, KeyError};
use clap::{Args, Parser, Subcommand};

mod attest;
mod exec;
mod keys_cmd;
mod operator;
mod run;

/// The version line; a test build with dishonest behaviour says so, so it can never pass for a
/// release (and the end-to-end tests can check they got the build they need).
#[cfg(not(feature = "fault-injection"))]
const VERSION: &str = env!("CARGO_PKG_VERSION");
#[cfg(feature = "fault-injection")]
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (TEST BUILD: fault-injection)");

/// Attesta compute node: sandboxed, deterministic ONNX inference and signed attestations.
#[derive(Debug, Parser)]
#[command(name = "attesta-node", version = VERSION, about, propagate_version = true)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage the signing keystore.
    #[command(subcommand)]
    Keys(keys_cmd::KeysCommand),
    /// Stake, register the signing key, activate, unstake, withdraw and inspect the operator's
    /// position.
    #[command(subcommand)]
    Operator(operator::OperatorCommand),
    /// Run one job in the sandbox and print its hashes, output location and timings.
    Exec(exec::ExecArgs),
    /// Sign an attestation for a finished job with the keystore's signing key.
    Attest(attest::AttestArgs),
    /// Run the node: take work from a relayer, run jobs in the sandbox, post attestations.
    Run(run::RunArgs),
    /// Print this node's runtime id (governance must allow it on JobEscrow).
    RuntimeId {
        /// Print one JSON object (id and the descriptor it hashes).
        #[arg(long)]
        json: bool,
    },
}

/// Where the signing keystore is and how to open it.
#[derive(Debug, Args)]
pub(crate) struct KeystoreArgs {
    /// Keystore directory [default: ~/.attesta/keystore].
    #[arg(long, value_name = "DIR", env = "ATTESTA_KEYSTORE")]
    keystore: Option<PathBuf>,
    /// File holding the keystore password (else $ATTESTA_KEYSTORE_PASSWORD, else a prompt).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
}

impl KeystoreArgs {
    pub(crate) fn dir(&self) -> PathBuf {
        self.keystore.clone().unwrap_or_else(keys::default_keystore_dir)
    }

    /// Opens the signing key.
    pub(crate) fn load(&self) -> Result<PrivateKeySigner, CliError> {
        let dir = self.dir();
        // Check the file first so a missing keystore is not preceded by a password prompt.
        if !keys::key_path(&dir).is_file() {
            return Err(KeyError::NotFound { path: keys::key_path(&dir) }.into());
        }
        let password = keys::read_password(self.password_file.as_deref(), false)?;
        Ok(keys::load(&dir, &password)?)
    }
}

/// The chain (deployment file, RPC endpoint) and the account that sends, shared with `attesta`.
pub(crate) use attesta_sdk::cli::{AccountArgs as SenderArgs, ChainArgs, out, out_json};

/// Everything a command can fail with; all exit with code 1.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Keystore trouble.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Chain or sdk trouble.
    #[error(transparent)]
    Sdk(#[from] attesta_sdk::Error),
    /// The sandboxed job failed.
    #[error(transparent)]
    Sandbox(#[from] attesta_node::sandbox::SandboxError),
    /// A file cannot be read or written.
    #[error("{what} {path}: {source}; check the path and its permissions")]
    File {
        /// What the file is.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Anything else the user can fix; the message says how.
    #[error("{0}")]
    User(String),
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::File { what, path: path.to_path_buf(), source })
}

/// A single-threaded tokio runtime, built only by the commands that talk to a chain.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::User(format!("cannot start the async runtime: {e}")))?;
    Ok(runtime.block_on(future))
}

/// Parses the arguments, runs the command, and maps the outcome to an exit code.
pub(crate) fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    // The daemon reports what it does at info level unless told otherwise.
    attesta_sdk::cli::init_tracing(if matches!(cli.command, Command::Run(_)) {
        cli.verbose.max(1)
    } else {
        cli.verbose
    });
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the underlying error's formatting.
            let message = e.to_string().replace('\n', " ");
            let _ = writeln!(std::io::stderr().lock(), "error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Keys(cmd) => keys_cmd::run(cmd),
        Command::Operator(cmd) => operator::run(cmd),
        Command::Exec(args) => exec::run(args),
        Command::Attest(args) => attest::run(args),
        Command::Run(args) => run::run(args),
        Command::RuntimeId { json } => {
            let id = attesta_node::runtime::runtime_id();
            if json {
                out_json(&serde_json::json!({
                    "runtimeId": id.to_string(),
                    "descriptor": attesta_node::runtime::runtime_descriptor(),
                }));
            } else {
                out(&id.to_string());
            }
            Ok(())
        }
    }
}
