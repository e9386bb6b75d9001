//! Turns reverts into [`Error::Revert`] with the contract's custom error name and a hint.

use crate::{
    Error,
    bindings::{
        JobEscrow::JobEscrowErrors, Slashing::SlashingErrors,
        StakingRegistry::StakingRegistryErrors, TestToken::TestTokenErrors,
    },
};

/// Job status names, indexed by `IJobEscrow.JobStatus`.
pub(crate) const STATUS_NAMES: [&str; 7] =
    ["None", "Created", "Settled", "Disputed", "Released", "Refunded", "Overturned"];

fn status_name(status: u8) -> &'static str {
    STATUS_NAMES.get(usize::from(status)).copied().unwrap_or("Unknown")
}

/// Decodes a failed contract call into the contracts' custom errors where possible.
pub(crate) fn decode(err: alloy::contract::Error) -> Error {
    if let Some(e) = err.as_decoded_interface_error::<JobEscrowErrors>() {
        return Error::Revert { contract: "JobEscrow", name: name(&e), hint: escrow_hint(&e) };
    }
    if let Some(e) = err.as_decoded_interface_error::<StakingRegistryErrors>() {
        return Error::Revert {
            contract: "StakingRegistry",
            name: name(&e),
            hint: registry_hint(&e),
        };
    }
    if let Some(e) = err.as_decoded_interface_error::<SlashingErrors>() {
        return Error::Revert { contract: "Slashing", name: name(&e), hint: format!("{e:?}") };
    }
    if let Some(e) = err.as_decoded_interface_error::<TestTokenErrors>() {
        return Error::Revert { contract: "Token", name: name(&e), hint: token_hint(&e) };
    }
    Error::Contract(err)
}

fn name(e: &impl std::fmt::Debug) -> String {
    let debug = format!("{e:?}");
    debug.split('(').next().unwrap_or(&debug).to_string()
}

fn escrow_hint(e: &JobEscrowErrors) -> String {
    use JobEscrowErrors as E;
    match e {
        E::JobEscrowFeeOutOfRange(x) => {
            format!("fee {} is out of range: raise --fee to at least {}", x.fee, x.minFee)
        }
        E::JobEscrowDeadlineOutOfRange(x) => format!(
            "deadline {} must lie between {} and {} (unix seconds): pick a deadline in that window",
            x.deadline, x.earliest, x.latest
        ),
        E::JobEscrowWrongStatus(x) => {
            format!("job {} is {}, which this call does not accept", x.jobId, status_name(x.status))
        }
        E::JobEscrowDeadlinePassed(x) => {
            format!(
                "job {} passed its deadline {}: it can only be refunded now",
                x.jobId, x.deadline
            )
        }
        E::JobEscrowDeadlineNotReached(x) => {
            format!("job {} can be refunded only after its deadline {}", x.jobId, x.deadline)
        }
        E::JobEscrowRuntimeNotAllowed(x) => {
            format!("runtime {} is not allowed by governance: upgrade the node", x.runtimeId)
        }
        E::JobEscrowInsufficientSignatures(x) => {
            format!("{} signatures, {} needed: wait for more attestations", x.count, x.threshold)
        }
        E::JobEscrowInactiveSigner(x) => {
            format!("signer {} (position {}) is not active in the registry", x.signer, x.index)
        }
        E::JobEscrowChallengeWindowOpen(x) => {
            format!(
                "the challenge window of job {} is open until {}: release after it",
                x.jobId, x.windowEnd
            )
        }
        E::JobEscrowNothingToClaim(x) => format!("{} has nothing to claim", x.account),
        E::JobEscrowUnknownBatch(x) => format!(
            "no batch with root {} was settled: pass the batch's entries exactly as settleBatch got them",
            x.root
        ),
        E::JobEscrowBatchSignersMismatch(x) => format!(
            "the signer list is not the one batch {} settled with: take it from its BatchSettled event",
            x.root
        ),
        E::JobEscrowBatchWindowOpen(x) => format!(
            "the challenge window of batch {} is open until {}: release after it",
            x.root, x.windowEnd
        ),
        E::JobEscrowNotInBatch(x) => format!(
            "the Merkle proof does not show job {} with this result in batch {}: rebuild it from the batch's entries",
            x.jobId, x.root
        ),
        E::JobEscrowNothingToRelease(x) => {
            format!("every job of batch {} was already released or challenged", x.root)
        }
        other => format!("{other:?}"),
    }
}

fn registry_hint(e: &StakingRegistryErrors) -> String {
    use StakingRegistryErrors as E;
    match e {
        E::StakingRegistryInsufficientAmount(x) => {
            format!("amount {} is not allowed here (available: {})", x.amount, x.needed)
        }
        // unbondingEnd is 0 when nothing is unbonding.
        E::StakingRegistryNotWithdrawable(x) if x.unbondingEnd.is_zero() => {
            "nothing is unbonding: request unstake first, then withdraw after the unbonding period"
                .to_string()
        }
        E::StakingRegistryNotWithdrawable(x) => {
            format!(
                "nothing withdrawable until {} (unix seconds): wait, then retry",
                x.unbondingEnd
            )
        }
        E::StakingRegistrySignerAlreadyBound(x) => {
            format!(
                "key {} is already bound to {}: generate a new signing key",
                x.signer, x.operator
            )
        }
        E::StakingRegistryCannotActivate(x) => {
            let why = match x.reason {
                1 => "register a signing key first",
                2 => "stake at least the minimum stake",
                3 => "the operator is jailed",
                4 => "the active set is full: wait for a free slot",
                5 => "already active",
                _ => "unknown reason",
            };
            format!("cannot activate {}: {why}", x.operator)
        }
        other => format!("{other:?}"),
    }
}

fn token_hint(e: &TestTokenErrors) -> String {
    use TestTokenErrors as E;
    match e {
        E::ERC20InsufficientAllowance(x) => format!(
            "allowance {} is below {}: approve the spender {} for at least that",
            x.allowance, x.needed, x.spender
        ),
        E::ERC20InsufficientBalance(x) => {
            format!(
                "balance {} of {} is below {}: top up the account",
                x.balance, x.sender, x.needed
            )
        }
        other => format!("{other:?}"),
    }
}
