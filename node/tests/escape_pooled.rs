//! The sandbox escape suite ([`suite`], RELIABILITY.md S1–S11) against prepared workers: every
//! job the suite runs goes through a [`Pool`] and must run on a prepared worker (never a cold
//! fallback). Plus what only a pool can get wrong: a prepared worker sees nothing of the job
//! before it, and a prepared worker that dies is replaced. Run with
//! `cargo nextest run -p attesta-node --features escape-tests --test escape_pooled`.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use attesta_node::sandbox::{
    JobOutput, Limits, Policy, Pool, PoolConfig, SandboxError, SkipLayers,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const WORKER: &str = env!("CARGO_BIN_EXE_attesta-node");

/// One pool per set of skipped layers (the layer-by-layer cases prepare their workers without
/// those layers), kept for the whole test process.
fn pool_for(skip: SkipLayers) -> &'static Pool {
    static POOLS: OnceLock<Mutex<HashMap<SkipLayers, &'static Pool>>> = OnceLock::new();
    let mut pools = POOLS.get_or_init(Default::default).lock().unwrap();
    pools.entry(skip).or_insert_with(|| {
        let mut config = PoolConfig::new(2).with_worker(WORKER);
        config.skip_layers = skip;
        Box::leak(Box::new(Pool::new(config).unwrap()))
    })
}

/// Every job the suite runs: on a prepared worker. Only the benchmark switches (no sandbox at
/// all) are not served by a pool; they run cold as they would in the node.
fn run_job(policy: &Policy, input: &[u8]) -> Result<JobOutput, SandboxError> {
    let pool = pool_for(policy.skip_layers);
    if !pool.serves_policy(policy) {
        return attesta_node::sandbox::run_job(policy, input);
    }
    let output = pool.run_job(policy, input);
    assert_eq!(pool.stats().cold, 0, "a job fell back to a cold worker: {:?}", pool.stats());
    if let Ok(output) = &output {
        assert!(output.pooled);
    }
    output
}

#[path = "escape/suite.rs"]
mod suite;

use suite::{Job, assert_landlock_denied, children_of, honest_job_succeeds, spec_for};

/// A job of `template` (paths of its own dir filled in) on `pool`.
fn pooled(pool: &Pool, template: &str, input: &[u8]) -> (Job, Result<JobOutput, SandboxError>) {
    let job = Job::new("placeholder");
    let spec = spec_for(template, job.dir.path());
    std::fs::write(&job.model, format!("ATTESTA-ESCAPE:{spec}")).unwrap();
    let result = pool.run_job(&job.policy(), input);
    (job, result)
}

#[test]
fn a_prepared_worker_cannot_see_the_previous_jobs_files() {
    let pool = Pool::new(PoolConfig::new(1).with_worker(WORKER)).unwrap();
    assert!(pool.wait_ready(1, Duration::from_secs(20)));
    // Job A leaves a file in its scratch dir (and its dir keeps existing).
    let (a, result) = pooled(&pool, "scratch {scratch}/secret", b"job A's secret");
    assert_eq!(result.unwrap().canonical, b"job A's secret");
    let secret = a.scratch.join("secret");
    assert!(secret.exists());
    // Job B, on the next prepared worker (made while A ran or before), tries to reach it.
    for abi in [Some(attesta_node::sandbox::MIN_LANDLOCK_ABI), None] {
        for template in
            [format!("read {}", secret.display()), format!("list {}", a.scratch.display())]
        {
            let job = Job::new("placeholder");
            std::fs::write(&job.model, format!("ATTESTA-ESCAPE:{template}")).unwrap();
            let mut policy = job.policy();
            policy.max_landlock_abi = abi;
            let result = pool.run_job(&policy, b"");
            assert_landlock_denied(&result, &format!("{template} under {abi:?}"));
        }
    }
    // Its own scratch dir is empty: nothing of A's was carried over.
    let (_b, result) = pooled(&pool, "list {scratch}", b"");
    assert_eq!(String::from_utf8_lossy(&result.unwrap().canonical), "ESCAPED: listed 0 entries");
    let stats = pool.stats();
    assert_eq!((stats.pooled, stats.cold), (6, 0), "{stats:?}");
}

/// The job process (pid 2 in its namespace) of the prepared worker `pid`: worker → init → job.
fn job_process_of(worker: u32) -> u32 {
    let init = children_of(worker);
    assert_eq!(init.len(), 1, "worker {worker} has no init");
    let job = children_of(init[0]);
    assert_eq!(job.len(), 1, "init of worker {worker} has no job process");
    job[0]
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_prepared_worker_is_replaced() {
    let pool = Pool::new(PoolConfig::new(2).with_worker(WORKER)).unwrap();
    assert!(pool.wait_ready(2, Duration::from_secs(20)));
    let ready = pool.ready_pids();
    // The OOM killer's choice would be the job process: kill that one in the first worker, and
    // the whole process group of the second.
    kill(Pid::from_raw(job_process_of(ready[0]) as i32), Signal::SIGKILL).unwrap();
    nix::sys::signal::killpg(Pid::from_raw(ready[1] as i32), Signal::SIGKILL).unwrap();
    wait_for("both dead workers to be noticed", || pool.stats().dead == 2);
    wait_for("two fresh workers", || pool.stats().ready == 2);
    let fresh = pool.ready_pids();
    assert!(fresh.iter().all(|pid| !ready.contains(pid)), "{ready:?} vs {fresh:?}");
    let (_job, result) = pooled(&pool, "echo", b"after the kill");
    assert_eq!(result.unwrap().canonical, b"after the kill");
    let stats = pool.stats();
    assert_eq!((stats.pooled, stats.cold, stats.dead), (1, 0, 2), "{stats:?}");
}

#[test]
fn a_worker_killed_just_before_its_job_does_not_lose_the_job() {
    let pool = Pool::new(PoolConfig::new(2).with_worker(WORKER)).unwrap();
    assert!(pool.wait_ready(2, Duration::from_secs(20)));
    // No time for the pool to notice: the job is handed over at once, to the dying worker or,
    // if the pool already saw it die, to the other one. Either way it runs once, pooled.
    let victim = pool.ready_pids()[0];
    kill(Pid::from_raw(job_process_of(victim) as i32), Signal::SIGKILL).unwrap();
    let (_job, result) = pooled(&pool, "echo", b"still runs");
    assert_eq!(result.unwrap().canonical, b"still runs");
    wait_for("the dead worker to be counted", || pool.stats().dead == 1);
    let stats = pool.stats();
    assert_eq!((stats.pooled, stats.cold), (1, 0), "{stats:?}");
    wait_for("the pool to refill", || pool.stats().ready == 2);
}

#[test]
fn jobs_the_pool_does_not_serve_run_cold() {
    let pool = Pool::new(PoolConfig::new(1).with_worker(WORKER)).unwrap();
    let job = Job::new("echo");
    // The benchmark switch, another worker binary, degraded mode: cold, and still correct.
    let unsandboxed = job.policy().unsandboxed_for_benchmarks();
    assert!(!pool.serves_policy(&unsandboxed));
    assert_eq!(pool.run_job(&unsandboxed, b"x").unwrap().canonical, b"x");
    let mut degraded = job.policy();
    degraded.allow_degraded = true;
    assert!(!pool.serves_policy(&degraded));
    let out = pool.run_job(&degraded, b"y").unwrap();
    assert!(!out.pooled);
    assert!(pool.serves_policy(&job.policy()));
    assert_eq!(pool.stats().cold, 2);
    // A pool of size 0 prepares nothing and runs every job cold.
    let off = Pool::new(PoolConfig::new(0).with_worker(WORKER)).unwrap();
    let out = off.run_job(&job.policy(), b"z").unwrap();
    assert_eq!((out.canonical.as_slice(), out.pooled), (&b"z"[..], false));
    assert_eq!(off.stats().cold, 1);
}

#[test]
fn limits_and_the_wall_clock_apply_to_pooled_jobs() {
    let pool = Pool::new(PoolConfig::new(1).with_worker(WORKER)).unwrap();
    let limits = Limits { wall_clock: Duration::from_millis(500), ..Limits::default() };
    let job = Job::new("sleep");
    let started = Instant::now();
    let result = pool.run_job(&job.policy().with_limits(limits), b"");
    assert!(matches!(result, Err(SandboxError::Timeout { .. })), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let job = Job::new("echo");
    let small = job.policy().with_limits(Limits { max_input: 4, ..Limits::default() });
    assert!(matches!(
        pool.run_job(&small, b"too long"),
        Err(SandboxError::InputTooLarge { size: 8, limit: 4 })
    ));
    assert_eq!(pool.stats().cold, 0);
    honest_job_succeeds();
}
