//! What the sandbox costs: the same job through `run_job` sandboxed, with the same worker
//! unsandboxed, and with the same (unsandboxed) worker started under bubblewrap
//! (`bwrap --unshare-all`, Debian package `bubblewrap`) as the peer.
//!
//! `cargo bench -p attesta-node --bench sandbox` (runs: `ATTESTA_BENCH_RUNS`, default 40).
//! Models: `node/testdata/tiny.onnx` and the demo model `models/magika-1.0.3/model.onnx` when
//! present (tools/fetch-models installs it). Runs of the three modes are interleaved so drift
//! on a busy machine hits all of them alike. Prints medians and ratios, then in-process
//! inference alone (no worker): model load (read, hash, parse, plan) and one run (decode the
//! input, run, canonicalise), which is what the job time inside the worker is made of.
//!
//! With `--features escape-tests` it also runs each model with one sandbox layer switched off at
//! a time (the escape suite's switch), which shows what each layer costs.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr, missing_docs)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use attesta_node::inference::Model;
use attesta_node::sandbox::{JobOutput, Policy, run_job};
use attesta_sdk::input::{Input, Tensor, Values, magika_input};

const WORKER: &str = env!("CARGO_BIN_EXE_attesta-node");

#[derive(Default)]
struct Samples {
    wall: Vec<Duration>,
    setup: Vec<Duration>,
    job: Vec<Duration>,
}

impl Samples {
    fn push(&mut self, out: &JobOutput) {
        self.wall.push(out.elapsed);
        self.setup.push(out.setup);
        self.job.push(out.job);
    }
}

fn median(v: &[Duration]) -> f64 {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    if ms.is_empty() {
        return f64::NAN;
    }
    let mid = ms.len() / 2;
    if ms.len().is_multiple_of(2) { (ms[mid - 1] + ms[mid]) / 2.0 } else { ms[mid] }
}

fn bwrap_launcher(model: &Path, scratch: &Path) -> Option<Vec<OsString>> {
    let ok = std::process::Command::new("bwrap")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        return None;
    }
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

fn bench(name: &str, model: &Path, input: &[u8], runs: usize) {
    let scratch = tempfile::tempdir().unwrap();
    let sandboxed = Policy::new(model, scratch.path()).with_worker(WORKER);
    let plain = sandboxed.clone().unsandboxed_for_benchmarks();
    let bwrap = bwrap_launcher(model, scratch.path())
        .map(|l| sandboxed.clone().launched_by_for_benchmarks(l));
    if bwrap.is_none() {
        eprintln!("bwrap not found: install the Debian package bubblewrap for the peer figures");
    }
    let expected = run_job(&sandboxed, input).unwrap().canonical;
    let (mut s, mut p, mut b) = (Samples::default(), Samples::default(), Samples::default());
    for i in 0..runs + 3 {
        let a = run_job(&sandboxed, input).unwrap();
        let c = run_job(&plain, input).unwrap();
        assert_eq!(a.canonical, expected);
        assert_eq!(c.canonical, expected);
        let d = bwrap.as_ref().map(|policy| run_job(policy, input).unwrap());
        if let Some(d) = &d {
            assert_eq!(d.canonical, expected);
        }
        if i >= 3 {
            s.push(&a);
            p.push(&c);
            if let Some(d) = &d {
                b.push(d);
            }
        }
    }
    println!("\n== {name} ({runs} runs each, medians in ms)");
    println!("{:<28} {:>9} {:>9} {:>9}", "mode", "wall", "setup", "job");
    for (mode, x) in
        [("attesta sandbox", &s), ("same worker, no sandbox", &p), ("bwrap --unshare-all", &b)]
    {
        if !x.wall.is_empty() {
            println!(
                "{mode:<28} {:>9.3} {:>9.3} {:>9.3}",
                median(&x.wall),
                median(&x.setup),
                median(&x.job)
            );
        }
    }
    let overhead = median(&s.wall) - median(&p.wall);
    println!(
        "setup overhead (wall, sandboxed - unsandboxed): {overhead:.3} ms ({:+.1}% of the unsandboxed wall)",
        overhead / median(&p.wall) * 100.0
    );
    println!("sandbox layers inside the worker (namespaces..seccomp): {:.3} ms", median(&s.setup));
    println!(
        "inference inside the worker, sandboxed / unsandboxed: {:.4} ({:+.1}%)",
        median(&s.job) / median(&p.job),
        (median(&s.job) / median(&p.job) - 1.0) * 100.0
    );
    if !b.wall.is_empty() {
        let bwrap_overhead = median(&b.wall) - median(&p.wall);
        println!("bwrap start overhead: {bwrap_overhead:.3} ms");
        println!(
            "attesta sandbox / bwrap (wall): {:.3}; overhead attesta / bwrap: {:.3}",
            median(&s.wall) / median(&b.wall),
            overhead / bwrap_overhead
        );
    }
    #[cfg(feature = "escape-tests")]
    layers(model, input, runs);
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
    for i in 0..runs + 3 {
        for ((_, policy), x) in modes.iter().zip(&mut samples) {
            let out = run_job(policy, input).unwrap();
            if i >= 3 {
                x.push(&out);
            }
        }
    }
    println!("-- one layer off at a time ({runs} runs each, medians in ms)");
    for ((mode, _), x) in modes.iter().zip(&samples) {
        println!(
            "{mode:<28} {:>9.3} {:>9.3} {:>9.3}",
            median(&x.wall),
            median(&x.setup),
            median(&x.job)
        );
    }
}

/// In-process inference, no worker: median load and run times.
fn inference(name: &str, model: &Path, input: &[u8], runs: usize) {
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
    println!(
        "{name:<36} load {:>8.3} ms   run {:>8.3} ms   ({} loads, {} runs)",
        median(&loads),
        median(&runs),
        loads.len(),
        runs.len()
    );
}

fn main() {
    // `cargo bench` passes --bench; this harness takes no options.
    let runs: usize =
        std::env::var("ATTESTA_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let node = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tiny = node.join("testdata/tiny.onnx");
    let tiny_input =
        Input::new(vec![Tensor::new(vec![1, 4], Values::F32(vec![0.3, -1.2, 2.5, 0.7])).unwrap()])
            .unwrap()
            .encode();
    bench("tiny.onnx (small generated model)", &tiny, &tiny_input, runs);
    let magika: PathBuf = node.parent().unwrap().join("models/magika-1.0.3/model.onnx");
    let magika_input = magika_input(&std::fs::read(node.join("Cargo.toml")).unwrap()).encode();
    if magika.exists() {
        bench("magika 1.0.3 (demo model)", &magika, &magika_input, runs);
    } else {
        eprintln!("demo model missing: run tools/fetch-models for its figures");
    }
    println!("\n== in-process inference (no worker, medians)");
    inference("tiny.onnx", &tiny, &tiny_input, runs);
    if magika.exists() {
        inference("magika 1.0.3", &magika, &magika_input, runs);
    }
}
