//! Attestations from nodes: verified on arrival, tallied per result hash, settled at M,
//! kept as equivocation evidence when one signer contradicts itself.
//!
//! Owner: core. Stub: the signatures below are the contract the API codes against.

use attesta_sdk::relay::{AttestationAccepted, AttestationSubmission};

/// Why an attestation was refused. Each maps to a stable API error code.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// No confirmed `JobCreated` with this id.
    #[error("unknown job {0}: wait until the job's creation is confirmed")]
    UnknownJob(String),
    /// Placeholder until the core lands.
    #[error("internal: {0}")]
    Internal(#[from] crate::Error),
}

/// Verifies, stores and tallies attestations; queues settlements and slashing evidence.
#[derive(Clone, Debug)]
pub struct Aggregator {}

impl Aggregator {
    /// Takes one node's attestation; `request_signer` is who signed the HTTP request.
    pub async fn submit(
        &self,
        _request_signer: alloy::primitives::Address,
        _submission: AttestationSubmission,
    ) -> Result<AttestationAccepted, AttestError> {
        unimplemented!("core: Aggregator::submit")
    }
}
