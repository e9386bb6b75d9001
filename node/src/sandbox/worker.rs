//! The worker side: `attesta-node __worker CONFIG`. Sandboxes itself, then reads the input from
//! stdin, runs the job and writes the canonical output to stdout. Failures go to stderr as one
//! JSON line ([`super::Report`]) and exit code [`super::exit::REPORTED`].

use std::io::{Read, Write};
use std::process::ExitCode;

use nix::sys::signal::Signal;

use super::{Report, ReportBody, ReportKind, Timing, TimingBody, WorkerConfig, exit};
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
    let started = std::time::Instant::now();
    // Die with the node; if the node is already gone, stop before doing anything.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| setup(format!("pdeathsig: {e}")))?;
    let config = config()?;
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

    if config.sandboxed {
        sandbox(&config)?;
    }
    let sandboxed = std::time::Instant::now();

    let mut input = Vec::new();
    std::io::stdin()
        .take(config.limits.max_input.saturating_add(1))
        .read_to_end(&mut input)
        .map_err(|e| (ReportKind::Job, format!("reading the input: {e}")))?;
    if input.len() as u64 > config.limits.max_input {
        return Err((ReportKind::Job, "input larger than the limit".to_owned()));
    }
    let output = job(&config, &input)?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&output)
        .and_then(|()| stdout.flush())
        .map_err(|e| (ReportKind::Job, format!("writing the output: {e}")))?;
    let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let timing = Timing {
        attesta_timing: TimingBody {
            setup_ns: nanos(sandboxed - started),
            job_ns: nanos(sandboxed.elapsed()),
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

/// Applies every layer in order, in the job process (pid 2 of the new PID namespace):
/// namespaces → fork twice → rlimits → cwd → Landlock → no_new_privs → seccomp.
fn sandbox(config: &WorkerConfig) -> Result<(), Failure> {
    let degraded = |what: &str, e: String| -> Result<(), Failure> {
        if config.allow_degraded { Ok(()) } else { Err(setup(format!("{what}: {e}"))) }
    };
    if config.namespaces {
        namespaces::enter().map_err(setup)?;
    } else {
        degraded("namespaces", "not available".to_owned())?;
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
    rlimits::apply(&config.limits).map_err(setup)?;
    std::env::set_current_dir(&config.scratch)
        .map_err(|e| setup(format!("cannot enter the scratch dir: {e}")))?;
    if config.landlock_abi > 0 {
        let abi = landlock::ABI::from(config.landlock_abi);
        landlock_rules::restrict(&config.model, &config.scratch, abi).map_err(setup)?;
    } else {
        degraded("landlock", "not available".to_owned())?;
    }
    nix::sys::prctl::set_no_new_privs().map_err(|e| setup(format!("no_new_privs: {e}")))?;
    if config.seccomp {
        seccomp::install().map_err(setup)?;
    } else {
        degraded("seccomp", "not available".to_owned())?;
    }
    Ok(())
}

/// Runs the job: inference, or with the `escape-tests` feature a hostile payload when the model
/// file says so. Both run after the sandbox is in place.
fn job(config: &WorkerConfig, input: &[u8]) -> Result<Vec<u8>, Failure> {
    #[cfg(feature = "escape-tests")]
    if let Some(result) = super::escape::maybe_run(&config.model, input) {
        return result.map_err(|message| (ReportKind::Job, message));
    }
    crate::inference::run_canonical(&config.model, input)
        .map_err(|e| (ReportKind::Job, e.to_string()))
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
