//! The EIP-712 `Attestation` that M-of-N signers sign, its domain, digest and signing.
//!
//! Byte-for-byte the same as `JobEscrow.hashAttestation`: the domain is
//! (name "Attesta", version "1", chainId, verifyingContract = the escrow), and the type is
//! `Attestation(uint256 jobId,bytes32 modelId,bytes32 inputHash,bytes32 resultHash,bytes32 runtimeId)`.
//!
//! A batch of jobs is attested at once with [`BatchAttestation`]
//! (`BatchAttestation(bytes32 root,bytes32 runtimeId)`, `JobEscrow.hashBatchAttestation`), where
//! `root` is the [`crate::merkle::BatchTree`] root of the batch's (jobId, resultHash) entries.

use crate::{Error, bindings::IJobEscrow};
use alloy::{
    primitives::{Address, B256, U256},
    signers::{Signature, SignerSync, local::PrivateKeySigner},
    sol,
    sol_types::{Eip712Domain, SolStruct, eip712_domain},
};
use serde::{Deserialize, Serialize};

sol! {
    /// What M-of-N signers sign for one job.
    #[derive(Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
    struct Attestation {
        /// The escrow's job id.
        uint256 jobId;
        /// keccak256 of the model file.
        bytes32 modelId;
        /// keccak256 of the input bytes.
        bytes32 inputHash;
        /// keccak256 of the canonical output bytes.
        bytes32 resultHash;
        /// Commits to the inference engine, canonicalisation and sandbox policy.
        bytes32 runtimeId;
    }
}

sol! {
    /// What M-of-N signers sign for a whole batch: every (jobId, resultHash) entry under the
    /// batch's Merkle root, all produced by `runtimeId`.
    #[derive(Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
    struct BatchAttestation {
        /// The [`crate::merkle::BatchTree`] root of the batch's entries.
        bytes32 root;
        /// Commits to the inference engine, canonicalisation and sandbox policy of every entry.
        bytes32 runtimeId;
    }
}

impl BatchAttestation {
    /// The attestation of `tree`'s entries under `runtime_id`.
    pub fn of(tree: &crate::merkle::BatchTree, runtime_id: B256) -> Self {
        Self { root: tree.root(), runtimeId: runtime_id }
    }

    /// The EIP-712 digest signed in `domain` (`JobEscrow.hashBatchAttestation`).
    pub fn digest(&self, domain: &Eip712Domain) -> B256 {
        self.eip712_signing_hash(domain)
    }

    /// Signs with a local key (low s); returns the signer with the signature, ready for
    /// [`crate::quorum::pack_signatures`].
    pub fn sign(
        &self,
        signer: &PrivateKeySigner,
        domain: &Eip712Domain,
    ) -> Result<(Address, Signature), Error> {
        Ok((signer.address(), signer.sign_hash_sync(&self.digest(domain))?))
    }
}

/// The EIP-712 domain name of attestations.
pub const DOMAIN_NAME: &str = "Attesta";
/// The EIP-712 domain version of attestations.
pub const DOMAIN_VERSION: &str = "1";

/// The attestation domain of the escrow at `escrow` on chain `chain_id`.
pub fn domain(chain_id: u64, escrow: Address) -> Eip712Domain {
    eip712_domain! {
        name: DOMAIN_NAME,
        version: DOMAIN_VERSION,
        chain_id: chain_id,
        verifying_contract: escrow,
    }
}

impl Attestation {
    /// Builds an attestation from its fields.
    pub fn new(
        job_id: U256,
        model_id: B256,
        input_hash: B256,
        result_hash: B256,
        runtime_id: B256,
    ) -> Self {
        Self {
            jobId: job_id,
            modelId: model_id,
            inputHash: input_hash,
            resultHash: result_hash,
            runtimeId: runtime_id,
        }
    }

    /// The EIP-712 digest signed in `domain` (`JobEscrow.hashAttestation`).
    pub fn digest(&self, domain: &Eip712Domain) -> B256 {
        self.eip712_signing_hash(domain)
    }

    /// Signs with a local key (alloy's k256 signer; s is always low).
    pub fn sign(
        &self,
        signer: &PrivateKeySigner,
        domain: &Eip712Domain,
    ) -> Result<SignedAttestation, Error> {
        let signature = signer.sign_hash_sync(&self.digest(domain))?;
        Ok(SignedAttestation { attestation: self.clone(), signer: signer.address(), signature })
    }
}

impl From<Attestation> for IJobEscrow::Attestation {
    fn from(a: Attestation) -> Self {
        Self {
            jobId: a.jobId,
            modelId: a.modelId,
            inputHash: a.inputHash,
            resultHash: a.resultHash,
            runtimeId: a.runtimeId,
        }
    }
}

impl From<Attestation> for crate::bindings::slashing::IJobEscrow::Attestation {
    fn from(a: Attestation) -> Self {
        Self {
            jobId: a.jobId,
            modelId: a.modelId,
            inputHash: a.inputHash,
            resultHash: a.resultHash,
            runtimeId: a.runtimeId,
        }
    }
}

/// An attestation with its signer and signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAttestation {
    /// What was signed.
    pub attestation: Attestation,
    /// Who signed it (claimed; [`SignedAttestation::verify`] checks it).
    pub signer: Address,
    /// The secp256k1 signature.
    pub signature: Signature,
}

impl SignedAttestation {
    /// Checks that the signature is low-s and recovers to `signer` in `domain`.
    pub fn verify(&self, domain: &Eip712Domain) -> Result<(), Error> {
        let recovered =
            crate::quorum::recover_signature(self.attestation.digest(domain), &self.signature)
                .map_err(|_| Error::InvalidSignature { index: 0 })?;
        if recovered != self.signer {
            return Err(Error::SignerMismatch { claimed: self.signer, recovered });
        }
        Ok(())
    }

    /// The 65-byte (r, s, v) form the contracts take, v being 27 or 28.
    pub fn signature_bytes(&self) -> [u8; 65] {
        self.signature.as_bytes()
    }
}
