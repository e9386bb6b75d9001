//! Test-only dishonesty (feature `fault-injection`, never shipped): lets the relayer's end-to-end
//! tests run real node processes that lie, to check that a lying node is never paid and that an
//! equivocating one is slashed.
//!
//! `ATTESTA_TEST_FAULT=wrong-result` attests a corrupted output instead of the real one;
//! `ATTESTA_TEST_FAULT=equivocate` attests the corrupted output, then the real one.

use alloy::primitives::keccak256;
use attesta_sdk::Attestation;
use attesta_sdk::relay::{AttestationAccepted, AttestationSubmission, WorkItem};
use tracing::warn;

use super::{Context, JobError};

/// How the node lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fault {
    /// Attest a result no honest node computes.
    WrongResult,
    /// Attest two different results for the same job.
    Equivocate,
}

impl Fault {
    /// The fault named by `ATTESTA_TEST_FAULT`, if any.
    pub(super) fn from_env() -> Option<Self> {
        match std::env::var("ATTESTA_TEST_FAULT").ok()?.as_str() {
            "wrong-result" => Some(Self::WrongResult),
            "equivocate" => Some(Self::Equivocate),
            _ => None,
        }
    }

    /// Submits the dishonest attestation(s) in place of the honest one.
    pub(super) async fn act(
        self,
        ctx: &Context,
        item: &WorkItem,
        honest: Attestation,
        output: Vec<u8>,
    ) -> Result<AttestationAccepted, JobError> {
        // Still a well-formed ATO1 output: only the last value's low byte changes.
        let mut wrong = output.clone();
        if let Some(last) = wrong.last_mut() {
            *last ^= 1;
        }
        let mut lie = honest.clone();
        lie.resultHash = keccak256(&wrong);
        warn!(fault = ?self, job_id = %item.job_id, "fault injection: attesting a wrong result");
        let submit = |attestation: &Attestation, output: Vec<u8>| {
            let signed = attestation.sign(&ctx.signer, &ctx.domain);
            async move {
                let submission =
                    AttestationSubmission { attestation: signed?, output: output.into() };
                ctx.client.submit(&submission, item.deadline).await.map_err(JobError::Submit)
            }
        };
        let first = submit(&lie, wrong).await;
        if self == Self::WrongResult {
            return first;
        }
        warn!(job_id = %item.job_id, "fault injection: now attesting the real result too");
        submit(&honest, output).await
    }
}
