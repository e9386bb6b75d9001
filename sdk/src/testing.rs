//! Test helpers (feature `test-utils`): a real anvil chain with Attesta deployed by the repo's own
//! `script/Deploy.s.sol`, funded accounts, and staked operators. Used by the sdk's, the relayer's
//! and the node's integration tests.

#![allow(clippy::unwrap_used, missing_docs)]

use crate::{Deployment, OperatorClient, bindings::TestToken};
use alloy::{
    network::EthereumWallet,
    node_bindings::{Anvil, AnvilInstance},
    primitives::{Address, B256, U256, keccak256},
    providers::{DynProvider, Provider, ProviderBuilder, ext::AnvilApi},
    signers::local::PrivateKeySigner,
};
use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

/// The runtime id the test deployments allow.
pub fn test_runtime_id() -> B256 {
    keccak256("attesta/test-runtime/v1")
}

/// The repository root (the sdk lives in `<root>/sdk`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A Foundry binary installed from npm by `npm ci` (`forge`, `anvil`, `cast`).
pub fn foundry_bin(tool: &str) -> PathBuf {
    let path =
        repo_root().join("node_modules/@foundry-rs").join(format!("{tool}-linux-amd64/bin/{tool}"));
    assert!(path.exists(), "{} is missing: run `npm ci` (make install) first", path.display());
    path
}

/// Number of funded test accounts: enough for 32 operators, their signing keys and clients.
/// Account 0 is anvil's first dev account (the deployer); the others are derived from fixed seeds
/// and funded with `anvil_setBalance`.
pub const ACCOUNTS: usize = 80;

/// A local chain with Attesta deployed.
pub struct Devnet {
    pub anvil: AnvilInstance,
    pub deployment: Deployment,
    /// One provider that can sign for every anvil account (pick one with `.from(..)`).
    pub provider: DynProvider,
    _watchdog: MiningWatchdog,
}

/// An operator account and its (separate) signing key.
#[derive(Clone, Debug)]
pub struct TestOperator {
    pub account: PrivateKeySigner,
    pub signer: PrivateKeySigner,
}

impl Devnet {
    /// Starts anvil and deploys with `script/Deploy.s.sol` (allowing [`test_runtime_id`]).
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Like [`Devnet::spawn`], with extra anvil arguments (e.g. `--block-time 1`).
    pub async fn spawn_with(anvil_args: &[&str]) -> Self {
        let anvil = Anvil::at(foundry_bin("anvil")).args(anvil_args).spawn();
        let watchdog = MiningWatchdog::start(anvil.endpoint_url());
        let deployment = deploy(&anvil.endpoint());
        let keys: Vec<PrivateKeySigner> = (0..ACCOUNTS).map(|i| test_key(&anvil, i)).collect();
        let mut wallet = EthereumWallet::from(keys[0].clone());
        for key in &keys[1..] {
            wallet.register_signer(key.clone());
        }
        // Tests send transactions that must revert; a cached nonce would be spent on them and stall
        // every later transaction of that account, so nonces are read from the chain each time.
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(wallet)
            .connect_http(anvil.endpoint_url())
            .erased();
        let ether = U256::from(10).pow(U256::from(18));
        for key in &keys[1..] {
            provider.anvil_set_balance(key.address(), ether * U256::from(1000)).await.unwrap();
        }
        Self { anvil, deployment, provider, _watchdog: watchdog }
    }

    /// Test account `index` as a local signer (0 is the deployer).
    pub fn key(&self, index: usize) -> PrivateKeySigner {
        test_key(&self.anvil, index)
    }

    /// The deployer, who holds every governance role on a local deployment.
    pub fn admin(&self) -> Address {
        self.deployment.admin
    }

    /// Mints test tokens.
    pub async fn mint(&self, to: Address, amount: U256) {
        TestToken::new(self.deployment.token, &self.provider)
            .mint(to, amount)
            .from(self.admin())
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
    }

    /// Adds `n` operators with the minimum stake, each with its own signing key (anvil accounts
    /// 1..=2n: odd ones operate, even ones sign). They become active in order.
    pub async fn add_operators(&self, n: usize) -> Vec<TestOperator> {
        assert!(2 * n < ACCOUNTS, "at most {} operators", (ACCOUNTS - 1) / 2);
        let min_stake =
            crate::bindings::StakingRegistry::new(self.deployment.staking_registry, &self.provider)
                .minStake()
                .call()
                .await
                .unwrap();
        let mut ops = Vec::with_capacity(n);
        for i in 0..n {
            let op = TestOperator { account: self.key(1 + 2 * i), signer: self.key(2 + 2 * i) };
            self.mint(op.account.address(), min_stake).await;
            let client = OperatorClient::new(
                self.provider.clone(),
                self.deployment.clone(),
                op.account.address(),
            );
            client.stake(min_stake).await.unwrap();
            client.register_signer(&op.signer).await.unwrap();
            ops.push(op);
        }
        ops
    }

    /// Lets jobs settle under `runtime_id` (the deployer holds the admin role).
    pub async fn allow_runtime(&self, runtime_id: B256) -> Result<(), crate::Error> {
        let escrow = crate::bindings::JobEscrow::new(self.deployment.job_escrow, &self.provider);
        crate::client::send(escrow.setRuntimeAllowed(runtime_id, true), self.admin()).await?;
        Ok(())
    }

    /// Moves the chain's clock forward by `seconds` and mines a block.
    pub async fn advance(&self, seconds: u64) {
        self.provider.anvil_increase_time(seconds).await.unwrap();
        self.provider.anvil_mine(Some(1), None).await.unwrap();
    }

    /// The latest block's timestamp.
    pub async fn now(&self) -> u64 {
        use alloy::eips::BlockNumberOrTag;
        let block = self.provider.get_block_by_number(BlockNumberOrTag::Latest).await.unwrap();
        block.unwrap().header.timestamp
    }
}

/// Works around anvil's automine occasionally leaving ready transactions in its pool unmined
/// (foundry-rs/foundry#10122; seen here as a test or `forge script` waiting forever for a receipt
/// on a loaded machine): while automine is on, a pool that holds pending transactions on three
/// polls in a row (over a second; automine takes milliseconds) gets a block mined. Inert when a
/// test turns automine off or mines on an interval, so stuck-transaction tests keep their stuck
/// transactions. Runs on its own thread because `deploy` blocks the test's runtime.
struct MiningWatchdog {
    stop: Arc<AtomicBool>,
}

impl MiningWatchdog {
    fn start(url: reqwest::Url) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                let provider = ProviderBuilder::new().connect_http(url);
                let mut stuck_polls = 0;
                while !flag.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    let pending = match provider.anvil_get_auto_mine().await {
                        Ok(true) => provider
                            .raw_request::<_, serde_json::Value>("txpool_status".into(), ())
                            .await
                            .ok()
                            .and_then(|s| s["pending"].as_str().map(str::to_owned))
                            .and_then(|hex| {
                                u64::from_str_radix(hex.trim_start_matches("0x"), 16).ok()
                            })
                            .unwrap_or(0),
                        _ => 0,
                    };
                    stuck_polls = if pending > 0 { stuck_polls + 1 } else { 0 };
                    if stuck_polls >= 3 {
                        tracing::warn!(
                            pending,
                            "devnet watchdog: anvil's automine left ready transactions unmined \
                             for over a second (foundry-rs/foundry#10122); mining a block"
                        );
                        let _ = provider.evm_mine(None).await;
                        stuck_polls = 0;
                    }
                }
            });
        });
        Self { stop }
    }
}

impl Drop for MiningWatchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn test_key(anvil: &AnvilInstance, index: usize) -> PrivateKeySigner {
    if index == 0 {
        return anvil.keys()[0].clone().into();
    }
    let seed = keccak256(format!("attesta-test-account-{index}"));
    PrivateKeySigner::from_bytes(&seed).unwrap()
}

/// Runs `script/Deploy.s.sol` against `rpc_url` and reads the deployment it wrote.
///
/// Serialised across processes with a file lock: forge shares one build cache per repository.
pub fn deploy(rpc_url: &str) -> Deployment {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let root = repo_root();
    let file =
        format!("test-{}-{}.json", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    std::fs::create_dir_all(root.join("deployments")).unwrap();
    let lock = File::create(root.join("deployments/.deploy.lock")).unwrap();
    lock.lock().unwrap();
    let output = Command::new(foundry_bin("forge"))
        .args([
            "script",
            "script/Deploy.s.sol",
            "--rpc-url",
            rpc_url,
            "--broadcast",
            "-q",
            "--skip",
            "test",
        ])
        .env("ATTESTA_DEPLOYMENT_FILE", &file)
        .env("ATTESTA_RUNTIME_IDS", test_runtime_id().to_string())
        .current_dir(&root)
        .output()
        .unwrap();
    lock.unlock().unwrap();
    assert!(
        output.status.success(),
        "forge script failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let path = root.join("deployments").join(&file);
    let deployment = Deployment::load(&path).unwrap();
    std::fs::remove_file(path).ok();
    deployment
}
