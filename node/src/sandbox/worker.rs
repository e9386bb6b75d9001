//! The worker side: `attesta-node __worker CONFIG`. Sandboxes itself, then reads the input from
//! stdin, runs the job and writes the canonical output to stdout. Failures go to stderr as one
//! JSON line ([`super::Report`]) and exit code [`super::exit::REPORTED`].

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Instant;

use nix::sys::signal::Signal;

use super::{
    ACCEPTED, JobSpec, MAX_JOB_SPEC, READY, Report, ReportBody, ReportKind, Timing, TimingBody,
    WorkerConfig, exit, monotonic_ns,
};
use super::{landlock_rules, namespaces};
use super::{rlimits, seccomp};

/// Entry point of the worker process (`attesta-node __worker CONFIG`): sandboxes itself, then
/// runs the job. Called by `main` before anything else starts, while the process has one thread.
pub fn worker_main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err((kind, message)) => {
            report(kind, &message);
            ExitCode::from(exit::REPORTED)
        }
    }
}

type Failure = (ReportKind, String);

fn setup(message: String) -> Failure {
    (ReportKind::Setup, message)
}

fn run() -> Result<(), Failure> {
    let started = Instant::now();
    // Die with the node; if the node is already gone, stop before doing anything.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| setup(format!("pdeathsig: {e}")))?;
    let mut config = config()?;
    if let Some(parent) = config.parent_pid
        && nix::unistd::getppid().as_raw() != i32::try_from(parent).unwrap_or(-1)
    {
        return Err(setup("the node exited before the worker started".to_owned()));
    }
    close_inherited_descriptors();
    std::panic::set_hook(Box::new(|info| {
        report(ReportKind::Job, &format!("worker panicked: {info}"))
    }));

    // tract sizes its matrix blocks from the CPU cache geometry it reads once from /sys. Read it
    // now, before Landlock hides /sys, so a sandboxed job plans exactly like an unsandboxed one
    // (same speed, same kernels). This is hardware information, not the model or the input.
    let _ = tract_onnx::prelude::tract_linalg::cache::last_level_cache();

    let prepared = config.job.is_none();
    let closing_filter = if config.sandboxed { prepare(&config)? } else { None };
    // A prepared worker now waits for its one job; a cold one has it already.
    let (job, received) = match config.job.take() {
        Some(job) => (job, started),
        None => (receive()?, Instant::now()),
    };
    if config.sandboxed {
        confine(&config, &job, prepared, closing_filter.as_ref())?;
    }
    let sandboxed = Instant::now();
    let running_at_ns = monotonic_ns();

    let mut input = Vec::new();
    std::io::stdin()
        .take(job.limits.max_input.saturating_add(1))
        .read_to_end(&mut input)
        .map_err(|e| (ReportKind::Job, format!("reading the input: {e}")))?;
    if input.len() as u64 > job.limits.max_input {
        return Err((ReportKind::Job, "input larger than the limit".to_owned()));
    }
    let output = run_job(&job, &input)?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&output)
        .and_then(|()| stdout.flush())
        .map_err(|e| (ReportKind::Job, format!("writing the output: {e}")))?;
    let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let timing = Timing {
        attesta_timing: TimingBody {
            setup_ns: nanos(sandboxed - received),
            job_ns: nanos(sandboxed.elapsed()),
            running_at_ns,
        },
    };
    let _ = writeln!(
        std::io::stderr().lock(),
        "{}",
        serde_json::to_string(&timing).unwrap_or_default()
    );
    Ok(())
}

fn config() -> Result<WorkerConfig, Failure> {
    let arg = std::env::args_os()
        .nth(2)
        .ok_or_else(|| setup("missing worker configuration argument".to_owned()))?;
    let arg = arg.to_str().ok_or_else(|| setup("worker configuration is not UTF-8".to_owned()))?;
    serde_json::from_str(arg).map_err(|e| setup(format!("bad worker configuration: {e}")))
}

/// A prepared worker: says it is ready (one byte on stdout), then blocks until the node hands
/// it a job (a little-endian `u32` length and a JSON [`JobSpec`] on stdin, the input after it).
/// EOF instead of a job (the pool shut down) ends the worker.
fn receive() -> Result<JobSpec, Failure> {
    {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&[READY])
            .and_then(|()| stdout.flush())
            .map_err(|e| setup(format!("cannot signal readiness: {e}")))?;
    }
    let mut stdin = std::io::stdin().lock();
    let mut len = [0u8; 4];
    stdin.read_exact(&mut len).map_err(|e| setup(format!("no job received: {e}")))?;
    let len = u32::from_le_bytes(len);
    if len > MAX_JOB_SPEC {
        return Err(setup(format!("job frame of {len} bytes is over the limit")));
    }
    let mut frame = vec![0u8; len as usize];
    stdin.read_exact(&mut frame).map_err(|e| setup(format!("truncated job frame: {e}")))?;
    let job: JobSpec =
        serde_json::from_slice(&frame).map_err(|e| setup(format!("bad job frame: {e}")))?;
    // Before anything the job asked for: the node knows from this line that the job was taken.
    std::io::stderr().lock().write_all(ACCEPTED).map_err(|e| setup(format!("stderr: {e}")))?;
    Ok(job)
}

/// The layers that do not depend on the job, in order: namespaces → no core dumps → fork twice
/// (the job continues as pid 2); for a prepared worker also no_new_privs and the seccomp
/// allow-list widened by the set-up calls [`confine`] still makes. Returns the closing filter a
/// prepared worker installs once confined.
fn prepare(config: &WorkerConfig) -> Result<Option<seccompiler::BpfProgram>, Failure> {
    if config.namespaces {
        namespaces::enter().map_err(setup)?;
    } else {
        degraded(config, "namespaces")?;
    }
    // No core dumps; /proc/<pid> of the worker becomes root-owned and not ptrace-able.
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0)
        .map_err(|e| setup(format!("RLIMIT_CORE: {e}")))?;
    nix::sys::prctl::set_dumpable(false).map_err(|e| setup(format!("dumpable: {e}")))?;
    if config.namespaces {
        // init (pid 1) waits; the job continues as pid 2.
        namespaces::fork_and_relay(false).map_err(setup)?;
        namespaces::fork_and_relay(true).map_err(setup)?;
    }
    if config.job.is_some() || !config.seccomp {
        return Ok(None);
    }
    nix::sys::prctl::set_no_new_privs().map_err(|e| setup(format!("no_new_privs: {e}")))?;
    seccomp::install_prepared().map(Some).map_err(setup)
}

/// The layers that depend on the job, in order: rlimits → cwd → Landlock → no_new_privs →
/// seccomp (a cold worker: the allow-list; a prepared one: the closing filter, which leaves
/// exactly the allow-list).
fn confine(
    config: &WorkerConfig,
    job: &JobSpec,
    prepared: bool,
    closing_filter: Option<&seccompiler::BpfProgram>,
) -> Result<(), Failure> {
    rlimits::apply(&job.limits).map_err(setup)?;
    std::env::set_current_dir(&job.scratch)
        .map_err(|e| setup(format!("cannot enter the scratch dir: {e}")))?;
    if job.landlock_abi > 0 {
        let abi = landlock::ABI::from(job.landlock_abi);
        landlock_rules::restrict(&job.model, &job.scratch, abi).map_err(setup)?;
    } else {
        degraded(config, "landlock")?;
    }
    nix::sys::prctl::set_no_new_privs().map_err(|e| setup(format!("no_new_privs: {e}")))?;
    match (config.seccomp, prepared, closing_filter) {
        (false, ..) => degraded(config, "seccomp"),
        (true, false, _) => seccomp::install().map_err(setup),
        (true, true, Some(filter)) => seccomp::install_closing(filter).map_err(setup),
        (true, true, None) => Err(setup("prepared worker without its closing filter".to_owned())),
    }
}

fn degraded(config: &WorkerConfig, what: &str) -> Result<(), Failure> {
    if config.allow_degraded { Ok(()) } else { Err(setup(format!("{what}: not available"))) }
}

/// Runs the job: inference, or with the `escape-tests` feature a hostile payload when the model
/// file says so. Both run after the sandbox is in place.
fn run_job(job: &JobSpec, input: &[u8]) -> Result<Vec<u8>, Failure> {
    #[cfg(feature = "escape-tests")]
    if let Some(result) = super::escape::maybe_run(&job.model, input) {
        return result.map_err(|message| (ReportKind::Job, message));
    }
    crate::inference::run_canonical(&job.model, input).map_err(|e| (ReportKind::Job, e.to_string()))
}

/// Closes every descriptor but stdin, stdout and stderr, so nothing the node had open (a socket,
/// the keystore, a directory) leaks into the job.
fn close_inherited_descriptors() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // The read_dir handle is already closed here; EBADF for it is harmless.
        let _ = nix::unistd::close(fd);
    }
}

fn report(kind: ReportKind, message: &str) {
    let line = serde_json::to_string(&Report {
        attesta_worker: ReportBody { kind, message: message.to_owned() },
    })
    .unwrap_or_default();
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
}
