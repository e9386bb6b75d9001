// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Slashing} from "../../contracts/Slashing.sol";
import {IJobEscrow} from "../../contracts/interfaces/IJobEscrow.sol";
import {ISlashing, ISlashingErrors, ISlashingEvents} from "../../contracts/interfaces/ISlashing.sol";
import {
    IStakingRegistry,
    IStakingRegistryErrors,
    IStakingRegistryEvents
} from "../../contracts/interfaces/IStakingRegistry.sol";
import {SignatureQuorum} from "../../contracts/libraries/SignatureQuorum.sol";
import {AttestaTest} from "../utils/AttestaTest.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Vm} from "forge-std/Vm.sol";

/// @notice Shared fixture of the Slashing unit tests: four active operators with the minimum stake
/// (N = 4, M = 3) and helpers that build the evidence each offence needs.
abstract contract SlashingTestBase is AttestaTest {
    uint256 internal constant BPS = 10_000;
    bytes32 internal constant RESULT_A = keccak256("result A");
    bytes32 internal constant RESULT_B = keccak256("result B");
    bytes32 internal constant RESULT_C = keccak256("result C");

    address internal reporter = makeAddr("reporter");
    uint256 internal minStake;

    function setUp() public virtual override {
        super.setUp();
        _addOperators(4);
        minStake = registry.minStake();
    }

    /*//////////////////////////////////////////////////////////////
                                 HELPERS
    //////////////////////////////////////////////////////////////*/

    /// @notice Everything the registry can still slash from `op`: stake plus unbonding stake.
    function _slashable(address op) internal view returns (uint256) {
        IStakingRegistry.Operator memory o = registry.operator(op);
        return uint256(o.stake) + o.unbonding;
    }

    function _penalty(uint256 total, uint256 bps) internal pure returns (uint256) {
        return total * bps / BPS;
    }

    function _bounty(uint256 amount) internal view returns (uint256) {
        return amount * slashing.penalties().reporterBountyBps / BPS;
    }

    function _outOfBounds(bytes32 name, uint256 value) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ISlashingErrors.SlashingParameterOutOfBounds.selector, name, value);
    }

    function _offence(uint8 kind, address op, bytes32 subject) internal view returns (bytes32) {
        return slashing.offenceId(kind, op, subject);
    }

    /// @notice Two attestations for `jobId` by `key`: RESULT_A and RESULT_B, same model, input and runtime.
    function _conflictingPair(uint256 key, uint256 jobId)
        internal
        view
        returns (
            IJobEscrow.Attestation memory a,
            bytes memory sigA,
            IJobEscrow.Attestation memory b,
            bytes memory sigB
        )
    {
        a = _attestation(jobId, RESULT_A, RUNTIME);
        b = _attestation(jobId, RESULT_B, RUNTIME);
        sigA = _sign(key, escrow.hashAttestation(a));
        sigB = _sign(key, escrow.hashAttestation(b));
    }

    /// @notice `reporter` proves that `key` equivocated on `jobId`.
    function _reportEquivocation(uint256 key, uint256 jobId) internal returns (uint256) {
        (
            IJobEscrow.Attestation memory a,
            bytes memory sigA,
            IJobEscrow.Attestation memory b,
            bytes memory sigB
        ) = _conflictingPair(key, jobId);
        vm.prank(reporter);
        return slashing.slashEquivocation(a, sigA, b, sigB);
    }

    /// @notice The last finished downtime epoch.
    function _lastEpoch() internal view returns (uint64) {
        return uint64(slashing.currentEpoch() - 1);
    }

    /// @notice A downtime report on `target` for `epoch` signed by the first `m` operators, sorted.
    function _downtimeReport(address target, uint64 epoch, uint256 m)
        internal
        view
        returns (bytes memory sigs)
    {
        (sigs,) = _packSignatures(_firstKeys(m), slashing.downtimeDigest(target, epoch));
    }

    /// @notice `reporter` submits a 3-of-4 downtime report on `target` for `epoch`.
    function _reportDowntime(address target, uint64 epoch) internal returns (uint256) {
        bytes memory sigs = _downtimeReport(target, epoch, 3);
        vm.prank(reporter);
        return slashing.slashDowntime(target, epoch, sigs);
    }

    function _collude(address op, bytes32 evidence) internal returns (uint256) {
        vm.prank(admin);
        return slashing.slashCollusion(op, evidence);
    }

    function _topUp(address op, uint256 amount) internal {
        token.mint(op, amount);
        vm.startPrank(op);
        token.approve(address(registry), amount);
        registry.stake(amount);
        vm.stopPrank();
    }

    function _challenge(uint256 jobId) internal {
        uint256 bond = cfg.escrow.challengeBond;
        token.mint(challenger, bond);
        vm.startPrank(challenger);
        token.approve(address(escrow), bond);
        escrow.challenge(jobId);
        vm.stopPrank();
    }

    /// @notice A job settled by the first three operators and challenged by `challenger`.
    function _disputedJob() internal returns (uint256 jobId, address[] memory signers) {
        jobId = _createJob();
        signers = _settleWith(jobId, 3);
        _challenge(jobId);
    }

    /// @notice The registry's totals equal the sums over every operator, and its balance covers them exactly.
    function _assertRegistryConsistent() internal view {
        uint256 staked;
        uint256 unbonding;
        for (uint256 i; i < ops.length; ++i) {
            IStakingRegistry.Operator memory o = registry.operator(ops[i].operator);
            staked += o.stake;
            unbonding += o.unbonding;
        }
        assertEq(registry.totalStaked(), staked, "totalStaked != sum of stakes");
        assertEq(registry.totalUnbonding(), unbonding, "totalUnbonding != sum of unbonding");
        assertEq(token.balanceOf(address(registry)), staked + unbonding, "registry balance != totals");
    }

    function _countOffenceEvents(Vm.Log[] memory logs) internal view returns (uint256 n) {
        for (uint256 i; i < logs.length; ++i) {
            if (
                logs[i].emitter == address(slashing)
                    && logs[i].topics[0] == ISlashingEvents.OffenceSlashed.selector
            ) {
                ++n;
            }
        }
    }
}

/*//////////////////////////////////////////////////////////////
                          slashEquivocation
//////////////////////////////////////////////////////////////*/

contract SlashEquivocationTest is SlashingTestBase {
    function test_slashEquivocation_slashesHalfAndPaysReporter() public {
        Op memory op = ops[0];
        uint256 jobId = _createJob();
        (
            IJobEscrow.Attestation memory a,
            bytes memory sigA,
            IJobEscrow.Attestation memory b,
            bytes memory sigB
        ) = _conflictingPair(op.signerKey, jobId);
        uint256 amount = _penalty(minStake, 5000);
        uint256 bounty = _penalty(amount, 1000);
        uint256 treasuryBefore = token.balanceOf(treasury);
        bytes32 offence = _offence(slashing.OFFENCE_EQUIVOCATION(), op.operator, bytes32(jobId));

        vm.expectEmit(address(registry));
        emit IStakingRegistryEvents.Slashed(op.operator, amount, reporter, bounty, true);
        vm.expectEmit(address(slashing));
        emit ISlashingEvents.OffenceSlashed(offence, slashing.OFFENCE_EQUIVOCATION(), op.operator, amount);
        vm.prank(reporter);
        uint256 slashed = slashing.slashEquivocation(a, sigA, b, sigB);

        assertEq(slashed, amount, "returned amount");
        assertEq(registry.operator(op.operator).stake, minStake - amount, "stake");
        assertEq(token.balanceOf(reporter), bounty, "bounty to msg.sender");
        assertEq(token.balanceOf(treasury) - treasuryBefore, amount - bounty, "rest to treasury");
        assertEq(registry.totalSlashed(), amount, "totalSlashed");
        assertEq(registry.totalStaked(), 4 * minStake - amount, "totalStaked");
        assertTrue(slashing.isSlashed(offence), "offence recorded");
        _assertRegistryConsistent();
    }

    function test_slashEquivocation_jailsAndRemovesFromActiveSet() public {
        Op memory op = ops[1];
        uint64 versionBefore = registry.activeSetVersion();

        _reportEquivocation(op.signerKey, _createJob());

        IStakingRegistry.Operator memory o = registry.operator(op.operator);
        assertTrue(o.jailed, "jailed");
        assertFalse(o.active, "active");
        assertFalse(registry.isActiveSigner(op.signer), "still an active signer");
        assertEq(registry.activeCount(), 3, "activeCount");
        assertGt(registry.activeSetVersion(), versionBefore, "version");

        // Jailed for good: neither an explicit activation nor a top-up brings it back.
        bytes memory jailed = abi.encodeWithSelector(
            IStakingRegistryErrors.StakingRegistryCannotActivate.selector,
            op.operator,
            registry.REASON_JAILED()
        );
        vm.prank(op.operator);
        vm.expectRevert(jailed);
        registry.activate();
        _topUp(op.operator, minStake);
        assertFalse(registry.operator(op.operator).active, "reactivated by a top-up");
    }

    function test_slashEquivocation_argumentOrderDoesNotMatter() public {
        Op memory op = ops[0];
        (
            IJobEscrow.Attestation memory a,
            bytes memory sigA,
            IJobEscrow.Attestation memory b,
            bytes memory sigB
        ) = _conflictingPair(op.signerKey, 7);
        vm.prank(reporter);
        uint256 amount = slashing.slashEquivocation(b, sigB, a, sigA);
        assertEq(amount, _penalty(minStake, 5000));
    }

    function test_slashEquivocation_jobNeedNotExistYet() public {
        // A key that signs two results for a job id is provably dishonest whether or not the job was created.
        uint256 jobId = escrow.jobCount() + 100;
        assertEq(_reportEquivocation(ops[0].signerKey, jobId), _penalty(minStake, 5000));
    }

    function test_slashEquivocation_rotatedOutKeyStillSlashesOperator() public {
        Op memory op = ops[2];
        uint256 jobId = _createJob();
        // Evidence signed with the old key before the rotation.
        (
            IJobEscrow.Attestation memory a,
            bytes memory sigA,
            IJobEscrow.Attestation memory b,
            bytes memory sigB
        ) = _conflictingPair(op.signerKey, jobId);

        Op memory fresh = _newOp();
        bytes memory proof = _signerProof(op.operator, fresh.signerKey);
        vm.prank(op.operator);
        registry.registerSigner(fresh.signer, proof);
        assertFalse(registry.isActiveSigner(op.signer), "old key still active");
        assertTrue(registry.isActiveSigner(fresh.signer), "new key not active");

        vm.prank(reporter);
        uint256 amount = slashing.slashEquivocation(a, sigA, b, sigB);

        assertEq(amount, _penalty(minStake, 5000), "amount");
        IStakingRegistry.Operator memory o = registry.operator(op.operator);
        assertEq(o.stake, minStake - amount, "stake");
        assertTrue(o.jailed, "jailed");
        assertFalse(registry.isActiveSigner(fresh.signer), "current key still active");
    }

    /// @dev RELIABILITY C11: unbonding in the same block as the slash does not protect the stake.
    function test_slashEquivocation_sameBlockAsFullUnstake_stillSlashes() public {
        Op memory op = ops[0];
        vm.prank(op.operator);
        registry.requestUnstake(minStake);
        assertEq(registry.operator(op.operator).stake, 0);

        uint256 amount = _reportEquivocation(op.signerKey, 1);

        assertEq(amount, _penalty(minStake, 5000), "amount");
        assertEq(registry.operator(op.operator).unbonding, minStake - amount, "unbonding");
        assertEq(registry.totalUnbonding(), minStake - amount, "totalUnbonding");
        _assertRegistryConsistent();

        // Only the remainder can be withdrawn after the unbonding period.
        vm.warp(block.timestamp + cfg.unbondingPeriod);
        vm.prank(op.operator);
        assertEq(registry.withdraw(), minStake - amount, "withdrawn");
    }

    /// @dev C11: the slash takes from the stake first, then from what is unbonding.
    function test_slashEquivocation_duringPartialUnbonding_takesStakeFirst() public {
        Op memory op = ops[0];
        _topUp(op.operator, minStake); // 2 * minStake
        vm.prank(op.operator);
        registry.requestUnstake(minStake + minStake / 2); // stake 0.5x, unbonding 1.5x
        vm.warp(block.timestamp + cfg.unbondingPeriod - 1); // one second before it could be withdrawn

        uint256 amount = _reportEquivocation(op.signerKey, 1);

        assertEq(amount, minStake, "half of 2x");
        IStakingRegistry.Operator memory o = registry.operator(op.operator);
        assertEq(o.stake, 0, "stake taken first");
        assertEq(o.unbonding, minStake, "rest from unbonding");
        _assertRegistryConsistent();
    }

    function test_slashEquivocation_afterWithdrawal_takesNothing() public {
        Op memory op = ops[0];
        vm.prank(op.operator);
        registry.requestUnstake(minStake);
        vm.warp(block.timestamp + cfg.unbondingPeriod);
        vm.prank(op.operator);
        registry.withdraw();

        uint256 treasuryBefore = token.balanceOf(treasury);
        assertEq(_reportEquivocation(op.signerKey, 1), 0, "amount");
        assertEq(token.balanceOf(treasury), treasuryBefore, "treasury");
        assertEq(token.balanceOf(reporter), 0, "bounty");
        assertTrue(registry.operator(op.operator).jailed, "jailed anyway");
    }

    function test_slashEquivocation_whileRegistryAndEscrowPaused() public {
        vm.startPrank(guardian);
        registry.pause();
        escrow.pause();
        vm.stopPrank();
        assertEq(_reportEquivocation(ops[0].signerKey, 1), _penalty(minStake, 5000));
    }

    function testFuzz_slashEquivocation_takesHalfOfStakeAndUnbonding(
        uint256 extra,
        uint256 unbond,
        bytes32 resultA,
        bytes32 resultB,
        address caller
    ) public {
        vm.assume(caller != address(0) && caller != address(registry) && caller != treasury);
        if (resultA == resultB) resultB = ~resultA;
        Op memory op = ops[3];
        extra = bound(extra, 0, 1e9 ether);
        _topUp(op.operator, extra + 1); // stake() rejects zero
        uint256 total = minStake + extra + 1;
        unbond = bound(unbond, 0, total);
        if (unbond != 0) {
            vm.prank(op.operator);
            registry.requestUnstake(unbond);
        }

        IJobEscrow.Attestation memory a = _attestation(42, resultA, RUNTIME);
        IJobEscrow.Attestation memory b = _attestation(42, resultB, RUNTIME);
        bytes memory sigA = _sign(op.signerKey, escrow.hashAttestation(a));
        bytes memory sigB = _sign(op.signerKey, escrow.hashAttestation(b));
        uint256 callerBefore = token.balanceOf(caller);
        uint256 treasuryBefore = token.balanceOf(treasury);

        vm.prank(caller);
        uint256 amount = slashing.slashEquivocation(a, sigA, b, sigB);

        assertEq(amount, total / 2, "half");
        assertEq(_slashable(op.operator), total - amount, "left");
        uint256 bounty = _bounty(amount);
        assertEq(token.balanceOf(caller) - callerBefore, bounty, "bounty");
        assertEq(token.balanceOf(treasury) - treasuryBefore, amount - bounty, "treasury");
        _assertRegistryConsistent();
    }

    /*//////////////////////////////////////////////////////////////
                                 REVERTS
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_slashEquivocation_differentJobs() public {
        uint256 key = ops[0].signerKey;
        IJobEscrow.Attestation memory a = _attestation(1, RESULT_A, RUNTIME);
        IJobEscrow.Attestation memory b = _attestation(2, RESULT_B, RUNTIME);
        bytes memory sigA = _sign(key, escrow.hashAttestation(a));
        bytes memory sigB = _sign(key, escrow.hashAttestation(b));
        vm.expectRevert(abi.encodeWithSelector(ISlashingErrors.SlashingNotEquivocation.selector, 1, 2));
        slashing.slashEquivocation(a, sigA, b, sigB);
    }

    function test_RevertWhen_slashEquivocation_sameResult() public {
        uint256 key = ops[0].signerKey;
        IJobEscrow.Attestation memory a = _attestation(1, RESULT_A, RUNTIME);
        bytes memory sigA = _sign(key, escrow.hashAttestation(a));
        vm.expectRevert(abi.encodeWithSelector(ISlashingErrors.SlashingNotEquivocation.selector, 1, 1));
        slashing.slashEquivocation(a, sigA, a, sigA);
    }

    function test_RevertWhen_slashEquivocation_sameResultUnderAnotherRuntime() public {
        uint256 key = ops[0].signerKey;
        IJobEscrow.Attestation memory a = _attestation(1, RESULT_A, RUNTIME);
        IJobEscrow.Attestation memory b = _attestation(1, RESULT_A, keccak256("another runtime"));
        bytes memory sigA = _sign(key, escrow.hashAttestation(a));
        bytes memory sigB = _sign(key, escrow.hashAttestation(b));
        vm.expectRevert(abi.encodeWithSelector(ISlashingErrors.SlashingNotEquivocation.selector, 1, 1));
        slashing.slashEquivocation(a, sigA, b, sigB);
    }

    function test_RevertWhen_slashEquivocation_differentSigners() public {
        IJobEscrow.Attestation memory a = _attestation(1, RESULT_A, RUNTIME);
        IJobEscrow.Attestation memory b = _attestation(1, RESULT_B, RUNTIME);
        bytes memory sigA = _sign(ops[0].signerKey, escrow.hashAttestation(a));
        bytes memory sigB = _sign(ops[1].signerKey, escrow.hashAttestation(b));
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingErrors.SlashingSignerMismatch.selector, ops[0].signer, ops[1].signer
            )
        );
        slashing.slashEquivocation(a, sigA, b, sigB);
    }

    function test_RevertWhen_slashEquivocation_signatureDoesNotRecover() public {
        (IJobEscrow.Attestation memory a, bytes memory sigA, IJobEscrow.Attestation memory b,) =
            _conflictingPair(ops[0].signerKey, 1);
        // r = s = 0: ecrecover yields address(0).
        bytes memory zero = new bytes(65);
        zero[64] = bytes1(uint8(27));
        vm.expectRevert(ISlashingErrors.SlashingInvalidSignature.selector);
        slashing.slashEquivocation(a, sigA, b, zero);
    }

    function test_RevertWhen_slashEquivocation_badV() public {
        (
            IJobEscrow.Attestation memory a,
            bytes memory sigA,
            IJobEscrow.Attestation memory b,
            bytes memory sigB
        ) = _conflictingPair(ops[0].signerKey, 1);
        (bytes32 r, bytes32 s,) = _split(sigB);
        vm.expectRevert(ISlashingErrors.SlashingInvalidSignature.selector);
        slashing.slashEquivocation(a, sigA, b, abi.encodePacked(r, s, uint8(1)));
    }

    /// @dev RELIABILITY C6: the high-s twin of a valid signature is rejected, on either side.
    function test_RevertWhen_slashEquivocation_malleatedSignature() public {
        (
            IJobEscrow.Attestation memory a,
            bytes memory sigA,
            IJobEscrow.Attestation memory b,
            bytes memory sigB
        ) = _conflictingPair(ops[0].signerKey, 1);
        vm.expectRevert(ISlashingErrors.SlashingInvalidSignature.selector);
        slashing.slashEquivocation(a, _malleate(sigA), b, sigB);
        vm.expectRevert(ISlashingErrors.SlashingInvalidSignature.selector);
        slashing.slashEquivocation(a, sigA, b, _malleate(sigB));
        assertEq(registry.operator(ops[0].operator).stake, minStake, "no effect");
    }

    /// @dev RELIABILITY C7: a 64-byte (EIP-2098 compact) or empty signature is rejected.
    function test_RevertWhen_slashEquivocation_shortSignature() public {
        (
            IJobEscrow.Attestation memory a,
            bytes memory sigA,
            IJobEscrow.Attestation memory b,
            bytes memory sigB
        ) = _conflictingPair(ops[0].signerKey, 1);
        (bytes32 r, bytes32 s, uint8 v) = _split(sigB);
        bytes32 vs = bytes32(uint256(s) | (v == 28 ? 1 << 255 : 0));
        vm.expectRevert(ISlashingErrors.SlashingInvalidSignature.selector);
        slashing.slashEquivocation(a, sigA, b, abi.encodePacked(r, vs));
        vm.expectRevert(ISlashingErrors.SlashingInvalidSignature.selector);
        slashing.slashEquivocation(a, "", b, sigB);
    }

    function test_RevertWhen_slashEquivocation_unknownSigner() public {
        Op memory stranger = _newOp(); // never registered
        (
            IJobEscrow.Attestation memory a,
            bytes memory sigA,
            IJobEscrow.Attestation memory b,
            bytes memory sigB
        ) = _conflictingPair(stranger.signerKey, 1);
        vm.expectRevert(
            abi.encodeWithSelector(ISlashingErrors.SlashingUnknownSigner.selector, stranger.signer)
        );
        slashing.slashEquivocation(a, sigA, b, sigB);
    }

    function test_RevertWhen_slashEquivocation_signedInAnotherDomain() public {
        // Signatures over another escrow's domain recover other addresses: not this operator's key.
        Op memory op = ops[0];
        IJobEscrow.Attestation memory a = _attestation(1, RESULT_A, RUNTIME);
        IJobEscrow.Attestation memory b = _attestation(1, RESULT_B, RUNTIME);
        vm.chainId(block.chainid + 1);
        bytes memory sigA = _sign(op.signerKey, escrow.hashAttestation(a));
        bytes memory sigB = _sign(op.signerKey, escrow.hashAttestation(b));
        vm.chainId(block.chainid - 1);
        vm.expectPartialRevert(ISlashingErrors.SlashingSignerMismatch.selector);
        slashing.slashEquivocation(a, sigA, b, sigB);
    }

    /// @dev RELIABILITY C12: one offence, one slash, whichever pair of attestations proves it.
    function test_RevertWhen_slashEquivocation_reportedTwice() public {
        Op memory op = ops[0];
        uint256 jobId = _createJob();
        _reportEquivocation(op.signerKey, jobId);
        bytes32 offence = _offence(slashing.OFFENCE_EQUIVOCATION(), op.operator, bytes32(jobId));

        // The same pair again.
        (
            IJobEscrow.Attestation memory a,
            bytes memory sigA,
            IJobEscrow.Attestation memory b,
            bytes memory sigB
        ) = _conflictingPair(op.signerKey, jobId);
        vm.expectRevert(abi.encodeWithSelector(ISlashingErrors.SlashingAlreadySlashed.selector, offence));
        slashing.slashEquivocation(a, sigA, b, sigB);

        // Another pair for the same job (B against a third result C).
        IJobEscrow.Attestation memory c = _attestation(jobId, RESULT_C, RUNTIME);
        bytes memory sigC = _sign(op.signerKey, escrow.hashAttestation(c));
        vm.expectRevert(abi.encodeWithSelector(ISlashingErrors.SlashingAlreadySlashed.selector, offence));
        slashing.slashEquivocation(b, sigB, c, sigC);

        assertEq(registry.operator(op.operator).stake, minStake - _penalty(minStake, 5000), "slashed once");
    }

    function test_RevertWhen_slashEquivocation_sameJobProvenWithOtherKeyOfSameOperator() public {
        Op memory op = ops[0];
        _reportEquivocation(op.signerKey, 1);
        Op memory fresh = _newOp();
        bytes memory proof = _signerProof(op.operator, fresh.signerKey);
        vm.prank(op.operator);
        registry.registerSigner(fresh.signer, proof);
        bytes32 offence = _offence(slashing.OFFENCE_EQUIVOCATION(), op.operator, bytes32(uint256(1)));
        (
            IJobEscrow.Attestation memory a,
            bytes memory sigA,
            IJobEscrow.Attestation memory b,
            bytes memory sigB
        ) = _conflictingPair(fresh.signerKey, 1);
        vm.expectRevert(abi.encodeWithSelector(ISlashingErrors.SlashingAlreadySlashed.selector, offence));
        slashing.slashEquivocation(a, sigA, b, sigB);
    }

    /// @dev Two attestations over different inputs are two different questions, not two
    /// answers to one. A node that a relayer fed the wrong input bytes for a job signs an honest attestation of
    /// another input; the relayer is trusted for liveness only (DESIGN), so it must not be able to get an
    /// honest node slashed. Equivocation must require the same job, model, input and runtime.
    function test_RevertWhen_slashEquivocation_differentInputHash() public {
        uint256 key = ops[0].signerKey;
        IJobEscrow.Attestation memory a = _attestation(1, RESULT_A, RUNTIME);
        IJobEscrow.Attestation memory b = _attestation(1, RESULT_B, RUNTIME);
        b.inputHash = keccak256("other input bytes");
        bytes memory sigA = _sign(key, escrow.hashAttestation(a));
        bytes memory sigB = _sign(key, escrow.hashAttestation(b));
        vm.expectRevert(abi.encodeWithSelector(ISlashingErrors.SlashingNotEquivocation.selector, 1, 1));
        slashing.slashEquivocation(a, sigA, b, sigB);
    }

    /// @dev As above, for a different model.
    function test_RevertWhen_slashEquivocation_differentModelId() public {
        uint256 key = ops[0].signerKey;
        IJobEscrow.Attestation memory a = _attestation(1, RESULT_A, RUNTIME);
        IJobEscrow.Attestation memory b = _attestation(1, RESULT_B, RUNTIME);
        b.modelId = keccak256("other model bytes");
        bytes memory sigA = _sign(key, escrow.hashAttestation(a));
        bytes memory sigB = _sign(key, escrow.hashAttestation(b));
        vm.expectRevert(abi.encodeWithSelector(ISlashingErrors.SlashingNotEquivocation.selector, 1, 1));
        slashing.slashEquivocation(a, sigA, b, sigB);
    }
}

/*//////////////////////////////////////////////////////////////
                           slashOverturned
//////////////////////////////////////////////////////////////*/

contract SlashOverturnedTest is SlashingTestBase {
    function test_slashOverturned_viaResolveDispute_slashesEachSignerThirtyPercent() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        uint256 treasuryBefore = token.balanceOf(treasury);
        uint256 amount = _penalty(minStake, 3000);
        uint256 bounty = _penalty(amount, 1000);

        for (uint256 i; i < signers.length; ++i) {
            address op = registry.operatorOf(signers[i]);
            vm.expectEmit(address(slashing));
            emit ISlashingEvents.OffenceSlashed(
                _offence(slashing.OFFENCE_OVERTURNED(), op, bytes32(jobId)),
                slashing.OFFENCE_OVERTURNED(),
                op,
                amount
            );
        }
        vm.prank(arbiter);
        escrow.resolveDispute(jobId, false, keccak256(OUTPUT), signers);

        for (uint256 i; i < signers.length; ++i) {
            address op = registry.operatorOf(signers[i]);
            IStakingRegistry.Operator memory o = registry.operator(op);
            assertEq(o.stake, minStake - amount, "signer stake");
            assertTrue(o.jailed, "signer jailed");
            assertFalse(o.active, "signer active");
            assertTrue(
                slashing.isSlashed(_offence(slashing.OFFENCE_OVERTURNED(), op, bytes32(jobId))), "recorded"
            );
        }
        // ops[3] did not sign: untouched.
        IStakingRegistry.Operator memory bystander = registry.operator(ops[3].operator);
        assertEq(bystander.stake, minStake, "bystander stake");
        assertTrue(bystander.active, "bystander active");

        assertEq(token.balanceOf(challenger), 3 * bounty, "challenger bounties");
        assertEq(token.balanceOf(treasury) - treasuryBefore, 3 * (amount - bounty), "treasury");
        assertEq(escrow.owed(challenger), cfg.escrow.challengeBond, "bond returned");
        assertEq(escrow.owed(client), FEE, "client refunded");
        assertEq(uint8(escrow.job(jobId).status), uint8(IJobEscrow.JobStatus.Overturned), "status");
        assertEq(registry.totalSlashed(), 3 * amount, "totalSlashed");
        _assertRegistryConsistent();
    }

    function test_slashOverturned_resultStands_slashesNobody() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        vm.recordLogs();
        vm.prank(arbiter);
        escrow.resolveDispute(jobId, true, keccak256(OUTPUT), signers);
        assertEq(_countOffenceEvents(vm.getRecordedLogs()), 0, "offences");
        assertEq(registry.totalSlashed(), 0, "totalSlashed");
        assertEq(registry.activeCount(), 4, "activeCount");
    }

    function test_slashOverturned_expiredDispute_slashesNobody() public {
        (uint256 jobId,) = _disputedJob();
        vm.warp(block.timestamp + cfg.escrow.disputeTimeout);
        escrow.expireDispute(jobId);
        assertEq(registry.totalSlashed(), 0, "totalSlashed");
        assertEq(registry.activeCount(), 4, "activeCount");
    }

    function test_RevertWhen_slashOverturned_callerNotEscrow() public {
        address[] memory signers = new address[](1);
        signers[0] = ops[0].signer;
        address[3] memory callers = [arbiter, admin, ops[0].operator];
        for (uint256 i; i < callers.length; ++i) {
            vm.prank(callers[i]);
            vm.expectRevert(abi.encodeWithSelector(ISlashingErrors.SlashingOnlyEscrow.selector, callers[i]));
            slashing.slashOverturned(1, signers, challenger);
        }
    }

    function testFuzz_RevertWhen_slashOverturned_callerNotEscrow(address caller) public {
        vm.assume(caller != address(escrow));
        address[] memory signers = new address[](1);
        signers[0] = ops[0].signer;
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(ISlashingErrors.SlashingOnlyEscrow.selector, caller));
        slashing.slashOverturned(1, signers, challenger);
    }

    /// @dev The escrow's verdict must never be blocked: an operator already punished for this job is skipped.
    function test_slashOverturned_alreadySlashedOperatorIsSkipped() public {
        address[] memory signers = new address[](2);
        (signers[0], signers[1]) =
            ops[0].signer < ops[1].signer ? (ops[0].signer, ops[1].signer) : (ops[1].signer, ops[0].signer);
        vm.prank(address(escrow));
        slashing.slashOverturned(9, signers, challenger);
        uint256 totalBefore = registry.totalSlashed();
        uint256 stake0 = registry.operator(ops[0].operator).stake;

        vm.recordLogs();
        vm.prank(address(escrow));
        slashing.slashOverturned(9, signers, challenger); // does not revert

        assertEq(_countOffenceEvents(vm.getRecordedLogs()), 0, "offences");
        assertEq(registry.totalSlashed(), totalBefore, "totalSlashed");
        assertEq(registry.operator(ops[0].operator).stake, stake0, "stake");
    }

    function test_slashOverturned_unknownSignerIsSkipped() public {
        address[] memory signers = new address[](2);
        signers[0] = makeAddr("nobody");
        signers[1] = ops[0].signer;
        vm.prank(address(escrow));
        slashing.slashOverturned(9, signers, challenger);
        assertEq(registry.totalSlashed(), _penalty(minStake, 3000), "only the known signer");
        assertEq(registry.operator(ops[0].operator).stake, minStake - _penalty(minStake, 3000));
    }

    /// @dev An operator that governance already took everything from does not block the verdict.
    function test_slashOverturned_viaResolveDispute_signerAlreadySlashedToZero() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        address wiped = registry.operatorOf(signers[0]);
        _collude(wiped, keccak256("evidence"));
        assertEq(_slashable(wiped), 0);

        vm.prank(arbiter);
        escrow.resolveDispute(jobId, false, keccak256(OUTPUT), signers);

        assertEq(_slashable(wiped), 0, "nothing left to take");
        assertEq(uint8(escrow.job(jobId).status), uint8(IJobEscrow.JobStatus.Overturned), "verdict applied");
        for (uint256 i = 1; i < signers.length; ++i) {
            assertEq(
                _slashable(registry.operatorOf(signers[i])), minStake - _penalty(minStake, 3000), "others"
            );
        }
        _assertRegistryConsistent();
    }

    /// @dev C11: a signer that starts unbonding right after signing is still slashed when the verdict comes.
    function test_slashOverturned_signerUnbonding_stillSlashed() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        address leaver = registry.operatorOf(signers[0]);
        vm.prank(leaver);
        registry.requestUnstake(minStake);

        vm.warp(block.timestamp + cfg.escrow.disputeTimeout - 1);
        vm.prank(arbiter);
        escrow.resolveDispute(jobId, false, keccak256(OUTPUT), signers);

        assertEq(
            registry.operator(leaver).unbonding, minStake - _penalty(minStake, 3000), "unbonding slashed"
        );
        _assertRegistryConsistent();
    }
}

/*//////////////////////////////////////////////////////////////
                            slashDowntime
//////////////////////////////////////////////////////////////*/

contract SlashDowntimeTest is SlashingTestBase {
    function test_slashDowntime_slashesTenPercentWithoutBounty() public {
        Op memory target = ops[3];
        uint64 epoch = _lastEpoch();
        uint256 amount = _penalty(minStake, 1000);
        uint256 treasuryBefore = token.balanceOf(treasury);
        bytes32 offence = _offence(slashing.OFFENCE_DOWNTIME(), target.operator, bytes32(uint256(epoch)));

        vm.expectEmit(address(registry));
        emit IStakingRegistryEvents.Slashed(target.operator, amount, address(0), 0, false);
        vm.expectEmit(address(slashing));
        emit ISlashingEvents.OffenceSlashed(offence, slashing.OFFENCE_DOWNTIME(), target.operator, amount);
        assertEq(_reportDowntime(target.operator, epoch), amount, "returned amount");

        assertEq(registry.operator(target.operator).stake, minStake - amount, "stake");
        assertEq(token.balanceOf(reporter), 0, "no bounty");
        assertEq(token.balanceOf(treasury) - treasuryBefore, amount, "all to treasury");
        assertTrue(slashing.isSlashed(offence), "recorded");
        _assertRegistryConsistent();
    }

    function test_slashDowntime_deactivatesWithoutJailing() public {
        Op memory target = ops[3];
        _reportDowntime(target.operator, _lastEpoch());
        IStakingRegistry.Operator memory o = registry.operator(target.operator);
        assertFalse(o.jailed, "jailed");
        assertFalse(o.active, "active");
        assertFalse(registry.isActiveSigner(target.signer), "active signer");
        assertEq(registry.activeCount(), 3, "activeCount");
    }

    function test_slashDowntime_operatorRejoinsAfterToppingUp() public {
        Op memory target = ops[3];
        _reportDowntime(target.operator, _lastEpoch());

        // Below the minimum now: cannot rejoin yet.
        bytes memory belowMin = abi.encodeWithSelector(
            IStakingRegistryErrors.StakingRegistryCannotActivate.selector,
            target.operator,
            registry.REASON_BELOW_MIN_STAKE()
        );
        vm.prank(target.operator);
        vm.expectRevert(belowMin);
        registry.activate();

        _topUp(target.operator, _penalty(minStake, 1000));
        assertTrue(registry.operator(target.operator).active, "active after top-up");
        assertTrue(registry.isActiveSigner(target.signer), "active signer");
        assertEq(registry.activeCount(), 4, "activeCount");
    }

    function test_slashDowntime_operatorAboveMinimumActivatesAtOnce() public {
        Op memory target = ops[3];
        _topUp(target.operator, minStake);
        _reportDowntime(target.operator, _lastEpoch());
        assertFalse(registry.operator(target.operator).active, "removed");
        vm.prank(target.operator);
        registry.activate();
        assertTrue(registry.isActiveSigner(target.signer), "rejoined");
    }

    function test_slashDowntime_everyActiveSignerMayReport() public {
        Op memory target = ops[3];
        uint64 epoch = _lastEpoch();
        bytes memory sigs = _downtimeReport(target.operator, epoch, 4); // includes the target itself
        assertEq(slashing.slashDowntime(target.operator, epoch, sigs), _penalty(minStake, 1000));
    }

    function test_slashDowntime_eachEpochIsItsOwnOffence() public {
        Op memory target = ops[3];
        uint64 epoch = _lastEpoch();
        uint256 first = _reportDowntime(target.operator, epoch);
        uint256 second = _reportDowntime(target.operator, epoch - 1);
        assertEq(first, _penalty(minStake, 1000), "first");
        assertEq(second, _penalty(minStake - first, 1000), "second, on what is left");
        _assertRegistryConsistent();
    }

    /// @dev An epoch can be reported from the first second after it ends, never before.
    function testFuzz_slashDowntime_onlyFinishedEpochs(uint256 offset) public {
        uint256 length = slashing.penalties().epochLength;
        uint64 epoch = uint64(slashing.currentEpoch() + 1);
        uint256 end = (uint256(epoch) + 1) * length;
        offset = bound(offset, 0, 2 * length);
        vm.warp(end - length + offset);
        bytes memory sigs = _downtimeReport(ops[3].operator, epoch, 3);
        if (block.timestamp < end) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    ISlashingErrors.SlashingEpochNotOver.selector, epoch, block.timestamp / length
                )
            );
            slashing.slashDowntime(ops[3].operator, epoch, sigs);
        } else {
            assertEq(slashing.slashDowntime(ops[3].operator, epoch, sigs), _penalty(minStake, 1000));
        }
    }

    /*//////////////////////////////////////////////////////////////
                                 REVERTS
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_slashDowntime_epochNotOver() public {
        uint256 current = slashing.currentEpoch();
        for (uint256 e = current; e <= current + 1; ++e) {
            // forge-lint: disable-next-line(unsafe-typecast) the current epoch is about 20,000
            uint64 epoch = uint64(e);
            bytes memory sigs = _downtimeReport(ops[3].operator, epoch, 3);
            vm.expectRevert(
                abi.encodeWithSelector(ISlashingErrors.SlashingEpochNotOver.selector, epoch, current)
            );
            slashing.slashDowntime(ops[3].operator, epoch, sigs);
        }
    }

    function test_RevertWhen_slashDowntime_fewerThanThreshold() public {
        uint64 epoch = _lastEpoch();
        bytes memory sigs = _downtimeReport(ops[3].operator, epoch, 2);
        vm.expectRevert(abi.encodeWithSelector(ISlashingErrors.SlashingInsufficientSignatures.selector, 2, 3));
        slashing.slashDowntime(ops[3].operator, epoch, sigs);
    }

    function test_RevertWhen_slashDowntime_reporterNeverRegistered() public {
        uint64 epoch = _lastEpoch();
        Op memory stranger = _newOp();
        uint256[] memory keys = new uint256[](4);
        for (uint256 i; i < 3; ++i) {
            keys[i] = ops[i].signerKey;
        }
        keys[3] = stranger.signerKey;
        keys = _sortByAddress(keys);
        (bytes memory sigs, address[] memory signers) =
            _packSignatures(keys, slashing.downtimeDigest(ops[3].operator, epoch));
        uint256 index;
        while (signers[index] != stranger.signer) ++index;
        vm.expectRevert(
            abi.encodeWithSelector(ISlashingErrors.SlashingInactiveSigner.selector, index, stranger.signer)
        );
        slashing.slashDowntime(ops[3].operator, epoch, sigs);
    }

    function test_RevertWhen_slashDowntime_reporterDeactivated() public {
        uint64 epoch = _lastEpoch();
        // Sign with the first three, then one of them leaves the active set (N = 3, M = 3).
        (bytes memory sigs, address[] memory signers) =
            _packSignatures(_firstKeys(3), slashing.downtimeDigest(ops[3].operator, epoch));
        vm.prank(registry.operatorOf(signers[1]));
        registry.deactivate();
        vm.expectRevert(
            abi.encodeWithSelector(ISlashingErrors.SlashingInactiveSigner.selector, 1, signers[1])
        );
        slashing.slashDowntime(ops[3].operator, epoch, sigs);
    }

    /// @dev RELIABILITY C5: signers must be sorted ascending.
    function test_RevertWhen_slashDowntime_unsortedSigners() public {
        uint64 epoch = _lastEpoch();
        uint256[] memory keys = _firstKeys(3);
        (keys[0], keys[2]) = (keys[2], keys[0]);
        (bytes memory sigs, address[] memory signers) =
            _packSignatures(keys, slashing.downtimeDigest(ops[3].operator, epoch));
        vm.expectRevert(
            abi.encodeWithSelector(
                SignatureQuorum.SignatureQuorumSignersNotAscending.selector, 1, signers[1], signers[0]
            )
        );
        slashing.slashDowntime(ops[3].operator, epoch, sigs);
    }

    /// @dev RELIABILITY C4: one reporter counted twice.
    function test_RevertWhen_slashDowntime_duplicateSigner() public {
        uint64 epoch = _lastEpoch();
        uint256[] memory keys = _firstKeys(3);
        keys[2] = keys[1];
        (bytes memory sigs, address[] memory signers) =
            _packSignatures(keys, slashing.downtimeDigest(ops[3].operator, epoch));
        vm.expectRevert(
            abi.encodeWithSelector(
                SignatureQuorum.SignatureQuorumSignersNotAscending.selector, 2, signers[2], signers[1]
            )
        );
        slashing.slashDowntime(ops[3].operator, epoch, sigs);
    }

    /// @dev RELIABILITY C6 for reports.
    function test_RevertWhen_slashDowntime_malleatedSignature() public {
        uint64 epoch = _lastEpoch();
        uint256[] memory keys = _firstKeys(3);
        bytes32 digest = slashing.downtimeDigest(ops[3].operator, epoch);
        bytes memory sigs =
            bytes.concat(_sign(keys[0], digest), _malleate(_sign(keys[1], digest)), _sign(keys[2], digest));
        vm.expectRevert(abi.encodeWithSelector(SignatureQuorum.SignatureQuorumInvalidSignature.selector, 1));
        slashing.slashDowntime(ops[3].operator, epoch, sigs);
    }

    function test_RevertWhen_slashDowntime_malformedSignatures() public {
        uint64 epoch = _lastEpoch();
        bytes memory sigs = _downtimeReport(ops[3].operator, epoch, 3);
        vm.expectRevert(abi.encodeWithSelector(SignatureQuorum.SignatureQuorumMalformed.selector, 0));
        slashing.slashDowntime(ops[3].operator, epoch, "");
        bytes memory truncated = new bytes(sigs.length - 1);
        for (uint256 i; i < truncated.length; ++i) {
            truncated[i] = sigs[i];
        }
        vm.expectRevert(
            abi.encodeWithSelector(SignatureQuorum.SignatureQuorumMalformed.selector, truncated.length)
        );
        slashing.slashDowntime(ops[3].operator, epoch, truncated);
    }

    /// @dev A report is bound to its operator and epoch: replayed for another one, a signature recovers a
    /// stranger. (One signature, so the recovered order cannot trip the ascending check first.)
    function test_RevertWhen_slashDowntime_reportForAnotherOperatorOrEpoch() public {
        uint64 epoch = _lastEpoch();
        bytes memory sig = _sign(ops[0].signerKey, slashing.downtimeDigest(ops[3].operator, epoch));
        // For the operator and epoch it was signed for, it counts (one short of M).
        vm.expectRevert(abi.encodeWithSelector(ISlashingErrors.SlashingInsufficientSignatures.selector, 1, 3));
        slashing.slashDowntime(ops[3].operator, epoch, sig);
        vm.expectPartialRevert(ISlashingErrors.SlashingInactiveSigner.selector);
        slashing.slashDowntime(ops[2].operator, epoch, sig);
        vm.expectPartialRevert(ISlashingErrors.SlashingInactiveSigner.selector);
        slashing.slashDowntime(ops[3].operator, epoch - 1, sig);
    }

    function test_RevertWhen_slashDowntime_reportedTwice() public {
        Op memory target = ops[3];
        uint64 epoch = _lastEpoch();
        _reportDowntime(target.operator, epoch);
        bytes32 offence = _offence(slashing.OFFENCE_DOWNTIME(), target.operator, bytes32(uint256(epoch)));
        // Even with a different quorum (the target is inactive now, so N = 3 and all three sign again).
        bytes memory sigs = _downtimeReport(target.operator, epoch, 3);
        vm.expectRevert(abi.encodeWithSelector(ISlashingErrors.SlashingAlreadySlashed.selector, offence));
        slashing.slashDowntime(target.operator, epoch, sigs);
        assertEq(
            registry.operator(target.operator).stake, minStake - _penalty(minStake, 1000), "slashed once"
        );
    }

    /// @dev A report may not name an epoch long past (one before the operator even existed): otherwise M of N
    /// could take 10% per made-up epoch without limit.
    function test_RevertWhen_slashDowntime_staleEpoch() public {
        uint64 epoch = 0; // 1 January 1970
        bytes memory sigs = _downtimeReport(ops[3].operator, epoch, 3);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingErrors.SlashingEpochTooOld.selector, epoch, slashing.currentEpoch()
            )
        );
        slashing.slashDowntime(ops[3].operator, epoch, sigs);
    }

    function test_slashDowntime_oldestEpochInWindow() public {
        // forge-lint: disable-next-line(unsafe-typecast) the current epoch is far below 2^64
        uint64 epoch = uint64(slashing.currentEpoch() - slashing.DOWNTIME_REPORT_WINDOW());
        _reportDowntime(ops[3].operator, epoch);
        assertEq(registry.operator(ops[3].operator).stake, minStake - _penalty(minStake, 1000));
        bytes memory sigs = _downtimeReport(ops[2].operator, epoch - 1, 3);
        vm.expectPartialRevert(ISlashingErrors.SlashingEpochTooOld.selector);
        slashing.slashDowntime(ops[2].operator, epoch - 1, sigs);
    }

    /// @dev A new epoch length would renumber periods already punished (RELIABILITY C12: one offence, one
    /// slash), so the length is fixed at deployment.
    function test_RevertWhen_setPenalties_changesEpochLength() public {
        ISlashing.Penalties memory p = slashing.penalties();
        p.epochLength = 1 hours;
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingErrors.SlashingParameterOutOfBounds.selector, bytes32("epochLength"), 1 hours
            )
        );
        vm.prank(admin);
        slashing.setPenalties(p);
    }
}

/*//////////////////////////////////////////////////////////////
                            slashCollusion
//////////////////////////////////////////////////////////////*/

contract SlashCollusionTest is SlashingTestBase {
    bytes32 internal constant EVIDENCE = keccak256("governance proposal 12");

    function test_slashCollusion_takesEverythingAndJails() public {
        Op memory op = ops[0];
        uint256 treasuryBefore = token.balanceOf(treasury);
        bytes32 offence = _offence(slashing.OFFENCE_COLLUSION(), op.operator, EVIDENCE);

        vm.expectEmit(address(slashing));
        emit ISlashingEvents.OffenceSlashed(offence, slashing.OFFENCE_COLLUSION(), op.operator, minStake);
        assertEq(_collude(op.operator, EVIDENCE), minStake, "returned amount");

        IStakingRegistry.Operator memory o = registry.operator(op.operator);
        assertEq(o.stake, 0, "stake");
        assertTrue(o.jailed, "jailed");
        assertFalse(o.active, "active");
        assertFalse(registry.isActiveSigner(op.signer), "active signer");
        assertEq(token.balanceOf(treasury) - treasuryBefore, minStake, "all to treasury");
        assertEq(token.balanceOf(admin), 0, "no bounty");
        assertTrue(slashing.isSlashed(offence), "recorded");
        _assertRegistryConsistent();
    }

    function test_slashCollusion_includesUnbondingStake() public {
        Op memory op = ops[0];
        _topUp(op.operator, minStake);
        vm.prank(op.operator);
        registry.requestUnstake(minStake);
        assertEq(_collude(op.operator, EVIDENCE), 2 * minStake, "stake and unbonding");
        assertEq(_slashable(op.operator), 0, "nothing left");
        _assertRegistryConsistent();
    }

    function test_slashCollusion_newEvidenceIsANewOffence() public {
        ISlashing.Penalties memory p = slashing.penalties();
        p.collusionBps = 5000;
        vm.prank(admin);
        slashing.setPenalties(p);
        Op memory op = ops[0];
        assertEq(_collude(op.operator, EVIDENCE), minStake / 2, "first");
        assertEq(_collude(op.operator, keccak256("other evidence")), minStake / 4, "second");
    }

    function test_RevertWhen_slashCollusion_callerNotAdmin() public {
        address[3] memory callers = [arbiter, guardian, reporter];
        bytes32 role = slashing.DEFAULT_ADMIN_ROLE();
        for (uint256 i; i < callers.length; ++i) {
            vm.prank(callers[i]);
            vm.expectRevert(
                abi.encodeWithSelector(
                    IAccessControl.AccessControlUnauthorizedAccount.selector, callers[i], role
                )
            );
            slashing.slashCollusion(ops[0].operator, EVIDENCE);
        }
    }

    function testFuzz_RevertWhen_slashCollusion_callerNotAdmin(address caller) public {
        vm.assume(caller != admin);
        bytes32 role = slashing.DEFAULT_ADMIN_ROLE();
        vm.prank(caller);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role)
        );
        slashing.slashCollusion(ops[0].operator, EVIDENCE);
    }

    function test_RevertWhen_slashCollusion_sameEvidenceTwice() public {
        _collude(ops[0].operator, EVIDENCE);
        bytes32 offence = _offence(slashing.OFFENCE_COLLUSION(), ops[0].operator, EVIDENCE);
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(ISlashingErrors.SlashingAlreadySlashed.selector, offence));
        slashing.slashCollusion(ops[0].operator, EVIDENCE);
    }
}

/*//////////////////////////////////////////////////////////////
                     setPenalties, views, constructor
//////////////////////////////////////////////////////////////*/

/// @dev The epoch length is left unchanged by every setPenalties case below except the one that is about
/// changing it: its bounds are checked through the constructor, so these tests hold whether or not governance
/// may change the epoch length after deployment (see the epoch findings in the report).
contract SetPenaltiesTest is SlashingTestBase {
    uint40 internal constant EPOCH = 1 days; // the deployed epoch length

    function _mins() internal pure returns (ISlashing.Penalties memory) {
        return ISlashing.Penalties({
            equivocationBps: 1000,
            overturnedBps: 500,
            downtimeBps: 100,
            collusionBps: 5000,
            reporterBountyBps: 0,
            epochLength: EPOCH
        });
    }

    function _maxs() internal pure returns (ISlashing.Penalties memory) {
        return ISlashing.Penalties({
            equivocationBps: 10_000,
            overturnedBps: 10_000,
            downtimeBps: 5000,
            collusionBps: 10_000,
            reporterBountyBps: 5000,
            epochLength: EPOCH
        });
    }

    function _expectOutOfBounds(ISlashing.Penalties memory p, bytes32 name, uint256 value) internal {
        vm.prank(admin);
        vm.expectRevert(
            abi.encodeWithSelector(ISlashingErrors.SlashingParameterOutOfBounds.selector, name, value)
        );
        slashing.setPenalties(p);
    }

    function _assertPenalties(ISlashing.Penalties memory want) internal view {
        ISlashing.Penalties memory got = slashing.penalties();
        assertEq(got.equivocationBps, want.equivocationBps, "equivocationBps");
        assertEq(got.overturnedBps, want.overturnedBps, "overturnedBps");
        assertEq(got.downtimeBps, want.downtimeBps, "downtimeBps");
        assertEq(got.collusionBps, want.collusionBps, "collusionBps");
        assertEq(got.reporterBountyBps, want.reporterBountyBps, "reporterBountyBps");
        assertEq(got.epochLength, want.epochLength, "epochLength");
    }

    function test_setPenalties_storesAndEmits() public {
        ISlashing.Penalties memory p = _mins();
        vm.expectEmit(address(slashing));
        emit ISlashingEvents.ParameterSet("penalties", uint256(keccak256(abi.encode(p))));
        vm.prank(admin);
        slashing.setPenalties(p);
        _assertPenalties(p);
    }

    function test_setPenalties_acceptsUpperBounds() public {
        vm.prank(admin);
        slashing.setPenalties(_maxs());
        _assertPenalties(_maxs());
    }

    function test_setPenalties_newRatesApplyToTheNextSlash() public {
        ISlashing.Penalties memory p = slashing.penalties();
        p.equivocationBps = 1000;
        p.reporterBountyBps = 0;
        vm.prank(admin);
        slashing.setPenalties(p);
        assertEq(_reportEquivocation(ops[0].signerKey, 1), _penalty(minStake, 1000), "10%");
        assertEq(token.balanceOf(reporter), 0, "no bounty");
    }

    function test_RevertWhen_setPenalties_callerNotAdmin() public {
        ISlashing.Penalties memory p = _mins();
        bytes32 role = slashing.DEFAULT_ADMIN_ROLE();
        vm.prank(arbiter);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, arbiter, role)
        );
        slashing.setPenalties(p);
    }

    function test_RevertWhen_setPenalties_equivocationBpsBelowMin() public {
        ISlashing.Penalties memory p = _mins();
        p.equivocationBps = 999;
        _expectOutOfBounds(p, "equivocationBps", 999);
    }

    function test_RevertWhen_setPenalties_equivocationBpsAboveMax() public {
        ISlashing.Penalties memory p = _maxs();
        p.equivocationBps = 10_001;
        _expectOutOfBounds(p, "equivocationBps", 10_001);
    }

    function test_RevertWhen_setPenalties_overturnedBpsBelowMin() public {
        ISlashing.Penalties memory p = _mins();
        p.overturnedBps = 499;
        _expectOutOfBounds(p, "overturnedBps", 499);
    }

    function test_RevertWhen_setPenalties_overturnedBpsAboveMax() public {
        ISlashing.Penalties memory p = _maxs();
        p.overturnedBps = 10_001;
        _expectOutOfBounds(p, "overturnedBps", 10_001);
    }

    function test_RevertWhen_setPenalties_downtimeBpsBelowMin() public {
        ISlashing.Penalties memory p = _mins();
        p.downtimeBps = 99;
        _expectOutOfBounds(p, "downtimeBps", 99);
    }

    function test_RevertWhen_setPenalties_downtimeBpsAboveMax() public {
        ISlashing.Penalties memory p = _maxs();
        p.downtimeBps = 5001;
        _expectOutOfBounds(p, "downtimeBps", 5001);
    }

    function test_RevertWhen_setPenalties_collusionBpsBelowMin() public {
        ISlashing.Penalties memory p = _mins();
        p.collusionBps = 4999;
        _expectOutOfBounds(p, "collusionBps", 4999);
    }

    function test_RevertWhen_setPenalties_collusionBpsAboveMax() public {
        ISlashing.Penalties memory p = _maxs();
        p.collusionBps = 10_001;
        _expectOutOfBounds(p, "collusionBps", 10_001);
    }

    function test_RevertWhen_setPenalties_reporterBountyBpsAboveMax() public {
        ISlashing.Penalties memory p = _maxs();
        p.reporterBountyBps = 5001;
        _expectOutOfBounds(p, "reporterBountyBps", 5001);
    }

    function _deployWithEpoch(uint256 length) internal returns (Slashing) {
        ISlashing.Penalties memory p = _mins();
        // forge-lint: disable-next-line(unsafe-typecast) callers pass at most 60 days
        p.epochLength = uint40(length);
        return new Slashing(registry, escrow, admin, 1 days, p);
    }

    function test_RevertWhen_constructor_epochLengthBelowMin() public {
        vm.expectRevert(_outOfBounds("epochLength", 1 hours - 1));
        _deployWithEpoch(1 hours - 1);
    }

    function test_RevertWhen_constructor_epochLengthAboveMax() public {
        vm.expectRevert(_outOfBounds("epochLength", 30 days + 1));
        _deployWithEpoch(30 days + 1);
    }

    function test_constructor_acceptsEpochLengthBounds() public {
        assertEq(_deployWithEpoch(1 hours).penalties().epochLength, 1 hours);
        assertEq(_deployWithEpoch(30 days).penalties().epochLength, 30 days);
    }

    function testFuzz_constructor_epochLengthBounds(uint256 length) public {
        length = bound(length, 0, 60 days);
        if (length < 1 hours || length > 30 days) {
            vm.expectRevert(_outOfBounds("epochLength", length));
            _deployWithEpoch(length);
        } else {
            assertEq(_deployWithEpoch(length).penalties().epochLength, length);
        }
    }

    /// @dev setPenalties rejects any new epoch length, in bounds or not.
    function test_RevertWhen_setPenalties_epochLengthOutOfBounds() public {
        ISlashing.Penalties memory p = _mins();
        p.epochLength = 30 days + 1;
        vm.prank(admin);
        vm.expectPartialRevert(ISlashingErrors.SlashingParameterOutOfBounds.selector);
        slashing.setPenalties(p);
    }

    /// @dev Every rate: accepted inside its range, rejected outside, nothing stored on rejection. (The epoch
    /// length, through the constructor, in `testFuzz_constructor_epochLengthBounds`.)
    function testFuzz_setPenalties_acceptsExactlyTheBounds(uint256 field, uint256 value) public {
        field = bound(field, 0, 4);
        ISlashing.Penalties memory p = slashing.penalties();
        ISlashing.Penalties memory before = slashing.penalties();
        bytes32 name;
        uint256 min;
        uint256 max;
        if (field == 0) {
            (name, min, max) = ("equivocationBps", 1000, 10_000);
            value = bound(value, 0, type(uint16).max);
            // forge-lint: disable-next-line(unsafe-typecast) bounded to uint16 above
            p.equivocationBps = uint16(value);
        } else if (field == 1) {
            (name, min, max) = ("overturnedBps", 500, 10_000);
            value = bound(value, 0, type(uint16).max);
            // forge-lint: disable-next-line(unsafe-typecast) bounded to uint16 above
            p.overturnedBps = uint16(value);
        } else if (field == 2) {
            (name, min, max) = ("downtimeBps", 100, 5000);
            value = bound(value, 0, type(uint16).max);
            // forge-lint: disable-next-line(unsafe-typecast) bounded to uint16 above
            p.downtimeBps = uint16(value);
        } else if (field == 3) {
            (name, min, max) = ("collusionBps", 5000, 10_000);
            value = bound(value, 0, type(uint16).max);
            // forge-lint: disable-next-line(unsafe-typecast) bounded to uint16 above
            p.collusionBps = uint16(value);
        } else {
            (name, min, max) = ("reporterBountyBps", 0, 5000);
            value = bound(value, 0, type(uint16).max);
            // forge-lint: disable-next-line(unsafe-typecast) bounded to uint16 above
            p.reporterBountyBps = uint16(value);
        }
        if (value < min || value > max) {
            _expectOutOfBounds(p, name, value);
            _assertPenalties(before);
        } else {
            vm.prank(admin);
            slashing.setPenalties(p);
            _assertPenalties(p);
        }
    }

    /// @dev RELIABILITY: epochs never decrease, whatever governance sets.
    function testFuzz_setPenalties_currentEpochNeverDecreases(uint256 newLength) public {
        uint256 before = slashing.currentEpoch();
        ISlashing.Penalties memory p = slashing.penalties();
        // forge-lint: disable-next-line(unsafe-typecast) bounded to 30 days
        p.epochLength = uint40(bound(newLength, 1 hours, 30 days));
        vm.prank(admin);
        // Either outcome is fine (a fixed epoch length is a valid fix), as long as the epoch does not move back.
        (bool changed,) = address(slashing).call(abi.encodeCall(Slashing.setPenalties, (p)));
        if (changed) assertEq(slashing.penalties().epochLength, p.epochLength, "stored");
        assertGe(slashing.currentEpoch(), before, "currentEpoch decreased");
    }

    function test_penalties_defaultsFromDesign() public view {
        ISlashing.Penalties memory p = slashing.penalties();
        assertEq(p.equivocationBps, 5000, "equivocation 50%");
        assertEq(p.overturnedBps, 3000, "overturned 30%");
        assertEq(p.downtimeBps, 1000, "downtime 10%");
        assertEq(p.collusionBps, 10_000, "collusion 100%");
    }

    function test_currentEpoch_isTimestampOverEpochLength() public {
        uint256 length = slashing.penalties().epochLength;
        assertEq(slashing.currentEpoch(), block.timestamp / length);
        vm.warp(block.timestamp + length);
        assertEq(slashing.currentEpoch(), block.timestamp / length);
    }

    function test_downtimeDigest_isEip712OfDowntimeReport() public view {
        address op = ops[0].operator;
        uint64 epoch = 12_345;
        bytes32 domain = keccak256(
            abi.encode(
                keccak256(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                keccak256("Attesta Slashing"),
                keccak256("1"),
                block.chainid,
                address(slashing)
            )
        );
        bytes32 structHash =
            keccak256(abi.encode(keccak256("DowntimeReport(address operator,uint64 epoch)"), op, epoch));
        assertEq(slashing.DOWNTIME_TYPEHASH(), keccak256("DowntimeReport(address operator,uint64 epoch)"));
        assertEq(
            slashing.downtimeDigest(op, epoch), keccak256(abi.encodePacked("\x19\x01", domain, structHash))
        );
    }

    function test_offenceId_hashesKindOperatorAndSubject() public view {
        address op = ops[0].operator;
        bytes32 subject = bytes32(uint256(7));
        assertEq(slashing.offenceId(1, op, subject), keccak256(abi.encode(uint8(1), op, subject)));
        assertTrue(slashing.offenceId(1, op, subject) != slashing.offenceId(2, op, subject), "kinds differ");
        assertFalse(slashing.isSlashed(slashing.offenceId(1, op, subject)), "fresh");
    }

    function test_RevertWhen_constructor_zeroRegistryOrEscrow() public {
        ISlashing.Penalties memory p = slashing.penalties();
        vm.expectRevert(ISlashingErrors.SlashingZeroAddress.selector);
        new Slashing(IStakingRegistry(address(0)), escrow, admin, 1 days, p);
        vm.expectRevert(ISlashingErrors.SlashingZeroAddress.selector);
        new Slashing(registry, IJobEscrow(address(0)), admin, 1 days, p);
    }

    function test_RevertWhen_constructor_penaltiesOutOfBounds() public {
        ISlashing.Penalties memory p = slashing.penalties();
        p.downtimeBps = 0;
        vm.expectRevert(_outOfBounds("downtimeBps", 0));
        new Slashing(registry, escrow, admin, 1 days, p);
    }
}

/*//////////////////////////////////////////////////////////////
                    C12: never twice, never beyond stake
//////////////////////////////////////////////////////////////*/

contract SlashingCapsTest is SlashingTestBase {
    /// @dev C12: every kind of offence is punished once; the second report reverts and takes nothing.
    function test_RevertWhen_anyOffenceSlashedTwice() public {
        Op memory op = ops[3];
        uint64 epoch = _lastEpoch();
        _reportDowntime(op.operator, epoch);
        _reportEquivocation(op.signerKey, 5);
        _collude(op.operator, "evidence");
        uint256 totalSlashed = registry.totalSlashed();

        bytes memory sigs = _downtimeReport(op.operator, epoch, 3);
        vm.expectPartialRevert(ISlashingErrors.SlashingAlreadySlashed.selector);
        slashing.slashDowntime(op.operator, epoch, sigs);

        (
            IJobEscrow.Attestation memory a,
            bytes memory sigA,
            IJobEscrow.Attestation memory b,
            bytes memory sigB
        ) = _conflictingPair(op.signerKey, 5);
        vm.expectPartialRevert(ISlashingErrors.SlashingAlreadySlashed.selector);
        slashing.slashEquivocation(a, sigA, b, sigB);

        vm.prank(admin);
        vm.expectPartialRevert(ISlashingErrors.SlashingAlreadySlashed.selector);
        slashing.slashCollusion(op.operator, "evidence");

        assertEq(registry.totalSlashed(), totalSlashed, "nothing more taken");
    }

    /// @dev C12: the registry caps a slash at 100% of stake plus unbonding.
    function test_RevertWhen_registrySlashAboveHundredPercent() public {
        vm.prank(address(slashing));
        bytes32 name = "slashBps";
        vm.expectRevert(
            abi.encodeWithSelector(
                IStakingRegistryErrors.StakingRegistryParameterOutOfBounds.selector, name, BPS + 1
            )
        );
        registry.slash(ops[0].operator, BPS + 1, address(0), 0, false);
    }

    function test_slashing_afterFullSlashFurtherOffencesTakeNothing() public {
        Op memory op = ops[3]; // ops[0..2] stay active to sign the downtime report
        _collude(op.operator, "evidence");
        uint256 totalSlashed = registry.totalSlashed();
        assertEq(_reportEquivocation(op.signerKey, 1), 0, "equivocation");
        assertEq(_reportDowntime(op.operator, _lastEpoch()), 0, "downtime");
        assertEq(registry.totalSlashed(), totalSlashed, "totalSlashed");
        _assertRegistryConsistent();
    }

    /// @dev C12: any sequence of distinct offences never takes more than the operator had, and the registry's
    /// totals keep matching the operators' positions and its token balance.
    function testFuzz_slashing_repeatedOffencesNeverExceedStake(uint256 seed, uint256 extra, uint256 unbond)
        public
    {
        Op memory op = ops[3];
        extra = bound(extra, 1, 1e9 ether);
        _topUp(op.operator, extra);
        uint256 initial = minStake + extra;
        unbond = bound(unbond, 0, initial);
        if (unbond != 0) {
            vm.prank(op.operator);
            registry.requestUnstake(unbond);
        }
        ISlashing.Penalties memory p = slashing.penalties();
        p.collusionBps = 5000; // so that later offences still find something to take
        vm.prank(admin);
        slashing.setPenalties(p);

        uint256 taken;
        uint256 paidOut; // to the treasury and reporters
        uint256 outsideBefore = token.balanceOf(treasury) + token.balanceOf(reporter);
        for (uint256 i; i < 12; ++i) {
            uint256 before = _slashable(op.operator);
            uint256 kind = uint256(keccak256(abi.encode(seed, i))) % 3;
            uint256 amount;
            if (kind == 0) {
                amount = _reportEquivocation(op.signerKey, 1000 + i);
                assertEq(amount, _penalty(before, p.equivocationBps), "equivocation amount");
            } else if (kind == 1) {
                vm.warp(block.timestamp + p.epochLength); // a fresh finished epoch each time
                amount = _reportDowntime(op.operator, _lastEpoch());
                assertEq(amount, _penalty(before, p.downtimeBps), "downtime amount");
            } else {
                amount = _collude(op.operator, bytes32(i));
                assertEq(amount, _penalty(before, p.collusionBps), "collusion amount");
            }
            assertLe(amount, before, "took more than there was");
            assertEq(_slashable(op.operator), before - amount, "position");
            taken += amount;
            _assertRegistryConsistent();
        }
        paidOut = token.balanceOf(treasury) + token.balanceOf(reporter) - outsideBefore;
        assertLe(taken, initial, "total taken exceeds stake");
        assertEq(_slashable(op.operator), initial - taken, "what is left");
        assertEq(registry.totalSlashed(), taken, "totalSlashed");
        assertEq(paidOut, taken, "every slashed token reached the treasury or a reporter");
    }
}
