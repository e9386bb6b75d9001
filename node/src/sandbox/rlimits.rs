//! Resource limits of the job process.

use nix::sys::resource::{Resource, setrlimit};

use super::Limits;

/// Sets every limit, soft = hard, so the job cannot raise them again. The CPU limit's hard value
/// is one second above the soft one: `SIGXCPU` at the soft limit, `SIGKILL` one second later if
/// the job ignores it.
pub(super) fn apply(limits: &Limits) -> Result<(), String> {
    let set = |resource: Resource, soft: u64, hard: u64| {
        setrlimit(resource, soft, hard).map_err(|e| format!("setrlimit {resource:?}: {e}"))
    };
    set(Resource::RLIMIT_CORE, 0, 0)?;
    set(Resource::RLIMIT_AS, limits.address_space, limits.address_space)?;
    set(Resource::RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds.saturating_add(1))?;
    set(Resource::RLIMIT_NOFILE, limits.open_files, limits.open_files)?;
    set(Resource::RLIMIT_NPROC, limits.processes, limits.processes)?;
    set(Resource::RLIMIT_FSIZE, limits.file_size, limits.file_size)?;
    Ok(())
}
