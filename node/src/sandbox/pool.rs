//! Workers prepared ahead of their job: [`Pool`].
//!
//! A prepared worker is a cold worker stopped half-way: it has started, entered its namespaces,
//! forked its init and job processes and installed its seccomp filter, and waits on its stdin.
//! Nothing in it depends on a job, so it may be made before the job exists. [`Pool::run_job`]
//! sends it the job's [`JobSpec`] and input; the worker then applies the job's rlimits, enters
//! the job's scratch dir, restricts itself with Landlock to the job's model and scratch dir and
//! closes its filter, exactly as a cold worker does for its job, and runs the job. Every worker
//! serves one job: its processes, namespaces and memory end with it.
//!
//! One thread of the pool (the *spawner*) starts every prepared worker and lives as long as the
//! pool: a worker dies with the thread that started it (`PR_SET_PDEATHSIG`), and job threads
//! come and go (tokio's blocking pool retires idle threads).

use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use tracing::{debug, warn};

use super::parent::{self, Finish, Handover};
use super::{JobOutput, JobSpec, Policy, READY, SandboxError, WorkerConfig, probe};

/// How long a starting worker may take to become ready before it is killed as stuck.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a job waits for a worker that is being prepared for it, at most (a worker that
/// takes longer is killed as stuck, and the job then starts cold).
const TAKE_WAIT: Duration = READY_TIMEOUT;

/// How often the spawner looks for prepared workers that died while waiting.
const SWEEP_EVERY: Duration = Duration::from_millis(500);

/// Backoff after a prepared worker failed to start (doubles up to the maximum).
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// What kind of prepared workers a [`Pool`] keeps.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Prepared workers kept ready (0 disables the pool: every job starts cold).
    pub size: usize,
    /// The worker executable (this binary, run as `WORKER __worker CONFIG`).
    pub worker: PathBuf,
    /// Prepare workers even if the kernel lacks sandbox features; only jobs whose policy also
    /// allows it use them.
    pub allow_degraded: bool,
    /// Escape suite and benchmarks only: layers the prepared workers skip.
    #[cfg(feature = "escape-tests")]
    #[doc(hidden)]
    pub skip_layers: super::SkipLayers,
}

impl PoolConfig {
    /// `size` prepared workers of `current_exe()`, full sandbox.
    pub fn new(size: usize) -> Self {
        Self {
            size,
            worker: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe")),
            allow_degraded: false,
            #[cfg(feature = "escape-tests")]
            skip_layers: super::SkipLayers::default(),
        }
    }

    /// Sets the worker executable.
    pub fn with_worker(mut self, worker: impl Into<PathBuf>) -> Self {
        self.worker = worker.into();
        self
    }
}

/// What a pool has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Jobs a prepared worker ran.
    pub pooled: u64,
    /// Jobs that started a cold worker: no prepared worker was ready, or the job's policy
    /// differs from the pool's (another worker, degraded mode, a benchmark switch).
    pub cold: u64,
    /// Prepared workers found dead (killed, or died before taking their job) and replaced.
    pub dead: u64,
    /// Prepared workers that failed to start (they are retried with backoff).
    pub spawn_failures: u64,
    /// Prepared workers ready right now.
    pub ready: usize,
}

/// A pool of prepared sandboxed workers, each used for exactly one job and replaced in the
/// background. Dropping the pool kills the workers that are still waiting.
pub struct Pool {
    shared: Arc<Shared>,
    spawner: Option<JoinHandle<()>>,
}

struct Shared {
    config: PoolConfig,
    /// What every prepared worker is told (job: `None`).
    prepared: WorkerConfig,
    state: Mutex<State>,
    changed: Condvar,
    pooled: AtomicU64,
    cold: AtomicU64,
    dead: AtomicU64,
    spawn_failures: AtomicU64,
}

#[derive(Default)]
struct State {
    ready: VecDeque<Child>,
    /// Workers started and not yet ready.
    starting: usize,
    /// Jobs waiting for a worker.
    waiting: usize,
    /// The last start failed: do not wait for workers that may never come.
    failing: bool,
    shutdown: bool,
}

impl Pool {
    /// Starts the spawner thread, which prepares `config.size` workers right away.
    ///
    /// Fails like [`super::run_job`] would for a job when the kernel lacks a sandbox feature
    /// and `config.allow_degraded` is not set (a pool of size 0 never fails).
    pub fn new(config: PoolConfig) -> Result<Self, SandboxError> {
        let missing = if config.size > 0 { probe().missing() } else { Vec::new() };
        if !missing.is_empty() && !config.allow_degraded {
            return Err(SandboxError::Unsupported { missing: missing.join(", ") });
        }
        let prepared = prepared_config(&config);
        let shared = Arc::new(Shared::new(config, prepared));
        let spawner = if shared.config.size > 0 {
            let shared = shared.clone();
            Some(
                std::thread::Builder::new()
                    .name("sandbox-pool".into())
                    .spawn(move || spawner(&shared))?,
            )
        } else {
            None
        };
        Ok(Self { shared, spawner })
    }

    /// A pool that prepares nothing: every job starts a cold worker.
    pub fn disabled() -> Self {
        let config = PoolConfig::new(0);
        let prepared = prepared_config(&config);
        Self { shared: Arc::new(Shared::new(config, prepared)), spawner: None }
    }

    /// Runs one job like [`super::run_job`], on a prepared worker when one is ready (or about
    /// to be) and the job's policy matches the pool's; otherwise on a cold worker started from
    /// the calling thread. Blocks until the job has ended; the calling thread must outlive it.
    pub fn run_job(&self, policy: &Policy, input: &[u8]) -> Result<JobOutput, SandboxError> {
        parent::check_input(policy, input)?;
        let config = parent::config(policy)?;
        if self.serves(policy, &config)
            && let Some(job) = &config.job
        {
            let frame = frame(job)?;
            while let Some(worker) = self.take() {
                let handed_over = Handover::now();
                match parent::finish(worker, handed_over, [&frame, input], policy, true) {
                    Ok(output) => {
                        self.shared.pooled.fetch_add(1, Ordering::Relaxed);
                        return Ok(output);
                    }
                    Err(Finish::Failed(e)) => {
                        self.shared.pooled.fetch_add(1, Ordering::Relaxed);
                        return Err(e);
                    }
                    Err(Finish::NotAccepted) => {
                        self.shared.dead.fetch_add(1, Ordering::Relaxed);
                        warn!(
                            "a prepared sandbox worker died before taking its job; trying another"
                        );
                    }
                }
            }
        }
        self.shared.cold.fetch_add(1, Ordering::Relaxed);
        super::run_job(policy, input)
    }

    /// Whether a job under `policy` would run on a prepared worker (when one is ready).
    pub fn serves_policy(&self, policy: &Policy) -> bool {
        parent::config(policy).is_ok_and(|config| self.serves(policy, &config))
    }

    fn serves(&self, policy: &Policy, config: &WorkerConfig) -> bool {
        let shared = &self.shared;
        shared.config.size > 0
            && policy.launcher.is_empty()
            && policy.worker == shared.config.worker
            && WorkerConfig { job: None, ..config.clone() } == shared.prepared
    }

    /// What the pool has done so far.
    pub fn stats(&self) -> PoolStats {
        let s = &self.shared;
        PoolStats {
            pooled: s.pooled.load(Ordering::Relaxed),
            cold: s.cold.load(Ordering::Relaxed),
            dead: s.dead.load(Ordering::Relaxed),
            spawn_failures: s.spawn_failures.load(Ordering::Relaxed),
            ready: s.lock().ready.len(),
        }
    }

    /// Waits until `n` prepared workers are ready (at most `timeout`); true if they are.
    pub fn wait_ready(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        while state.ready.len() < n {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { return false };
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .map_or_else(|poisoned| poisoned.into_inner().0, |(guard, _)| guard);
        }
        true
    }

    /// The host pids of the prepared workers now ready (tests kill them).
    #[doc(hidden)]
    pub fn ready_pids(&self) -> Vec<u32> {
        self.shared.lock().ready.iter().map(Child::id).collect()
    }

    /// A live prepared worker: a ready one, or the next one to become ready; `None` when the
    /// job should start cold (the pool is failing to start workers, or `size` jobs already
    /// wait).
    fn take(&self) -> Option<Child> {
        let shared = &self.shared;
        let deadline = Instant::now() + TAKE_WAIT;
        let mut state = shared.lock();
        loop {
            while let Some(mut worker) = state.ready.pop_front() {
                shared.changed.notify_all();
                match worker.try_wait() {
                    Ok(None) => return Some(worker),
                    status => {
                        shared.dead.fetch_add(1, Ordering::Relaxed);
                        warn!(
                            pid = worker.id(),
                            ?status,
                            "a prepared sandbox worker died; replacing it"
                        );
                        parent::kill_tree(&worker);
                        let _ = worker.wait();
                    }
                }
            }
            // The spawner keeps `size` workers ready or starting: up to `size` jobs can wait for
            // one, which is never slower than starting a cold worker (the same work, begun
            // earlier).
            if state.shutdown || state.failing || state.waiting >= shared.config.size {
                return None;
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            state.waiting += 1;
            state = shared
                .changed
                .wait_timeout(state, left)
                .map_or_else(|poisoned| poisoned.into_inner().0, |(guard, _)| guard);
            state.waiting -= 1;
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("size", &self.shared.config.size)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.changed.notify_all();
        if let Some(spawner) = self.spawner.take() {
            let _ = spawner.join();
        }
    }
}

impl Shared {
    fn new(config: PoolConfig, prepared: WorkerConfig) -> Self {
        Self {
            config,
            prepared,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            pooled: AtomicU64::new(0),
            cold: AtomicU64::new(0),
            dead: AtomicU64::new(0),
            spawn_failures: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent queue (every change is one call).
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What every prepared worker of the pool is told: what `parent::config` tells a cold worker,
/// without the job. A job is served by the pool when its own configuration is this one plus
/// the job.
fn prepared_config(config: &PoolConfig) -> WorkerConfig {
    let report = probe();
    let prepared = WorkerConfig {
        job: None,
        namespaces: report.user_namespaces,
        seccomp: report.seccomp,
        allow_degraded: config.allow_degraded,
        sandboxed: true,
        parent_pid: Some(std::process::id()),
    };
    #[cfg(feature = "escape-tests")]
    let prepared = {
        let mut prepared = prepared;
        let skip = config.skip_layers;
        if skip != super::SkipLayers::default() {
            prepared.namespaces &= !skip.namespaces;
            prepared.seccomp &= !skip.seccomp;
            prepared.allow_degraded = true;
        }
        prepared
    };
    prepared
}

/// The job frame a prepared worker reads first: a little-endian `u32` length, then the JSON.
fn frame(job: &JobSpec) -> Result<Vec<u8>, SandboxError> {
    let json = serde_json::to_vec(job).map_err(|e| SandboxError::InvalidPolicy(e.to_string()))?;
    let len = u32::try_from(json.len())
        .ok()
        .filter(|&len| len <= super::MAX_JOB_SPEC)
        .ok_or_else(|| SandboxError::InvalidPolicy("job paths too long".into()))?;
    let mut frame = Vec::with_capacity(json.len() + 4);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&json);
    Ok(frame)
}

/// The spawner thread: keeps `size` workers ready or starting, until shutdown; then kills the
/// ones still waiting.
fn spawner(shared: &Shared) {
    let mut backoff = BACKOFF.0;
    loop {
        let wanted = {
            let mut state = shared.lock();
            loop {
                sweep_dead(shared, &mut state);
                if state.shutdown || state.ready.len() + state.starting < shared.config.size {
                    break;
                }
                state = shared
                    .changed
                    .wait_timeout(state, SWEEP_EVERY)
                    .map_or_else(|poisoned| poisoned.into_inner().0, |(guard, _)| guard);
            }
            if state.shutdown {
                break;
            }
            let wanted = shared.config.size - state.ready.len() - state.starting;
            state.starting += wanted;
            wanted
        };
        // Started together, they prepare in parallel; then each is awaited in turn.
        let started: Vec<_> = (0..wanted)
            .map(|_| parent::spawn(&shared.config.worker, &[], &shared.prepared))
            .collect();
        let mut failed = false;
        for worker in started {
            let ready = worker.map_err(|e| e.to_string()).and_then(await_ready);
            let mut state = shared.lock();
            state.starting -= 1;
            match ready {
                Ok(worker) => {
                    debug!(pid = worker.id(), "prepared sandbox worker ready");
                    state.ready.push_back(worker);
                }
                Err(message) => {
                    failed = true;
                    shared.spawn_failures.fetch_add(1, Ordering::Relaxed);
                    warn!(error = %message, "a prepared sandbox worker failed to start; jobs start cold meanwhile");
                }
            }
            state.failing = failed;
            shared.changed.notify_all();
        }
        if failed {
            let state = shared.lock();
            if !state.shutdown {
                let _ = shared.changed.wait_timeout(state, backoff);
            }
            backoff = (backoff * 2).min(BACKOFF.1);
        } else {
            backoff = BACKOFF.0;
        }
    }
    let ready = std::mem::take(&mut shared.lock().ready);
    for mut worker in ready {
        parent::kill_tree(&worker);
        let _ = worker.wait();
    }
}

/// Reaps the ready workers that died while waiting (killed by an operator or the OOM killer),
/// so they are replaced without waiting for a job to find them.
fn sweep_dead(shared: &Shared, state: &mut State) {
    state.ready.retain_mut(|worker| match worker.try_wait() {
        Ok(None) => true,
        status => {
            shared.dead.fetch_add(1, Ordering::Relaxed);
            warn!(pid = worker.id(), ?status, "a prepared sandbox worker died; replacing it");
            parent::kill_tree(worker);
            false
        }
    });
}

/// Waits for a started worker's ready byte; on failure kills it and returns why it failed.
fn await_ready(mut worker: Child) -> Result<Child, String> {
    let outcome = read_ready(&mut worker);
    if outcome.is_ok() {
        return Ok(worker);
    }
    parent::kill_tree(&worker);
    let status = worker.wait();
    let mut stderr = String::new();
    if let Some(pipe) = worker.stderr.as_mut() {
        let _ = pipe.take(64 << 10).read_to_string(&mut stderr);
    }
    let reason = outcome.err().unwrap_or_default();
    Err(format!("{reason} (status {status:?}; stderr: {})", stderr.trim()))
}

fn read_ready(worker: &mut Child) -> Result<(), String> {
    let stdout = worker.stdout.as_mut().ok_or("no stdout pipe")?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .ok_or_else(|| format!("not ready within {READY_TIMEOUT:?}"))?;
        let timeout =
            PollTimeout::try_from(left.as_millis().max(1) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => break,
            Err(e) => return Err(format!("poll: {e}")),
        }
    }
    let mut byte = [0u8; 1];
    match stdout.read(&mut byte) {
        Ok(1) if byte[0] == READY => Ok(()),
        Ok(_) => Err("exited while preparing".to_owned()),
        Err(e) => Err(format!("reading its ready signal: {e}")),
    }
}
