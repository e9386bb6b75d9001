//! The sdk's one error type. Messages say what went wrong and what to do about it.

use alloy::primitives::{Address, B256, U256};

/// Everything the sdk can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A packed signature blob is empty or not a multiple of 65 bytes.
    #[error(
        "signature blob of {length} bytes is not a non-empty multiple of 65: pass 65-byte (r, s, v) signatures back to back"
    )]
    MalformedSignatures {
        /// Its length.
        length: usize,
    },
    /// A signature does not recover (bad v, bad point, or zero signer).
    #[error("signature {index} does not recover to an address: it is corrupt or v is not 27/28")]
    InvalidSignature {
        /// Position in the set.
        index: usize,
    },
    /// A signature has s in the upper half of the curve order (a malleated signature).
    #[error(
        "signature {index} has a high s value (malleated); re-sign with a low-s signer such as alloy's"
    )]
    HighS {
        /// Position in the set.
        index: usize,
    },
    /// Signers are not strictly ascending (duplicates or wrong order).
    #[error(
        "signer {signer} at position {index} is not above {previous}: sort signatures by signer address and drop duplicates"
    )]
    SignersNotAscending {
        /// Position in the set.
        index: usize,
        /// The offending signer.
        signer: Address,
        /// The signer before it.
        previous: Address,
    },
    /// A signer is not in the registry's active set.
    #[error("signer {signer} at position {index} is not an active signer of the registry")]
    InactiveSigner {
        /// Position in the set.
        index: usize,
        /// The signer.
        signer: Address,
    },
    /// Fewer signatures than the threshold M.
    #[error("{count} valid signatures, but the threshold is {threshold}: gather more attestations")]
    InsufficientSignatures {
        /// Signatures given.
        count: usize,
        /// The threshold M.
        threshold: usize,
    },
    /// A signed attestation names a different signer than the one that signed it.
    #[error("attestation claims signer {claimed} but was signed by {recovered}")]
    SignerMismatch {
        /// Who it claims.
        claimed: Address,
        /// Who signed.
        recovered: Address,
    },
    /// A settlement on-chain does not match what its event says.
    #[error("job {job_id}: the JobSettled event does not match the on-chain settlement commitment")]
    SettlementMismatch {
        /// The job.
        job_id: U256,
    },
    /// The job is not settled (no `JobSettled` event, and the escrow does not report it settled
    /// in a batch), or the node pruned the logs.
    #[error(
        "job {job_id} is not settled yet: wait for settlement, or query a node that keeps logs"
    )]
    NotSettled {
        /// The job.
        job_id: U256,
    },
    /// The job's result bytes do not hash to the attested result hash.
    #[error("job {job_id}: output hashes to {actual}, but {expected} was attested")]
    OutputMismatch {
        /// The job.
        job_id: U256,
        /// The attested hash.
        expected: B256,
        /// What the output hashes to.
        actual: B256,
    },
    /// A transaction was mined but reverted.
    #[error("transaction {tx_hash} reverted on-chain; inspect it with `cast run {tx_hash}`")]
    TransactionFailed {
        /// The transaction.
        tx_hash: alloy::primitives::TxHash,
    },
    /// A transaction succeeded but did not emit the event it always emits.
    #[error(
        "transaction {tx_hash} emitted no {event} event: is the deployment file for this chain?"
    )]
    MissingEvent {
        /// The event expected.
        event: &'static str,
        /// The transaction.
        tx_hash: alloy::primitives::TxHash,
    },
    /// A settlement cannot be re-checked from chain data alone.
    #[error("job {job_id} cannot be verified: {reason}")]
    Unverifiable {
        /// The job.
        job_id: U256,
        /// Why.
        reason: &'static str,
    },
    /// A contract call reverted with one of the contracts' custom errors.
    #[error("{contract}.{name} reverted: {hint}")]
    Revert {
        /// Which contract.
        contract: &'static str,
        /// The custom error and its arguments.
        name: String,
        /// What to do about it.
        hint: String,
    },
    /// Waiting for something on-chain timed out.
    #[error("timed out after {seconds}s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        seconds: u64,
    },
    /// The canonical output encoding was violated.
    #[error("canonical output: {0}")]
    Canonical(String),
    /// A job input (ATI1 tensor container, see `input`) is malformed.
    #[error("job input: {0}")]
    Input(String),
    /// A node request's authentication headers are missing, malformed or do not verify.
    #[error("request authentication: {0}")]
    RequestAuth(String),
    /// A relayer could not be reached or refused a request; the message has its error code.
    #[error("relayer: {0}")]
    Relay(String),
    /// A command-line input is missing or wrong; the message says what to pass.
    #[error("{0}")]
    Usage(String),
    /// A keystore cannot be opened or written.
    #[cfg(feature = "cli")]
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    /// A deployment file could not be read.
    #[error("deployment file {path}: {reason}")]
    Deployment {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A contract call failed without a decodable custom error (RPC, ABI, or plain revert).
    #[error("contract call failed: {0}")]
    Contract(alloy::contract::Error),
    /// The RPC endpoint failed or is unreachable; retrying may help.
    #[error("rpc: {0}; check that the endpoint is up and reachable")]
    Rpc(#[from] alloy::transports::TransportError),
    /// Waiting for a transaction failed.
    #[error("pending transaction: {0}")]
    PendingTransaction(#[from] alloy::providers::PendingTransactionError),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signer(#[from] alloy::signers::Error),
}

/// Decodes the contracts' custom errors into [`Error::Revert`]; anything else stays
/// [`Error::Contract`].
impl From<alloy::contract::Error> for Error {
    fn from(err: alloy::contract::Error) -> Self {
        crate::revert::decode(err)
    }
}

impl Error {
    /// Whether retrying the same call later can help (network trouble, timeouts), as opposed to
    /// a rejection that will not change.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Rpc(_) | Self::Timeout { .. } | Self::PendingTransaction(_) => true,
            Self::Contract(e) => {
                matches!(e, alloy::contract::Error::TransportError(t) if t.is_transport_error())
            }
            _ => false,
        }
    }
}
