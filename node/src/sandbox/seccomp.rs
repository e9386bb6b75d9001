//! The seccomp allow-list of the job process, built with seccompiler.
//!
//! Everything not listed kills the whole process (`SECCOMP_RET_KILL_PROCESS`, seen as SIGSYS).
//! The list was built by running the real inference path (tract) and the escape payloads under
//! `strace -f` and keeping only what they need. Calls that only reach the file system stay
//! allowed so Landlock, not seccomp, answers them (and is tested for it). Argument rules:
//!
//! - `mmap`, `mprotect`: never with `PROT_EXEC` (nothing in a job generates code), so no
//!   writable+executable memory can be made;
//! - `clone`: only with exactly the flags glibc uses for a thread, so no new process;
//!   `clone3` (whose flags live in memory seccomp cannot read) fails with `ENOSYS` and glibc
//!   falls back to `clone`;
//! - `prctl`: only `PR_SET_NAME` (thread names);
//! - `tgkill`: only to the job's own process (`abort` raises `SIGABRT` this way);
//! - `fcntl`: only reading and setting descriptor and status flags.
//!
//! A prepared worker of a pool installs the allow-list before it has a job, widened by the few
//! calls it still makes to confine itself to that job ([`SETUP_CALLS`]: rlimits, working
//! directory, Landlock, and installing one more filter), then a closing filter that kills exactly
//! those calls. Filters stack and the strictest answer wins, so the two together allow what the
//! allow-list alone allows (checked for each call by the escape suite, S11).
//!
//! Not allowed, among others: `socket` and every network call, `execve`, `fork`, `ptrace`,
//! `kill`, `truncate` (by path: Landlock ABI 1 cannot restrict it), `mount`, `unshare`,
//! `setns`, `ioctl`, `bpf`, `perf_event_open`, `io_uring_*`, `userfaultfd`, `keyctl`.

use std::collections::BTreeMap;

use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// The syscall rules that carry argument conditions; the escape suite (S11) checks each: allowed
/// arguments pass, perturbed arguments are killed.
pub const ARGUMENT_RULES: &[&str] = &["mmap", "mprotect", "clone", "prctl", "tgkill", "fcntl"];

/// The `clone` flags glibc's `pthread_create` passes (the only `clone` allowed).
pub const THREAD_CLONE_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM
    | libc::CLONE_SETTLS
    | libc::CLONE_PARENT_SETTID
    | libc::CLONE_CHILD_CLEARTID) as u64;

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;

/// Syscalls allowed with any arguments.
const UNCONDITIONAL: &[libc::c_long] = &[
    // I/O on descriptors the job has (stdin, stdout, stderr, the model, scratch files).
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_close,
    libc::SYS_lseek,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_ftruncate,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_getdents64,
    // Path calls: Landlock decides (model read-only, scratch read-write, nothing else).
    libc::SYS_openat,
    libc::SYS_mkdirat,
    libc::SYS_unlinkat,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_linkat,
    libc::SYS_readlinkat,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_getcwd,
    // Memory (mmap and mprotect have argument rules).
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_brk,
    // Signals, threads, time, randomness.
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_sigaltstack,
    libc::SYS_futex,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_clone3,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_gettimeofday,
    libc::SYS_nanosleep,
    libc::SYS_clock_nanosleep,
    libc::SYS_getrandom,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_open,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_stat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_lstat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_access,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_readlink,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_mkdir,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_rmdir,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_unlink,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_rename,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_link,
];

/// What a prepared worker still calls after its first filter: `setrlimit`/`prlimit64` (rlimits),
/// `chdir` (into the scratch dir), the three Landlock calls, and `seccomp` (the closing filter;
/// seccompiler and Landlock also set no_new_privs through `prctl`, see [`NO_NEW_PRIVS`]). The
/// closing filter kills every one of them.
pub const SETUP_CALLS: &[libc::c_long] = &[
    libc::SYS_setrlimit,
    libc::SYS_prlimit64,
    libc::SYS_chdir,
    libc::SYS_landlock_create_ruleset,
    libc::SYS_landlock_add_rule,
    libc::SYS_landlock_restrict_self,
    libc::SYS_seccomp,
];

/// `prctl(PR_SET_NO_NEW_PRIVS)`: allowed between a prepared worker's two filters, killed after.
const NO_NEW_PRIVS: u64 = libc::PR_SET_NO_NEW_PRIVS as u64;

fn cond(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, len, op, value).map_err(|e| format!("seccomp condition: {e}"))
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, String> {
    SeccompRule::new(conditions).map_err(|e| format!("seccomp rule: {e}"))
}

/// The allow-list; `prepared`: widened by [`SETUP_CALLS`] and `prctl(PR_SET_NO_NEW_PRIVS)`.
fn allow_list(own_pid: u32, prepared: bool) -> Result<BTreeMap<i64, Vec<SeccompRule>>, String> {
    use SeccompCmpArgLen::{Dword, Qword};
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        UNCONDITIONAL.iter().map(|&nr| (nr, Vec::new())).collect();
    let no_exec = || rule(vec![cond(2, Dword, SeccompCmpOp::MaskedEq(libc::PROT_EXEC as u64), 0)?]);
    rules.insert(libc::SYS_mmap, vec![no_exec()?]);
    rules.insert(libc::SYS_mprotect, vec![no_exec()?]);
    rules.insert(
        libc::SYS_clone,
        vec![rule(vec![cond(0, Qword, SeccompCmpOp::Eq, THREAD_CLONE_FLAGS)?])?],
    );
    let mut prctl = vec![rule(vec![cond(0, Dword, SeccompCmpOp::Eq, libc::PR_SET_NAME as u64)?])?];
    if prepared {
        prctl.push(rule(vec![cond(0, Dword, SeccompCmpOp::Eq, NO_NEW_PRIVS)?])?);
        rules.extend(SETUP_CALLS.iter().map(|&nr| (nr, Vec::new())));
    }
    rules.insert(libc::SYS_prctl, prctl);
    rules.insert(
        libc::SYS_tgkill,
        vec![rule(vec![cond(0, Dword, SeccompCmpOp::Eq, u64::from(own_pid))?])?],
    );
    let fcntl_ops = [libc::F_GETFD, libc::F_SETFD, libc::F_GETFL, libc::F_SETFL];
    rules.insert(
        libc::SYS_fcntl,
        fcntl_ops
            .iter()
            .map(|&op| rule(vec![cond(1, Dword, SeccompCmpOp::Eq, op as u64)?]))
            .collect::<Result<_, _>>()?,
    );
    Ok(rules)
}

fn compile(filter: Result<SeccompFilter, seccompiler::BackendError>) -> Result<BpfProgram, String> {
    let filter = filter.map_err(|e| format!("seccomp filter: {e}"))?;
    BpfProgram::try_from(filter).map_err(|e| format!("seccomp compile: {e}"))
}

/// Compiles the two filters: `clone3` → `ENOSYS`, then the allow-list (mismatch: kill process).
fn programs(own_pid: u32, prepared: bool) -> Result<[BpfProgram; 2], String> {
    let clone3 = compile(SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        ARCH,
    ))?;
    let allow = compile(SeccompFilter::new(
        allow_list(own_pid, prepared)?,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        ARCH,
    ))?;
    Ok([clone3, allow])
}

/// Installs the filters on every thread of the process (TSYNC). Needs `no_new_privs`.
pub(super) fn install() -> Result<(), String> {
    for program in programs(std::process::id(), false)? {
        seccompiler::apply_filter_all_threads(&program).map_err(|e| format!("seccomp: {e}"))?;
    }
    Ok(())
}

/// A prepared worker, before it has a job: installs the widened allow-list and returns the
/// closing filter, compiled now so that only loading it is left for the job's path.
pub(super) fn install_prepared() -> Result<BpfProgram, String> {
    for program in programs(std::process::id(), true)? {
        seccompiler::apply_filter_all_threads(&program).map_err(|e| format!("seccomp: {e}"))?;
    }
    let mut kill: BTreeMap<i64, Vec<SeccompRule>> =
        SETUP_CALLS.iter().map(|&nr| (nr, Vec::new())).collect();
    kill.insert(
        libc::SYS_prctl,
        vec![rule(vec![cond(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, NO_NEW_PRIVS)?])?],
    );
    compile(SeccompFilter::new(kill, SeccompAction::Allow, SeccompAction::KillProcess, ARCH))
}

/// A prepared worker, confined to its job: installs the closing filter on every thread.
pub(super) fn install_closing(program: &BpfProgram) -> Result<(), String> {
    seccompiler::apply_filter_all_threads(program).map_err(|e| format!("seccomp: {e}"))
}
