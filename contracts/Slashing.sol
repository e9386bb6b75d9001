// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IJobEscrow} from "./interfaces/IJobEscrow.sol";
import {ISlashing} from "./interfaces/ISlashing.sol";
import {IStakingRegistry} from "./interfaces/IStakingRegistry.sol";
import {SignatureQuorum} from "./libraries/SignatureQuorum.sol";
import {
    AccessControlDefaultAdminRules
} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

/// @title Slashing
/// @notice Turns evidence into slashes on the StakingRegistry, each offence at most once:
/// equivocation (anyone, with two attestations), an overturned result (the escrow, after a dispute),
/// downtime (an M-of-N signed report) and collusion (governance).
contract Slashing is ISlashing, AccessControlDefaultAdminRules, EIP712 {
    /*//////////////////////////////////////////////////////////////
                               CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Offence kinds, part of each offence id.
    uint8 public constant OFFENCE_EQUIVOCATION = 1;
    uint8 public constant OFFENCE_OVERTURNED = 2;
    uint8 public constant OFFENCE_DOWNTIME = 3;
    uint8 public constant OFFENCE_COLLUSION = 4;

    /// @notice EIP-712 type of a downtime report.
    bytes32 public constant DOWNTIME_TYPEHASH = keccak256("DowntimeReport(address operator,uint64 epoch)");

    /// @notice How many finished epochs back a downtime report may reach.
    uint256 public constant DOWNTIME_REPORT_WINDOW = 7;
    uint256 internal constant BPS = 10_000;

    /*//////////////////////////////////////////////////////////////
                                STORAGE
    //////////////////////////////////////////////////////////////*/

    IStakingRegistry private immutable _registry;
    IJobEscrow private immutable _escrow;
    Penalties private _penalties;
    mapping(bytes32 offence => bool) private _slashed;

    /*//////////////////////////////////////////////////////////////
                              CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    /// @param registry_ The registry to slash (this contract needs its SLASHER_ROLE).
    /// @param escrow_ The escrow whose attestations and disputes this contract judges.
    /// @param admin Governance (two-step transfer after `adminDelay`).
    /// @param adminDelay Delay of an admin transfer.
    /// @param penalties_ Initial penalties.
    constructor(
        IStakingRegistry registry_,
        IJobEscrow escrow_,
        address admin,
        uint48 adminDelay,
        Penalties memory penalties_
    ) AccessControlDefaultAdminRules(adminDelay, admin) EIP712("Attesta Slashing", "1") {
        if (address(registry_) == address(0) || address(escrow_) == address(0)) revert SlashingZeroAddress();
        _registry = registry_;
        _escrow = escrow_;
        _setPenalties(penalties_);
    }

    /*//////////////////////////////////////////////////////////////
                               OFFENCES
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ISlashing
    function slashEquivocation(
        IJobEscrow.Attestation calldata a,
        bytes calldata sigA,
        IJobEscrow.Attestation calldata b,
        bytes calldata sigB
    ) external returns (uint256 amount) {
        // Two answers to one question: a different model or input is another question (a relayer could feed
        // an honest node wrong bytes), and the relayer is trusted for liveness only.
        if (
            a.jobId != b.jobId || a.modelId != b.modelId || a.inputHash != b.inputHash
                || a.resultHash == b.resultHash
        ) {
            revert SlashingNotEquivocation(a.jobId, b.jobId);
        }
        address signerA = _recover(_escrow.hashAttestation(a), sigA);
        address signerB = _recover(_escrow.hashAttestation(b), sigB);
        if (signerA != signerB) revert SlashingSignerMismatch(signerA, signerB);
        address operator = _registry.operatorOf(signerA);
        if (operator == address(0)) revert SlashingUnknownSigner(signerA);
        Penalties memory p = _penalties;
        bytes32 offence = _claimOffence(OFFENCE_EQUIVOCATION, operator, bytes32(a.jobId));
        amount = _registry.slash(operator, p.equivocationBps, msg.sender, p.reporterBountyBps, true);
        emit OffenceSlashed(offence, OFFENCE_EQUIVOCATION, operator, amount);
    }

    /// @inheritdoc ISlashing
    function slashBatchEquivocation(BatchStatement calldata a, BatchStatement calldata b)
        external
        returns (uint256 amount)
    {
        if (a.jobId != b.jobId || a.resultHash == b.resultHash) {
            revert SlashingNotEquivocation(a.jobId, b.jobId);
        }
        return _slashEquivocator(_batchSigner(a), _batchSigner(b), a.jobId);
    }

    /// @inheritdoc ISlashing
    function slashMixedEquivocation(
        IJobEscrow.Attestation calldata a,
        bytes calldata sigA,
        BatchStatement calldata b
    ) external returns (uint256 amount) {
        if (a.jobId != b.jobId || a.resultHash == b.resultHash) {
            revert SlashingNotEquivocation(a.jobId, b.jobId);
        }
        // The batch entry is about the job as created; the attestation must be about the same question.
        IJobEscrow.Job memory j = _escrow.job(a.jobId);
        if (a.modelId != j.modelId || a.inputHash != j.inputHash) {
            revert SlashingNotEquivocation(a.jobId, b.jobId);
        }
        return _slashEquivocator(_recover(_escrow.hashAttestation(a), sigA), _batchSigner(b), a.jobId);
    }

    /// @inheritdoc ISlashing
    function slashOverturned(uint256 jobId, address[] calldata signers, address challenger) external {
        if (msg.sender != address(_escrow)) revert SlashingOnlyEscrow(msg.sender);
        Penalties memory p = _penalties;
        address[] memory operators = _registry.operatorsOf(signers);
        uint256 count = operators.length;
        bytes32[] memory offences = new bytes32[](count);
        // Record every offence before the first external call (checks-effects-interactions). Skip rather than
        // revert on an operator already punished for this job: the escrow's verdict must go through.
        for (uint256 i; i < count; ++i) {
            bytes32 offence = _offenceId(OFFENCE_OVERTURNED, operators[i], bytes32(jobId));
            if (operators[i] == address(0) || _slashed[offence]) continue;
            _slashed[offence] = true;
            offences[i] = offence;
        }
        for (uint256 i; i < count; ++i) {
            if (offences[i] == bytes32(0)) continue;
            uint256 amount =
                _registry.slash(operators[i], p.overturnedBps, challenger, p.reporterBountyBps, true);
            emit OffenceSlashed(offences[i], OFFENCE_OVERTURNED, operators[i], amount);
        }
    }

    /// @inheritdoc ISlashing
    function slashDowntime(address operator, uint64 epoch, bytes calldata signatures)
        external
        returns (uint256 amount)
    {
        uint256 current = currentEpoch();
        if (epoch >= current) revert SlashingEpochNotOver(epoch, current);
        // Only recent epochs: otherwise a quorum could punish made-up periods from before the operator joined.
        if (epoch + DOWNTIME_REPORT_WINDOW < current) revert SlashingEpochTooOld(epoch, current);
        address[] memory signers =
            SignatureQuorum.recoverAscending(downtimeDigest(operator, epoch), signatures);
        (uint256 threshold, uint256 firstInactive) = _registry.checkSigners(signers);
        if (firstInactive != signers.length) {
            revert SlashingInactiveSigner(firstInactive, signers[firstInactive]);
        }
        if (signers.length < threshold) revert SlashingInsufficientSignatures(signers.length, threshold);
        bytes32 offence = _claimOffence(OFFENCE_DOWNTIME, operator, bytes32(uint256(epoch)));
        // Downtime removes the operator from the active set (it would otherwise keep raising M) but does
        // not jail it: it may rejoin once it is back.
        amount = _registry.slash(operator, _penalties.downtimeBps, address(0), 0, false);
        emit OffenceSlashed(offence, OFFENCE_DOWNTIME, operator, amount);
    }

    /// @inheritdoc ISlashing
    function slashCollusion(address operator, bytes32 evidence)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
        returns (uint256 amount)
    {
        bytes32 offence = _claimOffence(OFFENCE_COLLUSION, operator, evidence);
        amount = _registry.slash(operator, _penalties.collusionBps, address(0), 0, true);
        emit OffenceSlashed(offence, OFFENCE_COLLUSION, operator, amount);
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ISlashing
    function downtimeDigest(address operator, uint64 epoch) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(DOWNTIME_TYPEHASH, operator, epoch)));
    }

    /// @inheritdoc ISlashing
    function isSlashed(bytes32 offence) external view returns (bool) {
        return _slashed[offence];
    }

    /// @inheritdoc ISlashing
    function currentEpoch() public view returns (uint256) {
        return block.timestamp / _penalties.epochLength;
    }

    /// @inheritdoc ISlashing
    function penalties() external view returns (Penalties memory) {
        return _penalties;
    }

    /// @notice The id under which an offence is recorded.
    function offenceId(uint8 kind, address operator, bytes32 subject) external pure returns (bytes32) {
        return _offenceId(kind, operator, subject);
    }

    /*//////////////////////////////////////////////////////////////
                               GOVERNANCE
    //////////////////////////////////////////////////////////////*/

    /// @notice Replaces the penalties, each checked against its bounds.
    /// The epoch length is fixed at deployment: a new length would renumber periods already reported, so one
    /// period could be punished twice and `currentEpoch` could move back.
    function setPenalties(Penalties calldata value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (value.epochLength != _penalties.epochLength) {
            revert SlashingParameterOutOfBounds("epochLength", value.epochLength);
        }
        _setPenalties(value);
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    function _offenceId(uint8 kind, address operator, bytes32 subject) internal pure returns (bytes32) {
        return keccak256(abi.encode(kind, operator, subject));
    }

    function _claimOffence(uint8 kind, address operator, bytes32 subject) internal returns (bytes32 offence) {
        offence = _offenceId(kind, operator, subject);
        if (_slashed[offence]) revert SlashingAlreadySlashed(offence);
        _slashed[offence] = true;
    }

    /// @dev The signer of a batch entry, once its proof shows the entry in the signed root.
    function _batchSigner(BatchStatement calldata s) internal view returns (address) {
        if (!_escrow.verifyBatchInclusion(s.root, s.jobId, s.resultHash, s.proof)) {
            revert SlashingNotInBatch(s.jobId, s.root);
        }
        return _recover(_escrow.hashBatchAttestation(s.root, s.runtimeId), s.signature);
    }

    /// @dev Slashes the operator behind `signerA` for equivocating on `jobId`, once per (operator, job).
    function _slashEquivocator(address signerA, address signerB, uint256 jobId)
        internal
        returns (uint256 amount)
    {
        if (signerA != signerB) revert SlashingSignerMismatch(signerA, signerB);
        address operator = _registry.operatorOf(signerA);
        if (operator == address(0)) revert SlashingUnknownSigner(signerA);
        Penalties memory p = _penalties;
        bytes32 offence = _claimOffence(OFFENCE_EQUIVOCATION, operator, bytes32(jobId));
        amount = _registry.slash(operator, p.equivocationBps, msg.sender, p.reporterBountyBps, true);
        emit OffenceSlashed(offence, OFFENCE_EQUIVOCATION, operator, amount);
    }

    function _recover(bytes32 digest, bytes calldata signature) internal pure returns (address signer) {
        ECDSA.RecoverError err;
        // slither-disable-next-line unused-return (the third value only details `err`, which is checked)
        (signer, err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError) revert SlashingInvalidSignature();
    }

    /// @dev Bounds: equivocation and overturned results are provable fraud (>= 10% and >= 5%), downtime is
    /// mild (1%..50%), collusion severe (>= 50%); a bounty above half would reward self-reporting.
    function _setPenalties(Penalties memory p) internal {
        _checkRange("equivocationBps", p.equivocationBps, 1000, BPS);
        _checkRange("overturnedBps", p.overturnedBps, 500, BPS);
        _checkRange("downtimeBps", p.downtimeBps, 100, 5000);
        _checkRange("collusionBps", p.collusionBps, 5000, BPS);
        _checkRange("reporterBountyBps", p.reporterBountyBps, 0, 5000);
        _checkRange("epochLength", p.epochLength, 1 hours, 30 days);
        _penalties = p;
        emit ParameterSet("penalties", uint256(keccak256(abi.encode(p))));
    }

    function _checkRange(bytes32 name, uint256 value, uint256 min, uint256 max) internal pure {
        if (value < min || value > max) revert SlashingParameterOutOfBounds(name, value);
    }
}
