//! TEMPORARY (api worktree only; dropped at merge): stand-ins for the job queries the core
//! implements in `store/jobs.rs` and for `AttestError::code`, so the API compiles and its
//! tests run before the core lands. The signatures are the agreed contract.

use super::Store;
use crate::Error;
use alloy::primitives::{Address, U256};
use attesta_sdk::relay::{JobResult, JobView, WorkItem};

impl Store {
    /// TEMPORARY stub: the job as the relayer has seen it.
    pub async fn job_view(&self, _job_id: U256) -> Result<Option<JobView>, Error> {
        Ok(None)
    }

    /// TEMPORARY stub: the settled result.
    pub async fn job_result(&self, _job_id: U256) -> Result<Option<JobResult>, Error> {
        Ok(None)
    }

    /// TEMPORARY stub: open jobs `signer` has not attested, oldest first.
    pub async fn open_work(
        &self,
        _signer: Address,
        _now: u64,
        _limit: u32,
    ) -> Result<Vec<WorkItem>, Error> {
        Ok(vec![])
    }
}

impl crate::aggregate::AttestError {
    /// TEMPORARY stub: the stable API error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownJob(_) => "unknown_job",
            Self::Internal(_) => "internal",
        }
    }
}
