//! What the relayer knows of the chain besides logs: the registry's active signer set and
//! threshold, and the escrow's runtime allow-list, cached and refreshed.
//!
//! Owner: core (watcher/aggregator). Stub: the signatures below are the contract other
//! modules code against.

use alloy::primitives::{Address, B256};

/// A cached view of the registry's active set and the escrow's allowed runtimes.
#[derive(Clone, Debug, Default)]
pub struct ActiveSet {}

impl ActiveSet {
    /// Whether `signer` is an active signer right now (as of the last refresh).
    pub fn contains(&self, _signer: Address) -> bool {
        unimplemented!("core: ActiveSet::contains")
    }

    /// The threshold M for the current active set.
    pub fn threshold(&self) -> u32 {
        unimplemented!("core: ActiveSet::threshold")
    }

    /// Whether the escrow allows `runtime_id`.
    pub fn runtime_allowed(&self, _runtime_id: B256) -> bool {
        unimplemented!("core: ActiveSet::runtime_allowed")
    }
}
