//! The operator-facing client: stake, bind a signing key, unstake and withdraw.

use crate::{
    Error,
    bindings::{StakingRegistry, TestToken},
    client::{decode_log, send},
    deployment::Deployment,
};
use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
    rpc::types::TransactionReceipt,
    signers::{SignerSync, local::PrivateKeySigner},
    sol,
    sol_types::{SolStruct, eip712_domain},
};

sol! {
    /// What a signing key signs to prove it joins `operator` (`StakingRegistry.signerProofDigest`).
    #[derive(Debug)]
    struct SignerKey {
        /// The operator account.
        address operator;
        /// The signing key's address.
        address signer;
    }
}

/// The digest a signing key signs to be bound to `operator` in the registry at `registry`.
pub fn signer_proof_digest(
    chain_id: u64,
    registry: Address,
    operator: Address,
    signer: Address,
) -> B256 {
    let domain = eip712_domain! {
        name: "Attesta Staking",
        version: "1",
        chain_id: chain_id,
        verifying_contract: registry,
    };
    SignerKey { operator, signer }.eip712_signing_hash(&domain)
}

/// An operator's position in the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorStatus {
    /// The bound signing key (zero if none).
    pub signer: Address,
    /// Active stake.
    pub stake: U256,
    /// Stake waiting out the unbonding period (still slashable).
    pub unbonding: U256,
    /// When `unbonding` becomes withdrawable (unix seconds).
    pub unbonding_end: u64,
    /// Whether the signing key is in the active set.
    pub active: bool,
    /// Whether a slash jailed the operator for good.
    pub jailed: bool,
}

/// Client for node operators: one operator account, one deployment.
#[derive(Clone, Debug)]
pub struct OperatorClient<P> {
    provider: P,
    deployment: Deployment,
    operator: Address,
}

impl<P: Provider + Clone> OperatorClient<P> {
    /// A client that sends from `operator` (the provider must be able to sign for it).
    pub fn new(provider: P, deployment: Deployment, operator: Address) -> Self {
        Self { provider, deployment, operator }
    }

    fn registry(&self) -> StakingRegistry::StakingRegistryInstance<P> {
        StakingRegistry::new(self.deployment.staking_registry, self.provider.clone())
    }

    /// Stakes `amount`, approving the registry first if the allowance is short.
    pub async fn stake(&self, amount: U256) -> Result<TransactionReceipt, Error> {
        let token = TestToken::new(self.deployment.token, self.provider.clone());
        let registry = self.deployment.staking_registry;
        let allowance = token.allowance(self.operator, registry).call().await?;
        if allowance < amount {
            send(token.approve(registry, amount), self.operator).await?;
        }
        send(self.registry().stake(amount), self.operator).await
    }

    /// Binds `key` as this operator's signing key (rotating out any previous key for good). The
    /// proof of possession is signed locally; the key never leaves this process.
    pub async fn register_signer(
        &self,
        key: &PrivateKeySigner,
    ) -> Result<TransactionReceipt, Error> {
        let digest = signer_proof_digest(
            self.deployment.chain_id,
            self.deployment.staking_registry,
            self.operator,
            key.address(),
        );
        let proof = key.sign_hash_sync(&digest)?;
        let call = self.registry();
        let call = call.registerSigner(key.address(), proof.as_bytes().into());
        send(call, self.operator).await
    }

    /// Moves `amount` of stake into unbonding.
    pub async fn request_unstake(&self, amount: U256) -> Result<TransactionReceipt, Error> {
        send(self.registry().requestUnstake(amount), self.operator).await
    }

    /// Withdraws unbonded stake once the period is over; returns the amount.
    pub async fn withdraw(&self) -> Result<U256, Error> {
        let receipt = send(self.registry().withdraw(), self.operator).await?;
        let withdrawn = decode_log::<StakingRegistry::Withdrawn>(receipt.inner.logs())
            .ok_or(Error::MissingEvent { event: "Withdrawn", tx_hash: receipt.transaction_hash })?;
        Ok(withdrawn.amount)
    }

    /// Joins the active set explicitly (after a slot freed up or stake was topped up).
    pub async fn activate(&self) -> Result<TransactionReceipt, Error> {
        send(self.registry().activate(), self.operator).await
    }

    /// Leaves the active set (stake stays bonded; [`Self::activate`] rejoins). Jobs already
    /// settled with this signer keep their slashing exposure until they are released.
    pub async fn deactivate(&self) -> Result<TransactionReceipt, Error> {
        send(self.registry().deactivate(), self.operator).await
    }

    /// This operator's position.
    pub async fn status(&self) -> Result<OperatorStatus, Error> {
        let op = self.registry().operator(self.operator).call().await?;
        Ok(OperatorStatus {
            signer: op.signer,
            stake: U256::from(op.stake),
            unbonding: U256::from(op.unbonding),
            unbonding_end: op.unbondingEnd.to::<u64>(),
            active: op.active,
            jailed: op.jailed,
        })
    }
}
