// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IJobEscrow} from "./interfaces/IJobEscrow.sol";
import {ISlashing} from "./interfaces/ISlashing.sol";
import {IStakingRegistry} from "./interfaces/IStakingRegistry.sol";
import {BatchMerkle} from "./libraries/BatchMerkle.sol";
import {SignatureQuorum} from "./libraries/SignatureQuorum.sol";
import {
    AccessControlDefaultAdminRules
} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title JobEscrow
/// @notice Holds inference fees. A job settles when at least M of the N active signers of the
/// StakingRegistry sign the same EIP-712 `Attestation`; after a challenge window the fee is credited to the
/// signers' operators and the treasury, who withdraw it with `claim` (pull payments, so one payee that cannot
/// receive never blocks another). An unsettled job is refunded to its client after the deadline.
/// @dev Invariants: the token balance covers the fees of Created/Settled/Disputed jobs, open bonds and
/// everything owed; a job pays out or refunds exactly once; status only increases. The token must be a
/// plain ERC-20 (no fee on transfer, no rebasing).
contract JobEscrow is IJobEscrow, AccessControlDefaultAdminRules, Pausable, ReentrancyGuardTransient, EIP712 {
    using SafeERC20 for IERC20;

    /*//////////////////////////////////////////////////////////////
                               CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @notice May pause the escrow in an incident; only the admin unpauses.
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");
    /// @notice Resolves disputes.
    bytes32 public constant ARBITER_ROLE = keccak256("ARBITER_ROLE");

    /// @notice EIP-712 type hash of `Attestation`, the statement M-of-N signers sign.
    bytes32 public constant ATTESTATION_TYPEHASH = keccak256(
        "Attestation(uint256 jobId,bytes32 modelId,bytes32 inputHash,bytes32 resultHash,bytes32 runtimeId)"
    );

    /// @notice EIP-712 type hash of `BatchAttestation`: M-of-N signers attest every entry of a batch at once.
    /// `root` is the StandardMerkleTree root over the batch's (uint256 jobId, bytes32 resultHash) entries.
    bytes32 public constant BATCH_ATTESTATION_TYPEHASH =
        keccak256("BatchAttestation(bytes32 root,bytes32 runtimeId)");

    /// @notice Most entries in one batch. Bounds the loops and the in-memory tree (2n - 1 words); a batch of
    /// 1,024 costs about 7.8M gas (BENCHMARKS.md), a quarter of a 30M-gas block.
    uint256 public constant MAX_BATCH_JOBS = 1024;

    uint256 internal constant BPS = 10_000;
    /// @dev Parameter bounds: wide enough for a local network, narrow enough that governance cannot make
    /// disputes impossible (window >= 1 minute) or take most of a fee (<= 20%).
    uint256 public constant MAX_PROTOCOL_FEE_BPS = 2000;
    uint256 public constant MIN_CHALLENGE_WINDOW = 1 minutes;
    uint256 public constant MAX_CHALLENGE_WINDOW = 30 days;
    uint256 public constant MIN_DISPUTE_TIMEOUT = 1 hours;
    uint256 public constant MAX_DISPUTE_TIMEOUT = 90 days;
    uint256 public constant MAX_JOB_DURATION = 30 days;
    uint256 public constant MIN_OUTPUT_BYTES = 32;
    uint256 public constant MAX_OUTPUT_BYTES = 64 * 1024;

    /*//////////////////////////////////////////////////////////////
                                STORAGE
    //////////////////////////////////////////////////////////////*/

    /// @dev A dispute's challenger and the bond it posted, in one slot.
    struct Dispute {
        address challenger;
        uint96 bond;
    }

    IERC20 private immutable _token;
    IStakingRegistry private immutable _registry;

    Config private _config;
    ISlashing public slashing;
    address public treasury;
    uint256 private _jobCount;

    // Written through storage pointers (`Job storage j = _jobs[id]`), which slither does not follow.
    // slither-disable-next-line uninitialized-state
    mapping(uint256 jobId => Job) private _jobs;
    mapping(uint256 jobId => Dispute) private _disputes;
    mapping(address account => uint256) private _owed;
    mapping(bytes32 runtimeId => bool) private _runtimeAllowed;
    /// @dev Bit `jobId & 255` of word `jobId >> 8` is set once `settleBatch` settled the job. Ids are
    /// sequential, so the jobs of a batch share one or two words: settling a job costs a bit in a warm word
    /// instead of a write to the job's own (cold) slot. A set bit is never cleared.
    // Written in assembly (settleBatch's per-job loop), which slither does not follow.
    // slither-disable-next-line uninitialized-state
    mapping(uint256 word => uint256 bits) private _batchSettledBits;
    /// @dev What a batch settled with, by Merkle root: the signer list's hash and the time.
    mapping(bytes32 root => BatchRecord) private _batches;

    /*//////////////////////////////////////////////////////////////
                              CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    /// @param token_ The fee and bond token.
    /// @param registry_ The registry whose active set signs.
    /// @param admin Governance (DEFAULT_ADMIN_ROLE, two-step transfer after `adminDelay`).
    /// @param adminDelay Delay of an admin transfer.
    /// @param treasury_ Receives protocol fees and forfeited bonds.
    /// @param config_ Initial parameters.
    constructor(
        IERC20 token_,
        IStakingRegistry registry_,
        address admin,
        uint48 adminDelay,
        address treasury_,
        Config memory config_
    ) AccessControlDefaultAdminRules(adminDelay, admin) EIP712("Attesta", "1") {
        if (address(token_) == address(0) || address(registry_) == address(0)) {
            revert JobEscrowZeroAddress();
        }
        _token = token_;
        _registry = registry_;
        _setTreasury(treasury_);
        _setConfig(config_);
    }

    /*//////////////////////////////////////////////////////////////
                              CLIENT FLOW
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IJobEscrow
    function createJob(bytes32 modelId, bytes32 inputHash, uint256 fee, uint256 deadline)
        external
        nonReentrant
        whenNotPaused
        returns (uint256 jobId)
    {
        Config memory c = _config;
        if (fee < c.minFee || fee > type(uint96).max) revert JobEscrowFeeOutOfRange(fee, c.minFee);
        uint256 earliest = block.timestamp + c.minJobDuration;
        uint256 latest = block.timestamp + c.maxJobDuration;
        if (deadline < earliest || deadline > latest) {
            revert JobEscrowDeadlineOutOfRange(deadline, earliest, latest);
        }

        jobId = ++_jobCount;
        Job storage j = _jobs[jobId];
        j.client = msg.sender;
        // forge-lint: disable-next-line(unsafe-typecast) checked against 2^96 - 1 above
        j.fee = uint96(fee);
        j.status = JobStatus.Created;
        // forge-lint: disable-next-line(unsafe-typecast) deadline <= now + 30 days, far below 2^40
        j.deadline = uint40(deadline);
        j.modelId = modelId;
        j.inputHash = inputHash;
        emit JobCreated(jobId, msg.sender, modelId, inputHash, fee, deadline);
        _token.safeTransferFrom(msg.sender, address(this), fee);
    }

    /// @inheritdoc IJobEscrow
    function refund(uint256 jobId) external nonReentrant {
        // Not pausable: the money only ever goes back to the client who paid it.
        Job storage j = _jobs[jobId];
        if (j.status != JobStatus.Created) revert JobEscrowWrongStatus(jobId, uint8(j.status));
        // A batch-settled job keeps Created in its own word; its bit says it is Settled.
        if (_isBatchSettled(jobId)) revert JobEscrowWrongStatus(jobId, uint8(JobStatus.Settled));
        if (block.timestamp <= j.deadline) revert JobEscrowDeadlineNotReached(jobId, j.deadline);
        j.status = JobStatus.Refunded;
        address client = j.client;
        uint256 fee = j.fee;
        emit JobRefunded(jobId, client, fee);
        _token.safeTransfer(client, fee);
    }

    /*//////////////////////////////////////////////////////////////
                               SETTLEMENT
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IJobEscrow
    function settle(
        uint256 jobId,
        bytes32 runtimeId,
        bytes32 resultHash,
        bytes calldata output,
        bytes calldata signatures
    ) external nonReentrant whenNotPaused {
        Job storage j = _jobs[jobId];
        if (j.status != JobStatus.Created) revert JobEscrowWrongStatus(jobId, uint8(j.status));
        if (_isBatchSettled(jobId)) revert JobEscrowWrongStatus(jobId, uint8(JobStatus.Settled));
        if (block.timestamp > j.deadline) revert JobEscrowDeadlinePassed(jobId, j.deadline);
        if (!_runtimeAllowed[runtimeId]) revert JobEscrowRuntimeNotAllowed(runtimeId);
        uint256 maxOutput = _config.maxOutputBytes;
        if (output.length > maxOutput) revert JobEscrowOutputTooLarge(output.length, maxOutput);
        bytes32 outputHash = keccak256(output);
        if (outputHash != resultHash) revert JobEscrowOutputMismatch(resultHash, outputHash);

        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(ATTESTATION_TYPEHASH, jobId, j.modelId, j.inputHash, resultHash, runtimeId))
        );
        address[] memory signers = _recoverQuorum(digest, signatures);

        j.status = JobStatus.Settled;
        j.updatedAt = uint40(block.timestamp);
        j.settlement = _settlementOf(resultHash, keccak256(abi.encode(signers)));
        emit JobSettled(jobId, resultHash, runtimeId, signers, output);
    }

    /// @inheritdoc IJobEscrow
    function settleBatch(bytes32 runtimeId, BatchEntry[] calldata entries, bytes calldata signatures)
        external
        nonReentrant
        whenNotPaused
        returns (bytes32 root)
    {
        uint256 count = entries.length;
        if (count == 0 || count > MAX_BATCH_JOBS) revert JobEscrowBatchSizeOutOfRange(count, MAX_BATCH_JOBS);
        if (!_runtimeAllowed[runtimeId]) revert JobEscrowRuntimeNotAllowed(runtimeId);

        // One pass over the entries: each leaf into the tree (strictly ascending, where StandardMerkleTree
        // puts it), each job's state word read once (Created, deadline not passed) and its bit set in the
        // shared bitmap. The job's own word is not written: that cold write was most of the per-job cost.
        bytes32[] memory tree = new bytes32[](2 * count - 1);
        bytes32 previous;
        for (uint256 k; k < count; ++k) {
            uint256 jobId;
            bytes32 leaf;
            uint256 word;
            uint256 bitsAt;
            uint256 bits;
            assembly ("memory-safe") {
                // entries is a static-struct array whose extent the ABI decoder checked: entry k is the two
                // words at offset + 64k.
                let p := add(entries.offset, shl(6, k))
                jobId := calldataload(p)
                // The leaf, keccak256(bytes.concat(keccak256(abi.encode(jobId, resultHash)))), in scratch.
                mstore(0x00, jobId)
                mstore(0x20, calldataload(add(p, 0x20)))
                mstore(0x00, keccak256(0x00, 0x40))
                leaf := keccak256(0x00, 0x20)
                // tree[2n - 2 - k] = leaf
                mstore(add(tree, shl(5, sub(shl(1, count), add(k, 1)))), leaf)
                // The job's state word: the second slot of _jobs[jobId].
                mstore(0x00, jobId)
                mstore(0x20, _jobs.slot)
                word := sload(add(keccak256(0x00, 0x40), 1))
                // Its bitmap word.
                mstore(0x00, shr(8, jobId))
                mstore(0x20, _batchSettledBits.slot)
                bitsAt := keccak256(0x00, 0x40)
                bits := sload(bitsAt)
            }
            if (leaf <= previous) revert JobEscrowBatchNotAscending(k);
            previous = leaf;
            // forge-lint: disable-next-line(unsafe-typecast) the low 8 bits are the status
            uint8 status = uint8(word);
            // forge-lint: disable-next-line(unsafe-typecast) bits 8..47 are the deadline
            uint40 deadline = uint40(word >> 8);
            if (status != uint8(JobStatus.Created)) revert JobEscrowWrongStatus(jobId, status);
            uint256 bit;
            assembly ("memory-safe") {
                // shl(shift, value): 1 shifted left by jobId & 255 (slither reads it backwards).
                // slither-disable-next-line incorrect-shift
                bit := shl(and(jobId, 0xff), 1)
            }
            // Set: settled by an earlier batch, or listed twice in this one (with two results).
            if (bits & bit != 0) revert JobEscrowWrongStatus(jobId, uint8(JobStatus.Settled));
            if (block.timestamp > deadline) revert JobEscrowDeadlinePassed(jobId, deadline);
            assembly ("memory-safe") {
                sstore(bitsAt, or(bits, bit))
            }
        }
        root = BatchMerkle.rootOf(tree);

        // One signature set for the whole batch.
        address[] memory signers = _recoverQuorum(
            _hashTypedDataV4(keccak256(abi.encode(BATCH_ATTESTATION_TYPEHASH, root, runtimeId))), signatures
        );

        // One record per batch: what releaseBatch, challengeBatched and verifyBatchSettlement check against.
        // A root is recorded once: the same entries again would find their bits set.
        // forge-lint: disable-next-line(unsafe-typecast) as in `settle`: uint40 seconds last 34,000 years
        _batches[root] = BatchRecord(keccak256(abi.encode(signers)), uint40(block.timestamp));
        emit BatchSettled(root, runtimeId, signers, count);
    }

    /// @inheritdoc IJobEscrow
    function release(uint256 jobId, bytes32 resultHash, address[] calldata signers)
        external
        nonReentrant
        whenNotPaused
    {
        Job storage j = _jobs[jobId];
        if (j.status != JobStatus.Settled) revert JobEscrowWrongStatus(jobId, uint8(j.status));
        uint256 windowEnd = uint256(j.updatedAt) + _config.challengeWindow;
        if (block.timestamp < windowEnd) revert JobEscrowChallengeWindowOpen(jobId, windowEnd);
        _checkSettlement(j, jobId, resultHash, signers);
        j.status = JobStatus.Released;
        _payOut(jobId, j.fee, signers);
    }

    /// @inheritdoc IJobEscrow
    function releaseBatch(BatchEntry[] calldata entries, address[] calldata signers)
        external
        nonReentrant
        whenNotPaused
    {
        uint256 count = entries.length;
        if (count == 0 || count > MAX_BATCH_JOBS) revert JobEscrowBatchSizeOutOfRange(count, MAX_BATCH_JOBS);
        (bytes32 root, uint256 protocolFeeBps) = _checkBatchRelease(entries, signers);
        uint256 signerCount = signers.length; // >= 1: the batch settled with at least the threshold
        uint256 perSigner = 0;
        uint256 toTreasury = 0;
        uint256 released = 0;
        for (uint256 k; k < count; ++k) {
            uint256 jobId;
            uint256 base;
            uint256 word;
            assembly ("memory-safe") {
                jobId := calldataload(add(entries.offset, shl(6, k)))
                mstore(0x00, jobId)
                mstore(0x20, _jobs.slot)
                base := keccak256(0x00, 0x40)
                word := sload(add(base, 1))
            }
            // Every job of a recorded batch has its bit set, so Created here means batch-settled and not yet
            // challenged or released. Any other status: challenged (then settled by its dispute) or released
            // by an earlier call: skipped, so one challenge never blocks paying the rest of the batch.
            // forge-lint: disable-next-line(unsafe-typecast) the low 8 bits are the status
            if (uint8(word) != uint8(JobStatus.Created)) continue;
            uint256 fee;
            assembly ("memory-safe") {
                // Status Released; deadline, updatedAt and settlement kept.
                sstore(add(base, 1), or(and(word, not(0xff)), 4))
                fee := shr(160, sload(base))
            }
            // The same split as `_payOut`, job by job, so a batch pays exactly what single releases would.
            // slither-disable-next-line divide-before-multiply (see _payOut: the dust goes to the treasury)
            uint256 share = (fee - Math.mulDiv(fee, protocolFeeBps, BPS)) / signerCount;
            uint256 rest = fee - share * signerCount;
            perSigner += share;
            toTreasury += rest;
            ++released;
            emit PaymentReleased(jobId, share, rest);
        }
        if (released == 0) revert JobEscrowNothingToRelease(root);
        // Netted: each operator and the treasury is credited once for the whole batch.
        address[] memory operators = _registry.operatorsOf(signers);
        for (uint256 i; i < signerCount; ++i) {
            _credit(operators[i], perSigner);
        }
        _credit(treasury, toTreasury);
    }

    /*//////////////////////////////////////////////////////////////
                                DISPUTES
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IJobEscrow
    function challenge(uint256 jobId) external nonReentrant whenNotPaused {
        Job storage j = _jobs[jobId];
        if (j.status != JobStatus.Settled) revert JobEscrowWrongStatus(jobId, uint8(j.status));
        uint256 windowEnd = uint256(j.updatedAt) + _config.challengeWindow;
        if (block.timestamp >= windowEnd) revert JobEscrowChallengeWindowClosed(jobId, windowEnd);
        uint96 bond = _config.challengeBond;
        j.status = JobStatus.Disputed;
        j.updatedAt = uint40(block.timestamp);
        _disputes[jobId] = Dispute(msg.sender, bond);
        emit JobChallenged(jobId, msg.sender, bond);
        _token.safeTransferFrom(msg.sender, address(this), bond);
    }

    /// @inheritdoc IJobEscrow
    function challengeBatched(uint256 jobId, bytes32 root, bytes32 resultHash, bytes32[] calldata proof)
        external
        nonReentrant
        whenNotPaused
    {
        Job storage j = _jobs[jobId];
        // Created with its bit set is batch-settled and not yet challenged or released.
        if (j.status != JobStatus.Created) revert JobEscrowWrongStatus(jobId, uint8(j.status));
        if (!_isBatchSettled(jobId)) revert JobEscrowWrongStatus(jobId, uint8(JobStatus.Created));
        BatchRecord memory b = _batches[root];
        if (b.settledAt == 0) revert JobEscrowUnknownBatch(root);
        if (!MerkleProof.verifyCalldata(proof, root, BatchMerkle.leafHash(jobId, resultHash))) {
            revert JobEscrowNotInBatch(jobId, root);
        }
        uint256 windowEnd = uint256(b.settledAt) + _config.challengeWindow;
        if (block.timestamp >= windowEnd) revert JobEscrowChallengeWindowClosed(jobId, windowEnd);
        uint96 bond = _config.challengeBond;
        // The job gets its own word now, as if settled alone: resolveDispute, expireDispute and slashing
        // then work on it unchanged.
        j.status = JobStatus.Disputed;
        j.updatedAt = uint40(block.timestamp);
        j.settlement = _settlementOf(resultHash, b.signersHash);
        _disputes[jobId] = Dispute(msg.sender, bond);
        emit JobChallenged(jobId, msg.sender, bond);
        _token.safeTransferFrom(msg.sender, address(this), bond);
    }

    /// @inheritdoc IJobEscrow
    function resolveDispute(uint256 jobId, bool resultStands, bytes32 resultHash, address[] calldata signers)
        external
        nonReentrant
        onlyRole(ARBITER_ROLE)
    {
        Job storage j = _jobs[jobId];
        if (j.status != JobStatus.Disputed) revert JobEscrowWrongStatus(jobId, uint8(j.status));
        uint256 disputeEnd = uint256(j.updatedAt) + _config.disputeTimeout;
        if (block.timestamp >= disputeEnd) revert JobEscrowDisputeTimedOut(jobId, disputeEnd);
        _checkSettlement(j, jobId, resultHash, signers);
        Dispute memory d = _disputes[jobId];
        if (resultStands) {
            j.status = JobStatus.Released;
            emit DisputeResolved(jobId, true);
            _payOut(jobId, j.fee, signers);
            _credit(treasury, d.bond);
        } else {
            ISlashing slashing_ = slashing;
            if (address(slashing_) == address(0)) revert JobEscrowZeroAddress();
            j.status = JobStatus.Overturned;
            emit DisputeResolved(jobId, false);
            emit JobRefunded(jobId, j.client, j.fee);
            _credit(j.client, j.fee);
            _credit(d.challenger, d.bond);
            // Trusted call to governance's Slashing contract, after every effect above.
            slashing_.slashOverturned(jobId, signers, d.challenger);
        }
    }

    /// @inheritdoc IJobEscrow
    function expireDispute(uint256 jobId) external nonReentrant {
        Job storage j = _jobs[jobId];
        if (j.status != JobStatus.Disputed) revert JobEscrowWrongStatus(jobId, uint8(j.status));
        uint256 disputeEnd = uint256(j.updatedAt) + _config.disputeTimeout;
        if (block.timestamp < disputeEnd) revert JobEscrowDisputeNotTimedOut(jobId, disputeEnd);
        Dispute memory d = _disputes[jobId];
        j.status = JobStatus.Refunded;
        emit DisputeExpired(jobId);
        emit JobRefunded(jobId, j.client, j.fee);
        _credit(j.client, j.fee);
        _credit(d.challenger, d.bond);
    }

    /// @inheritdoc IJobEscrow
    function claim() external nonReentrant whenNotPaused returns (uint256 amount) {
        amount = _owed[msg.sender];
        if (amount == 0) revert JobEscrowNothingToClaim(msg.sender);
        _owed[msg.sender] = 0;
        emit Claimed(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IJobEscrow
    function hashAttestation(Attestation calldata a) external view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(ATTESTATION_TYPEHASH, a.jobId, a.modelId, a.inputHash, a.resultHash, a.runtimeId)
            )
        );
    }

    /// @inheritdoc IJobEscrow
    function hashBatchAttestation(bytes32 root, bytes32 runtimeId) external view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(BATCH_ATTESTATION_TYPEHASH, root, runtimeId)));
    }

    /// @inheritdoc IJobEscrow
    function batchLeaf(uint256 jobId, bytes32 resultHash) external pure returns (bytes32) {
        return BatchMerkle.leafHash(jobId, resultHash);
    }

    /// @inheritdoc IJobEscrow
    function verifyBatchInclusion(bytes32 root, uint256 jobId, bytes32 resultHash, bytes32[] calldata proof)
        external
        pure
        returns (bool)
    {
        return MerkleProof.verifyCalldata(proof, root, BatchMerkle.leafHash(jobId, resultHash));
    }

    /// @inheritdoc IJobEscrow
    function verifySettlement(uint256 jobId, bytes32 resultHash, address[] calldata signers)
        external
        view
        returns (bool)
    {
        Job storage j = _jobs[jobId];
        return j.settlement != bytes20(0)
            && j.settlement == _settlementOf(resultHash, keccak256(abi.encode(signers)));
    }

    /// @inheritdoc IJobEscrow
    function verifyBatchSettlement(
        uint256 jobId,
        bytes32 root,
        bytes32 resultHash,
        address[] calldata signers,
        bytes32[] calldata proof
    ) external view returns (bool) {
        BatchRecord memory b = _batches[root];
        return b.settledAt != 0 && _isBatchSettled(jobId) && b.signersHash == keccak256(abi.encode(signers))
            && MerkleProof.verifyCalldata(proof, root, BatchMerkle.leafHash(jobId, resultHash));
    }

    /// @inheritdoc IJobEscrow
    function isBatchSettled(uint256 jobId) external view returns (bool) {
        return _isBatchSettled(jobId);
    }

    /// @inheritdoc IJobEscrow
    function batch(bytes32 root) external view returns (BatchRecord memory) {
        return _batches[root];
    }

    /// @inheritdoc IJobEscrow
    function job(uint256 jobId) external view returns (Job memory j) {
        j = _jobs[jobId];
        if (j.status == JobStatus.Created && _isBatchSettled(jobId)) j.status = JobStatus.Settled;
    }

    /// @inheritdoc IJobEscrow
    function owed(address account) external view returns (uint256) {
        return _owed[account];
    }

    /// @inheritdoc IJobEscrow
    function isRuntimeAllowed(bytes32 runtimeId) external view returns (bool) {
        return _runtimeAllowed[runtimeId];
    }

    /// @inheritdoc IJobEscrow
    function jobCount() external view returns (uint256) {
        return _jobCount;
    }

    /// @inheritdoc IJobEscrow
    function config() external view returns (Config memory) {
        return _config;
    }

    /// @inheritdoc IJobEscrow
    function slashingExposure() external view returns (uint256) {
        return _exposure(_config);
    }

    /// @inheritdoc IJobEscrow
    function token() external view returns (address) {
        return address(_token);
    }

    /// @notice The registry whose active set signs.
    function registry() external view returns (IStakingRegistry) {
        return _registry;
    }

    /// @notice The EIP-712 domain separator of attestations.
    // forge-lint: disable-next-line(mixed-case-function)
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /*//////////////////////////////////////////////////////////////
                               GOVERNANCE
    //////////////////////////////////////////////////////////////*/

    /// @notice Stops new jobs, settlement, release, challenges and claims. Refunds, dispute expiry and the
    /// arbiter's `resolveDispute` go on: each only returns money or ends a dispute already under way.
    function pause() external onlyRole(GUARDIAN_ROLE) {
        _pause();
    }

    /// @notice Lifts a pause; governance only.
    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }

    /// @notice Allows or disallows a runtime id (engine, canonicalisation and sandbox policy).
    function setRuntimeAllowed(bytes32 runtimeId, bool allowed) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _runtimeAllowed[runtimeId] = allowed;
        emit RuntimeAllowed(runtimeId, allowed);
    }

    /// @notice Replaces every parameter at once, each checked against its bounds.
    function setConfig(Config calldata value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setConfig(value);
    }

    /// @notice Sets where protocol fees and forfeited bonds go.
    function setTreasury(address value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setTreasury(value);
    }

    /// @notice Sets the Slashing contract that punishes signers of overturned results.
    function setSlashing(ISlashing value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (address(value) == address(0)) revert JobEscrowZeroAddress();
        slashing = value;
        emit AddressSet("slashing", address(value));
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    function _checkSettlement(Job storage j, uint256 jobId, bytes32 resultHash, address[] calldata signers)
        internal
        view
    {
        if (j.settlement != _settlementOf(resultHash, keccak256(abi.encode(signers)))) {
            revert JobEscrowSettlementMismatch(jobId);
        }
    }

    /// @dev The settlement commitment: what `release` and disputes check their (resultHash, signers) against.
    /// The signer list enters as its hash so a batch hashes it once, not once per job.
    function _settlementOf(bytes32 resultHash, bytes32 signersHash)
        internal
        pure
        returns (bytes20 settlement)
    {
        // keccak256(abi.encode(resultHash, signersHash)) in scratch space, so a batch allocates no memory per job.
        assembly ("memory-safe") {
            mstore(0x00, resultHash)
            mstore(0x20, signersHash)
            settlement := and(keccak256(0x00, 0x40), not(0xffffffffffffffffffffffff))
        }
    }

    /// @dev Whether `settleBatch` settled `jobId` (its bit in the shared bitmap).
    function _isBatchSettled(uint256 jobId) internal view returns (bool) {
        return (_batchSettledBits[jobId >> 8] >> (jobId & 0xff)) & 1 == 1;
    }

    /// @dev Checks that `entries` are a settled batch, `signers` its signer list and its challenge window
    /// over; returns its root and the protocol fee.
    function _checkBatchRelease(BatchEntry[] calldata entries, address[] calldata signers)
        internal
        view
        returns (bytes32 root, uint256 protocolFeeBps)
    {
        root = _batchRoot(entries);
        BatchRecord memory b = _batches[root];
        if (b.settledAt == 0) revert JobEscrowUnknownBatch(root);
        if (b.signersHash != keccak256(abi.encode(signers))) revert JobEscrowBatchSignersMismatch(root);
        Config memory c = _config;
        uint256 windowEnd = uint256(b.settledAt) + c.challengeWindow;
        if (block.timestamp < windowEnd) revert JobEscrowBatchWindowOpen(root, windowEnd);
        protocolFeeBps = c.protocolFeeBps;
    }

    /// @dev The Merkle root of `entries` as `settleBatch` computes it (leaves strictly ascending).
    function _batchRoot(BatchEntry[] calldata entries) internal pure returns (bytes32) {
        uint256 count = entries.length; // >= 1, checked by the caller
        bytes32[] memory tree = new bytes32[](2 * count - 1);
        bytes32 previous;
        for (uint256 k; k < count; ++k) {
            bytes32 leaf;
            assembly ("memory-safe") {
                let p := add(entries.offset, shl(6, k))
                mstore(0x00, calldataload(p))
                mstore(0x20, calldataload(add(p, 0x20)))
                mstore(0x00, keccak256(0x00, 0x40))
                leaf := keccak256(0x00, 0x20)
                mstore(add(tree, shl(5, sub(shl(1, count), add(k, 1)))), leaf)
            }
            if (leaf <= previous) revert JobEscrowBatchNotAscending(k);
            previous = leaf;
        }
        return BatchMerkle.rootOf(tree);
    }

    /// @dev Recovers the signers of `digest` (strictly ascending, valid low-s signatures) and checks that
    /// every one is active and that there are at least M of them.
    function _recoverQuorum(bytes32 digest, bytes calldata signatures)
        internal
        view
        returns (address[] memory signers)
    {
        signers = SignatureQuorum.recoverAscending(digest, signatures);
        (uint256 threshold, uint256 firstInactive) = _registry.checkSigners(signers);
        if (firstInactive != signers.length) {
            revert JobEscrowInactiveSigner(firstInactive, signers[firstInactive]);
        }
        if (signers.length < threshold) revert JobEscrowInsufficientSignatures(signers.length, threshold);
    }

    /// @dev Splits `fee`: the protocol share and the rounding dust to the treasury, the rest equally to the
    /// operators behind `signers` (keys are bound to operators for good, so this is who signed).
    function _payOut(uint256 jobId, uint256 fee, address[] calldata signers) internal {
        uint256 protocolFee = Math.mulDiv(fee, _config.protocolFeeBps, BPS);
        uint256 count = signers.length; // >= 1: settlement needs at least the threshold, which is >= 1
        // Dividing first is the point: `share * count` below recovers what the division dropped, and that
        // rounding dust goes to the treasury so the credits sum to `fee` exactly.
        // slither-disable-next-line divide-before-multiply
        uint256 share = (fee - protocolFee) / count;
        address[] memory operators = _registry.operatorsOf(signers);
        for (uint256 i; i < count; ++i) {
            _credit(operators[i], share);
        }
        uint256 toTreasury = fee - share * count;
        _credit(treasury, toTreasury);
        emit PaymentReleased(jobId, share, toTreasury);
    }

    function _credit(address account, uint256 amount) internal {
        if (amount == 0) return;
        _owed[account] += amount;
        emit Credited(account, amount);
    }

    function _setConfig(Config memory c) internal {
        if (c.minFee == 0) revert JobEscrowParameterOutOfBounds("minFee", c.minFee);
        if (c.challengeBond == 0) revert JobEscrowParameterOutOfBounds("challengeBond", c.challengeBond);
        if (c.protocolFeeBps > MAX_PROTOCOL_FEE_BPS) {
            revert JobEscrowParameterOutOfBounds("protocolFeeBps", c.protocolFeeBps);
        }
        if (c.maxOutputBytes < MIN_OUTPUT_BYTES || c.maxOutputBytes > MAX_OUTPUT_BYTES) {
            revert JobEscrowParameterOutOfBounds("maxOutputBytes", c.maxOutputBytes);
        }
        if (c.maxJobDuration == 0 || c.maxJobDuration > MAX_JOB_DURATION) {
            revert JobEscrowParameterOutOfBounds("maxJobDuration", c.maxJobDuration);
        }
        if (c.minJobDuration > c.maxJobDuration) {
            revert JobEscrowParameterOutOfBounds("minJobDuration", c.minJobDuration);
        }
        if (c.challengeWindow < MIN_CHALLENGE_WINDOW || c.challengeWindow > MAX_CHALLENGE_WINDOW) {
            revert JobEscrowParameterOutOfBounds("challengeWindow", c.challengeWindow);
        }
        if (c.disputeTimeout < MIN_DISPUTE_TIMEOUT || c.disputeTimeout > MAX_DISPUTE_TIMEOUT) {
            revert JobEscrowParameterOutOfBounds("disputeTimeout", c.disputeTimeout);
        }
        uint256 exposure = _exposure(c);
        if (exposure > _registry.unbondingPeriod()) {
            revert JobEscrowParameterOutOfBounds("exposure", exposure);
        }
        _config = c;
        emit ParameterSet("config", uint256(keccak256(abi.encode(c))));
    }

    // A signer must stay slashable until every dispute over a result it signed can have ended: from its
    // signature (at the latest at the deadline) through the challenge window and the dispute timeout.
    function _exposure(Config memory c) internal pure returns (uint256) {
        return uint256(c.maxJobDuration) + c.challengeWindow + c.disputeTimeout;
    }

    function _setTreasury(address value) internal {
        if (value == address(0)) revert JobEscrowZeroAddress();
        treasury = value;
        emit AddressSet("treasury", value);
    }
}
