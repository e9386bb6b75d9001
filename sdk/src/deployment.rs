//! Where a deployment lives: the `deployments/<chainId>.json` that `script/Deploy.s.sol` writes.

use crate::{Error, attestation};
use alloy::{primitives::Address, sol_types::Eip712Domain};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Addresses of one Attesta deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// Chain id the contracts live on.
    pub chain_id: u64,
    /// Block of the deployment (where log queries start).
    pub block_number: u64,
    /// Governance account.
    pub admin: Address,
    /// Fee and staking token.
    pub token: Address,
    /// `StakingRegistry`.
    pub staking_registry: Address,
    /// `JobEscrow`.
    pub job_escrow: Address,
    /// `Slashing`.
    pub slashing: Address,
}

impl Deployment {
    /// Reads a deployment file written by `script/Deploy.s.sol`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let err = |reason: String| Error::Deployment { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("{e}; deploy first (make demo) or pass the right path")))?;
        serde_json::from_str(&text).map_err(|e| err(format!("not a deployment file: {e}")))
    }

    /// The EIP-712 domain attestations for this deployment are signed in.
    pub fn attestation_domain(&self) -> Eip712Domain {
        attestation::domain(self.chain_id, self.job_escrow)
    }
}
