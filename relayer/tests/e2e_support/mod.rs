//! The process harness of the end-to-end tests (`tests/e2e.rs`) and the end-to-end benchmark
//! (`benches/pipeline.rs`): anvil with 1-second blocks and Attesta deployed, the
//! `attesta-relayer` binary (SIGKILL and restart on the same database and port) and
//! `attesta-node` daemons, each in its own process with its own keystore and log.

#![allow(dead_code, clippy::unwrap_used, clippy::print_stderr, unreachable_pub, missing_docs)]

use alloy::{
    primitives::{Address, B256, U256},
    providers::DynProvider,
    signers::local::PrivateKeySigner,
};
use attesta_sdk::{
    AttestaClient, JobStatus,
    bindings::JobEscrow,
    input::{Input, Tensor, Values},
    keys,
    relay::RelayClient,
    testing::{Devnet, TestOperator},
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};
use tokio::process::{Child, Command};

/// The account test jobs are paid from.
pub const CLIENT: usize = 70;

pub const NODES: usize = 4;
pub const PASSWORD: &str = "e2e-test-password";
/// Time limit of each wait for the chain to reach a state.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// Where cargo put the workspace's binaries: `target/debug` for tests, `target/release` for
/// benchmarks.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

pub fn node_bin() -> PathBuf {
    let bin = bin_dir().join("attesta-node");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --workspace --all-features`",
        bin.display()
    );
    bin
}

/// Fails unless the node binary was built with the test-only `fault-injection` feature.
fn assert_fault_injection(bin: &Path) {
    let version = std::process::Command::new(bin).arg("--version").output().unwrap();
    assert!(
        String::from_utf8_lossy(&version.stdout).contains("fault-injection"),
        "{} lacks the test-only fault injection: build it with `cargo build -p attesta-node --features fault-injection` (the test command builds with --all-features)",
        bin.display()
    );
}

/// How node 3 behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Honest,
    WrongResult,
    Equivocate,
}

/// One relayer process that can be SIGKILLed and restarted on the same database and port.
pub struct Relayer {
    pub name: String,
    pub config: PathBuf,
    pub key: PrivateKeySigner,
    pub url: String,
    pub log: PathBuf,
    pub child: Option<Child>,
    /// Restart → API answering again, per restart.
    pub recoveries: Vec<Duration>,
}

impl Relayer {
    pub fn new(
        name: &str,
        dir: &Path,
        database_url: &str,
        rpc_url: &str,
        deployment: &Path,
        key: PrivateKeySigner,
    ) -> Self {
        let port = free_port();
        // Every process here shares 127.0.0.1, so the per-address rate limit (tested in
        // tests/api.rs) would throttle the nodes and the client as one: lift it.
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "database_url = \"{database_url}\"\n\n[chain]\nrpc_url = \"{rpc_url}\"\n\
                 deployment = \"{}\"\nconfirmations = 2\npoll_interval_ms = 200\nstart_block = 0\n\
                 rpc_timeout_ms = 3000\n\n[duties]\ninterval_ms = 300\nrefund_expired = true\n\n\
                 [api]\nlisten = \"127.0.0.1:{port}\"\nrate_limit_burst = 100000\n\
                 rate_limit_per_second = 100000\n\n[tx]\nconfirmations = 2\n\
                 poll_interval_ms = 200\n",
                deployment.display()
            ),
        )
        .unwrap();
        Self {
            name: name.into(),
            config,
            key,
            url: format!("http://127.0.0.1:{port}"),
            log: dir.join(format!("{name}.log")),
            child: None,
            recoveries: Vec::new(),
        }
    }

    /// Appends TOML (e.g. a `[batch]` section) to the relayer's configuration file.
    pub fn append_config(&self, toml: &str) {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new().append(true).open(&self.config).unwrap();
        writeln!(file, "\n{toml}").unwrap();
    }

    pub async fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_attesta-relayer"))
            .args(["run", "--config"])
            .arg(&self.config)
            .env("ATTESTA_RELAYER_KEY", alloy::hex::encode(self.key.to_bytes()))
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let started = Instant::now();
        wait(&format!("{} API", self.name), || async {
            reqwest::get(format!("{}/healthz", self.url)).await.is_ok()
        })
        .await;
        self.recoveries.push(started.elapsed());
    }

    /// SIGKILL: no shutdown hook runs, whatever was in flight is cut off.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
        }
    }

    pub fn assert_alive(&mut self) {
        if let Some(child) = &mut self.child
            && let Some(status) = child.try_wait().unwrap()
        {
            panic!("{} exited with {status}; log: {}", self.name, self.log.display());
        }
    }
}

pub struct Network {
    pub devnet: Devnet,
    pub dir: tempfile::TempDir,
    pub deployment: PathBuf,
    pub operators: Vec<TestOperator>,
    pub nodes: Vec<Option<Child>>,
    pub client: AttestaClient<DynProvider>,
    pub fee: U256,
    pub model: B256,
    pub rng: StdRng,
    /// `rpc_url` written into node configs (nodes then sign batch proposals).
    pub node_rpc_url: Option<String>,
}

impl Network {
    pub async fn new() -> Self {
        Self::with_nodes(NODES).await
    }

    /// A network with `nodes` registered operators (the threshold follows the registry's
    /// two thirds: 1 of 1, 3 of 4, 11 of 16).
    pub async fn with_nodes(nodes: usize) -> Self {
        let seed = std::env::var("ATTESTA_E2E_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| rand::thread_rng().r#gen());
        eprintln!("e2e seed {seed} (ATTESTA_E2E_SEED={seed} replays the kill points)");
        let devnet = Devnet::spawn_with(&["--block-time", "1"]).await;
        let mut dir = tempfile::tempdir().unwrap();
        if std::env::var_os("ATTESTA_E2E_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("e2e logs kept in {}", dir.path().display());
        }
        let deployment = dir.path().join("deployment.json");
        std::fs::write(&deployment, serde_json::to_vec(&devnet.deployment).unwrap()).unwrap();
        let operators = devnet.add_operators(nodes).await;
        let runtime = std::process::Command::new(node_bin()).arg("runtime-id").output().unwrap();
        let runtime: B256 = String::from_utf8_lossy(&runtime.stdout).trim().parse().unwrap();
        let escrow = JobEscrow::new(devnet.deployment.job_escrow, &devnet.provider);
        devnet.allow_runtime(runtime).await.unwrap();
        let fee = U256::from(escrow.config().call().await.unwrap().minFee) * U256::from(10);
        let client_key = devnet.key(CLIENT);
        devnet.mint(client_key.address(), fee * U256::from(100)).await;
        let client = AttestaClient::new(
            devnet.provider.clone(),
            devnet.deployment.clone(),
            client_key.address(),
        );
        let model = attesta_sdk::model_id(std::fs::read(tiny_model()).unwrap());
        Self {
            devnet,
            dir,
            deployment,
            operators,
            nodes: (0..nodes).map(|_| None).collect(),
            client,
            fee,
            model,
            rng: StdRng::seed_from_u64(seed),
            node_rpc_url: None,
        }
    }

    pub fn relayer(&self, name: &str, database_url: &str, rpc_url: &str, key: usize) -> Relayer {
        Relayer::new(
            name,
            self.dir.path(),
            database_url,
            rpc_url,
            &self.deployment,
            self.devnet.key(key),
        )
    }

    /// Starts node `index` against `relayer_url`, behaving as told.
    pub fn start_node(&mut self, index: usize, relayer_url: &str, behaviour: Behaviour) {
        let home = self.dir.path().join(format!("node-{index}"));
        let keystore = home.join("keystore");
        if !keystore.exists() {
            keys::import(&keystore, &self.operators[index].signer, &keys::Password::new(PASSWORD))
                .unwrap();
        }
        let config = home.join("node.toml");
        std::fs::write(
            &config,
            format!(
                "relayer_url = \"{relayer_url}\"\ndeployment = \"{}\"\ndata_dir = \"{}\"\n\
                 keystore = \"{}\"\nmax_concurrent_jobs = 2\nheartbeat_interval_secs = 2\n\
                 poll_wait_secs = 1\nmax_backoff_secs = 1\nshutdown_grace_secs = 1\n{}",
                self.deployment.display(),
                home.join("data").display(),
                keystore.display(),
                self.node_rpc_url
                    .as_ref()
                    .map(|u| format!("rpc_url = \"{u}\"\n"))
                    .unwrap_or_default()
            ),
        )
        .unwrap();
        let log = self.dir.path().join(format!("node-{index}.log"));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let bin = node_bin();
        if behaviour != Behaviour::Honest {
            assert_fault_injection(&bin);
        }
        let mut command = Command::new(bin);
        command
            .args(["run", "--config"])
            .arg(&config)
            .env(keys::PASSWORD_ENV, PASSWORD)
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        match behaviour {
            Behaviour::Honest => command.env_remove("ATTESTA_TEST_FAULT"),
            Behaviour::WrongResult => command.env("ATTESTA_TEST_FAULT", "wrong-result"),
            Behaviour::Equivocate => command.env("ATTESTA_TEST_FAULT", "equivocate"),
        };
        self.nodes[index] = Some(command.spawn().unwrap());
    }

    pub async fn stop_node(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].take() {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
        }
    }

    /// Uploads the tiny model to `relay` (content-addressed: once is enough for a database).
    pub async fn upload_model(&self, relay: &RelayClient) {
        let stored = relay.upload_blob(std::fs::read(tiny_model()).unwrap()).await.unwrap();
        assert_eq!(stored.hash, self.model);
    }

    /// Uploads an input and creates a job for it; returns its id.
    pub async fn job(&self, relay: &RelayClient, input: Vec<u8>, lifetime: u64) -> U256 {
        let stored = relay.upload_blob(input).await.unwrap();
        let deadline = self.devnet.now().await + lifetime;
        self.client.create_job(self.model, stored.hash, self.fee, deadline).await.unwrap()
    }

    /// `n` jobs with distinct inputs.
    pub async fn jobs(&self, relay: &RelayClient, n: usize, salt: f32) -> Vec<U256> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let x = salt + i as f32;
            ids.push(self.job(relay, tiny_input([x, -x, x * 0.5, 1.0]), 3_600).await);
        }
        ids
    }

    pub async fn status(&self, job: U256) -> JobStatus {
        self.client.job(job).await.unwrap().status
    }

    /// Waits until every job in `jobs` has reached `done`, while `chaos` runs between checks.
    pub async fn until_all(&self, jobs: &[U256], done: fn(JobStatus) -> bool, what: &str) {
        let started = Instant::now();
        loop {
            let mut pending = Vec::new();
            for job in jobs {
                if !done(self.status(*job).await) {
                    pending.push(*job);
                }
            }
            if pending.is_empty() {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "jobs {pending:?} not {what} after {PATIENCE:?}; logs in {}",
                self.dir.path().display()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// A random pause of 0.2 to 2.5 s: where in the pipeline the next fault lands.
    pub fn random_pause(&mut self) -> Duration {
        Duration::from_millis(self.rng.gen_range(200..2_500))
    }

    /// Skips the challenge window (and any deadline) on the chain's clock; the relayers'
    /// duties then release and refund.
    pub async fn skip_challenge_window(&self) {
        let window = JobEscrow::new(self.devnet.deployment.job_escrow, &self.devnet.provider)
            .config()
            .call()
            .await
            .unwrap()
            .challengeWindow
            .to::<u64>();
        self.devnet.advance(window + 3_600).await;
    }

    pub fn signer_addresses(&self, indices: &[usize]) -> BTreeSet<Address> {
        indices.iter().map(|&i| self.operators[i].signer.address()).collect()
    }
}

pub fn tiny_model() -> PathBuf {
    attesta_sdk::testing::repo_root().join("node/testdata/tiny.onnx")
}

pub fn tiny_input(values: [f32; 4]) -> Vec<u8> {
    Input::new(vec![Tensor::new(vec![1, 4], Values::F32(values.to_vec())).unwrap()])
        .unwrap()
        .encode()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `ready` until it holds, for at most [`PATIENCE`].
pub async fn wait<F, Fut>(what: &str, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !ready().await {
        assert!(started.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
