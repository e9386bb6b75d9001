//! `attesta-demo`: a whole local Attesta network in one command (`make demo`).
//!
//! Starts anvil and deploys the contracts, stakes four operators (M = 3), starts the relayer on
//! SQLite and four nodes (each its own process, keystore and data dir), uploads the magika demo
//! model, submits one job per demo file through the sdk plus one job no node can run, and waits
//! until every served job is settled, released and paid and the unserved one refunded. Prints a
//! table of results, signers, gas and payouts, and the balances before and after; exits 0 only
//! if every job settled and paid correctly.

use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider},
};
use attesta_sdk::{
    AttestaClient, JobStatus,
    bindings::JobEscrow,
    canonical::CanonicalOutput,
    cli::out,
    input, keys,
    relay::{RelayClient, RelayJobStatus},
    testing::{Devnet, TestOperator, repo_root},
};
use clap::Parser;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};
use tokio::process::{Child, Command};

/// Nodes in the demo network; the registry's threshold makes M = 3 of them.
const NODES: usize = 4;
/// The keystore password of the demo's throwaway node keys.
const DEMO_PASSWORD: &str = "attesta-demo";
/// Files whose content type the demo asks the network to classify.
const DEMO_FILES: &[&str] =
    &["README.md", "contracts/JobEscrow.sol", "sdk/src/lib.rs", "package.json", "tools/test"];

/// A local Attesta network that serves real inference, end to end.
#[derive(Debug, Parser)]
#[command(name = "attesta-demo", version, about)]
struct Args {
    /// Leave the network up at the end and print how to use it by hand (Ctrl-C stops it).
    #[arg(long)]
    keep_running: bool,
    /// Where the relayer's database, nodes' data and logs go [default: target/demo].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Give up if the jobs are not all paid after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    timeout: u64,
    /// Start the network and upload the model, but submit no demo jobs; stays up like
    /// `--keep-running` (for the example dApp and browser tests).
    #[arg(long)]
    serve_only: bool,
    /// Once the network is up, write its URLs, deployment, model id and a funded client key to
    /// this file as JSON (read by tools/test-browser).
    #[arg(long, value_name = "FILE")]
    info_file: Option<PathBuf>,
}

type DemoResult<T> = Result<T, String>;

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    attesta_sdk::cli::init_tracing(0);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            attesta_sdk::cli::report_error(&format!("cannot start the async runtime: {e}"));
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let mut network = Network::default();
        let outcome = tokio::select! {
            outcome = demo(&args, &mut network) => outcome,
            _ = tokio::signal::ctrl_c() => Err("interrupted (Ctrl-C)".to_owned()),
            // SIGTERM (a test harness stopping the network) must also stop every child.
            () = terminated() => Err("terminated (SIGTERM)".to_owned()),
        };
        network.shutdown().await;
        match outcome {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                attesta_sdk::cli::report_error(&e);
                std::process::ExitCode::FAILURE
            }
        }
    })
}

/// Resolves on SIGTERM; never, if the handler cannot be installed (Ctrl-C still works).
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

/// The processes the demo started, stopped in reverse order whatever happens.
#[derive(Default)]
struct Network {
    children: Vec<(String, Child)>,
    devnet: Option<Devnet>,
}

impl Network {
    fn spawn(&mut self, name: &str, command: &mut Command, log: &Path) -> DemoResult<()> {
        let log = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}; build it with `cargo build --bins`"))?;
        self.children.push((name.to_owned(), child));
        Ok(())
    }

    /// Fails if a child exited early (its log says why).
    fn check_alive(&mut self, dir: &Path) -> DemoResult<()> {
        for (name, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "{name} exited ({status}); see {}",
                    dir.join(format!("{name}.log")).display()
                ));
            }
        }
        Ok(())
    }

    /// SIGTERM to every child, then SIGKILL to any that is still up after 10 s.
    async fn shutdown(&mut self) {
        for (_, child) in self.children.iter().rev() {
            if let Some(pid) = child.id() {
                // SIGTERM lets the relayer and nodes finish in-flight writes; `kill` from
                // coreutils keeps this binary free of unsafe libc calls.
                let _ =
                    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            }
        }
        for (name, child) in self.children.iter_mut().rev() {
            if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
                tracing::warn!(%name, "did not stop in 10 s; killing it");
                let _ = child.kill().await;
            }
        }
        self.children.clear();
        self.devnet = None;
    }
}

/// One demo job as it goes through the network.
struct DemoJob {
    file: String,
    id: U256,
    status: JobStatus,
    attested: u32,
    label: String,
    score: f64,
    signers: Vec<Address>,
    settle_gas: u64,
}

async fn demo(args: &Args, network: &mut Network) -> DemoResult<()> {
    let started = Instant::now();
    let root = repo_root();
    let dir = args.dir.clone().unwrap_or_else(|| root.join("target/demo"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let bin = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .ok_or("cannot locate the attesta binaries")?;

    step(1, "starting anvil (1 s blocks) and deploying the contracts");
    let net = Devnet::spawn_with(&["--block-time", "1"]).await;
    let deployment_file = dir.join("deployment.json");
    write(
        &deployment_file,
        &serde_json::to_vec_pretty(&net.deployment).map_err(|e| e.to_string())?,
    )?;
    let escrow = JobEscrow::new(net.deployment.job_escrow, net.provider.clone());

    step(2, &format!("staking {NODES} operators and allowing the nodes' runtime"));
    let operators = net.add_operators(NODES).await;
    let threshold =
        attesta_sdk::bindings::StakingRegistry::new(net.deployment.staking_registry, &net.provider)
            .threshold()
            .call()
            .await
            .map_err(|e| e.to_string())?;
    let runtime_id = node_runtime_id(&bin).await?;
    net.allow_runtime(runtime_id).await.map_err(|e| e.to_string())?;
    out(&format!("    M = {threshold} of N = {NODES}; runtime {runtime_id}"));

    step(3, "starting the relayer (SQLite) and the nodes");
    let relayer_key = net.key(79);
    let port = free_port()?;
    let relayer_url = format!("http://127.0.0.1:{port}");
    let rpc = net.anvil.endpoint();
    write(
        &dir.join("relayer.toml"),
        format!(
            "database_url = \"sqlite://{db}?mode=rwc\"\n\n[chain]\nrpc_url = \"{rpc}\"\ndeployment = \"{dep}\"\nconfirmations = 1\npoll_interval_ms = 250\n\n[duties]\ninterval_ms = 500\nrefund_expired = true\n\n[api]\nlisten = \"127.0.0.1:{port}\"\n\n[tx]\nconfirmations = 1\npoll_interval_ms = 250\n",
            db = dir.join("relayer.db").display(),
            dep = deployment_file.display(),
        )
        .as_bytes(),
    )?;
    network.spawn(
        "relayer",
        Command::new(bin.join("attesta-relayer"))
            .args(["run", "--config"])
            .arg(dir.join("relayer.toml"))
            .env("ATTESTA_RELAYER_KEY", alloy::hex::encode(relayer_key.to_bytes()))
            .env("RUST_LOG", "info"),
        &dir.join("relayer.log"),
    )?;
    let relay = RelayClient::new(&relayer_url).map_err(|e| e.to_string())?;
    wait_for("the relayer's API", Duration::from_secs(30), || async {
        network_ok(&relayer_url).await
    })
    .await?;
    for (i, operator) in operators.iter().enumerate() {
        start_node(network, &bin, &dir, i, operator, &relayer_url, &deployment_file)?;
    }

    step(4, "uploading the magika demo model");
    let model_dir = fetch_model(&root).await?;
    let model_bytes = read(&model_dir.join("model.onnx"))?;
    let labels = input::magika_labels(&read(&model_dir.join("config.min.json"))?)
        .map_err(|e| e.to_string())?;
    let model = relay.upload_blob(model_bytes).await.map_err(|e| e.to_string())?;
    out(&format!("    model id {} ({} bytes)", model.hash, model.size));

    let client_key = net.key(78);
    let config = escrow.config().call().await.map_err(|e| e.to_string())?;
    let fee = U256::from(config.minFee) * U256::from(10);
    // What --serve-only and --keep-running print (and write to --info-file) before serving.
    let announce = |net: &Devnet| {
        Info {
            rpc_url: &rpc,
            relayer_url: &relayer_url,
            deployment_file: &deployment_file,
            deployment: &net.deployment,
            model_id: model.hash,
            client_key: &client_key,
            threshold: u64::try_from(threshold).unwrap_or(u64::MAX),
            fee,
            dir: &dir,
        }
        .announce(args.info_file.as_deref())
    };
    if args.serve_only {
        // Enough for a hundred jobs from a dApp using the client key.
        net.mint(client_key.address(), fee * U256::from(100)).await;
        announce(&net)?;
        network.devnet = Some(net);
        return serve_forever(network, &dir).await;
    }

    step(5, &format!("submitting {} jobs through the sdk", DEMO_FILES.len()));
    let client =
        AttestaClient::new(net.provider.clone(), net.deployment.clone(), client_key.address());
    // One fee more than the files: the last job is one no node can run, refunded after its deadline.
    net.mint(client_key.address(), fee * U256::from(DEMO_FILES.len() + 1)).await;
    let accounts = Accounts::new(&net, &operators, client_key.address()).await?;
    let before = accounts.read(&net.provider, &net.deployment).await?;
    let mut jobs = Vec::new();
    for file in DEMO_FILES {
        let bytes = read(&root.join(file))?;
        let stored = relay
            .upload_blob(input::magika_input(&bytes).encode())
            .await
            .map_err(|e| e.to_string())?;
        let deadline = net.now().await + 600;
        let id = client
            .create_job(model.hash, stored.hash, fee, deadline)
            .await
            .map_err(|e| e.to_string())?;
        out(&format!("    job {id}: classify {file}"));
        jobs.push(DemoJob {
            file: (*file).to_owned(),
            id,
            status: JobStatus::Created,
            attested: 0,
            label: String::new(),
            score: 0.0,
            signers: Vec::new(),
            settle_gas: 0,
        });
    }
    let garbage =
        relay.upload_blob(b"not an ATI1 tensor input".to_vec()).await.map_err(|e| e.to_string())?;
    let unserved_deadline = net.now().await + 600;
    let unserved = client
        .create_job(model.hash, garbage.hash, fee, unserved_deadline)
        .await
        .map_err(|e| e.to_string())?;
    out(&format!(
        "    job {unserved}: an input no node can decode (to be refunded after its deadline)"
    ));
    let mut unserved_status = JobStatus::Created;

    step(6, "waiting for attestations, settlement, the challenge window and payment");
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut advanced = false;
    loop {
        network.check_alive(&dir)?;
        for job in &mut jobs {
            let info = client.job(job.id).await.map_err(|e| e.to_string())?;
            if let Ok(Some(view)) = relay.job(job.id).await {
                job.attested = view.attestations.iter().map(|t| t.signers).max().unwrap_or(0);
                if view.status == RelayJobStatus::Refunded {
                    return Err(format!("job {} was refunded instead of served", job.id));
                }
            }
            if info.status != job.status {
                out(&format!("    job {}: {} -> {}", job.id, job.status, info.status));
                job.status = info.status;
            }
        }
        let settled = jobs.iter().filter(|j| j.status.has_result()).count();
        let released = jobs.iter().filter(|j| j.status == JobStatus::Released).count();
        out(&format!(
            "    {:>3} s: {} created, {} attested by M, {settled} settled, {released} paid",
            started.elapsed().as_secs(),
            jobs.len(),
            jobs.iter()
                .filter(|j| j.attested >= u32::try_from(threshold).unwrap_or(u32::MAX))
                .count(),
        ));
        let status = client.job(unserved).await.map_err(|e| e.to_string())?.status;
        if status != unserved_status {
            out(&format!("    job {unserved}: {unserved_status} -> {status}"));
            unserved_status = status;
        }
        if status.has_result() {
            return Err(format!("job {unserved} settled although no node can decode its input"));
        }
        if released == jobs.len() && unserved_status == JobStatus::Refunded {
            break;
        }
        if settled == jobs.len() && !advanced {
            // Skip the challenge window and the unserved job's deadline on the local chain
            // instead of waiting them out; the relayer then releases and refunds.
            let now = net.now().await;
            let window_end = now + config.challengeWindow.to::<u64>();
            net.advance(window_end.max(unserved_deadline) - now + 1).await;
            advanced = true;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not every job was paid within {} s; logs are in {}",
                args.timeout,
                dir.display()
            ));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    step(7, "verifying every settlement against the chain");
    for job in &mut jobs {
        let verified = client.verify_settlement(job.id).await.map_err(|e| e.to_string())?;
        let output =
            CanonicalOutput::decode(&verified.settlement.output).map_err(|e| e.to_string())?;
        let (index, value) = output
            .tensors
            .first()
            .and_then(|t| t.top_k(1).first().copied())
            .ok_or("empty output")?;
        job.label = labels.get(index).cloned().unwrap_or_else(|| format!("#{index}"));
        job.score = f64::from(value) / 10f64.powi(i32::from(output.decimals));
        job.signers = verified.settlement.signers.clone();
        job.settle_gas = net
            .provider
            .get_transaction_receipt(verified.settlement.tx_hash)
            .await
            .map_err(|e| e.to_string())?
            .map_or(0, |r| r.gas_used);
    }
    let after = accounts.read(&net.provider, &net.deployment).await?;
    print_report(&jobs, &accounts, &before, &after, fee);
    out(&format!(
        "job {unserved}: no node could run it; refunded to the client after its deadline"
    ));
    check_money(&jobs, &accounts, &before, &after, fee, u64::from(config.protocolFeeBps))?;
    out(&format!(
        "\nall {} jobs settled and paid in {} s",
        jobs.len(),
        started.elapsed().as_secs()
    ));

    if args.keep_running {
        announce(&net)?;
        // Anvil goes down last, after the relayer and the nodes (Network::shutdown).
        network.devnet = Some(net);
        return serve_forever(network, &dir).await;
    }
    network.devnet = Some(net);
    Ok(())
}

/// What a user (or a test) needs to use the running network.
struct Info<'a> {
    rpc_url: &'a str,
    relayer_url: &'a str,
    deployment_file: &'a Path,
    deployment: &'a attesta_sdk::Deployment,
    model_id: B256,
    client_key: &'a alloy::signers::local::PrivateKeySigner,
    threshold: u64,
    fee: U256,
    dir: &'a Path,
}

impl Info<'_> {
    /// Prints how to use the network and, when asked, writes it as JSON (atomically: a reader
    /// polling for the file never sees half of it).
    fn announce(&self, file: Option<&Path>) -> DemoResult<()> {
        let key = alloy::hex::encode_prefixed(self.client_key.to_bytes());
        out(&format!(
            "\nthe network keeps running (Ctrl-C stops it):\n  chain      {}\n  relayer    {}\n  dashboard  {}/dashboard\n  deployment {}\n  model id   {}\n  client key {key} (a funded devnet account: write it to a file for `attesta --private-key-file`)\n  logs       {}",
            self.rpc_url,
            self.relayer_url,
            self.relayer_url,
            self.deployment_file.display(),
            self.model_id,
            self.dir.display()
        ));
        let Some(file) = file else { return Ok(()) };
        let json = serde_json::json!({
            "rpcUrl": self.rpc_url,
            "relayerUrl": self.relayer_url,
            "dashboardUrl": format!("{}/dashboard", self.relayer_url),
            "deploymentFile": self.deployment_file,
            "deployment": self.deployment,
            "modelId": self.model_id,
            "clientPrivateKey": key,
            "clientAddress": self.client_key.address(),
            "threshold": self.threshold,
            "fee": self.fee.to_string(),
            "logs": self.dir,
        });
        let text = serde_json::to_vec_pretty(&json).map_err(|e| e.to_string())?;
        let partial = file.with_extension("partial");
        write(&partial, &text)?;
        std::fs::rename(&partial, file).map_err(|e| format!("{}: {e}", file.display()))
    }
}

/// Keeps the network up until a signal ends the process (main then shuts it down), failing if
/// a child exits on its own.
async fn serve_forever(network: &mut Network, dir: &Path) -> DemoResult<()> {
    loop {
        network.check_alive(dir)?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn start_node(
    network: &mut Network,
    bin: &Path,
    dir: &Path,
    index: usize,
    operator: &TestOperator,
    relayer_url: &str,
    deployment: &Path,
) -> DemoResult<()> {
    let home = dir.join(format!("node-{index}"));
    let keystore = home.join("keystore");
    keys::import(&keystore, &operator.signer, &keys::Password::new(DEMO_PASSWORD))
        .map_err(|e| e.to_string())?;
    let config = home.join("node.toml");
    write(
        &config,
        format!(
            "relayer_url = \"{relayer_url}\"\ndeployment = \"{}\"\ndata_dir = \"{}\"\nkeystore = \"{}\"\nmax_concurrent_jobs = 1\nheartbeat_interval_secs = 5\npoll_wait_secs = 5\n",
            deployment.display(),
            home.join("data").display(),
            keystore.display()
        )
        .as_bytes(),
    )?;
    let name = format!("node-{index}");
    network.spawn(
        &name,
        Command::new(bin.join("attesta-node"))
            .args(["run", "--config"])
            .arg(&config)
            .env(keys::PASSWORD_ENV, DEMO_PASSWORD)
            .env("RUST_LOG", "info"),
        &dir.join(format!("{name}.log")),
    )
}

/// Everyone whose money the demo moves.
struct Accounts {
    client: Address,
    operators: Vec<Address>,
    treasury: Address,
}

/// Token balances plus what the escrow owes, per account.
type Balances = BTreeMap<Address, (U256, U256)>;

impl Accounts {
    async fn new(net: &Devnet, operators: &[TestOperator], client: Address) -> DemoResult<Self> {
        let treasury = JobEscrow::new(net.deployment.job_escrow, &net.provider)
            .treasury()
            .call()
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            operators: operators.iter().map(|o| o.account.address()).collect(),
            treasury,
        })
    }

    fn all(&self) -> Vec<(String, Address)> {
        let mut all = vec![("client".to_owned(), self.client)];
        for (i, op) in self.operators.iter().enumerate() {
            all.push((format!("operator {i}"), *op));
        }
        all.push(("treasury".to_owned(), self.treasury));
        all
    }

    async fn read(
        &self,
        provider: &DynProvider,
        deployment: &attesta_sdk::Deployment,
    ) -> DemoResult<Balances> {
        let token = attesta_sdk::bindings::TestToken::new(deployment.token, provider);
        let escrow = JobEscrow::new(deployment.job_escrow, provider);
        let mut balances = Balances::new();
        for (_, account) in self.all() {
            let held = token.balanceOf(account).call().await.map_err(|e| e.to_string())?;
            let owed = escrow.owed(account).call().await.map_err(|e| e.to_string())?;
            balances.insert(account, (held, owed));
        }
        Ok(balances)
    }
}

fn print_report(
    jobs: &[DemoJob],
    accounts: &Accounts,
    before: &Balances,
    after: &Balances,
    fee: U256,
) {
    out(&format!(
        "\n{:<4} {:<24} {:<12} {:>6}  {:<27} {:>9}",
        "job", "file", "result", "score", "signers", "settle gas"
    ));
    for job in jobs {
        let signers: Vec<String> =
            job.signers.iter().map(|s| format!("{:.6}", s.to_string())).collect();
        out(&format!(
            "{:<4} {:<24} {:<12} {:>6.3}  {:<27} {:>9}",
            job.id.to_string(),
            job.file,
            job.label,
            job.score,
            signers.join(" "),
            job.settle_gas
        ));
    }
    out(&format!("\nfee per job: {fee} token units"));
    out(&format!(
        "{:<11} {:>24} {:>24} {:>22}",
        "account", "tokens before", "tokens after", "owed by escrow after"
    ));
    for (name, account) in accounts.all() {
        let (b, _) = before.get(&account).copied().unwrap_or_default();
        let (a, owed) = after.get(&account).copied().unwrap_or_default();
        out(&format!("{name:<11} {b:>24} {a:>24} {owed:>22}"));
    }
}

/// Every fee left the client, and the escrow owes exactly the fees to the signers' operators and
/// the treasury: nothing lost, nothing paid twice, nothing to anyone else.
fn check_money(
    jobs: &[DemoJob],
    accounts: &Accounts,
    before: &Balances,
    after: &Balances,
    fee: U256,
    protocol_fee_bps: u64,
) -> DemoResult<()> {
    let total = fee * U256::from(jobs.len());
    let client_paid = before[&accounts.client].0 - after[&accounts.client].0;
    if client_paid != total {
        return Err(format!("the client paid {client_paid}, expected {total}"));
    }
    let credited: U256 = accounts
        .all()
        .iter()
        .map(|(_, a)| after[a].1 - before[a].1)
        .fold(U256::ZERO, |sum, x| sum + x);
    if credited != total {
        return Err(format!("the escrow credited {credited} in all, expected exactly {total}"));
    }
    let protocol = fee * U256::from(protocol_fee_bps) / U256::from(10_000);
    let treasury = after[&accounts.treasury].1 - before[&accounts.treasury].1;
    if treasury < protocol * U256::from(jobs.len()) {
        return Err(format!("the treasury got {treasury}, below the protocol fee"));
    }
    for job in jobs {
        if job.status != JobStatus::Released {
            return Err(format!("job {} ended {}, not released", job.id, job.status));
        }
    }
    Ok(())
}

async fn node_runtime_id(bin: &Path) -> DemoResult<B256> {
    let output =
        Command::new(bin.join("attesta-node")).arg("runtime-id").output().await.map_err(|e| {
            format!("cannot run attesta-node: {e}; build it with `cargo build --bins`")
        })?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|_| "attesta-node runtime-id printed no id".to_owned())
}

async fn fetch_model(root: &Path) -> DemoResult<PathBuf> {
    let dir = root.join("models/magika-1.0.3");
    if !dir.join("model.onnx").is_file() {
        let status = Command::new("python3")
            .arg(root.join("tools/fetch-models"))
            .status()
            .await
            .map_err(|e| format!("cannot run tools/fetch-models: {e}"))?;
        if !status.success() {
            return Err("tools/fetch-models failed (it needs PyPI)".into());
        }
    }
    Ok(dir)
}

async fn network_ok(url: &str) -> bool {
    reqwest::get(format!("{url}/healthz")).await.is_ok_and(|r| r.status().is_success())
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut ready: F) -> DemoResult<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !ready().await {
        if Instant::now() > deadline {
            return Err(format!("{what} did not come up within {} s", timeout.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

fn free_port() -> DemoResult<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn step(n: u32, what: &str) {
    out(&format!("[{n}/7] {what}"));
}

fn read(path: &Path) -> DemoResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> DemoResult<()> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}
