//! What the relayer knows of the chain besides logs: the registry's active signer set and
//! threshold, the escrow's runtime allow-list and output limit, cached and refreshed.
//!
//! The cache answers the API's per-request checks without an RPC round trip. It may lag the
//! chain by one refresh; that is safe, because the escrow re-checks every signer at `settle`
//! and a stale answer only delays a job (the aggregator re-verifies before settling).

use crate::Error;
use alloy::{
    primitives::{Address, B256},
    providers::DynProvider,
};
use attesta_sdk::{
    Deployment,
    bindings::{JobEscrow, StakingRegistry},
};
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard},
};

/// One consistent reading of the registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// `activeSetVersion()` when read; changes whenever the set changes.
    pub version: u64,
    /// Active signers, ascending.
    pub signers: Vec<Address>,
    /// The threshold M for this set.
    pub threshold: u32,
}

#[derive(Debug, Default)]
struct Inner {
    snapshot: Snapshot,
    members: HashSet<Address>,
    runtimes: HashMap<B256, bool>,
    max_output_bytes: u32,
}

/// A shared, cheaply cloned cache of the active set and allowed runtimes.
#[derive(Clone, Debug)]
pub struct ActiveSet {
    provider: DynProvider,
    deployment: Deployment,
    inner: Arc<RwLock<Inner>>,
}

impl ActiveSet {
    /// Reads the active set from the chain.
    pub async fn load(provider: DynProvider, deployment: Deployment) -> Result<Self, Error> {
        let set = Self { provider, deployment, inner: Arc::default() };
        set.refresh().await?;
        Ok(set)
    }

    /// Re-reads the active set if its version changed, and forgets cached runtime answers
    /// (governance may have changed the allow-list). Returns whether the set changed.
    pub async fn refresh(&self) -> Result<bool, Error> {
        let registry = StakingRegistry::new(self.deployment.staking_registry, &self.provider);
        let version = registry.activeSetVersion().call().await.map_err(attesta_sdk::Error::from)?;
        let changed =
            version != self.read().snapshot.version || self.read().snapshot.threshold == 0;
        if changed {
            // Read signers and threshold in one block so they describe the same set.
            let block = alloy::providers::Provider::get_block_number(&self.provider)
                .await
                .map_err(|e| attesta_sdk::Error::from(alloy::contract::Error::from(e)))?;
            let mut signers = registry
                .activeSigners()
                .block(block.into())
                .call()
                .await
                .map_err(attesta_sdk::Error::from)?;
            let threshold = registry
                .threshold()
                .block(block.into())
                .call()
                .await
                .map_err(attesta_sdk::Error::from)?;
            let version = registry
                .activeSetVersion()
                .block(block.into())
                .call()
                .await
                .map_err(attesta_sdk::Error::from)?;
            signers.sort();
            let threshold = u32::try_from(threshold).unwrap_or(u32::MAX);
            let mut inner = self.write();
            inner.members = signers.iter().copied().collect();
            inner.snapshot = Snapshot { version, signers, threshold };
        }
        // Governance may have changed the output limit too; one call per refresh.
        let config = JobEscrow::new(self.deployment.job_escrow, &self.provider)
            .config()
            .call()
            .await
            .map_err(attesta_sdk::Error::from)?;
        let mut inner = self.write();
        inner.runtimes.clear();
        inner.max_output_bytes = config.maxOutputBytes;
        Ok(changed)
    }

    /// Whether `signer` is an active signer (as of the last refresh).
    pub fn contains(&self, signer: Address) -> bool {
        self.read().members.contains(&signer)
    }

    /// The threshold M for the current active set (as of the last refresh).
    pub fn threshold(&self) -> u32 {
        self.read().snapshot.threshold
    }

    /// The escrow's `maxOutputBytes` (as of the last refresh): the longest output that settles.
    pub fn max_output_bytes(&self) -> u32 {
        self.read().max_output_bytes
    }

    /// The whole cached reading.
    pub fn snapshot(&self) -> Snapshot {
        self.read().snapshot.clone()
    }

    /// Whether the escrow allows `runtime_id`, if the cache knows (no chain call).
    pub fn runtime_allowed_cached(&self, runtime_id: B256) -> Option<bool> {
        self.read().runtimes.get(&runtime_id).copied()
    }

    /// Whether the escrow allows `runtime_id`; asks the chain once per id and refresh.
    pub async fn runtime_allowed(&self, runtime_id: B256) -> Result<bool, Error> {
        if let Some(allowed) = self.read().runtimes.get(&runtime_id) {
            return Ok(*allowed);
        }
        let allowed = JobEscrow::new(self.deployment.job_escrow, &self.provider)
            .isRuntimeAllowed(runtime_id)
            .call()
            .await
            .map_err(attesta_sdk::Error::from)?;
        self.write().runtimes.insert(runtime_id, allowed);
        Ok(allowed)
    }

    /// The deployment this set belongs to.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The provider it reads through.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    // A poisoned lock only means another thread panicked mid-update of a plain cache; the
    // next refresh rewrites it, so reading on is safe.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
