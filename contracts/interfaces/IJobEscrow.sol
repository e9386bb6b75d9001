// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IJobEscrowErrors
/// @notice Custom errors of the JobEscrow, named `JobEscrow<Problem>` with diagnostic parameters.
interface IJobEscrowErrors {
    /// @notice The fee is below the minimum fee, or above 2^96 - 1.
    error JobEscrowFeeOutOfRange(uint256 fee, uint256 minFee);
    /// @notice The deadline is not within [now + minJobDuration, now + maxJobDuration].
    error JobEscrowDeadlineOutOfRange(uint256 deadline, uint256 earliest, uint256 latest);
    /// @notice The job is not in the state the call needs.
    error JobEscrowWrongStatus(uint256 jobId, uint8 status);
    /// @notice The job's deadline passed at `deadline`, so it can no longer be settled.
    error JobEscrowDeadlinePassed(uint256 jobId, uint256 deadline);
    /// @notice The job's deadline at `deadline` has not passed yet, so it cannot be refunded.
    error JobEscrowDeadlineNotReached(uint256 jobId, uint256 deadline);
    /// @notice The runtime id is not on the governance allow-list.
    error JobEscrowRuntimeNotAllowed(bytes32 runtimeId);
    /// @notice keccak256(output) does not equal the attested result hash.
    error JobEscrowOutputMismatch(bytes32 resultHash, bytes32 outputHash);
    /// @notice The output is longer than the maximum the escrow publishes.
    error JobEscrowOutputTooLarge(uint256 length, uint256 maxLength);
    /// @notice Fewer valid signatures than the threshold M.
    error JobEscrowInsufficientSignatures(uint256 count, uint256 threshold);
    /// @notice The signer at `index` is not in the active set.
    error JobEscrowInactiveSigner(uint256 index, address signer);
    /// @notice The signer list or result hash does not match what was committed at settlement.
    error JobEscrowSettlementMismatch(uint256 jobId);
    /// @notice The challenge window is still open until `windowEnd`.
    error JobEscrowChallengeWindowOpen(uint256 jobId, uint256 windowEnd);
    /// @notice The challenge window closed at `windowEnd`.
    error JobEscrowChallengeWindowClosed(uint256 jobId, uint256 windowEnd);
    /// @notice The dispute must be resolved before `disputeEnd`; this one timed out.
    error JobEscrowDisputeTimedOut(uint256 jobId, uint256 disputeEnd);
    /// @notice The dispute is still within its resolution time, until `disputeEnd`.
    error JobEscrowDisputeNotTimedOut(uint256 jobId, uint256 disputeEnd);
    /// @notice The caller has nothing to claim.
    error JobEscrowNothingToClaim(address account);
    /// @notice A governance parameter is outside its allowed range.
    error JobEscrowParameterOutOfBounds(bytes32 parameter, uint256 value);
    /// @notice The zero address was given where an account is required.
    error JobEscrowZeroAddress();
    /// @notice A batch must hold between 1 and `max` entries.
    error JobEscrowBatchSizeOutOfRange(uint256 size, uint256 max);
    /// @notice Batch entry `index` does not have a larger leaf hash than the entry before it (the order of
    /// OpenZeppelin's StandardMerkleTree; it also rules out a job listed twice with the same result).
    error JobEscrowBatchNotAscending(uint256 index);
    /// @notice No batch with this Merkle root was settled: pass the entries exactly as `settleBatch` got them.
    error JobEscrowUnknownBatch(bytes32 root);
    /// @notice The signer list is not the one the batch `root` settled with (see `BatchSettled`).
    error JobEscrowBatchSignersMismatch(bytes32 root);
    /// @notice The batch's challenge window is still open until `windowEnd`.
    error JobEscrowBatchWindowOpen(bytes32 root, uint256 windowEnd);
    /// @notice The Merkle proof does not show (jobId, resultHash) in the batch `root`.
    error JobEscrowNotInBatch(uint256 jobId, bytes32 root);
    /// @notice Every job of the batch was already released or challenged.
    error JobEscrowNothingToRelease(bytes32 root);
}

/// @title IJobEscrowEvents
/// @notice Events of the JobEscrow, emitted right after the state change they describe.
interface IJobEscrowEvents {
    /// @notice A client escrowed `fee` for running `modelId` on `inputHash` before `deadline`.
    event JobCreated(
        uint256 indexed jobId,
        address indexed client,
        bytes32 indexed modelId,
        bytes32 inputHash,
        uint256 fee,
        uint256 deadline
    );
    /// @notice M-of-N active signers attested `resultHash`; `output` are the canonical result bytes.
    event JobSettled(
        uint256 indexed jobId, bytes32 indexed resultHash, bytes32 runtimeId, address[] signers, bytes output
    );
    /// @notice The payment was released and credited: `signerShare` to each signer's operator, `protocolFee` to the
    /// treasury. `protocolFee` includes the rounding dust of the equal split, so the credits sum to the fee exactly.
    event PaymentReleased(uint256 indexed jobId, uint256 signerShare, uint256 protocolFee);
    /// @notice The fee went back to the client.
    event JobRefunded(uint256 indexed jobId, address indexed client, uint256 fee);
    /// @notice `challenger` disputed the settled result, posting `bond`.
    event JobChallenged(uint256 indexed jobId, address indexed challenger, uint256 bond);
    /// @notice The arbiter resolved the dispute: `resultStands` false means the result was overturned.
    event DisputeResolved(uint256 indexed jobId, bool resultStands);
    /// @notice Nobody resolved the dispute in time: the client was refunded and nobody was slashed.
    event DisputeExpired(uint256 indexed jobId);
    /// @notice M-of-N active signers attested the batch of (jobId, resultHash) entries whose Merkle root is
    /// `root`; every job in it is now Settled with (its resultHash, `signers`). The entries are in the
    /// transaction's calldata; the outputs are not published on-chain (each is committed by its resultHash).
    event BatchSettled(bytes32 indexed root, bytes32 indexed runtimeId, address[] signers, uint256 jobCount);
    /// @notice `account` may now claim `amount` more.
    event Credited(address indexed account, uint256 amount);
    /// @notice `account` claimed `amount`.
    event Claimed(address indexed account, uint256 amount);
    /// @notice Governance allowed or disallowed a runtime id.
    event RuntimeAllowed(bytes32 indexed runtimeId, bool allowed);
    /// @notice A governance parameter changed.
    event ParameterSet(bytes32 indexed parameter, uint256 value);
    /// @notice An address parameter changed (`treasury`, `slashing`).
    event AddressSet(bytes32 indexed parameter, address value);
}

/// @title IJobEscrow
/// @notice Escrows inference fees, verifies M-of-N EIP-712 attestations from the StakingRegistry's active set,
/// and pays signers after a challenge window, or refunds the client.
interface IJobEscrow is IJobEscrowErrors, IJobEscrowEvents {
    /// @notice A job's lifecycle. Status only moves to a higher value; the last three are terminal.
    enum JobStatus {
        None,
        Created,
        Settled,
        Disputed,
        Released,
        Refunded,
        Overturned
    }

    /// @notice What M-of-N signers sign (EIP-712 type `Attestation`).
    /// @param jobId The escrow's job id.
    /// @param modelId keccak256 of the model file.
    /// @param inputHash keccak256 of the input bytes.
    /// @param resultHash keccak256 of the canonical output bytes.
    /// @param runtimeId Commits to the inference engine, canonicalisation and sandbox policy.
    struct Attestation {
        uint256 jobId;
        bytes32 modelId;
        bytes32 inputHash;
        bytes32 resultHash;
        bytes32 runtimeId;
    }

    /// @notice One entry of a batch settlement, and the values of its Merkle leaf.
    /// @param jobId The escrow's job id.
    /// @param resultHash keccak256 of the job's canonical output bytes.
    struct BatchEntry {
        uint256 jobId;
        bytes32 resultHash;
    }

    /// @notice What a batch settled with, kept by its Merkle root (one record per batch, two slots).
    /// @param signersHash keccak256(abi.encode(signers)) of the recovered signer list.
    /// @param settledAt When the batch settled; its challenge window runs from here. Zero: no such batch.
    struct BatchRecord {
        bytes32 signersHash;
        uint40 settledAt;
    }

    /// @notice Governance parameters, packed into two storage slots.
    /// @param minFee Smallest fee a job may escrow.
    /// @param challengeBond Bond a challenger posts.
    /// @param protocolFeeBps Treasury's share of each released fee, in basis points.
    /// @param maxOutputBytes Largest output a settlement publishes.
    /// @param minJobDuration Shortest time between creation and deadline.
    /// @param maxJobDuration Longest time between creation and deadline.
    /// @param challengeWindow Time after settlement during which the result can be challenged.
    /// @param disputeTimeout Time the arbiter has to resolve a dispute.
    struct Config {
        uint96 minFee;
        uint96 challengeBond;
        uint16 protocolFeeBps;
        uint32 maxOutputBytes;
        uint40 minJobDuration;
        uint40 maxJobDuration;
        uint40 challengeWindow;
        uint40 disputeTimeout;
    }

    /// @notice A job as stored, in four slots: (client, fee), (status, deadline, updatedAt, settlement),
    /// modelId, inputHash. `settle` rewrites only the second slot, which the job already paid for;
    /// `settleBatch` writes none of them (a bit in a shared bitmap, see `isBatchSettled`), so a batch-settled
    /// job's word keeps status Created, updatedAt 0 and no settlement until it is challenged or released;
    /// `job` reports it as Settled.
    /// @param client Who paid and gets any refund.
    /// @param fee The escrowed fee.
    /// @param status Lifecycle state.
    /// @param deadline Last second at which the job can be settled.
    /// @param updatedAt When the job was settled (Settled) or challenged (Disputed).
    /// @param settlement bytes20(keccak256(abi.encode(resultHash, keccak256(abi.encode(signers))))) once settled,
    /// alone or in a batch. 160 bits, like an address: forging another (resultHash, signers) for a settled job
    /// is a 2^160 second-preimage search.
    /// @param modelId keccak256 of the model file.
    /// @param inputHash keccak256 of the input bytes.
    struct Job {
        address client;
        uint96 fee;
        JobStatus status;
        uint40 deadline;
        uint40 updatedAt;
        bytes20 settlement;
        bytes32 modelId;
        bytes32 inputHash;
    }

    /// @notice Escrows `fee` (pulled from the caller) for running `modelId` on `inputHash`.
    /// @param modelId keccak256 of the model file.
    /// @param inputHash keccak256 of the input bytes.
    /// @param fee Token amount to escrow; the caller must have approved it.
    /// @param deadline Unix time by which the job must be settled, else it can be refunded.
    /// @return jobId The new job's id.
    function createJob(bytes32 modelId, bytes32 inputHash, uint256 fee, uint256 deadline)
        external
        returns (uint256 jobId);

    /// @notice Settles a job with at least M signatures of active signers over the same attestation.
    /// @param jobId The job.
    /// @param runtimeId The runtime that produced the result; must be allowed.
    /// @param resultHash keccak256(output).
    /// @param output The canonical output bytes, published in `JobSettled`.
    /// @param signatures Concatenated 65-byte (r, s, v) signatures, signers strictly ascending by address.
    function settle(
        uint256 jobId,
        bytes32 runtimeId,
        bytes32 resultHash,
        bytes calldata output,
        bytes calldata signatures
    ) external;

    /// @notice Settles every job of a batch with one M-of-N signature set over the batch's Merkle root.
    /// @dev The signers sign the EIP-712 `BatchAttestation(bytes32 root,bytes32 runtimeId)`, where `root` is
    /// the root of OpenZeppelin's StandardMerkleTree over the entries with leaf encoding
    /// `["uint256", "bytes32"]` (see BatchMerkle). Each job must be Created, not batch-settled and within its
    /// deadline. It becomes Settled through its bit in a shared bitmap (`isBatchSettled`; `job` reports
    /// Settled), not its own storage; the batch is recorded once by root (`batch`). Such a job is paid with
    /// `releaseBatch`, challenged with `challengeBatched` and verified with `verifyBatchSettlement`; once
    /// challenged it has its own word and disputes and slashing work on it as for `settle`.
    /// @param runtimeId The runtime that produced every result in the batch; must be allowed.
    /// @param entries The (jobId, resultHash) pairs, strictly ascending by leaf hash; 1 to MAX_BATCH_JOBS.
    /// @param signatures Concatenated 65-byte (r, s, v) signatures, signers strictly ascending by address.
    /// @return root The batch's Merkle root.
    function settleBatch(bytes32 runtimeId, BatchEntry[] calldata entries, bytes calldata signatures)
        external
        returns (bytes32 root);

    /// @notice Pays every job of a batch settled by `settleBatch` after the batch's challenge window, each
    /// operator and the treasury credited once with the sum of their shares (the split of `release`).
    /// @dev The root is recomputed from `entries`, so they must be the batch's entries exactly as settled.
    /// Jobs already challenged (their dispute decides) or released are skipped; reverts with
    /// `JobEscrowNothingToRelease` if none is left. Jobs settled with `settle` are released with `release`.
    /// @param entries The batch's (jobId, resultHash) entries, in `settleBatch` order.
    /// @param signers The signer list of the batch (from `BatchSettled`).
    function releaseBatch(BatchEntry[] calldata entries, address[] calldata signers) external;

    /// @notice After the challenge window, credits the signers' operators and the treasury.
    /// @param jobId The job.
    /// @param resultHash The settled result hash (from `JobSettled`).
    /// @param signers The settled signer list (from `JobSettled`).
    function release(uint256 jobId, bytes32 resultHash, address[] calldata signers) external;

    /// @notice Returns the fee to the client of an unsettled job after its deadline; anyone may call.
    /// @param jobId The job.
    function refund(uint256 jobId) external;

    /// @notice Disputes a settled result within the challenge window, pulling the challenge bond.
    /// @param jobId The job.
    function challenge(uint256 jobId) external;

    /// @notice Disputes one job of a batch settled by `settleBatch`, within the batch's challenge window
    /// (from the batch's `settledAt`), pulling the challenge bond. The job then has its own state (Disputed,
    /// its settlement commitment from the batch's signers), so `resolveDispute`, `expireDispute` and slashing
    /// work as for a job settled alone.
    /// @param jobId The job.
    /// @param root The batch's Merkle root (from `BatchSettled`).
    /// @param resultHash The job's settled result hash (its batch entry).
    /// @param proof The Merkle proof of (jobId, resultHash) in `root`.
    function challengeBatched(uint256 jobId, bytes32 root, bytes32 resultHash, bytes32[] calldata proof)
        external;

    /// @notice The arbiter's verdict on a dispute, before the dispute timeout.
    /// @param jobId The job.
    /// @param resultStands True to pay signers (bond to treasury); false to refund, return the bond and slash.
    /// @param resultHash The settled result hash.
    /// @param signers The settled signer list.
    function resolveDispute(uint256 jobId, bool resultStands, bytes32 resultHash, address[] calldata signers)
        external;

    /// @notice After the dispute timeout: refunds the client and returns the bond; nobody is slashed.
    /// @param jobId The job.
    function expireDispute(uint256 jobId) external;

    /// @notice Pays the caller everything credited to it.
    /// @return amount Token amount paid.
    function claim() external returns (uint256 amount);

    /// @notice The EIP-712 digest of an attestation in this escrow's domain.
    function hashAttestation(Attestation calldata attestation) external view returns (bytes32);

    /// @notice The EIP-712 digest of a batch attestation in this escrow's domain.
    /// @param root The batch's Merkle root.
    /// @param runtimeId The runtime of every result in the batch.
    function hashBatchAttestation(bytes32 root, bytes32 runtimeId) external view returns (bytes32);

    /// @notice The Merkle leaf of a batch entry: keccak256(bytes.concat(keccak256(abi.encode(jobId, resultHash)))).
    function batchLeaf(uint256 jobId, bytes32 resultHash) external pure returns (bytes32);

    /// @notice Whether `proof` shows that (jobId, resultHash) is an entry of the batch with root `root`
    /// (OpenZeppelin MerkleProof). Pair with the `BatchSettled` event to prove a job's batch to anyone.
    function verifyBatchInclusion(bytes32 root, uint256 jobId, bytes32 resultHash, bytes32[] calldata proof)
        external
        pure
        returns (bool);

    /// @notice Whether `resultHash` with `signers` is what settled `jobId`: `settle`, or a batch job once
    /// challenged. For a job settled by a batch use `verifyBatchSettlement`.
    function verifySettlement(uint256 jobId, bytes32 resultHash, address[] calldata signers)
        external
        view
        returns (bool);

    /// @notice Whether `settleBatch` settled `jobId` with (resultHash, signers) in the batch `root`.
    /// @param proof The Merkle proof of (jobId, resultHash) in `root`.
    function verifyBatchSettlement(
        uint256 jobId,
        bytes32 root,
        bytes32 resultHash,
        address[] calldata signers,
        bytes32[] calldata proof
    ) external view returns (bool);

    /// @notice Whether `settleBatch` settled `jobId` (stays true after its release or dispute).
    function isBatchSettled(uint256 jobId) external view returns (bool);

    /// @notice The record of the batch with Merkle root `root` (zero if none settled).
    function batch(bytes32 root) external view returns (BatchRecord memory);

    /// @notice A job as stored, except that a batch-settled job not yet challenged or released reads as
    /// Settled (with updatedAt 0 and no settlement: those are in its batch's record).
    function job(uint256 jobId) external view returns (Job memory);

    /// @notice What `account` can claim.
    function owed(address account) external view returns (uint256);

    /// @notice Whether `runtimeId` is allowed.
    function isRuntimeAllowed(bytes32 runtimeId) external view returns (bool);

    /// @notice The number of jobs created so far (ids run from 1 to this value).
    function jobCount() external view returns (uint256);

    /// @notice The current parameters.
    function config() external view returns (Config memory);

    /// @notice Seconds a signer stays slashable for a result it signed: `maxJobDuration + challengeWindow +
    /// disputeTimeout` (signed at the latest at the deadline, then challenged and disputed). The registry's
    /// unbonding period never drops below it.
    function slashingExposure() external view returns (uint256);

    /// @notice The fee token.
    function token() external view returns (address);
}
