// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IJobEscrow} from "./IJobEscrow.sol";

/// @title ISlashingErrors
/// @notice Custom errors of the Slashing contract.
interface ISlashingErrors {
    /// @notice The two attestations are not for the same job with different results.
    error SlashingNotEquivocation(uint256 jobIdA, uint256 jobIdB);
    /// @notice The two attestations were signed by different keys.
    error SlashingSignerMismatch(address signerA, address signerB);
    /// @notice A signature did not recover (malformed, high-s or bad v).
    error SlashingInvalidSignature();
    /// @notice The key is not bound to any operator.
    error SlashingUnknownSigner(address signer);
    /// @notice This offence was already punished.
    error SlashingAlreadySlashed(bytes32 offence);
    /// @notice The downtime epoch has not ended yet (current epoch `current`).
    error SlashingEpochNotOver(uint256 epoch, uint256 current);
    /// @notice A downtime report must name one of the last `DOWNTIME_REPORT_WINDOW` epochs.
    error SlashingEpochTooOld(uint256 epoch, uint256 current);
    /// @notice Fewer valid report signatures than the threshold M.
    error SlashingInsufficientSignatures(uint256 count, uint256 threshold);
    /// @notice The report signer at `index` is not in the active set.
    error SlashingInactiveSigner(uint256 index, address signer);
    /// @notice Only the JobEscrow may report overturned results.
    error SlashingOnlyEscrow(address caller);
    /// @notice A governance parameter is outside its allowed range.
    error SlashingParameterOutOfBounds(bytes32 parameter, uint256 value);
    /// @notice The zero address was given where an account is required.
    error SlashingZeroAddress();
    /// @notice The Merkle proof does not show (jobId, resultHash) in the batch with root `root`.
    error SlashingNotInBatch(uint256 jobId, bytes32 root);
}

/// @title ISlashingEvents
/// @notice Events of the Slashing contract.
interface ISlashingEvents {
    /// @notice `operator` was punished for `offence` (an `OFFENCE_*` kind) and lost `amount`.
    event OffenceSlashed(
        bytes32 indexed offence, uint8 indexed kind, address indexed operator, uint256 amount
    );
    /// @notice A penalty or bounty parameter changed.
    event ParameterSet(bytes32 indexed parameter, uint256 value);
}

/// @title ISlashing
/// @notice Decides offences and asks the StakingRegistry to slash. Objective offences (equivocation) are
/// provable by anyone; overturned results come from the escrow's disputes; downtime needs an M-of-N report;
/// collusion needs governance. Each offence is punished at most once.
interface ISlashing is ISlashingErrors, ISlashingEvents {
    /// @notice Penalties in basis points of an operator's total stake, the reporter bounty and the epoch.
    /// @param equivocationBps Penalty for signing two results for one job.
    /// @param overturnedBps Penalty for signing a result the arbiter overturned.
    /// @param downtimeBps Penalty for an M-of-N reported downtime epoch.
    /// @param collusionBps Penalty governance applies for collusion.
    /// @param reporterBountyBps Share of an equivocation or overturned-result slash paid to who proved it.
    /// @param epochLength Length of a downtime epoch in seconds.
    struct Penalties {
        uint16 equivocationBps;
        uint16 overturnedBps;
        uint16 downtimeBps;
        uint16 collusionBps;
        uint16 reporterBountyBps;
        uint40 epochLength;
    }

    /// @notice One entry of a signed batch attestation: the signer's `BatchAttestation(root, runtimeId)`
    /// signature and the Merkle proof that (jobId, resultHash) is an entry of `root`.
    /// @param root The batch's Merkle root (JobEscrow.settleBatch).
    /// @param runtimeId The batch's runtime id.
    /// @param jobId The job.
    /// @param resultHash The result the batch attests for the job.
    /// @param proof OpenZeppelin MerkleProof of the entry's leaf in `root`.
    /// @param signature The 65-byte signature over `JobEscrow.hashBatchAttestation(root, runtimeId)`.
    struct BatchStatement {
        bytes32 root;
        bytes32 runtimeId;
        uint256 jobId;
        bytes32 resultHash;
        bytes32[] proof;
        bytes signature;
    }

    /// @notice Proves that one key signed two different results for one job in two batch attestations
    /// (signed, not necessarily settled); pays the caller a bounty. Same offence id as `slashEquivocation`,
    /// so a key is punished once per job whatever the evidence.
    /// @param a An entry of one signed batch.
    /// @param b An entry of another signed batch: same job, different result.
    /// @return amount Tokens slashed.
    function slashBatchEquivocation(BatchStatement calldata a, BatchStatement calldata b)
        external
        returns (uint256 amount);

    /// @notice Proves that one key signed a single attestation and a batch entry with different results
    /// for one job. A batch entry names the job by id, so the attestation's model and input must be the
    /// job's own (`JobEscrow.job`): a single attestation over other bytes answers another question.
    /// @param a The single attestation.
    /// @param sigA Its 65-byte signature.
    /// @param b The batch entry.
    /// @return amount Tokens slashed.
    function slashMixedEquivocation(
        IJobEscrow.Attestation calldata a,
        bytes calldata sigA,
        BatchStatement calldata b
    ) external returns (uint256 amount);

    /// @notice Proves that one key signed two different results for one job; pays the caller a bounty.
    /// @param a First attestation.
    /// @param sigA Its 65-byte signature.
    /// @param b Second attestation, same job, different result.
    /// @param sigB Its 65-byte signature.
    /// @return amount Tokens slashed.
    function slashEquivocation(
        IJobEscrow.Attestation calldata a,
        bytes calldata sigA,
        IJobEscrow.Attestation calldata b,
        bytes calldata sigB
    ) external returns (uint256 amount);

    /// @notice Slashes the signers of a result that the arbiter overturned; only the escrow.
    /// @param jobId The disputed job.
    /// @param signers The signers of the overturned result.
    /// @param challenger Receives the reporter bounty.
    function slashOverturned(uint256 jobId, address[] calldata signers, address challenger) external;

    /// @notice Slashes `operator` for downtime in `epoch`, on a report signed by M of the active signers.
    /// @param operator The offline operator.
    /// @param epoch A finished epoch (`block.timestamp / epochLength`).
    /// @param signatures Concatenated 65-byte signatures over `downtimeDigest`, signers ascending.
    /// @return amount Tokens slashed.
    function slashDowntime(address operator, uint64 epoch, bytes calldata signatures)
        external
        returns (uint256 amount);

    /// @notice Governance slashes `operator` for collusion established off-chain.
    /// @param operator The offender.
    /// @param evidence A hash identifying the evidence (one slash per operator and evidence).
    /// @return amount Tokens slashed.
    function slashCollusion(address operator, bytes32 evidence) external returns (uint256 amount);

    /// @notice The EIP-712 digest that report signers sign for `operator`'s downtime in `epoch`.
    function downtimeDigest(address operator, uint64 epoch) external view returns (bytes32);

    /// @notice Whether the offence with id `offence` was already punished.
    function isSlashed(bytes32 offence) external view returns (bool);

    /// @notice The current downtime epoch.
    function currentEpoch() external view returns (uint256);

    /// @notice The current penalties.
    function penalties() external view returns (Penalties memory);
}
