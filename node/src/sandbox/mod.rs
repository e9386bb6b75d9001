//! The sandbox every job runs in.
//!
//! A job runs in a fresh `attesta-node __worker` process ([`run_job`] spawns it). Before the worker
//! touches the model or the input it enters new user, PID, network, IPC, UTS and mount namespaces,
//! sets rlimits, restricts itself with Landlock, sets `no_new_privs` and installs a seccomp
//! allow-list on every thread. The parent passes the input on stdin, reads the canonical output
//! from stdout with a size cap, enforces a wall-clock timeout and maps every ending to a
//! [`SandboxError`].
//!
//! Process tree of one job (the extra init is needed because a PID namespace's init ignores
//! signals it has no handler for, which would swallow `SIGXCPU` and `SIGABRT`):
//!
//! ```text
//! node ── worker (host PID ns, waits) ── init (pid 1, waits) ── job (pid 2: rlimits, Landlock,
//!                                                                    seccomp, then inference)
//! ```
//!
//! One module per mechanism: [`probe()`] (kernel features), `namespaces`, `rlimits`,
//! `landlock_rules`, `seccomp`, `worker` (the child side), `parent` (the [`run_job`] side) and
//! `pool` ([`Pool`]: workers prepared ahead of their job).
//!
//! ## Prepared workers ([`Pool`])
//!
//! Most of a worker's start-up does not depend on its job: the process start, the namespaces
//! and their two forks, the seccomp filter. A [`Pool`] keeps a few workers that have done
//! exactly that part and wait, blocked on their stdin, for ONE job. Handing a job over sends
//! its [`JobSpec`] (model, scratch dir, limits, Landlock ABI) ahead of the input; the worker
//! then applies what does depend on the job, exactly as a cold worker would (rlimits, working
//! directory, the Landlock ruleset naming only this job's model and scratch dir), closes the
//! door behind it (a second seccomp filter that kills the few set-up calls the first one still
//! allowed) and runs the job. A prepared worker serves one job and exits; the pool starts a
//! replacement in the background.

use std::path::PathBuf;
use std::time::Duration;

mod landlock_rules;
mod namespaces;
mod parent;
mod pool;
mod probe;
mod rlimits;
pub mod seccomp;
mod worker;

#[cfg(feature = "escape-tests")]
mod escape;

pub use landlock::ABI as LandlockAbi;
pub use parent::run_job;
pub use pool::{Pool, PoolConfig, PoolStats};
pub use probe::{ProbeReport, probe};
pub use worker::worker_main;

/// Describes the sandbox policy; hashed into the runtime id. Bump when the policy changes.
pub const POLICY_VERSION: &str = "attesta-sandbox/v1";

/// The hidden first argument that makes `attesta-node` run as a sandboxed worker.
pub const WORKER_ARG: &str = "__worker";

/// The oldest Landlock ABI the node supports. ABI 1 (Linux 5.13) cannot restrict `truncate(2)`
/// by path; the seccomp filter denies that syscall outright, so ABI 1 still confines writes.
pub const MIN_LANDLOCK_ABI: LandlockAbi = LandlockAbi::V1;

/// Resource limits of one job.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Address space (`RLIMIT_AS`), bytes.
    pub address_space: u64,
    /// CPU time (`RLIMIT_CPU`), seconds.
    pub cpu_seconds: u64,
    /// Wall-clock time, enforced by the parent.
    pub wall_clock: Duration,
    /// Open file descriptors (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// Processes of the user (`RLIMIT_NPROC`). Not enforced by the kernel for the host's root;
    /// the seccomp filter (threads only) is what stops a fork bomb.
    pub processes: u64,
    /// Largest file the job may write (`RLIMIT_FSIZE`), bytes.
    pub file_size: u64,
    /// Largest input, bytes.
    pub max_input: u64,
    /// Largest output, bytes (at most the escrow's bound: a longer one cannot settle).
    pub max_output: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            address_space: 2 << 30,
            cpu_seconds: 30,
            wall_clock: Duration::from_secs(60),
            open_files: 64,
            processes: 64,
            file_size: 64 << 20,
            max_input: 64 << 20,
            max_output: attesta_sdk::canonical::MAX_OUTPUT_BYTES as u64,
        }
    }
}

/// Where a job may read and write, and what it may use.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The model file, readable (nothing else outside the scratch dir is).
    pub model: PathBuf,
    /// A per-job scratch directory, the only writable place.
    pub scratch: PathBuf,
    /// The worker executable (this binary, run as `WORKER __worker CONFIG`).
    pub worker: PathBuf,
    /// Resource limits.
    pub limits: Limits,
    /// Run with whatever the kernel offers when a sandbox feature is missing. Loudly logged;
    /// never the default.
    pub allow_degraded: bool,
    /// Use at most this Landlock ABI (testing the oldest supported ABI); `None` = the newest the
    /// kernel offers.
    pub max_landlock_abi: Option<LandlockAbi>,
    /// Benchmarks only: run the same worker without any sandbox.
    unsandboxed: bool,
    /// Benchmarks only: a command the worker is started through (a peer sandbox, e.g. bwrap).
    launcher: Vec<std::ffi::OsString>,
    /// Escape suite and benchmarks only: sandbox layers the worker skips.
    #[cfg(feature = "escape-tests")]
    #[doc(hidden)]
    pub skip_layers: SkipLayers,
}

/// Escape suite and benchmarks only (feature `escape-tests`, never shipped): sandbox layers the
/// worker skips, so a test can show that one layer alone stops a payload and that a check sees a
/// missing layer, and the benchmark can show what each layer costs.
#[cfg(feature = "escape-tests")]
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SkipLayers {
    /// No namespaces (and no PID-namespace init): the job runs in the worker process.
    pub namespaces: bool,
    /// No Landlock ruleset.
    pub landlock: bool,
    /// No seccomp filter.
    pub seccomp: bool,
}

impl Policy {
    /// A policy with default limits that runs `current_exe()` as the worker.
    pub fn new(model: impl Into<PathBuf>, scratch: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            scratch: scratch.into(),
            worker: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe")),
            limits: Limits::default(),
            allow_degraded: false,
            max_landlock_abi: None,
            unsandboxed: false,
            launcher: Vec::new(),
            #[cfg(feature = "escape-tests")]
            skip_layers: SkipLayers::default(),
        }
    }

    /// Sets the worker executable.
    pub fn with_worker(mut self, worker: impl Into<PathBuf>) -> Self {
        self.worker = worker.into();
        self
    }

    /// Sets the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// For benchmarks that measure the sandbox's own cost: the worker runs without namespaces,
    /// rlimits, Landlock or seccomp. Every job run this way logs a warning. Never use it for
    /// real jobs.
    #[doc(hidden)]
    pub fn unsandboxed_for_benchmarks(mut self) -> Self {
        self.unsandboxed = true;
        self
    }

    /// For benchmarks against a peer sandbox: start the (unsandboxed) worker through `launcher`
    /// (e.g. `bwrap --unshare-all ...`), which then owns the isolation.
    #[doc(hidden)]
    pub fn launched_by_for_benchmarks(mut self, launcher: Vec<std::ffi::OsString>) -> Self {
        self.unsandboxed = true;
        self.launcher = launcher;
        self
    }
}

/// What a finished job returns.
#[derive(Clone, Debug)]
pub struct JobOutput {
    /// Canonical output (ATO1), what `resultHash` hashes.
    pub canonical: Vec<u8>,
    /// Wall time from spawning the worker (or handing the job to a prepared one) to its exit.
    pub elapsed: Duration,
    /// From spawning the worker (or handing the job to a prepared one) to the worker starting
    /// the job inside the complete sandbox (`CLOCK_MONOTONIC` on both sides).
    pub start: Duration,
    /// Time the worker spent on sandbox layers on the job's path, as it measured it: every
    /// layer for a cold worker; only the per-job layers for a prepared one.
    pub setup: Duration,
    /// Time the job itself took inside the worker (reading the input, inference, writing).
    pub job: Duration,
    /// Whether a prepared worker of a [`Pool`] ran the job.
    pub pooled: bool,
}

/// How a job can fail.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The kernel lacks a sandbox feature.
    #[error(
        "this kernel lacks sandbox features: {missing}; run on Linux with unprivileged user \
         namespaces, Landlock and seccomp, or opt out explicitly with allow_degraded \
         (--allow-degraded-sandbox)"
    )]
    Unsupported {
        /// The missing features.
        missing: String,
    },
    /// The policy cannot be used.
    #[error("invalid sandbox policy: {0}")]
    InvalidPolicy(String),
    /// The input is larger than the limit.
    #[error("input is {size} bytes, more than the limit of {limit} bytes")]
    InputTooLarge {
        /// Input size.
        size: u64,
        /// Limit.
        limit: u64,
    },
    /// The worker could not be started or talked to.
    #[error("cannot run the worker process: {0}")]
    Io(#[from] std::io::Error),
    /// The job ran past the wall-clock limit and was killed.
    #[error("job killed after the wall-clock limit of {limit:?}")]
    Timeout {
        /// Limit.
        limit: Duration,
    },
    /// The job used up its CPU time.
    #[error("job killed at the CPU time limit of {seconds} s")]
    CpuLimit {
        /// Limit.
        seconds: u64,
    },
    /// The job hit the address-space limit.
    #[error("job ran out of memory at the address-space limit of {bytes} bytes")]
    MemoryLimit {
        /// Limit.
        bytes: u64,
    },
    /// The job made a system call the seccomp filter forbids and was killed (SIGSYS).
    #[error("job killed by the seccomp filter (forbidden system call)")]
    SeccompViolation,
    /// The job wrote more output than allowed and was killed.
    #[error("job output exceeded the limit of {limit} bytes")]
    OutputTooLarge {
        /// Limit.
        limit: u64,
    },
    /// The worker could not build the sandbox.
    #[error("the worker could not set up the sandbox: {message}")]
    Setup {
        /// What failed.
        message: String,
    },
    /// The job itself failed (bad model, bad input, inference error).
    #[error("job failed: {message}")]
    Job {
        /// What the worker reported.
        message: String,
    },
    /// The worker was killed by a signal.
    #[error("job killed by signal {signal}")]
    Signal {
        /// Signal number.
        signal: i32,
    },
    /// The worker exited abnormally without saying why.
    #[error("worker exited with status {code} without a report")]
    Exit {
        /// Exit code.
        code: i32,
    },
}

/// What the parent tells the worker (argv, JSON). Nothing secret goes in here.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct WorkerConfig {
    /// The job. `None`: a prepared worker of a [`Pool`], which reads its job as a [`JobSpec`]
    /// frame on stdin once its job-independent layers are in place.
    job: Option<JobSpec>,
    /// Namespaces available (probe).
    namespaces: bool,
    /// Seccomp available (probe).
    seccomp: bool,
    allow_degraded: bool,
    sandboxed: bool,
    /// The node's pid: the worker exits if its parent is already gone (`None` when started
    /// through a launcher, whose pid is not the node's).
    parent_pid: Option<u32>,
}

/// What depends on the job: applied by every worker after it has its job.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct JobSpec {
    model: PathBuf,
    scratch: PathBuf,
    limits: Limits,
    /// Landlock ABI to use (already capped by the kernel's); 0 = none.
    landlock_abi: i32,
}

/// The largest [`JobSpec`] frame a prepared worker accepts (paths and numbers: far less).
const MAX_JOB_SPEC: u32 = 64 << 10;

/// The byte a prepared worker writes on stdout once its job-independent layers are in place.
const READY: u8 = b'R';

/// The first line a prepared worker writes on stderr once it has read its job, before it does
/// anything the job asked for: without it, a dead prepared worker never took the job.
const ACCEPTED: &[u8] = b"{\"attesta_accepted\":true}\n";

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for the node and its workers (no time
/// namespace), so the node can tell when a worker started its job.
fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| {
            u64::try_from(t.tv_sec()).unwrap_or(0).saturating_mul(1_000_000_000)
                + u64::try_from(t.tv_nsec()).unwrap_or(0)
        })
        .unwrap_or(0)
}

/// Exit codes shared by worker and parent.
mod exit {
    /// The worker wrote a structured report on stderr.
    pub(super) const REPORTED: u8 = 3;
    /// The job died by signal N: the PID-namespace init exits `SIGNALLED + N` (init cannot
    /// re-raise most signals on itself).
    pub(super) const SIGNALLED: i32 = 100;
}

/// The line a worker that succeeded writes on stderr: how long its phases took.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Timing {
    attesta_timing: TimingBody,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct TimingBody {
    setup_ns: u64,
    job_ns: u64,
    /// [`monotonic_ns`] when the job started inside the complete sandbox.
    running_at_ns: u64,
}

/// The line the PID namespace's init writes on stderr when the job process has ended.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ExitLine {
    attesta_exit: ExitBody,
}

#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct ExitBody {
    code: Option<i32>,
    signal: Option<i32>,
}

/// The structured error line the worker writes on stderr.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Report {
    attesta_worker: ReportBody,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ReportBody {
    kind: ReportKind,
    message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum ReportKind {
    Setup,
    Job,
}
