//! New user, PID, network, IPC, UTS and mount namespaces for the worker.
//!
//! `unshare` moves the calling process into every namespace but PID; the PID namespace takes
//! effect for the next child, so the worker forks twice: an init (pid 1, which only waits) and
//! the job (pid 2). The job is not pid 1 because init ignores default-action signals sent from
//! inside its namespace, which would swallow `SIGXCPU` and `SIGABRT`.

use std::process::exit;

use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getegid, geteuid};

use std::io::Write;

use super::exit::SIGNALLED;
use super::{ExitBody, ExitLine};

/// Unshares all namespaces and maps the current uid and gid to root inside the user namespace
/// (the only mapping an unprivileged process may write). The new network namespace has only a
/// loopback interface, down: no route anywhere.
pub(super) fn enter() -> Result<(), String> {
    let uid = geteuid();
    let gid = getegid();
    unshare(
        CloneFlags::CLONE_NEWUSER
            | CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWNET
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWNS,
    )
    .map_err(|e| format!("unshare namespaces: {e}"))?;
    std::fs::write("/proc/self/setgroups", "deny").map_err(|e| format!("setgroups: {e}"))?;
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1\n"))
        .map_err(|e| format!("uid_map: {e}"))?;
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1\n"))
        .map_err(|e| format!("gid_map: {e}"))?;
    nix::unistd::sethostname("attesta-job").map_err(|e| format!("sethostname: {e}"))?;
    Ok(())
}

/// Forks. The parent waits for the child, then exits with the child's status (a death by signal
/// N becomes exit code `SIGNALLED + N`): it never returns. The child returns and carries on.
/// `kill_with_parent` makes the child die with its parent.
/// `report`: the waiting parent writes the child's status on stderr (an [`ExitLine`]) before it
/// exits, so the node need not wait for namespace teardown; otherwise it closes stderr.
pub(super) fn fork_and_relay(report: bool) -> Result<(), String> {
    // SAFETY: the worker is single-threaded here (it branched off in main before any thread
    // started), so the child may run arbitrary code.
    #[allow(unsafe_code)]
    let forked = unsafe { fork() }.map_err(|e| format!("fork: {e}"))?;
    match forked {
        ForkResult::Child => {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                .map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
            Ok(())
        }
        ForkResult::Parent { child } => relay(child, report),
    }
}

fn relay(child: Pid, report: bool) -> ! {
    // The waiting process holds no pipe ends the job needs; drop stdin and stdout so the parent
    // sees EOF exactly when the job closes them.
    let _ = nix::unistd::close(0);
    let _ = nix::unistd::close(1);
    if !report {
        let _ = nix::unistd::close(2);
    }
    let (code, signal) = loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => break (Some(code), None),
            Ok(WaitStatus::Signaled(_, signal, _)) => break (None, Some(signal as i32)),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break (None, Some(Signal::SIGKILL as i32)),
        }
    };
    if report {
        let line = ExitLine { attesta_exit: ExitBody { code, signal } };
        let _ = writeln!(
            std::io::stderr().lock(),
            "{}",
            serde_json::to_string(&line).unwrap_or_default()
        );
    }
    exit(code.unwrap_or_else(|| SIGNALLED + signal.unwrap_or(0)))
}
