//! Landlock: the model file read-only, the scratch dir read-write, nothing else; no TCP bind or
//! connect (ABI >= 4); no abstract unix sockets or signals out of the sandbox (ABI >= 6).

use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};

/// Restricts the calling thread (and its future threads) to `model` (read) and `scratch`
/// (everything) under `abi`. Every right of that ABI is handled, so everything not granted is
/// denied. Fails unless the kernel enforced the whole ruleset.
pub(super) fn restrict(model: &Path, scratch: &Path, abi: ABI) -> Result<(), String> {
    let err = |e: landlock::RulesetError| format!("landlock: {e}");
    // Hard requirement: `abi` is what the probe found (or a lower cap), so anything the kernel
    // does not enforce is an error, not a silent downgrade.
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .map_err(err)?;
    let net = AccessNet::from_all(abi);
    if !net.is_empty() {
        ruleset = ruleset.handle_access(net).map_err(err)?;
    }
    let scopes = Scope::from_all(abi);
    if !scopes.is_empty() {
        ruleset = ruleset.scope(scopes).map_err(err)?;
    }
    let model_fd = PathFd::new(model).map_err(|e| format!("landlock: model {e}"))?;
    let scratch_fd = PathFd::new(scratch).map_err(|e| format!("landlock: scratch {e}"))?;
    let status = ruleset
        .create()
        .map_err(err)?
        .add_rule(PathBeneath::new(model_fd, AccessFs::ReadFile))
        .map_err(err)?
        .add_rule(PathBeneath::new(scratch_fd, AccessFs::from_all(abi)))
        .map_err(err)?
        .restrict_self()
        .map_err(err)?;
    if status.ruleset != RulesetStatus::FullyEnforced {
        return Err(format!("landlock ruleset only {:?}", status.ruleset));
    }
    Ok(())
}
