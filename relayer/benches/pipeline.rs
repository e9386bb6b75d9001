//! The relayer's figures (issue 5), measured in-process against a real anvil:
//!
//! - **verify**: attestation signature verifications per second on one core (EIP-712 digest and
//!   secp256k1 recovery, what the aggregator does for every attestation).
//! - **ingest**: a chain holding `ATTESTA_BENCH_EVENTS` (default 10,000) `JobCreated` events is
//!   caught up from block 0 into a fresh SQLite store: events per second and CPU per event.
//! - **pipeline**: `ATTESTA_BENCH_JOBS` (default 200) jobs through the relayer's own code —
//!   watcher, three attestations each through the aggregator (M = 3 of 4), settlement sent by
//!   the transaction manager, receipts, release after the challenge window — with the nodes'
//!   signatures made beforehand: relayer CPU per settled job, and the reaction time from the
//!   M-th attestation's arrival to the settlement's broadcast returning (p50, p99).
//! - **e2e**: `ATTESTA_BENCH_E2E_JOBS` (default 1,000) jobs through the real binaries — anvil with
//!   1-second blocks, `attesta-relayer` on SQLite and four `attesta-node` daemons (M = 3) running
//!   the tiny model in their sandboxes: jobs per second, `createJob` → `JobSettled` in blocks
//!   (p50, p99), and the relayer process's CPU per job.
//!
//! ```sh
//! cargo build --release --bins                                # e2e runs the release binaries
//! cargo bench -p attesta-relayer --bench pipeline             # all four
//! cargo bench -p attesta-relayer --bench pipeline -- ingest   # one of verify|ingest|pipeline|e2e
//! ATTESTA_BENCH_NODES=1,4,16 cargo bench -p attesta-relayer --bench pipeline -- e2e
//! ```
//!
//! `ATTESTA_BENCH_RUNS` (default 3) repeats `verify` (× 5 passes), `ingest` (a fresh chain each,
//! three catch-ups of it) and `pipeline`; figures are medians with min and max. Each mode also
//! writes its rows of the Markdown table `$CARGO_TARGET_DIR/bench-book/relayer-pipeline.md`
//! (or `target/bench-book/…`), which `BENCHMARKS.md` splices in.
//!
//! CPU is this process's user + system time (`getrusage`); anvil runs in its own process and
//! is not counted.

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs, unsafe_code)]

#[path = "../tests/e2e_support/mod.rs"]
mod e2e_support;

use alloy::{
    eips::Encodable2718,
    network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder},
    primitives::{B256, Bytes, U256, keccak256},
    providers::{DynProvider, Provider, ProviderBuilder, ext::AnvilApi},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use attesta_relayer::{
    aggregate::Aggregator,
    chain::ActiveSet,
    duties::{Duties, DutyConfig},
    store::testing,
    txm::{TxConfig, TxManager},
    watcher::{Step, Watcher, WatcherConfig},
};
use attesta_sdk::{
    Attestation, SignedAttestation,
    bindings::{JobEscrow, TestToken},
    relay::AttestationSubmission,
    testing::{Devnet, test_runtime_id},
};
use std::time::{Duration, Instant};

const GWEI: u128 = 1_000_000_000;
const CLIENT: usize = 70;
const RELAYER: usize = 79;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// This process's CPU time so far (user + system).
fn cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    tv(usage.user_time()) + tv(usage.system_time())
}

/// This thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, nanosecond resolution; getrusage's
/// per-thread figures are tick-sampled and too coarse for short samples).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Median, min and max.
#[derive(Clone, Copy, Debug)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

fn spread(values: &[f64]) -> Spread {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Spread { median: sorted[sorted.len() / 2], min: sorted[0], max: sorted[sorted.len() - 1] }
}

impl Spread {
    /// `**median** (min–max)` with `decimals` decimals and thousands separators.
    fn show(&self, decimals: usize) -> String {
        format!(
            "**{}** ({}–{})",
            number(self.median, decimals),
            number(self.min, decimals),
            number(self.max, decimals)
        )
    }
}

fn number(x: f64, decimals: usize) -> String {
    let text = format!("{x:.decimals$}");
    let (int, frac) = text.split_once('.').map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(frac) = frac {
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// `$CARGO_TARGET_DIR/bench-book` (or `target/bench-book`).
fn book_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("bench-book")
}

/// Records one mode's table rows and rewrites `bench-book/relayer-pipeline.md` from the rows of
/// every mode measured so far (each mode keeps its latest rows in `relayer-pipeline/<mode>.md`),
/// so a run of one mode does not drop the others' figures.
fn book(mode: &str, rows: &[String]) {
    let dir = book_dir().join("relayer-pipeline");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{mode}.md")), rows.join("\n") + "\n").unwrap();
    let mut table = String::from(
        "| figure | target | measured: median (min–max) | runs |\n| --- | --- | --- | --- |\n",
    );
    for mode in ["verify", "ingest", "pipeline", "e2e"] {
        if let Ok(rows) = std::fs::read_to_string(dir.join(format!("{mode}.md"))) {
            table.push_str(&rows);
        }
    }
    let path = book_dir().join("relayer-pipeline.md");
    std::fs::write(&path, table).unwrap();
    println!("{mode}: table rows written to {}", path.display());
}

fn reader(devnet: &Devnet) -> DynProvider {
    ProviderBuilder::new().connect_http(devnet.anvil.endpoint_url()).erased()
}

fn main() {
    let which: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    if wants("verify") {
        verify();
    }
    if wants("ingest") {
        rt.block_on(ingest(env_usize("ATTESTA_BENCH_EVENTS", 10_000)));
    }
    if wants("pipeline") {
        rt.block_on(pipeline(env_usize("ATTESTA_BENCH_JOBS", 200)));
    }
    if wants("e2e") {
        // `ATTESTA_BENCH_NODES` is a comma-separated list of node counts (default 4).
        let counts = std::env::var("ATTESTA_BENCH_NODES").unwrap_or_else(|_| "4".into());
        let mut rows = Vec::new();
        for nodes in counts.split(',').map(|c| c.trim().parse::<usize>().unwrap()) {
            // Every node runs every job: 16 nodes do 16 sandboxed runs per job on the same
            // 2 cores, so fewer jobs keep that run in minutes.
            let default = if nodes > 4 { 250 } else { 1_000 };
            let jobs = env_usize("ATTESTA_BENCH_E2E_JOBS", default);
            rows.push(rt.block_on(e2e(jobs, nodes)));
        }
        book("e2e", &rows);
    }
}

fn verify() {
    let domain = attesta_sdk::domain(31_337, B256::repeat_byte(1)[..20].try_into().unwrap());
    let keys: Vec<PrivateKeySigner> = (0..16).map(|_| PrivateKeySigner::random()).collect();
    let signed: Vec<SignedAttestation> = (0..1_000u64)
        .map(|i| {
            let a = Attestation::new(
                U256::from(i),
                keccak256(b"model"),
                keccak256(i.to_be_bytes()),
                keccak256(b"result"),
                test_runtime_id(),
            );
            a.sign(&keys[i as usize % keys.len()], &domain).unwrap()
        })
        .collect();
    let mut rates = Vec::new();
    for _ in 0..runs() * 5 {
        // This thread's CPU time, not wall time: per core even on a shared machine.
        let started = thread_cpu();
        for s in &signed {
            s.verify(&domain).unwrap();
        }
        rates.push(signed.len() as f64 / (thread_cpu() - started).as_secs_f64());
    }
    let rate = spread(&rates);
    println!(
        "verify: {:.0} attestation verifications/s on one core (median of {} × {}; min {:.0}, max {:.0})",
        rate.median,
        rates.len(),
        signed.len(),
        rate.min,
        rate.max
    );
    book(
        "verify",
        &[format!(
            "| attestation verifications per second, one core (EIP-712 digest + recovery, libsecp256k1) | ≥ 35,000 /s | {} /s | {} × 1,000 |",
            rate.show(0),
            rates.len()
        )],
    );
}

/// Repetitions of each mode (`ATTESTA_BENCH_RUNS`, default 3).
fn runs() -> usize {
    env_usize("ATTESTA_BENCH_RUNS", 3).max(1)
}

/// Fills the chain with `n` `createJob` transactions from the test client, a block at a time
/// (pre-signed with explicit nonces, so filling takes seconds); returns the job ids.
async fn create_jobs(devnet: &Devnet, n: usize, model: B256) -> Vec<U256> {
    let inputs: Vec<B256> = (0..n).map(|i| keccak256((i as u64).to_be_bytes())).collect();
    send_jobs(devnet, &inputs, model, true).await
}

/// Sends one pre-signed `createJob` per input; with `mine`, turns automine off and mines a block
/// after every 1,000, else leaves them to the chain's block time. Returns the job ids once mined.
async fn send_jobs(devnet: &Devnet, inputs: &[B256], model: B256, mine: bool) -> Vec<U256> {
    let n = inputs.len();
    let provider = &devnet.provider;
    let escrow = JobEscrow::new(devnet.deployment.job_escrow, provider);
    let fee = U256::from(escrow.config().call().await.unwrap().minFee);
    let client = devnet.key(CLIENT);
    devnet.mint(client.address(), fee * U256::from(n)).await;
    TestToken::new(devnet.deployment.token, provider)
        .approve(devnet.deployment.job_escrow, U256::MAX)
        .from(client.address())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let first_id = escrow.jobCount().call().await.unwrap() + U256::from(1);
    let nonce = provider.get_transaction_count(client.address()).await.unwrap();
    let chain_id = provider.get_chain_id().await.unwrap();
    let deadline = U256::from(devnet.now().await + 80_000);
    let wallet = EthereumWallet::from(client);
    if mine {
        provider.anvil_set_auto_mine(false).await.unwrap();
    }
    let mut last = B256::ZERO;
    for (i, input) in inputs.iter().enumerate() {
        let call = JobEscrow::createJobCall { modelId: model, inputHash: *input, fee, deadline };
        let tx = TransactionRequest::default()
            .with_to(devnet.deployment.job_escrow)
            .with_input(call.abi_encode())
            .with_nonce(nonce + i as u64)
            .with_chain_id(chain_id)
            .with_gas_limit(300_000)
            .with_max_fee_per_gas(100 * GWEI)
            .with_max_priority_fee_per_gas(GWEI);
        let raw = tx.build(&wallet).await.unwrap().encoded_2718();
        last = *provider.send_raw_transaction(&raw).await.unwrap().tx_hash();
        if mine && ((i + 1) % 1_000 == 0 || i + 1 == n) {
            provider.anvil_mine(Some(1), None).await.unwrap();
        }
    }
    while provider.get_transaction_receipt(last).await.unwrap().is_none() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if mine {
        provider.anvil_set_auto_mine(true).await.unwrap();
    }
    let count = escrow.jobCount().call().await.unwrap();
    assert_eq!(count + U256::from(1) - first_id, U256::from(n), "every createJob mined");
    (0..n).map(|i| first_id + U256::from(i)).collect()
}

fn catch_up_config() -> WatcherConfig {
    WatcherConfig {
        confirmations: 0,
        poll_interval: Duration::from_millis(10),
        start_block: Some(0),
        ..WatcherConfig::default()
    }
}

/// Outbox entries not yet final (queued or waiting for confirmations).
async fn open_duties(store: &attesta_relayer::Store) -> i64 {
    let (open,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'pending')")
            .fetch_one(store.pool())
            .await
            .unwrap();
    open
}

/// Ticks the transaction manager, mining a block between ticks, until every duty is final.
async fn drain(devnet: &Devnet, txm: &TxManager, store: &attesta_relayer::Store) {
    loop {
        let report = txm.tick().await.unwrap();
        assert_eq!(report.failed, 0, "{report:?}");
        if open_duties(store).await == 0 {
            return;
        }
        devnet.provider.anvil_mine(Some(1), None).await.unwrap();
    }
}

async fn catch_up(watcher: &mut Watcher) {
    while !matches!(watcher.step().await.unwrap(), Step::Idle { .. }) {}
}

async fn ingest(n: usize) {
    let (mut rates, mut cpus) = (Vec::new(), Vec::new());
    for run in 0..runs() {
        let (r, c) = ingest_once(n).await;
        println!(
            "ingest run {}: {:.0} events/s, {:.1} µs CPU per event (median of 3 catch-ups)",
            run + 1,
            median(r.clone()),
            median(c.clone())
        );
        rates.extend(r);
        cpus.extend(c);
    }
    let (rate, cpu) = (spread(&rates), spread(&cpus));
    println!(
        "ingest: {:.0} events/s ({:.0}–{:.0}), {:.1} µs CPU per event ({:.1}–{:.1}) over {} catch-ups of {n} events into SQLite",
        rate.median,
        rate.min,
        rate.max,
        cpu.median,
        cpu.min,
        cpu.max,
        rates.len()
    );
    let runs = format!("{} catch-ups ({} chains × 3)", rates.len(), rates.len() / 3);
    book(
        "ingest",
        &[
            format!(
                "| ingest: confirmed `JobCreated` events handled per second, catching up on {} from block 0 | ≥ 5,000 /s | {} /s | {runs} |",
                number(n as f64, 0),
                rate.show(0)
            ),
            format!("| ingest: CPU per event | ≤ 100 µs | {} µs | {runs} |", cpu.show(1)),
        ],
    );
}

/// One chain of `n` events, caught up three times into fresh stores: (events/s, µs CPU/event).
async fn ingest_once(n: usize) -> (Vec<f64>, Vec<f64>) {
    // Blocks big enough for 1,000 createJob calls each.
    let devnet = Devnet::spawn_with(&["--gas-limit", "1000000000"]).await;
    let filled = Instant::now();
    create_jobs(&devnet, n, keccak256(b"model")).await;
    println!(
        "ingest: chain filled with {n} JobCreated events in {:.1} s",
        filled.elapsed().as_secs_f64()
    );
    let (mut rates, mut cpus) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let db = testing::sqlite().await;
        let mut watcher = Watcher::new(
            db.store.clone(),
            reader(&devnet),
            devnet.deployment.clone(),
            catch_up_config(),
        );
        let (cpu, started) = (cpu_time(), Instant::now());
        catch_up(&mut watcher).await;
        let (wall, cpu) = (started.elapsed(), cpu_time() - cpu);
        let (stored,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM events WHERE kind = 'JobCreated'")
                .fetch_one(db.store.pool())
                .await
                .unwrap();
        assert_eq!(stored as usize, n, "every event stored once");
        rates.push(n as f64 / wall.as_secs_f64());
        cpus.push(cpu.as_secs_f64() * 1e6 / n as f64);
    }
    (rates, cpus)
}

async fn pipeline(n: usize) {
    let (mut cpus, mut p50s, mut p99s) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs() {
        let (cpu, p50, p99) = pipeline_once(n).await;
        println!(
            "pipeline run {}: {cpu:.2} ms CPU per job, reaction p50 {p50:.2} ms, p99 {p99:.2} ms",
            run + 1
        );
        cpus.push(cpu);
        p50s.push(p50);
        p99s.push(p99);
    }
    let runs = format!("{} × {n} jobs", cpus.len());
    book(
        "pipeline",
        &[
            format!(
                "| reaction: M-th attestation's arrival → settlement broadcast returned, p50 | | {} ms | {runs} |",
                spread(&p50s).show(2)
            ),
            format!(
                "| reaction: M-th attestation's arrival → settlement broadcast returned, p99 | < 20 ms | {} ms | {runs} |",
                spread(&p99s).show(2)
            ),
            format!(
                "| relayer CPU per settled job, excluding inference (watcher, 3 attestations verified and stored, `settle` and `release` sent and confirmed) | < 2 ms | {} ms | {runs} |",
                spread(&cpus).show(2)
            ),
        ],
    );
}

/// One pipeline run: (ms CPU per job, reaction p50 ms, reaction p99 ms).
async fn pipeline_once(n: usize) -> (f64, f64, f64) {
    let devnet = Devnet::spawn_with(&["--gas-limit", "1000000000"]).await;
    let ops = devnet.add_operators(4).await;
    let provider = reader(&devnet);
    let model = keccak256(b"model");
    let jobs = create_jobs(&devnet, n, model).await;
    let domain = devnet.deployment.attestation_domain();
    // The nodes' work, done before the clock starts: three signed attestations per job.
    let output = Bytes::from(vec![7u8; 256]);
    let submissions: Vec<Vec<(alloy::primitives::Address, AttestationSubmission)>> = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| {
            let a = Attestation::new(
                *job,
                model,
                keccak256((i as u64).to_be_bytes()),
                keccak256(&output),
                test_runtime_id(),
            );
            ops[..3]
                .iter()
                .map(|op| {
                    let signed = a.sign(&op.signer, &domain).unwrap();
                    (
                        op.signer.address(),
                        AttestationSubmission { attestation: signed, output: output.clone() },
                    )
                })
                .collect()
        })
        .collect();

    let db = testing::sqlite().await;
    let store = db.store.clone();
    let active = ActiveSet::load(provider.clone(), devnet.deployment.clone()).await.unwrap();
    let chain_id = devnet.provider.get_chain_id().await.unwrap();
    let tx_config = TxConfig { confirmations: 1, ..TxConfig::default() };
    let txm =
        TxManager::new(store.clone(), provider.clone(), devnet.key(RELAYER), chain_id, tx_config)
            .unwrap();
    let aggregator = Aggregator::new(store.clone(), active.clone());
    let duties = Duties::new(
        store.clone(),
        provider.clone(),
        devnet.deployment.clone(),
        DutyConfig::default(),
    );
    let mut watcher =
        Watcher::new(store.clone(), provider.clone(), devnet.deployment.clone(), catch_up_config());

    let (cpu, started) = (cpu_time(), Instant::now());
    catch_up(&mut watcher).await;
    let mut reactions = Vec::with_capacity(n);
    for job in &submissions {
        let (last, first) = job.split_last().unwrap();
        for (signer, s) in first {
            aggregator.submit(*signer, s.clone()).await.unwrap();
        }
        let t0 = Instant::now();
        let accepted = aggregator.submit(last.0, last.1.clone()).await.unwrap();
        assert!(accepted.agreeing >= accepted.threshold);
        let report = txm.tick().await.unwrap();
        reactions.push(t0.elapsed());
        assert_eq!(report.sent, 1, "{report:?}");
    }
    // Receipts to the confirmation depth, the settlements seen by the watcher, then release.
    drain(&devnet, &txm, &store).await;
    catch_up(&mut watcher).await;
    let window = JobEscrow::new(devnet.deployment.job_escrow, &devnet.provider)
        .config()
        .call()
        .await
        .unwrap()
        .challengeWindow
        .to::<u64>();
    devnet.advance(window + 1).await;
    let mut queued = 0;
    while queued < n {
        let report = duties.tick().await.unwrap();
        assert!(report.releases > 0, "releases stalled at {queued} of {n}");
        queued += report.releases as usize;
        drain(&devnet, &txm, &store).await;
    }
    catch_up(&mut watcher).await;
    let (wall, cpu) = (started.elapsed(), cpu_time() - cpu);

    let escrow = JobEscrow::new(devnet.deployment.job_escrow, &devnet.provider);
    for job in &jobs {
        let status = escrow.job(*job).call().await.unwrap().status;
        assert_eq!(status, 4, "job {job} released");
    }
    reactions.sort();
    let cpu_ms = cpu.as_secs_f64() * 1e3 / n as f64;
    println!(
        "pipeline: {n} jobs settled and released in {:.1} s; relayer CPU {cpu_ms:.2} ms per job \
         (watcher, 3 verified attestations, settle + release sent and confirmed)",
        wall.as_secs_f64(),
    );
    let (p50, p99) = (
        percentile(&reactions, 0.5).as_secs_f64() * 1e3,
        percentile(&reactions, 0.99).as_secs_f64() * 1e3,
    );
    println!(
        "pipeline: reaction from the M-th attestation to the settlement broadcast: p50 {p50:.2} ms, \
         p99 {p99:.2} ms, max {:.2} ms (includes eth_estimateGas and eth_sendRawTransaction on a local anvil)",
        reactions.last().unwrap().as_secs_f64() * 1e3
    );
    (cpu_ms, p50, p99)
}

/// CPU time (user + system) of process `pid` so far, from `/proc/<pid>/stat`.
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // The kernel's USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// `n` jobs through `nodes` node processes; returns the book's table row.
async fn e2e(n: usize, nodes: usize) -> String {
    use e2e_support::{Behaviour, Network, tiny_input};
    let mut net = Network::with_nodes(nodes).await;
    let db = format!("sqlite://{}?mode=rwc", net.dir.path().join("relayer.db").display());
    let rpc = net.devnet.anvil.endpoint();
    let mut relayer = net.relayer("relayer", &db, &rpc, 75);
    relayer.start().await;
    let relay = attesta_sdk::relay::RelayClient::new(&relayer.url).unwrap();
    for i in 0..nodes {
        net.start_node(i, &relayer.url.clone(), Behaviour::Honest);
    }
    net.upload_model(&relay).await;
    let mut inputs = Vec::with_capacity(n);
    for i in 0..n {
        let x = i as f32;
        inputs.push(relay.upload_blob(tiny_input([x, -x, 0.5 * x, 1.0])).await.unwrap().hash);
    }
    let relayer_pid = relayer.child.as_ref().unwrap().id().unwrap();
    let cpu = process_cpu(relayer_pid);
    let from = net.devnet.provider.get_block_number().await.unwrap();
    let started = Instant::now();
    let jobs = send_jobs(&net.devnet, &inputs, net.model, false).await;
    let escrow = net.devnet.deployment.job_escrow;
    let settled_logs = || async {
        let filter = alloy::rpc::types::Filter::new()
            .address(escrow)
            .event_signature(<JobEscrow::JobSettled as alloy::sol_types::SolEvent>::SIGNATURE_HASH)
            .from_block(from);
        net.devnet.provider.get_logs(&filter).await.unwrap()
    };
    loop {
        let settled = settled_logs().await.len();
        if settled >= n {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{settled} of {n} settled after 10 minutes; logs in {}",
            net.dir.path().display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let wall = started.elapsed();
    let relayer_cpu = process_cpu(relayer_pid) - cpu;

    let created_filter = alloy::rpc::types::Filter::new()
        .address(escrow)
        .event_signature(<JobEscrow::JobCreated as alloy::sol_types::SolEvent>::SIGNATURE_HASH)
        .from_block(from);
    let mut created_at = std::collections::HashMap::new();
    for log in net.devnet.provider.get_logs(&created_filter).await.unwrap() {
        let e = log.log_decode::<JobEscrow::JobCreated>().unwrap();
        created_at.insert(e.inner.data.jobId, log.block_number.unwrap());
    }
    let mut blocks: Vec<u64> = settled_logs()
        .await
        .iter()
        .map(|log| {
            let e = log.log_decode::<JobEscrow::JobSettled>().unwrap();
            log.block_number.unwrap() - created_at[&e.inner.data.jobId]
        })
        .collect();
    assert_eq!(blocks.len(), jobs.len(), "each job settled once");
    blocks.sort_unstable();
    let (first, last) = (created_at.values().min().unwrap(), created_at.values().max().unwrap());
    let m = attesta_sdk::quorum::threshold(nodes, 6667, 1);
    let (rate, p50, p99) = (
        n as f64 / wall.as_secs_f64(),
        blocks[blocks.len() / 2],
        blocks[((blocks.len() - 1) as f64 * 0.99).round() as usize],
    );
    let cpu_ms = relayer_cpu.as_secs_f64() * 1e3 / n as f64;
    println!(
        "e2e: {n} jobs through {nodes} nodes (M = {m}) on anvil with 1 s blocks: {rate:.1} jobs/s over {:.1} s \
         (createJob mined in blocks {first}..={last}); createJob → JobSettled p50 {p50} blocks, p99 {p99} blocks, \
         max {}; relayer process CPU {cpu_ms:.2} ms per job",
        wall.as_secs_f64(),
        blocks.last().unwrap(),
    );
    for i in 0..nodes {
        net.stop_node(i).await;
    }
    relayer.kill().await;
    format!(
        "| end to end: {} jobs, {nodes} node process{} (M = {m}), anvil with 1 s blocks, tiny model | | **{rate:.1} jobs/s**; `createJob` → `JobSettled` p50 {p50} blocks, p99 {p99} blocks; relayer CPU {cpu_ms:.2} ms per job | 1 |",
        number(n as f64, 0),
        if nodes == 1 { "" } else { "es" }
    )
}
