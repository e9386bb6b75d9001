//! The Attesta compute node: runs ONNX inference inside a kernel-enforced sandbox, canonicalises
//! the output, and signs EIP-712 attestations with the operator's signing key.
//!
//! - [`daemon`]: `attesta-node run`, the long-running node that takes work from a relayer.
//! - [`inference`]: loading ONNX models with tract and running them deterministically.
//! - [`sandbox`]: the worker process (namespaces, rlimits, Landlock, seccomp) every job runs in.
//! - [`keys`]: the encrypted signing keystore.
//! - [`runtime`]: the node's `runtimeId`, derived from engine, canonicalisation and sandbox policy.

pub mod daemon;
pub mod inference;
/// The encrypted signing keystore, shared with the client CLI through the sdk.
pub use attesta_sdk::keys;
pub mod runtime;
pub mod sandbox;
