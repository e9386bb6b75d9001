//! What the sandbox costs and how fast a job starts in it, in one run: the same job through
//! a prepared worker of a [`Pool`], a cold sandboxed worker (`run_job`), the same worker with no
//! sandbox, and the same (unsandboxed) worker started under bubblewrap
//! (`bwrap --unshare-all`, Debian package `bubblewrap`) as the peer.
//!
//! `cargo bench -p attesta-node --bench sandbox` (rounds: `ATTESTA_BENCH_RUNS`, default 40;
//! `make bench` runs 200). Models: `node/testdata/tiny.onnx` and the demo model
//! `models/magika-1.0.3/model.onnx` when present (tools/fetch-models installs it).
//!
//! - *start*: from spawning the worker (or handing the job to a prepared one) to the worker
//!   starting the job inside its complete sandbox, both ends read from `CLOCK_MONOTONIC`.
//!   p50, p99 (nearest rank), min and max.
//! - *wall*: from spawn (or hand-over) to the worker's reported exit.
//! - *setup*, *job*: what the worker measured (the sandbox layers on the job's path; reading the
//!   input, running the model, writing the output).
//!
//! The modes run interleaved round by round, so a disturbance of the shared machine hits all
//! of them alike. Before each pooled job the bench waits (off the clock) until the pool's one
//! worker is ready, which is the pool's steady state whenever jobs arrive further apart than a
//! worker takes to prepare; a second block runs jobs back to back through a pool of 2 without
//! waiting, which shows what happens when they do not. Before measuring, the bench waits up to
//! `ATTESTA_BENCH_IDLE_WAIT` seconds (default 60) for 5 s of at least 85% idle CPU and says
//! whether it got them.
//!
//! Prints the tables and writes them, with the machine and the command, to
//! `$CARGO_TARGET_DIR/bench-book/sandbox.md` (or `target/bench-book/sandbox.md`), which
//! `tools/bench-book` splices into BENCHMARKS.md.
//!
//! With `--features escape-tests` it also runs each model with one sandbox layer switched off at
//! a time (the escape suite's switch), which shows what each layer costs.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr, missing_docs)]

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use attesta_node::inference::Model;
use attesta_node::sandbox::{JobOutput, Policy, Pool, PoolConfig, run_job};
use attesta_sdk::input::{Input, Tensor, Values, magika_input};

const WORKER: &str = env!("CARGO_BIN_EXE_attesta-node");

/// Warm-up rounds, not counted.
const WARMUP: usize = 3;

#[derive(Default)]
struct Samples {
    start: Vec<Duration>,
    wall: Vec<Duration>,
    setup: Vec<Duration>,
    job: Vec<Duration>,
    pooled: usize,
}

impl Samples {
    fn push(&mut self, out: &JobOutput) {
        self.start.push(out.start);
        self.wall.push(out.elapsed);
        self.setup.push(out.setup);
        self.job.push(out.job);
        self.pooled += usize::from(out.pooled);
    }
}

fn sorted_ms(v: &[Duration]) -> Vec<f64> {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    ms
}

fn median(v: &[Duration]) -> f64 {
    let ms = sorted_ms(v);
    if ms.is_empty() {
        return f64::NAN;
    }
    let mid = ms.len() / 2;
    if ms.len().is_multiple_of(2) { (ms[mid - 1] + ms[mid]) / 2.0 } else { ms[mid] }
}

/// Nearest-rank percentile (`p` in 0..=1).
fn percentile(v: &[Duration], p: f64) -> f64 {
    let ms = sorted_ms(v);
    if ms.is_empty() {
        return f64::NAN;
    }
    let rank = (p * ms.len() as f64).ceil().max(1.0) as usize;
    ms[rank.min(ms.len()) - 1]
}

fn min(v: &[Duration]) -> f64 {
    sorted_ms(v).first().copied().unwrap_or(f64::NAN)
}

fn max(v: &[Duration]) -> f64 {
    sorted_ms(v).last().copied().unwrap_or(f64::NAN)
}

fn bwrap_version() -> Option<String> {
    let out = std::process::Command::new("bwrap").arg("--version").output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn bwrap_launcher(model: &Path, scratch: &Path) -> Option<Vec<OsString>> {
    bwrap_version()?;
    let worker = Path::new(WORKER);
    let mut args: Vec<OsString> = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session"]
        .iter()
        .map(OsString::from)
        .collect();
    let mut add = |a: &[&std::ffi::OsStr]| args.extend(a.iter().map(|s| s.to_os_string()));
    add(&["--ro-bind".as_ref(), "/usr".as_ref(), "/usr".as_ref()]);
    add(&["--symlink".as_ref(), "usr/lib".as_ref(), "/lib".as_ref()]);
    add(&["--symlink".as_ref(), "usr/lib64".as_ref(), "/lib64".as_ref()]);
    add(&["--symlink".as_ref(), "usr/bin".as_ref(), "/bin".as_ref()]);
    add(&[
        "--ro-bind".as_ref(),
        "/sys/devices/system/cpu".as_ref(),
        "/sys/devices/system/cpu".as_ref(),
    ]);
    add(&["--proc".as_ref(), "/proc".as_ref(), "--dev".as_ref(), "/dev".as_ref()]);
    add(&["--ro-bind".as_ref(), worker.as_os_str(), worker.as_os_str()]);
    add(&["--ro-bind".as_ref(), model.as_os_str(), model.as_os_str()]);
    add(&["--bind".as_ref(), scratch.as_os_str(), scratch.as_os_str()]);
    add(&["--chdir".as_ref(), scratch.as_os_str(), "--".as_ref()]);
    Some(args)
}

/// One model's results, printed and added to the book.
struct Report {
    name: String,
    modes: Vec<(&'static str, Samples)>,
    back_to_back: Samples,
}

fn bench(name: &str, model: &Path, input: &[u8], runs: usize) -> Report {
    let scratch = tempfile::tempdir().unwrap();
    let sandboxed = Policy::new(model, scratch.path()).with_worker(WORKER);
    let plain = sandboxed.clone().unsandboxed_for_benchmarks();
    let bwrap = bwrap_launcher(model, scratch.path())
        .map(|l| sandboxed.clone().launched_by_for_benchmarks(l));
    if bwrap.is_none() {
        eprintln!("bwrap not found: install the Debian package bubblewrap for the peer figures");
    }
    let pool = Pool::new(PoolConfig::new(1).with_worker(WORKER)).unwrap();
    let ready = Duration::from_secs(30);
    let expected = run_job(&sandboxed, input).unwrap().canonical;
    let mut modes: Vec<(&'static str, Samples)> = ["pooled sandbox", "cold sandbox", "no sandbox"]
        .into_iter()
        .chain(bwrap.is_some().then_some("bwrap --unshare-all"))
        .map(|m| (m, Samples::default()))
        .collect();
    for i in 0..runs + WARMUP {
        assert!(pool.wait_ready(1, ready), "the pool's worker never became ready");
        let mut outs = vec![pool.run_job(&sandboxed, input).unwrap()];
        assert!(outs[0].pooled, "a pooled round ran cold: {:?}", pool.stats());
        outs.push(run_job(&sandboxed, input).unwrap());
        outs.push(run_job(&plain, input).unwrap());
        if let Some(policy) = &bwrap {
            outs.push(run_job(policy, input).unwrap());
        }
        for ((_, samples), out) in modes.iter_mut().zip(&outs) {
            assert_eq!(out.canonical, expected);
            if i >= WARMUP {
                samples.push(out);
            }
        }
    }
    // Back to back: a pool of 2, no waiting between jobs.
    let pool = Pool::new(PoolConfig::new(2).with_worker(WORKER)).unwrap();
    assert!(pool.wait_ready(2, ready));
    let mut back_to_back = Samples::default();
    for i in 0..runs + WARMUP {
        let out = pool.run_job(&sandboxed, input).unwrap();
        assert_eq!(out.canonical, expected);
        if i >= WARMUP {
            back_to_back.push(&out);
        }
    }
    let report = Report { name: name.to_owned(), modes, back_to_back };
    print!("\n== {name} ({runs} rounds)\n{}", table(&[&report]));
    println!("{}", back_to_back_line(&report));
    #[cfg(feature = "escape-tests")]
    layers(model, input, runs);
    report
}

fn fmt_ms(x: f64) -> String {
    if x < 10.0 { format!("{x:.2}") } else { format!("{x:.1}") }
}

/// The Markdown table of every model's modes.
fn table(reports: &[&Report]) -> String {
    let mut t = String::from(
        "| model | mode | start p50 | start p99 | start min | start max | wall per job, median (min–max) | setup | job |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for report in reports {
        for (i, (mode, s)) in report.modes.iter().enumerate() {
            let model = if i == 0 { report.name.as_str() } else { "" };
            let bold = |x: f64| {
                if *mode == "pooled sandbox" { format!("**{}**", fmt_ms(x)) } else { fmt_ms(x) }
            };
            writeln!(
                t,
                "| {model} | {mode} | {} | {} | {} | {} | {} ({}–{}) | {} | {} |",
                bold(percentile(&s.start, 0.5)),
                bold(percentile(&s.start, 0.99)),
                fmt_ms(min(&s.start)),
                fmt_ms(max(&s.start)),
                fmt_ms(median(&s.wall)),
                fmt_ms(min(&s.wall)),
                fmt_ms(max(&s.wall)),
                fmt_ms(median(&s.setup)),
                fmt_ms(median(&s.job)),
            )
            .unwrap();
        }
    }
    t
}

fn back_to_back_line(report: &Report) -> String {
    let s = &report.back_to_back;
    format!(
        "- {}, back to back through a pool of 2 (no wait between jobs): {} of {} jobs on a \
         prepared worker; start p50 {} ms, p99 {} ms (min {}, max {}); wall median {} ms.",
        report.name,
        s.pooled,
        s.start.len(),
        fmt_ms(percentile(&s.start, 0.5)),
        fmt_ms(percentile(&s.start, 0.99)),
        fmt_ms(min(&s.start)),
        fmt_ms(max(&s.start)),
        fmt_ms(median(&s.wall)),
    )
}

/// The same job with one sandbox layer switched off at a time (feature `escape-tests`).
#[cfg(feature = "escape-tests")]
fn layers(model: &Path, input: &[u8], runs: usize) {
    use attesta_node::sandbox::SkipLayers;
    let scratch = tempfile::tempdir().unwrap();
    let base = Policy::new(model, scratch.path()).with_worker(WORKER);
    let with = |skip: SkipLayers| {
        let mut policy = base.clone();
        policy.skip_layers = skip;
        policy
    };
    let all = SkipLayers::default();
    let modes = [
        ("every layer", with(all)),
        ("without seccomp", with(SkipLayers { seccomp: true, ..all })),
        ("without Landlock", with(SkipLayers { landlock: true, ..all })),
        ("without namespaces", with(SkipLayers { namespaces: true, ..all })),
        ("rlimits only", with(SkipLayers { namespaces: true, landlock: true, seccomp: true })),
        ("same worker, no sandbox", base.clone().unsandboxed_for_benchmarks()),
    ];
    let mut samples: Vec<Samples> = modes.iter().map(|_| Samples::default()).collect();
    for i in 0..runs + WARMUP {
        for ((_, policy), x) in modes.iter().zip(&mut samples) {
            let out = run_job(policy, input).unwrap();
            if i >= WARMUP {
                x.push(&out);
            }
        }
    }
    println!("-- cold workers, one layer off at a time ({runs} runs each, medians in ms)");
    println!("{:<28} {:>9} {:>9} {:>9} {:>9}", "worker", "start", "wall", "setup", "job");
    for ((mode, _), x) in modes.iter().zip(&samples) {
        println!(
            "{mode:<28} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            median(&x.start),
            median(&x.wall),
            median(&x.setup),
            median(&x.job)
        );
    }
}

/// In-process inference, no worker: median (min–max) load and run times.
fn inference(name: &str, model: &Path, input: &[u8], runs: usize) -> String {
    let timed = |f: &mut dyn FnMut()| {
        let started = Instant::now();
        f();
        started.elapsed()
    };
    let loads: Vec<Duration> =
        (0..runs).map(|_| timed(&mut || drop(Model::load(model).unwrap()))).collect();
    let loaded = Model::load(model).unwrap();
    let expected = loaded.run_canonical(input).unwrap();
    let runs: Vec<Duration> = (0..runs * 5)
        .map(|_| timed(&mut || assert_eq!(loaded.run_canonical(input).unwrap(), expected)))
        .collect();
    let cell = |v: &[Duration]| {
        format!("{} ms ({}–{})", fmt_ms3(median(v)), fmt_ms3(min(v)), fmt_ms3(max(v)))
    };
    println!(
        "{name:<36} load {}   run {}   ({} loads, {} runs)",
        cell(&loads),
        cell(&runs),
        loads.len(),
        runs.len()
    );
    format!("| {name} | {} | {} |\n", cell(&loads), cell(&runs))
}

fn fmt_ms3(x: f64) -> String {
    if x < 1.0 { format!("{x:.3}") } else { fmt_ms(x) }
}

/// (busy, total) jiffies of all CPUs from /proc/stat.
fn cpu_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Waits up to `limit` for 5 consecutive seconds of at least 85% idle CPU; true if it got them.
fn wait_for_idle(limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut quiet = 0;
    while quiet < 5 {
        if Instant::now() >= deadline {
            return false;
        }
        let (b0, t0) = cpu_jiffies();
        std::thread::sleep(Duration::from_secs(1));
        let (b1, t1) = cpu_jiffies();
        let busy = (b1 - b0) as f64 / (t1 - t0).max(1) as f64;
        quiet = if busy <= 0.15 { quiet + 1 } else { 0 };
    }
    true
}

/// One line: CPU model, logical CPUs, memory, kernel, Landlock ABI, bwrap.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let nproc = std::thread::available_parallelism().map(usize::from).unwrap_or(0);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / (1 << 20) as f64)
        .unwrap_or(f64::NAN);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let landlock = attesta_node::sandbox::probe().landlock_abi;
    let bwrap = bwrap_version().unwrap_or_else(|| "no bwrap".into());
    format!(
        "{cpu}, {nproc} CPUs (nproc), {mem_gib:.0} GiB, Linux {}, Landlock ABI {landlock}, {bwrap}",
        kernel.trim()
    )
}

fn book_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("bench-book")
}

fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn main() {
    // `cargo bench` passes --bench; this harness takes no options.
    let runs: usize =
        std::env::var("ATTESTA_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let idle_wait: u64 =
        std::env::var("ATTESTA_BENCH_IDLE_WAIT").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let idle = wait_for_idle(Duration::from_secs(idle_wait));
    if !idle {
        eprintln!("the machine did not go idle within {idle_wait} s: measuring anyway");
    }
    let node = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tiny = node.join("testdata/tiny.onnx");
    let tiny_input =
        Input::new(vec![Tensor::new(vec![1, 4], Values::F32(vec![0.3, -1.2, 2.5, 0.7])).unwrap()])
            .unwrap()
            .encode();
    let mut reports = vec![bench("tiny.onnx", &tiny, &tiny_input, runs)];
    let magika: PathBuf = node.parent().unwrap().join("models/magika-1.0.3/model.onnx");
    let magika_input = magika_input(&std::fs::read(node.join("Cargo.toml")).unwrap()).encode();
    if magika.exists() {
        reports.push(bench("magika 1.0.3 (demo)", &magika, &magika_input, runs));
    } else {
        eprintln!("demo model missing: run tools/fetch-models for its figures");
    }
    println!("\n== in-process inference (no worker, median (min–max))");
    let mut inference_rows = inference("tiny.onnx", &tiny, &tiny_input, runs);
    if magika.exists() {
        inference_rows += &inference("magika 1.0.3 (demo)", &magika, &magika_input, runs);
    }

    let mut book = format!(
        "Machine: {}. Command: `ATTESTA_BENCH_RUNS={runs} cargo bench -p attesta-node --bench \
         sandbox` ({}), {runs} rounds after {WARMUP} warm-up, modes interleaved; {}.\n\n",
        machine(),
        utc_now(),
        if idle {
            "run after 5 s of ≥ 85% idle CPU".to_owned()
        } else {
            format!("the machine was NOT idle (no 5 s of ≥ 85% idle CPU within {idle_wait} s)")
        }
    );
    book += "Milliseconds. *Start*: spawn (or hand-over to a prepared worker) → the job running \
             inside the complete sandbox. *Wall*: spawn (or hand-over) → the worker's exit.\n\n";
    book += &table(&reports.iter().collect::<Vec<_>>());
    book += "\n";
    for report in &reports {
        book += &back_to_back_line(report);
        book += "\n";
    }
    let tiny_pooled = &reports[0].modes[0].1.start;
    let (p50, p99) = (percentile(tiny_pooled, 0.5), percentile(tiny_pooled, 0.99));
    let met = p50 < 1.0 && p99 < 3.0;
    writeln!(
        book,
        "\nTarget (issue 8): start p50 < 1 ms and p99 < 3 ms in the sandbox: pooled tiny.onnx \
         p50 {} ms, p99 {} ms: **{}**.",
        fmt_ms(p50),
        fmt_ms(p99),
        if met { "met" } else { "missed" }
    )
    .unwrap();
    book += "\nIn-process inference, no worker (load: read, hash, parse and plan the model; run: \
             decode the input, run, canonicalise), median (min–max):\n\n\
             | model | load | run |\n| --- | ---: | ---: |\n";
    book += &inference_rows;
    let dir = book_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sandbox.md");
    std::fs::write(&path, &book).unwrap();
    println!("\nwritten to {}", path.display());
}
