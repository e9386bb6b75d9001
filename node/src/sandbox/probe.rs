//! Which sandbox features the running kernel offers.

use std::sync::OnceLock;

use nix::libc;

use super::{LandlockAbi, MIN_LANDLOCK_ABI};

/// What the kernel offers. [`ProbeReport::missing`] lists what the sandbox needs but lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    /// Unprivileged user namespaces (with PID, network, IPC, UTS and mount namespaces inside)
    /// can be created.
    pub user_namespaces: bool,
    /// The kernel's Landlock ABI version (0 = Landlock absent or disabled).
    pub landlock_abi: i32,
    /// Seccomp filters are available.
    pub seccomp: bool,
}

impl ProbeReport {
    /// The features the sandbox needs that are missing; empty when the sandbox is complete.
    pub fn missing(&self) -> Vec<String> {
        let mut missing = Vec::new();
        if !self.user_namespaces {
            missing.push("user namespaces (check kernel.unprivileged_userns_clone / user.max_user_namespaces)".to_owned());
        }
        if self.landlock_abi < MIN_LANDLOCK_ABI as i32 {
            missing.push("Landlock (Linux >= 5.13 with lsm=landlock)".to_owned());
        }
        if !self.seccomp {
            missing.push("seccomp filters (CONFIG_SECCOMP_FILTER)".to_owned());
        }
        missing
    }

    /// The newest Landlock ABI usable here, no newer than `cap`.
    pub fn landlock(&self, cap: Option<LandlockAbi>) -> LandlockAbi {
        let kernel = LandlockAbi::from(self.landlock_abi);
        match cap {
            Some(cap) if cap < kernel => cap,
            _ => kernel,
        }
    }
}

/// Probes the kernel once (cached): user namespaces, Landlock ABI, seccomp.
pub fn probe() -> ProbeReport {
    static REPORT: OnceLock<ProbeReport> = OnceLock::new();
    REPORT
        .get_or_init(|| ProbeReport {
            user_namespaces: user_namespaces(),
            landlock_abi: landlock_abi(),
            seccomp: seccomp(),
        })
        .clone()
}

fn landlock_abi() -> i32 {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) only returns the
    // ABI version; it reads no memory.
    #[allow(unsafe_code)]
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32,
        )
    };
    i32::try_from(v).unwrap_or(0).max(0)
}

fn seccomp() -> bool {
    // /proc/self/status shows a Seccomp line whenever seccomp is built in; the filter mode needs
    // the "actions_avail" file that only CONFIG_SECCOMP_FILTER kernels have.
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| s.contains("\nSeccomp:"))
        && std::path::Path::new("/proc/sys/kernel/seccomp/actions_avail").exists()
}

/// Tries to create a user namespace in a throwaway child (unshare would change this process).
fn user_namespaces() -> bool {
    if std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .map(|s| s.trim() == "0")
        .unwrap_or(false)
        || std::fs::read_to_string("/proc/sys/kernel/unprivileged_userns_clone")
            .map(|s| s.trim() == "0")
            .unwrap_or(false)
    {
        return false;
    }
    // A real try: clone a child into all the namespaces the worker will create. The child
    // only calls _exit, so cloning from a multi-threaded process is fine.
    let flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWNS;
    // SAFETY: raw clone without CLONE_VM: the child gets a copy of the address space and does
    // nothing but _exit(0); the parent reaps it below.
    #[allow(unsafe_code)]
    let pid = unsafe {
        let pid = libc::syscall(
            libc::SYS_clone,
            libc::c_long::from(flags | libc::SIGCHLD),
            0usize,
            0usize,
            0usize,
            0usize,
        );
        if pid == 0 {
            libc::_exit(0);
        }
        pid
    };
    if pid < 0 {
        return false;
    }
    let Ok(pid) = i32::try_from(pid) else { return false };
    matches!(
        nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None),
        Ok(nix::sys::wait::WaitStatus::Exited(_, 0))
    )
}
