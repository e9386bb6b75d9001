//! The node's `runtimeId`: what an attestation says produced its result.
//!
//! `runtimeId = keccak256(descriptor)`, where the descriptor is the UTF-8 string
//!
//! ```text
//! attesta-runtime/v1;engine=<ENGINE>@<ENGINE_VERSION>;canonical=<CANONICAL_VERSION>;sandbox=<POLICY_VERSION>
//! ```
//!
//! with [`crate::inference::ENGINE`] and [`crate::inference::ENGINE_VERSION`] (the inference
//! engine and its exact version), [`crate::inference::CANONICAL_VERSION`] (the output
//! canonicalisation: the encoding's magic [`attesta_sdk::canonical::MAGIC`] and its precision,
//! e.g. `ATO1/4`) and
//! [`crate::sandbox::POLICY_VERSION`] (the sandbox policy). Changing any of them changes the id,
//! and `JobEscrow` only accepts ids governance has allowed, so an operator who upgrades the
//! engine, the canonicalisation or the sandbox must ask governance to allow the new id
//! (`attesta-node runtime-id` prints it).

use alloy::primitives::{B256, keccak256};

/// The parts of a runtime id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuntimeComponents<'a> {
    /// Inference engine name.
    pub engine: &'a str,
    /// Inference engine version.
    pub engine_version: &'a str,
    /// Canonicalisation version (format and precision).
    pub canonical_version: &'a str,
    /// Sandbox policy version.
    pub sandbox_policy: &'a str,
}

impl RuntimeComponents<'static> {
    /// The components of this build of the node.
    pub fn current() -> Self {
        Self {
            engine: crate::inference::ENGINE,
            engine_version: crate::inference::ENGINE_VERSION,
            canonical_version: crate::inference::CANONICAL_VERSION,
            sandbox_policy: crate::sandbox::POLICY_VERSION,
        }
    }
}

impl RuntimeComponents<'_> {
    /// The descriptor string that is hashed (documented in the module docs).
    pub fn descriptor(&self) -> String {
        format!(
            "attesta-runtime/v1;engine={}@{};canonical={};sandbox={}",
            self.engine, self.engine_version, self.canonical_version, self.sandbox_policy
        )
    }

    /// keccak256 of the descriptor.
    pub fn id(&self) -> B256 {
        keccak256(self.descriptor())
    }
}

/// Appended to the sandbox policy when the node runs with `--allow-degraded-sandbox` on a
/// kernel that lacks a sandbox feature: its attestations then carry an id of their own, which
/// governance has no reason to allow, so weaker isolation can never pass for the real one.
pub const DEGRADED_SUFFIX: &str = "+degraded";

/// This node's runtime id (full sandbox).
pub fn runtime_id() -> B256 {
    RuntimeComponents::current().id()
}

/// The runtime id of this build, with the sandbox degraded or not.
pub fn runtime_id_for(degraded: bool) -> B256 {
    if !degraded {
        return runtime_id();
    }
    let policy = format!("{}{DEGRADED_SUFFIX}", crate::sandbox::POLICY_VERSION);
    RuntimeComponents { sandbox_policy: &policy, ..RuntimeComponents::current() }.id()
}

/// This node's runtime descriptor (what [`runtime_id`] hashes).
pub fn runtime_descriptor() -> String {
    RuntimeComponents::current().descriptor()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_degraded_sandbox_has_its_own_id() {
        assert_eq!(runtime_id_for(false), runtime_id());
        assert_ne!(runtime_id_for(true), runtime_id());
    }

    #[test]
    fn every_component_changes_the_id() {
        let base = RuntimeComponents::current();
        let id = base.id();
        assert_eq!(id, runtime_id());
        let variants = [
            RuntimeComponents { engine: "other-engine", ..base },
            RuntimeComponents { engine_version: "0.0.0", ..base },
            RuntimeComponents { canonical_version: "ATO2/4", ..base },
            RuntimeComponents { canonical_version: "ATO1/5", ..base },
            RuntimeComponents { sandbox_policy: "attesta-sandbox/v2", ..base },
        ];
        for v in variants {
            assert_ne!(v.id(), id, "{} should change the id", v.descriptor());
        }
    }

    #[test]
    fn descriptor_names_every_component() {
        let d = runtime_descriptor();
        for part in [
            crate::inference::ENGINE,
            crate::inference::ENGINE_VERSION,
            crate::inference::CANONICAL_VERSION,
            crate::sandbox::POLICY_VERSION,
        ] {
            assert!(d.contains(part), "{d} lacks {part}");
        }
        assert_eq!(runtime_id(), keccak256(d.as_bytes()));
        // The canonicalisation version names the encoding (its magic) and the precision.
        assert!(
            crate::inference::CANONICAL_VERSION
                .as_bytes()
                .starts_with(attesta_sdk::canonical::MAGIC)
        );
    }
}
