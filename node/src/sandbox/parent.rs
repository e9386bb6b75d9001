//! The node side: spawn the worker, feed the input, collect the output with caps, enforce the
//! wall-clock limit and turn every ending into a [`SandboxError`].

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tracing::{debug, warn};

use super::{
    ExitBody, ExitLine, JobOutput, JobSpec, Policy, Report, ReportKind, SandboxError, Timing,
    TimingBody, WorkerConfig, exit, probe,
};

/// The most stderr kept from a worker (its report is one short line).
const MAX_STDERR: usize = 64 << 10;

/// Runs one job in a sandboxed worker process and returns its canonical output.
///
/// Refuses ([`SandboxError::Unsupported`]) when the kernel lacks a sandbox feature, unless
/// `policy.allow_degraded` is set (then logs a warning on every job). Blocks until the worker
/// has exited; call it from a blocking thread in async code. The calling thread must outlive the
/// job: the worker dies with it (`PR_SET_PDEATHSIG`).
pub fn run_job(policy: &Policy, input: &[u8]) -> Result<JobOutput, SandboxError> {
    check_input(policy, input)?;
    let config = config(policy)?;
    let handed_over = Handover::now();
    let child = spawn(&policy.worker, &policy.launcher, &config)?;
    match finish(child, handed_over, [&[], input], policy, false) {
        Ok(output) => Ok(output),
        Err(Finish::Failed(e)) => Err(e),
        // A cold worker has its job from its command line.
        Err(Finish::NotAccepted) => Err(SandboxError::Exit { code: -1 }),
    }
}

pub(super) fn check_input(policy: &Policy, input: &[u8]) -> Result<(), SandboxError> {
    let size = input.len() as u64;
    let limit = policy.limits.max_input;
    if size > limit {
        return Err(SandboxError::InputTooLarge { size, limit });
    }
    Ok(())
}

/// When a job was handed to its worker (spawned, or sent to a prepared one).
#[derive(Clone, Copy)]
pub(super) struct Handover {
    at: Instant,
    monotonic_ns: u64,
}

impl Handover {
    pub(super) fn now() -> Self {
        Self { at: Instant::now(), monotonic_ns: super::monotonic_ns() }
    }
}

/// Starts `worker __worker CONFIG` (through `launcher` if any) in its own process group, with
/// an empty environment, `/` as working directory and piped stdio.
pub(super) fn spawn(
    worker: &std::path::Path,
    launcher: &[std::ffi::OsString],
    config: &WorkerConfig,
) -> Result<Child, SandboxError> {
    let mut command = match launcher.split_first() {
        Some((launcher, args)) => {
            let mut c = Command::new(launcher);
            c.args(args).arg(worker);
            c
        }
        None => Command::new(worker),
    };
    Ok(command
        .arg(super::WORKER_ARG)
        .arg(
            serde_json::to_string(config)
                .map_err(|e| SandboxError::InvalidPolicy(e.to_string()))?,
        )
        .env_clear()
        .current_dir("/")
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?)
}

/// How [`finish`] can fail.
pub(super) enum Finish {
    /// The job failed (or the sandbox refused it).
    Failed(SandboxError),
    /// A prepared worker died before it took the job: nothing of the job ran.
    NotAccepted,
}

impl From<SandboxError> for Finish {
    fn from(e: SandboxError) -> Self {
        Self::Failed(e)
    }
}

impl From<std::io::Error> for Finish {
    fn from(e: std::io::Error) -> Self {
        Self::Failed(e.into())
    }
}

/// Feeds `stdin` (its parts in order) to a spawned or prepared worker, supervises it and turns
/// its ending into the job's result. `prepared`: the worker was prepared ahead of the job, and
/// its stderr starts with [`super::ACCEPTED`] once it took the job.
pub(super) fn finish(
    mut child: Child,
    handed_over: Handover,
    stdin: [&[u8]; 2],
    policy: &Policy,
    prepared: bool,
) -> Result<JobOutput, Finish> {
    let limits = &policy.limits;
    let result = supervise(&mut child, stdin, policy);
    // Whatever happened, no process of this job survives: the worker's process group holds the
    // whole tree (and the PID namespace dies with its init).
    kill_tree(&child);
    let ending = match result {
        Ok(ending) => ending,
        Err(e) => {
            let _ = child.wait();
            return Err(e.into());
        }
    };
    let (stdout, stderr, relayed) = match ending {
        Ending::Exited { stdout, stderr, relayed } => (stdout, stderr, relayed),
        Ending::Timeout => {
            child.wait()?;
            return Err(SandboxError::Timeout { limit: limits.wall_clock }.into());
        }
        Ending::OutputTooLarge => {
            child.wait()?;
            return Err(SandboxError::OutputTooLarge { limit: limits.max_output }.into());
        }
    };
    // The namespace init reported the job's status: the rest of the worker is only tearing its
    // namespaces down (about a millisecond); reap it off the job's critical path.
    let (code, signal) = match relayed {
        Some(status) => {
            std::thread::spawn(move || child.wait());
            (status.code, status.signal)
        }
        None => {
            let status = child.wait()?;
            let relayed_signal = status
                .code()
                .filter(|&c| c > exit::SIGNALLED && c < exit::SIGNALLED + 65)
                .map(|c| c - exit::SIGNALLED);
            (status.code(), status.signal().or(relayed_signal))
        }
    };
    let elapsed = handed_over.at.elapsed();
    debug!(?elapsed, ?code, ?signal, prepared, "sandboxed job finished");
    if prepared && !stderr.starts_with(super::ACCEPTED) {
        return Err(Finish::NotAccepted);
    }
    if let Some(signal) = signal {
        return Err(classify_signal(signal, &stderr, policy).into());
    }
    match code {
        Some(0) => {
            let timing = parse_timing(&stderr);
            let (setup, job, start) = match timing {
                Some(t) => (
                    Duration::from_nanos(t.setup_ns),
                    Duration::from_nanos(t.job_ns),
                    Duration::from_nanos(t.running_at_ns.saturating_sub(handed_over.monotonic_ns)),
                ),
                None => Default::default(),
            };
            Ok(JobOutput { canonical: stdout, elapsed, start, setup, job, pooled: prepared })
        }
        Some(code) => Err(match parse_report(&stderr) {
            Some((ReportKind::Setup, message)) => SandboxError::Setup { message },
            Some((ReportKind::Job, message)) => SandboxError::Job { message },
            None => SandboxError::Exit { code },
        }
        .into()),
        None => Err(SandboxError::Exit { code: -1 }.into()),
    }
}

/// Checks the policy and the kernel; builds what the worker is told.
pub(super) fn config(policy: &Policy) -> Result<WorkerConfig, SandboxError> {
    if !policy.model.is_absolute() || !policy.scratch.is_absolute() {
        return Err(SandboxError::InvalidPolicy("model and scratch paths must be absolute".into()));
    }
    if !policy.model.is_file() {
        return Err(SandboxError::InvalidPolicy(format!(
            "model {} is not a file",
            policy.model.display()
        )));
    }
    if !policy.scratch.is_dir() {
        return Err(SandboxError::InvalidPolicy(format!(
            "scratch {} is not a directory",
            policy.scratch.display()
        )));
    }
    let report = probe();
    let missing = report.missing();
    if policy.unsandboxed {
        warn!("running a job WITHOUT ANY SANDBOX (benchmark switch); never do this for real jobs");
    } else if !missing.is_empty() {
        if !policy.allow_degraded {
            return Err(SandboxError::Unsupported { missing: missing.join(", ") });
        }
        warn!(missing = %missing.join(", "), "running a job in a DEGRADED sandbox (allow_degraded)");
    }
    let landlock_abi = report.landlock(policy.max_landlock_abi) as i32;
    let config = WorkerConfig {
        job: Some(JobSpec {
            model: policy.model.clone(),
            scratch: policy.scratch.clone(),
            limits: policy.limits.clone(),
            landlock_abi,
        }),
        namespaces: report.user_namespaces,
        seccomp: report.seccomp,
        allow_degraded: policy.allow_degraded,
        sandboxed: !policy.unsandboxed,
        parent_pid: policy.launcher.is_empty().then(std::process::id),
    };
    #[cfg(feature = "escape-tests")]
    let config = skip_layers(config, policy.skip_layers);
    Ok(config)
}

/// Feature `escape-tests` only: switches the requested layers off (the worker skips a layer only
/// when degraded mode allows it).
#[cfg(feature = "escape-tests")]
fn skip_layers(mut config: WorkerConfig, skip: super::SkipLayers) -> WorkerConfig {
    if skip != super::SkipLayers::default() {
        warn!(?skip, "sandbox layers switched off for this job (feature escape-tests)");
        config.namespaces &= !skip.namespaces;
        config.seccomp &= !skip.seccomp;
        if skip.landlock
            && let Some(job) = &mut config.job
        {
            job.landlock_abi = 0;
        }
        config.allow_degraded = true;
    }
    config
}

fn classify_signal(signal: i32, stderr: &[u8], policy: &Policy) -> SandboxError {
    let limits = &policy.limits;
    match Signal::try_from(signal) {
        Ok(Signal::SIGSYS) => SandboxError::SeccompViolation,
        Ok(Signal::SIGXCPU) => SandboxError::CpuLimit { seconds: limits.cpu_seconds },
        // Rust's allocation-failure handler prints this, then aborts.
        Ok(Signal::SIGABRT) if contains(stderr, b"memory allocation of") => {
            SandboxError::MemoryLimit { bytes: limits.address_space }
        }
        _ => SandboxError::Signal { signal },
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn parse_exit(stderr: &[u8]) -> Option<ExitBody> {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str::<ExitLine>(line).ok())
        .map(|l| l.attesta_exit)
}

fn parse_timing(stderr: &[u8]) -> Option<TimingBody> {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str::<Timing>(line).ok())
        .map(|t| t.attesta_timing)
}

fn parse_report(stderr: &[u8]) -> Option<(ReportKind, String)> {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str::<Report>(line).ok())
        .map(|r| (r.attesta_worker.kind, r.attesta_worker.message))
}

enum Ending {
    /// `relayed`: the status the namespace init wrote, when it did.
    Exited {
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        relayed: Option<ExitBody>,
    },
    Timeout,
    OutputTooLarge,
}

pub(super) fn kill_tree(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

fn set_nonblocking(fd: &impl AsFd) -> std::io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor we then own.
    #[allow(unsafe_code)]
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0u32) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| std::io::Error::other("pidfd out of range"))?;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    #[allow(unsafe_code)]
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One poll loop: write the input, read stdout and stderr (capped), wait for the worker's exit
/// (pidfd) or the deadline.
fn supervise(
    child: &mut Child,
    parts: [&[u8]; 2],
    policy: &Policy,
) -> Result<Ending, SandboxError> {
    let deadline = Instant::now() + policy.limits.wall_clock;
    let max_output = usize::try_from(policy.limits.max_output).unwrap_or(usize::MAX);
    let pidfd = pidfd_open(child.id())?;
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout pipe"))?;
    let mut stderr = child.stderr.take().ok_or_else(|| std::io::Error::other("no stderr pipe"))?;
    if let Some(stdin) = &stdin {
        set_nonblocking(stdin)?;
    }
    set_nonblocking(&stdout)?;
    set_nonblocking(&stderr)?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (mut out_open, mut err_open, mut exited) = (true, true, false);
    // What is left to write: the parts in order.
    let (mut part, mut written) = (0, 0);
    let mut buf = vec![0u8; 64 << 10];
    let pending = |part: usize, written: usize| -> &[u8] {
        parts.get(part).map_or(&[][..], |p| p.get(written..).unwrap_or_default())
    };
    while part < parts.len() && pending(part, written).is_empty() {
        (part, written) = (part + 1, 0);
    }
    if part == parts.len() {
        stdin = None;
    }
    // The worker has exited once the pidfd is readable; its pipes are then drained to EOF (the
    // write ends died with the whole tree, which the process group kill below guarantees).
    let mut relayed = None;
    while !exited && relayed.is_none() {
        // Both pipes at EOF: the job and its init are done writing. If init relayed the job's
        // status, that is the ending; otherwise wait for the worker itself.
        if !out_open && !err_open {
            relayed = parse_exit(&err);
            if relayed.is_some() {
                break;
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Ending::Timeout);
        }
        let wait = deadline - now;
        let timeout =
            PollTimeout::try_from(wait.min(Duration::from_secs(3600)).as_millis().max(1) as i32)
                .unwrap_or(PollTimeout::MAX);
        // Only what is still open: a closed pipe keeps reporting POLLHUP, which would spin.
        let mut fds = Vec::with_capacity(4);
        let mut slots = [usize::MAX; 4];
        let wanted = [
            (!exited).then(|| (pidfd.as_fd(), PollFlags::POLLIN)),
            out_open.then(|| (stdout.as_fd(), PollFlags::POLLIN)),
            err_open.then(|| (stderr.as_fd(), PollFlags::POLLIN)),
            stdin.as_ref().map(|s| (s.as_fd(), PollFlags::POLLOUT)),
        ];
        for (slot, entry) in wanted.into_iter().enumerate() {
            if let Some((fd, events)) = entry {
                slots[slot] = fds.len();
                fds.push(PollFd::new(fd, events));
            }
        }
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(std::io::Error::from(e).into()),
        }
        let ready = |slot: usize| {
            fds.get(slots[slot]).and_then(PollFd::revents).is_some_and(|r| !r.is_empty())
        };
        let (pid_ready, out_ready, err_ready, in_ready) = (ready(0), ready(1), ready(2), ready(3));
        drop(fds);
        if pid_ready {
            exited = true;
            // The job is over: make sure nothing else of it runs and holds a pipe open.
            kill_tree(child);
        }
        if out_ready {
            drain(&mut stdout, &mut out, &mut buf, &mut out_open, max_output.saturating_add(1))?;
            if out.len() > max_output {
                return Ok(Ending::OutputTooLarge);
            }
        }
        if err_ready {
            drain(&mut stderr, &mut err, &mut buf, &mut err_open, MAX_STDERR)?;
        }
        if in_ready && let Some(pipe) = &mut stdin {
            match pipe.write(pending(part, written)) {
                Ok(n) => written += n,
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
                // The worker stopped reading (it failed or was killed): its exit says why.
                Err(_) => part = parts.len(),
            }
            while part < parts.len() && pending(part, written).is_empty() {
                (part, written) = (part + 1, 0);
            }
            if part == parts.len() {
                stdin = None;
            }
        }
    }
    // The worker has exited: drain what is left in the pipes (the whole tree is gone).
    if exited {
        if out_open {
            drain(&mut stdout, &mut out, &mut buf, &mut out_open, max_output.saturating_add(1))?;
            if out.len() > max_output {
                return Ok(Ending::OutputTooLarge);
            }
        }
        if err_open {
            drain(&mut stderr, &mut err, &mut buf, &mut err_open, MAX_STDERR)?;
        }
        relayed = relayed.or_else(|| parse_exit(&err));
    }
    Ok(Ending::Exited { stdout: out, stderr: err, relayed })
}

/// Reads what is available, keeping at most `cap` bytes (the rest is read and dropped, so the
/// worker never blocks on a full pipe). Marks the pipe closed at EOF.
fn drain(
    pipe: &mut impl Read,
    into: &mut Vec<u8>,
    buf: &mut [u8],
    open: &mut bool,
    cap: usize,
) -> std::io::Result<()> {
    loop {
        match pipe.read(buf) {
            Ok(0) => {
                *open = false;
                return Ok(());
            }
            Ok(n) => {
                let keep = n.min(cap.saturating_sub(into.len()));
                into.extend_from_slice(&buf[..keep]);
                if into.len() >= cap {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
