//! The `attesta` binary as a client runs it, against a real anvil chain: errors that change
//! nothing, refunds and claims that move exact amounts. The submit-and-wait path through a
//! relayer and nodes is covered by the end-to-end test of the relayer crate.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address, U256};
use attesta_sdk::{AttestaClient, testing::Devnet};
use std::process::{Command, Output};
use tempfile::TempDir;

/// A devnet plus the files the CLI reads: the deployment and a client's private key.
struct Env {
    net: Devnet,
    dir: TempDir,
    client: Address,
}

impl Env {
    async fn new() -> Self {
        let net = Devnet::spawn().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("deployment.json"),
            serde_json::to_vec(&net.deployment).unwrap(),
        )
        .unwrap();
        let key = net.key(70);
        std::fs::write(dir.path().join("key"), alloy::hex::encode(key.to_bytes())).unwrap();
        Self { client: key.address(), net, dir }
    }

    fn chain_args(&self) -> Vec<String> {
        vec![
            "--deployment".into(),
            self.dir.path().join("deployment.json").display().to_string(),
            "--rpc-url".into(),
            self.net.anvil.endpoint(),
        ]
    }

    fn account_args(&self) -> Vec<String> {
        vec!["--private-key-file".into(), self.dir.path().join("key").display().to_string()]
    }

    /// Runs `attesta` off the async runtime (it blocks while the chain answers).
    async fn run(&self, args: Vec<String>) -> Output {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_attesta"))
                .args(args)
                .env_remove("ATTESTA_RELAYER_URL")
                .env_remove("ATTESTA_RPC_URL")
                .env_remove("ATTESTA_DEPLOYMENT")
                .env_remove("ATTESTA_PRIVATE_KEY_FILE")
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    }

    fn sdk(&self) -> AttestaClient<alloy::providers::DynProvider> {
        AttestaClient::new(self.net.provider.clone(), self.net.deployment.clone(), self.client)
    }

    async fn job_count(&self) -> U256 {
        self.sdk().escrow().jobCount().call().await.unwrap()
    }
}

fn args(parts: &[&str], more: &[Vec<String>]) -> Vec<String> {
    let mut all: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
    for m in more {
        all.extend(m.iter().cloned());
    }
    all
}

/// Exit code 1 with one `error:` line containing `needle`, and no panic.
fn user_error(o: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(needle), "expected {needle:?} in {line:?}");
}

#[tokio::test]
async fn submit_errors_are_clear_and_escrow_nothing() {
    let env = Env::new().await;
    let input = env.dir.path().join("input.bin");
    std::fs::write(&input, b"not an ATI1 input").unwrap();
    let model = format!("{}", alloy::primitives::B256::repeat_byte(1));
    let base = ["job", "submit", "--model", &model, "--input"];

    // A malformed input is refused before anything else.
    let o = env
        .run(args(
            &base,
            &[
                vec![input.display().to_string(), "--relayer".into(), "http://127.0.0.1:9".into()],
                env.chain_args(),
                env.account_args(),
            ],
        ))
        .await;
    user_error(&o, "job input");

    // A dead relayer is named, with what to do.
    let o = env
        .run(args(
            &base,
            &[
                vec![
                    input.display().to_string(),
                    "--encode".into(),
                    "magika".into(),
                    "--relayer".into(),
                    "http://127.0.0.1:9".into(),
                ],
                env.chain_args(),
                env.account_args(),
            ],
        ))
        .await;
    user_error(&o, "cannot reach the relayer");
    assert_eq!(env.job_count().await, U256::ZERO);

    // Bad usage is exit code 2.
    let o = env.run(args(&["job", "submit", "--model", "0x12"], &[])).await;
    assert_eq!(o.status.code(), Some(2));
}

#[tokio::test]
async fn refund_returns_the_exact_fee_once() {
    let env = Env::new().await;
    let sdk = env.sdk();
    let fee = U256::from(sdk.escrow().config().call().await.unwrap().minFee);
    env.net.mint(env.client, fee).await;
    let deadline = env.net.now().await + 3_600;
    let job = sdk
        .create_job(
            alloy::primitives::B256::repeat_byte(1),
            alloy::primitives::B256::repeat_byte(2),
            fee,
            deadline,
        )
        .await
        .unwrap();
    let id = job.to_string();

    // Before the deadline the contract's own error comes through, decoded.
    let o = env.run(args(&["job", "refund", &id], &[env.chain_args(), env.account_args()])).await;
    user_error(&o, "JobEscrowDeadlineNotReached");

    let o = env.run(args(&["job", "status", &id, "--json"], &[env.chain_args()])).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["status"], "Created");

    env.net.advance(3_601).await;
    let token = sdk.token();
    let before = token.balanceOf(env.client).call().await.unwrap();
    let o = env
        .run(args(&["job", "refund", &id, "--json"], &[env.chain_args(), env.account_args()]))
        .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let refunded: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(refunded["amount"], fee.to_string());
    assert_eq!(token.balanceOf(env.client).call().await.unwrap(), before + fee);

    // Nothing is paid twice.
    let o = env.run(args(&["job", "claim"], &[env.chain_args(), env.account_args()])).await;
    user_error(&o, "owes");
    let o = env.run(args(&["job", "refund", &id], &[env.chain_args(), env.account_args()])).await;
    user_error(&o, "JobEscrowWrongStatus");
    let o = env.run(args(&["job", "status", "999"], &[env.chain_args()])).await;
    user_error(&o, "there is no job 999");
}
