// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {JobEscrow} from "../../contracts/JobEscrow.sol";
import {Slashing} from "../../contracts/Slashing.sol";
import {IJobEscrow, IJobEscrowErrors, IJobEscrowEvents} from "../../contracts/interfaces/IJobEscrow.sol";
import {ISlashing} from "../../contracts/interfaces/ISlashing.sol";
import {IStakingRegistry, IStakingRegistryEvents} from "../../contracts/interfaces/IStakingRegistry.sol";
import {AttestaTest} from "../utils/AttestaTest.sol";
import {BlacklistToken, HookToken, ReentrantPayee} from "../utils/HostileTokens.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {
    IAccessControlDefaultAdminRules
} from "@openzeppelin/contracts/access/extensions/IAccessControlDefaultAdminRules.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/*//////////////////////////////////////////////////////////////
                              BASE
//////////////////////////////////////////////////////////////*/

/// @notice Shared fixture: the local deployment with four active operators (N = 4, so M = 3).
abstract contract JobEscrowTestBase is AttestaTest {
    bytes32 internal constant RESULT = keccak256(OUTPUT);
    bytes32 internal constant OTHER_RUNTIME = keccak256("attesta/other-runtime/v1");

    uint8 internal constant NONE = uint8(IJobEscrow.JobStatus.None);
    uint8 internal constant CREATED = uint8(IJobEscrow.JobStatus.Created);
    uint8 internal constant SETTLED = uint8(IJobEscrow.JobStatus.Settled);
    uint8 internal constant DISPUTED = uint8(IJobEscrow.JobStatus.Disputed);
    uint8 internal constant RELEASED = uint8(IJobEscrow.JobStatus.Released);
    uint8 internal constant REFUNDED = uint8(IJobEscrow.JobStatus.Refunded);
    uint8 internal constant OVERTURNED = uint8(IJobEscrow.JobStatus.Overturned);

    /// @dev FEE = 1 ether, 5% protocol fee, three signers: worked out by hand.
    uint256 internal constant PROTOCOL_FEE = 50_000_000_000_000_000;
    uint256 internal constant SHARE_OF_3 = 316_666_666_666_666_666; // (1e18 - 5e16) / 3, remainder 2
    uint256 internal constant TREASURY_OF_3 = 50_000_000_000_000_002; // protocol fee + dust 2
    uint256 internal constant BOND = 10 ether;

    address internal stranger = makeAddr("stranger");

    function setUp() public virtual override {
        super.setUp();
        _beforeOperators();
        _addOperators(4);
    }

    /// @dev Hook for suites that redeploy with another token before operators stake.
    function _beforeOperators() internal virtual {}

    function _status(uint256 jobId) internal view returns (uint8) {
        return uint8(escrow.job(jobId).status);
    }

    /// @dev Mints `amount` to `who` and approves the escrow for it.
    function _fund(address who, uint256 amount) internal {
        token.mint(who, amount);
        vm.prank(who);
        token.approve(address(escrow), amount);
    }

    /// @dev Signatures over RESULT under RUNTIME by the first `m` operators, with the signer list.
    function _signed(uint256 jobId, uint256 m)
        internal
        view
        returns (bytes memory sigs, address[] memory signers)
    {
        return _packSignatures(_firstKeys(m), _digest(jobId, RESULT));
    }

    function _settledJob() internal returns (uint256 jobId, address[] memory signers) {
        jobId = _createJob();
        signers = _settleWith(jobId, 3);
    }

    function _windowEnd(uint256 jobId) internal view returns (uint256) {
        return uint256(escrow.job(jobId).updatedAt) + escrow.config().challengeWindow;
    }

    function _disputeEnd(uint256 jobId) internal view returns (uint256) {
        return uint256(escrow.job(jobId).updatedAt) + escrow.config().disputeTimeout;
    }

    function _challenge(uint256 jobId) internal {
        _fund(challenger, BOND);
        vm.prank(challenger);
        escrow.challenge(jobId);
    }

    function _disputedJob() internal returns (uint256 jobId, address[] memory signers) {
        (jobId, signers) = _settledJob();
        _challenge(jobId);
    }

    function _releasedJob() internal returns (uint256 jobId, address[] memory signers) {
        (jobId, signers) = _settledJob();
        vm.warp(_windowEnd(jobId));
        escrow.release(jobId, RESULT, signers);
    }

    function _operators(address[] memory signers) internal view returns (address[] memory operators) {
        operators = registry.operatorsOf(signers);
    }

    function _sumOwed(address[] memory accounts) internal view returns (uint256 sum) {
        for (uint256 i; i < accounts.length; ++i) {
            sum += escrow.owed(accounts[i]);
        }
    }

    function _pause() internal {
        vm.prank(guardian);
        escrow.pause();
    }

    function _setConfig(IJobEscrow.Config memory c) internal {
        vm.prank(admin);
        escrow.setConfig(c);
    }

    function _wrongStatus(uint256 jobId, uint8 status) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IJobEscrowErrors.JobEscrowWrongStatus.selector, jobId, status);
    }

    function _unauthorized(address account, bytes32 role) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, account, role);
    }
}

/*//////////////////////////////////////////////////////////////
                           CONSTRUCTOR
//////////////////////////////////////////////////////////////*/

contract JobEscrowConstructorTest is JobEscrowTestBase {
    function _deployEscrow(address token_, address registry_, address admin_, address treasury_)
        internal
        returns (JobEscrow)
    {
        return new JobEscrow(
            IERC20(token_), IStakingRegistry(registry_), admin_, 1 days, treasury_, cfg.escrow
        );
    }

    function test_constructor_wiresTheDeployment() public view {
        assertEq(escrow.token(), address(token));
        assertEq(address(escrow.registry()), address(registry));
        assertEq(escrow.treasury(), treasury);
        assertEq(address(escrow.slashing()), address(slashing));
        assertEq(escrow.defaultAdmin(), admin);
        assertEq(escrow.defaultAdminDelay(), cfg.adminDelay);
        assertTrue(escrow.hasRole(escrow.GUARDIAN_ROLE(), guardian));
        assertTrue(escrow.hasRole(escrow.ARBITER_ROLE(), arbiter));
        assertTrue(escrow.isRuntimeAllowed(RUNTIME));
        assertEq(escrow.jobCount(), 0);
        assertEq(abi.encode(escrow.config()), abi.encode(cfg.escrow));
        assertFalse(escrow.paused());
    }

    function test_RevertWhen_constructor_tokenIsZero() public {
        vm.expectRevert(IJobEscrowErrors.JobEscrowZeroAddress.selector);
        _deployEscrow(address(0), address(registry), admin, treasury);
    }

    function test_RevertWhen_constructor_registryIsZero() public {
        vm.expectRevert(IJobEscrowErrors.JobEscrowZeroAddress.selector);
        _deployEscrow(address(token), address(0), admin, treasury);
    }

    function test_RevertWhen_constructor_treasuryIsZero() public {
        vm.expectRevert(IJobEscrowErrors.JobEscrowZeroAddress.selector);
        _deployEscrow(address(token), address(registry), admin, address(0));
    }

    function test_RevertWhen_constructor_adminIsZero() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControlDefaultAdminRules.AccessControlInvalidDefaultAdmin.selector, address(0)
            )
        );
        _deployEscrow(address(token), address(registry), address(0), treasury);
    }

    function test_RevertWhen_constructor_configOutOfBounds() public {
        cfg.escrow.minFee = 0;
        bytes32 parameter = "minFee";
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowParameterOutOfBounds.selector, parameter, 0)
        );
        _deployEscrow(address(token), address(registry), admin, treasury);
    }
}

/*//////////////////////////////////////////////////////////////
                            CREATE JOB
//////////////////////////////////////////////////////////////*/

contract JobEscrowCreateJobTest is JobEscrowTestBase {
    function test_createJob_pullsFeeAndStoresJob() public {
        uint256 deadline = block.timestamp + 1 hours;
        _fund(client, FEE);

        vm.prank(client);
        uint256 jobId = escrow.createJob(MODEL, INPUT, FEE, deadline);

        assertEq(jobId, 1);
        assertEq(token.balanceOf(client), 0);
        assertEq(token.balanceOf(address(escrow)), FEE);
        IJobEscrow.Job memory j = escrow.job(jobId);
        assertEq(j.client, client);
        assertEq(uint8(j.status), CREATED);
        assertEq(j.deadline, deadline);
        assertEq(j.updatedAt, 0);
        assertEq(j.fee, FEE);
        assertEq(j.modelId, MODEL);
        assertEq(j.inputHash, INPUT);
        assertEq(bytes32(j.settlement), bytes32(0));
    }

    function test_createJob_emitsJobCreated() public {
        uint256 deadline = block.timestamp + 1 hours;
        _fund(client, FEE);

        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.JobCreated(1, client, MODEL, INPUT, FEE, deadline);
        vm.prank(client);
        escrow.createJob(MODEL, INPUT, FEE, deadline);
    }

    function test_createJob_idsIncrementFromOne() public {
        assertEq(_createJob(), 1);
        assertEq(_createJob(), 2);
        assertEq(_createJobFor(stranger, FEE, block.timestamp + 2 hours), 3);
        assertEq(escrow.jobCount(), 3);
        assertEq(escrow.job(3).client, stranger);
        assertEq(token.balanceOf(address(escrow)), 3 * FEE);
    }

    function test_createJob_acceptsExactlyMinFee() public {
        uint256 minFee = escrow.config().minFee;
        uint256 jobId = _createJobFor(client, minFee, block.timestamp + 1 hours);
        assertEq(escrow.job(jobId).fee, minFee);
        assertEq(token.balanceOf(address(escrow)), minFee);
    }

    function test_RevertWhen_createJob_feeBelowMin() public {
        uint256 minFee = escrow.config().minFee;
        uint256 deadline = block.timestamp + 1 hours;
        _fund(client, minFee);

        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowFeeOutOfRange.selector, minFee - 1, minFee)
        );
        vm.prank(client);
        escrow.createJob(MODEL, INPUT, minFee - 1, deadline);
    }

    function test_createJob_acceptsLargestFee() public {
        uint256 fee = type(uint96).max;
        uint256 jobId = _createJobFor(client, fee, block.timestamp + 1 hours);
        assertEq(escrow.job(jobId).fee, fee);
        assertEq(token.balanceOf(address(escrow)), fee);
    }

    function test_RevertWhen_createJob_feeAboveUint96() public {
        uint256 minFee = escrow.config().minFee;
        uint256 fee = uint256(type(uint96).max) + 1;
        uint256 deadline = block.timestamp + 1 hours;
        _fund(client, fee);

        vm.expectRevert(abi.encodeWithSelector(IJobEscrowErrors.JobEscrowFeeOutOfRange.selector, fee, minFee));
        vm.prank(client);
        escrow.createJob(MODEL, INPUT, fee, deadline);
        assertEq(token.balanceOf(client), fee);
    }

    function test_createJob_acceptsDeadlineAtEarliestAndLatest() public {
        IJobEscrow.Config memory c = escrow.config();
        uint256 early = _createJobFor(client, FEE, block.timestamp + c.minJobDuration);
        uint256 late = _createJobFor(client, FEE, block.timestamp + c.maxJobDuration);
        assertEq(escrow.job(early).deadline, block.timestamp + c.minJobDuration);
        assertEq(escrow.job(late).deadline, block.timestamp + c.maxJobDuration);
    }

    function test_RevertWhen_createJob_deadlineOneSecondTooEarly() public {
        IJobEscrow.Config memory c = escrow.config();
        uint256 earliest = block.timestamp + c.minJobDuration;
        uint256 latest = block.timestamp + c.maxJobDuration;
        _fund(client, FEE);

        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrowErrors.JobEscrowDeadlineOutOfRange.selector, earliest - 1, earliest, latest
            )
        );
        vm.prank(client);
        escrow.createJob(MODEL, INPUT, FEE, earliest - 1);
    }

    function test_RevertWhen_createJob_deadlineOneSecondTooLate() public {
        IJobEscrow.Config memory c = escrow.config();
        uint256 earliest = block.timestamp + c.minJobDuration;
        uint256 latest = block.timestamp + c.maxJobDuration;
        _fund(client, FEE);

        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrowErrors.JobEscrowDeadlineOutOfRange.selector, latest + 1, earliest, latest
            )
        );
        vm.prank(client);
        escrow.createJob(MODEL, INPUT, FEE, latest + 1);
    }

    function test_RevertWhen_createJob_deadlineInThePast() public {
        IJobEscrow.Config memory c = escrow.config();
        uint256 earliest = block.timestamp + c.minJobDuration;
        uint256 latest = block.timestamp + c.maxJobDuration;
        uint256 past = block.timestamp - 1;
        _fund(client, FEE);

        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrowErrors.JobEscrowDeadlineOutOfRange.selector, past, earliest, latest
            )
        );
        vm.prank(client);
        escrow.createJob(MODEL, INPUT, FEE, past);
    }

    function testFuzz_createJob_acceptsOnlyDeadlinesInRange(uint256 offset) public {
        IJobEscrow.Config memory c = escrow.config();
        offset = bound(offset, 0, uint256(c.maxJobDuration) + 1 days);
        uint256 deadline = block.timestamp + offset;
        _fund(client, FEE);

        bool inRange = offset >= c.minJobDuration && offset <= c.maxJobDuration;
        if (!inRange) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IJobEscrowErrors.JobEscrowDeadlineOutOfRange.selector,
                    deadline,
                    block.timestamp + c.minJobDuration,
                    block.timestamp + c.maxJobDuration
                )
            );
        }
        vm.prank(client);
        escrow.createJob(MODEL, INPUT, FEE, deadline);
        assertEq(escrow.jobCount(), inRange ? 1 : 0);
        assertEq(token.balanceOf(address(escrow)), inRange ? FEE : 0);
    }

    function test_RevertWhen_createJob_feeNotApproved() public {
        uint256 deadline = block.timestamp + 1 hours;
        token.mint(client, FEE);

        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(escrow), 0, FEE)
        );
        vm.prank(client);
        escrow.createJob(MODEL, INPUT, FEE, deadline);
        assertEq(escrow.jobCount(), 0);
        assertEq(token.balanceOf(client), FEE);
    }

    function test_RevertWhen_createJob_paused() public {
        uint256 deadline = block.timestamp + 1 hours;
        _fund(client, FEE);
        _pause();

        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(client);
        escrow.createJob(MODEL, INPUT, FEE, deadline);
        assertEq(escrow.jobCount(), 0);
    }
}

/*//////////////////////////////////////////////////////////////
                     SETTLE (NON-SIGNATURE PATHS)
//////////////////////////////////////////////////////////////*/

contract JobEscrowSettleTest is JobEscrowTestBase {
    function test_settle_storesSettlementCommitment() public {
        uint256 jobId = _createJob();
        uint256 balanceBefore = token.balanceOf(address(escrow));
        vm.warp(block.timestamp + 5 minutes);

        address[] memory signers = _settleWith(jobId, 3);

        IJobEscrow.Job memory j = escrow.job(jobId);
        assertEq(uint8(j.status), SETTLED);
        assertEq(j.updatedAt, block.timestamp);
        assertEq(
            bytes32(j.settlement),
            bytes32(bytes20(keccak256(abi.encode(RESULT, keccak256(abi.encode(signers))))))
        );
        assertEq(j.client, client);
        assertEq(j.fee, FEE);
        assertTrue(escrow.verifySettlement(jobId, RESULT, signers));
        // Settling moves no money and credits nobody: payment waits for the challenge window.
        assertEq(token.balanceOf(address(escrow)), balanceBefore);
        assertEq(_sumOwed(_operators(signers)), 0);
        assertEq(escrow.owed(treasury), 0);
    }

    function test_settle_emitsJobSettledWithSignersAndOutput() public {
        uint256 jobId = _createJob();
        (bytes memory sigs, address[] memory signers) = _signed(jobId, 3);

        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.JobSettled(jobId, RESULT, RUNTIME, signers, OUTPUT);
        escrow.settle(jobId, RUNTIME, RESULT, OUTPUT, sigs);
    }

    function test_settle_anyoneMaySubmit() public {
        uint256 jobId = _createJob();
        (bytes memory sigs, address[] memory signers) = _signed(jobId, 3);

        vm.prank(stranger);
        escrow.settle(jobId, RUNTIME, RESULT, OUTPUT, sigs);
        assertEq(_status(jobId), SETTLED);
        assertTrue(escrow.verifySettlement(jobId, RESULT, signers));
    }

    function test_settle_acceptsAllActiveSigners() public {
        uint256 jobId = _createJob();
        address[] memory signers = _settleWith(jobId, 4);
        assertEq(signers.length, 4);
        assertTrue(escrow.verifySettlement(jobId, RESULT, signers));
    }

    function test_settle_worksExactlyAtDeadline() public {
        uint256 jobId = _createJob();
        vm.warp(escrow.job(jobId).deadline);
        _settleWith(jobId, 3);
        assertEq(_status(jobId), SETTLED);
    }

    function test_RevertWhen_settle_deadlinePassedByOneSecond() public {
        uint256 jobId = _createJob();
        uint256 deadline = escrow.job(jobId).deadline;
        (bytes memory sigs,) = _signed(jobId, 3);
        vm.warp(deadline + 1);

        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowDeadlinePassed.selector, jobId, deadline)
        );
        escrow.settle(jobId, RUNTIME, RESULT, OUTPUT, sigs);
    }

    function test_RevertWhen_settle_unknownJob() public {
        (bytes memory sigs,) = _signed(42, 3);
        vm.expectRevert(_wrongStatus(42, NONE));
        escrow.settle(42, RUNTIME, RESULT, OUTPUT, sigs);
    }

    /// @notice RELIABILITY C1: the same attestation submitted again is rejected by the job's state.
    function test_RevertWhen_settle_replayedOnSettledJob() public {
        uint256 jobId = _createJob();
        (bytes memory sigs, address[] memory signers) = _signed(jobId, 3);
        escrow.settle(jobId, RUNTIME, RESULT, OUTPUT, sigs);
        uint40 settledAt = escrow.job(jobId).updatedAt;
        vm.warp(block.timestamp + 1);

        vm.expectRevert(_wrongStatus(jobId, SETTLED));
        escrow.settle(jobId, RUNTIME, RESULT, OUTPUT, sigs);
        assertEq(escrow.job(jobId).updatedAt, settledAt);
        assertTrue(escrow.verifySettlement(jobId, RESULT, signers));
    }

    /// @notice RELIABILITY C1 after payment: a replay cannot reopen a released job for a second payout.
    function test_RevertWhen_settle_replayedOnReleasedJob() public {
        uint256 jobId = _createJob();
        (bytes memory sigs, address[] memory signers) = _signed(jobId, 3);
        escrow.settle(jobId, RUNTIME, RESULT, OUTPUT, sigs);
        vm.warp(_windowEnd(jobId));
        escrow.release(jobId, RESULT, signers);
        vm.warp(escrow.job(jobId).deadline);

        vm.expectRevert(_wrongStatus(jobId, RELEASED));
        escrow.settle(jobId, RUNTIME, RESULT, OUTPUT, sigs);
        assertEq(_sumOwed(_operators(signers)) + escrow.owed(treasury), FEE);
    }

    function test_RevertWhen_settle_refundedJob() public {
        uint256 jobId = _createJob();
        (bytes memory sigs,) = _signed(jobId, 3);
        vm.warp(escrow.job(jobId).deadline + 1);
        escrow.refund(jobId);

        vm.expectRevert(_wrongStatus(jobId, REFUNDED));
        escrow.settle(jobId, RUNTIME, RESULT, OUTPUT, sigs);
    }

    function test_RevertWhen_settle_runtimeNotAllowed() public {
        uint256 jobId = _createJob();
        (bytes memory sigs,) =
            _packSignatures(_firstKeys(3), escrow.hashAttestation(_attestation(jobId, RESULT, OTHER_RUNTIME)));

        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowRuntimeNotAllowed.selector, OTHER_RUNTIME)
        );
        escrow.settle(jobId, OTHER_RUNTIME, RESULT, OUTPUT, sigs);

        // The runtime was the only problem: once governance allows it, the same call settles.
        vm.prank(admin);
        escrow.setRuntimeAllowed(OTHER_RUNTIME, true);
        escrow.settle(jobId, OTHER_RUNTIME, RESULT, OUTPUT, sigs);
        assertEq(_status(jobId), SETTLED);
    }

    function test_RevertWhen_settle_runtimeWasDisallowed() public {
        uint256 jobId = _createJob();
        (bytes memory sigs,) = _signed(jobId, 3);
        vm.prank(admin);
        escrow.setRuntimeAllowed(RUNTIME, false);

        vm.expectRevert(abi.encodeWithSelector(IJobEscrowErrors.JobEscrowRuntimeNotAllowed.selector, RUNTIME));
        escrow.settle(jobId, RUNTIME, RESULT, OUTPUT, sigs);
    }

    function test_settle_acceptsOutputOfExactlyMaxBytes() public {
        uint256 jobId = _createJob();
        bytes memory output = new bytes(escrow.config().maxOutputBytes);
        output[0] = 0x01;
        bytes32 resultHash = keccak256(output);
        (bytes memory sigs,) = _packSignatures(_firstKeys(3), _digest(jobId, resultHash));

        escrow.settle(jobId, RUNTIME, resultHash, output, sigs);
        assertEq(_status(jobId), SETTLED);
    }

    function test_RevertWhen_settle_outputTooLarge() public {
        uint256 jobId = _createJob();
        uint256 maxBytes = escrow.config().maxOutputBytes;
        bytes memory output = new bytes(maxBytes + 1);
        bytes32 resultHash = keccak256(output);
        (bytes memory sigs,) = _packSignatures(_firstKeys(3), _digest(jobId, resultHash));

        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowOutputTooLarge.selector, maxBytes + 1, maxBytes)
        );
        escrow.settle(jobId, RUNTIME, resultHash, output, sigs);
    }

    function test_RevertWhen_settle_outputDoesNotMatchResultHash() public {
        uint256 jobId = _createJob();
        (bytes memory sigs,) = _signed(jobId, 3);
        bytes memory forged = hex"0102030406";

        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrowErrors.JobEscrowOutputMismatch.selector, RESULT, keccak256(forged)
            )
        );
        escrow.settle(jobId, RUNTIME, RESULT, forged, sigs);
    }

    function test_RevertWhen_settle_signerNeverRegistered() public {
        uint256 jobId = _createJob();
        uint256 rogueKey = uint256(keccak256("rogue signer"));
        uint256[] memory keys = new uint256[](3);
        keys[0] = ops[0].signerKey;
        keys[1] = ops[1].signerKey;
        keys[2] = rogueKey;
        keys = _sortByAddress(keys);
        (bytes memory sigs, address[] memory signers) = _packSignatures(keys, _digest(jobId, RESULT));
        uint256 index = _indexOf(signers, vm.addr(rogueKey));

        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrowErrors.JobEscrowInactiveSigner.selector, index, vm.addr(rogueKey)
            )
        );
        escrow.settle(jobId, RUNTIME, RESULT, OUTPUT, sigs);
    }

    function test_RevertWhen_settle_signerDeactivated() public {
        uint256 jobId = _createJob();
        (bytes memory sigs, address[] memory signers) = _signed(jobId, 3);
        vm.prank(ops[0].operator);
        registry.deactivate();
        // N = 3 now, so M stays 3: the only failure is the inactive signer.
        assertEq(registry.threshold(), 3);
        uint256 index = _indexOf(signers, ops[0].signer);

        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowInactiveSigner.selector, index, ops[0].signer)
        );
        escrow.settle(jobId, RUNTIME, RESULT, OUTPUT, sigs);
    }

    function test_RevertWhen_settle_fewerThanThreshold() public {
        uint256 jobId = _createJob();
        (bytes memory sigs,) = _signed(jobId, 2);

        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowInsufficientSignatures.selector, 2, 3)
        );
        escrow.settle(jobId, RUNTIME, RESULT, OUTPUT, sigs);
    }

    function test_RevertWhen_settle_paused() public {
        uint256 jobId = _createJob();
        (bytes memory sigs,) = _signed(jobId, 3);
        _pause();

        vm.expectRevert(Pausable.EnforcedPause.selector);
        escrow.settle(jobId, RUNTIME, RESULT, OUTPUT, sigs);
    }

    function _indexOf(address[] memory list, address item) internal pure returns (uint256) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == item) return i;
        }
        revert("not found");
    }
}

/*//////////////////////////////////////////////////////////////
                             RELEASE
//////////////////////////////////////////////////////////////*/

contract JobEscrowReleaseTest is JobEscrowTestBase {
    function test_RevertWhen_release_challengeWindowStillOpen() public {
        (uint256 jobId, address[] memory signers) = _settledJob();
        uint256 windowEnd = _windowEnd(jobId);
        vm.warp(windowEnd - 1);

        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowChallengeWindowOpen.selector, jobId, windowEnd)
        );
        escrow.release(jobId, RESULT, signers);
    }

    function test_release_worksAtWindowEndAndCreditsOperatorsAndTreasury() public {
        (uint256 jobId, address[] memory signers) = _settledJob();
        address[] memory operators = _operators(signers);
        uint256 balanceBefore = token.balanceOf(address(escrow));
        vm.warp(_windowEnd(jobId));

        for (uint256 i; i < operators.length; ++i) {
            vm.expectEmit(address(escrow));
            emit IJobEscrowEvents.Credited(operators[i], SHARE_OF_3);
        }
        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.Credited(treasury, TREASURY_OF_3);
        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.PaymentReleased(jobId, SHARE_OF_3, TREASURY_OF_3);
        escrow.release(jobId, RESULT, signers);

        assertEq(_status(jobId), RELEASED);
        for (uint256 i; i < operators.length; ++i) {
            assertEq(escrow.owed(operators[i]), SHARE_OF_3);
        }
        assertEq(escrow.owed(treasury), TREASURY_OF_3);
        assertEq(3 * SHARE_OF_3 + TREASURY_OF_3, FEE);
        // Pull payments: release only books credits, no token leaves the escrow.
        assertEq(token.balanceOf(address(escrow)), balanceBefore);
    }

    function test_release_paysOperatorsNotSignerKeys() public {
        (uint256 jobId, address[] memory signers) = _releasedJob();
        for (uint256 i; i < signers.length; ++i) {
            assertEq(escrow.owed(signers[i]), 0);
            assertEq(escrow.owed(registry.operatorOf(signers[i])), SHARE_OF_3);
        }
        // The operator that did not sign gets nothing.
        assertEq(escrow.owed(ops[3].operator), 0);
        assertEq(_status(jobId), RELEASED);
    }

    function test_release_paysOperatorWhoseKeyRotatedAfterSettlement() public {
        (uint256 jobId, address[] memory signers) = _settledJob();
        address operator_ = registry.operatorOf(signers[0]);
        uint256 newKey = uint256(keccak256("rotated key"));
        bytes memory proof = _signerProof(operator_, newKey);
        vm.prank(operator_);
        registry.registerSigner(vm.addr(newKey), proof);
        assertFalse(registry.isActiveSigner(signers[0]));

        vm.warp(_windowEnd(jobId));
        escrow.release(jobId, RESULT, signers);
        assertEq(escrow.owed(operator_), SHARE_OF_3);
        assertEq(escrow.owed(vm.addr(newKey)), 0);
    }

    function test_release_anyoneMayCallAndCallerGetsNothing() public {
        (uint256 jobId, address[] memory signers) = _settledJob();
        vm.warp(_windowEnd(jobId));

        vm.prank(stranger);
        escrow.release(jobId, RESULT, signers);
        assertEq(escrow.owed(stranger), 0);
        assertEq(_sumOwed(_operators(signers)) + escrow.owed(treasury), FEE);
    }

    /// @notice Concrete replay of the fuzz test below, with a remainder the treasury must pick up.
    function test_release_roundingDustGoesToTreasury() public {
        IJobEscrow.Config memory c = escrow.config();
        c.protocolFeeBps = 333;
        _setConfig(c);
        uint256 fee = 1e15 + 7;
        uint256 jobId = _createJobFor(client, fee, block.timestamp + 1 hours);
        address[] memory signers = _settleWith(jobId, 3);
        vm.warp(_windowEnd(jobId));

        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.PaymentReleased(jobId, 322_233_333_333_335, 33_300_000_000_002);
        escrow.release(jobId, RESULT, signers);

        address[] memory operators = _operators(signers);
        for (uint256 i; i < operators.length; ++i) {
            assertEq(escrow.owed(operators[i]), 322_233_333_333_335);
        }
        // 33_300_000_000_000 protocol fee + 2 dust.
        assertEq(escrow.owed(treasury), 33_300_000_000_002);
    }

    function test_release_zeroProtocolFeeLeavesTreasuryOnlyTheDust() public {
        IJobEscrow.Config memory c = escrow.config();
        c.protocolFeeBps = 0;
        _setConfig(c);
        uint256 jobId = _createJobFor(client, 3 ether, block.timestamp + 1 hours);
        address[] memory signers = _settleWith(jobId, 3);
        vm.warp(_windowEnd(jobId));
        escrow.release(jobId, RESULT, signers);

        assertEq(escrow.owed(treasury), 0);
        assertEq(_sumOwed(_operators(signers)), 3 ether);
    }

    function testFuzz_release_creditsExactlyTheFee(uint256 fee, uint256 bps, uint256 n, uint256 m) public {
        IJobEscrow.Config memory c = escrow.config();
        fee = bound(fee, c.minFee, type(uint96).max);
        c.protocolFeeBps = uint16(bound(bps, 0, escrow.MAX_PROTOCOL_FEE_BPS()));
        _setConfig(c);
        n = bound(n, 4, 12);
        _addOperators(n - 4);
        m = bound(m, registry.threshold(), n);

        uint256 jobId = _createJobFor(client, fee, block.timestamp + 1 hours);
        address[] memory signers = _settleWith(jobId, m);
        vm.warp(_windowEnd(jobId));
        escrow.release(jobId, RESULT, signers);

        uint256 protocolFee = fee * c.protocolFeeBps / 10_000;
        uint256 share = (fee - protocolFee) / m;
        address[] memory operators = _operators(signers);
        for (uint256 i; i < m; ++i) {
            assertEq(escrow.owed(operators[i]), share);
        }
        uint256 toTreasury = escrow.owed(treasury);
        assertEq(share * m + toTreasury, fee, "credited != fee");
        assertGe(toTreasury, protocolFee);
        assertLt(toTreasury - protocolFee, m, "dust >= signer count");
        assertEq(token.balanceOf(address(escrow)), fee);

        // Everybody can withdraw their credit and the escrow ends up empty: nothing is over-credited.
        for (uint256 i; i < m; ++i) {
            if (share == 0) break;
            vm.prank(operators[i]);
            escrow.claim();
        }
        if (toTreasury != 0) {
            vm.prank(treasury);
            escrow.claim();
        }
        assertEq(token.balanceOf(address(escrow)), 0);
    }

    function test_RevertWhen_release_signerSubset() public {
        (uint256 jobId, address[] memory signers) = _settledJob();
        vm.warp(_windowEnd(jobId));
        address[] memory subset = new address[](2);
        subset[0] = signers[0];
        subset[1] = signers[1];

        vm.expectRevert(abi.encodeWithSelector(IJobEscrowErrors.JobEscrowSettlementMismatch.selector, jobId));
        escrow.release(jobId, RESULT, subset);
    }

    function test_RevertWhen_release_extraSigner() public {
        (uint256 jobId, address[] memory signers) = _settledJob();
        vm.warp(_windowEnd(jobId));
        address[] memory extra = new address[](4);
        for (uint256 i; i < 3; ++i) {
            extra[i] = signers[i];
        }
        extra[3] = ops[3].signer;

        vm.expectRevert(abi.encodeWithSelector(IJobEscrowErrors.JobEscrowSettlementMismatch.selector, jobId));
        escrow.release(jobId, RESULT, extra);
    }

    function test_RevertWhen_release_signersReordered() public {
        (uint256 jobId, address[] memory signers) = _settledJob();
        vm.warp(_windowEnd(jobId));
        (signers[0], signers[1]) = (signers[1], signers[0]);

        vm.expectRevert(abi.encodeWithSelector(IJobEscrowErrors.JobEscrowSettlementMismatch.selector, jobId));
        escrow.release(jobId, RESULT, signers);
    }

    function test_RevertWhen_release_signerSwappedForNonSigner() public {
        (uint256 jobId, address[] memory signers) = _settledJob();
        vm.warp(_windowEnd(jobId));
        signers[2] = ops[3].signer;

        vm.expectRevert(abi.encodeWithSelector(IJobEscrowErrors.JobEscrowSettlementMismatch.selector, jobId));
        escrow.release(jobId, RESULT, signers);
    }

    function test_RevertWhen_release_wrongResultHash() public {
        (uint256 jobId, address[] memory signers) = _settledJob();
        vm.warp(_windowEnd(jobId));

        vm.expectRevert(abi.encodeWithSelector(IJobEscrowErrors.JobEscrowSettlementMismatch.selector, jobId));
        escrow.release(jobId, keccak256("another result"), signers);
    }

    function test_RevertWhen_release_twice() public {
        (uint256 jobId, address[] memory signers) = _releasedJob();
        uint256 treasuryOwed = escrow.owed(treasury);

        vm.expectRevert(_wrongStatus(jobId, RELEASED));
        escrow.release(jobId, RESULT, signers);
        assertEq(escrow.owed(treasury), treasuryOwed);
        assertEq(_sumOwed(_operators(signers)), 3 * SHARE_OF_3);
    }

    function test_RevertWhen_release_notSettled() public {
        uint256 jobId = _createJob();
        address[] memory none = new address[](0);
        vm.warp(block.timestamp + 1 days);

        vm.expectRevert(_wrongStatus(jobId, CREATED));
        escrow.release(jobId, RESULT, none);

        vm.expectRevert(_wrongStatus(99, NONE));
        escrow.release(99, RESULT, none);
    }

    function test_RevertWhen_release_disputed() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        vm.warp(block.timestamp + 1 days);

        vm.expectRevert(_wrongStatus(jobId, DISPUTED));
        escrow.release(jobId, RESULT, signers);
    }

    function test_RevertWhen_release_paused() public {
        (uint256 jobId, address[] memory signers) = _settledJob();
        vm.warp(_windowEnd(jobId));
        _pause();

        vm.expectRevert(Pausable.EnforcedPause.selector);
        escrow.release(jobId, RESULT, signers);
        assertEq(_status(jobId), SETTLED);
    }
}

/*//////////////////////////////////////////////////////////////
                              REFUND
//////////////////////////////////////////////////////////////*/

contract JobEscrowRefundTest is JobEscrowTestBase {
    function test_RevertWhen_refund_beforeDeadline() public {
        uint256 jobId = _createJob();
        uint256 deadline = escrow.job(jobId).deadline;
        vm.warp(deadline - 1);

        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowDeadlineNotReached.selector, jobId, deadline)
        );
        escrow.refund(jobId);
    }

    function test_RevertWhen_refund_exactlyAtDeadline() public {
        uint256 jobId = _createJob();
        uint256 deadline = escrow.job(jobId).deadline;
        vm.warp(deadline);

        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowDeadlineNotReached.selector, jobId, deadline)
        );
        escrow.refund(jobId);
    }

    function test_refund_afterDeadlineReturnsFeeToClient() public {
        uint256 jobId = _createJob();
        vm.warp(escrow.job(jobId).deadline + 1);

        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.JobRefunded(jobId, client, FEE);
        escrow.refund(jobId);

        assertEq(_status(jobId), REFUNDED);
        assertEq(token.balanceOf(client), FEE);
        assertEq(token.balanceOf(address(escrow)), 0);
        assertEq(escrow.owed(client), 0);
    }

    function test_refund_anyoneMayCallAndMoneyGoesToClientOnly() public {
        uint256 jobId = _createJob();
        vm.warp(escrow.job(jobId).deadline + 1);

        vm.prank(stranger);
        escrow.refund(jobId);
        assertEq(token.balanceOf(client), FEE);
        assertEq(token.balanceOf(stranger), 0);
        assertEq(escrow.owed(stranger), 0);
    }

    function test_refund_worksWhilePaused() public {
        uint256 jobId = _createJob();
        _pause();
        vm.warp(escrow.job(jobId).deadline + 1);

        escrow.refund(jobId);
        assertEq(token.balanceOf(client), FEE);
        assertEq(_status(jobId), REFUNDED);
    }

    function test_RevertWhen_refund_settledJob() public {
        (uint256 jobId,) = _settledJob();
        vm.warp(escrow.job(jobId).deadline + 1);

        vm.expectRevert(_wrongStatus(jobId, SETTLED));
        escrow.refund(jobId);
        assertEq(token.balanceOf(client), 0);
    }

    function test_RevertWhen_refund_twice() public {
        uint256 jobId = _createJob();
        vm.warp(escrow.job(jobId).deadline + 1);
        escrow.refund(jobId);

        vm.expectRevert(_wrongStatus(jobId, REFUNDED));
        escrow.refund(jobId);
        assertEq(token.balanceOf(client), FEE);
    }

    function test_RevertWhen_refund_unknownJob() public {
        vm.expectRevert(_wrongStatus(7, NONE));
        escrow.refund(7);
    }

    /// @notice A released job cannot also be refunded: paid once, never both.
    function test_RevertWhen_refund_releasedJob() public {
        (uint256 jobId, address[] memory signers) = _releasedJob();
        vm.warp(escrow.job(jobId).deadline + 1);

        vm.expectRevert(_wrongStatus(jobId, RELEASED));
        escrow.refund(jobId);
        assertEq(token.balanceOf(client), 0);
        assertEq(escrow.owed(client), 0);
        assertEq(_sumOwed(_operators(signers)) + escrow.owed(treasury), FEE);
        assertEq(token.balanceOf(address(escrow)), FEE);
    }

    /// @notice A refunded job cannot also be settled, challenged or released: paid once, never both.
    function test_RevertWhen_refundedJobIsSettledOrReleased() public {
        uint256 jobId = _createJob();
        (bytes memory sigs, address[] memory signers) = _signed(jobId, 3);
        vm.warp(escrow.job(jobId).deadline + 1);
        escrow.refund(jobId);

        vm.expectRevert(_wrongStatus(jobId, REFUNDED));
        escrow.settle(jobId, RUNTIME, RESULT, OUTPUT, sigs);
        vm.expectRevert(_wrongStatus(jobId, REFUNDED));
        escrow.release(jobId, RESULT, signers);
        vm.expectRevert(_wrongStatus(jobId, REFUNDED));
        escrow.challenge(jobId);
        assertEq(_sumOwed(_operators(signers)) + escrow.owed(treasury), 0);
        assertEq(token.balanceOf(address(escrow)), 0);
    }
}

/*//////////////////////////////////////////////////////////////
                            CHALLENGE
//////////////////////////////////////////////////////////////*/

contract JobEscrowChallengeTest is JobEscrowTestBase {
    function test_challenge_pullsBondAndOpensDispute() public {
        (uint256 jobId,) = _settledJob();
        vm.warp(block.timestamp + 1 minutes);
        _fund(challenger, BOND);

        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.JobChallenged(jobId, challenger, BOND);
        vm.prank(challenger);
        escrow.challenge(jobId);

        IJobEscrow.Job memory j = escrow.job(jobId);
        assertEq(uint8(j.status), DISPUTED);
        assertEq(j.updatedAt, block.timestamp);
        assertEq(token.balanceOf(challenger), 0);
        assertEq(token.balanceOf(address(escrow)), FEE + BOND);
    }

    function test_challenge_worksOneSecondBeforeWindowEnd() public {
        (uint256 jobId,) = _settledJob();
        vm.warp(_windowEnd(jobId) - 1);
        _challenge(jobId);
        assertEq(_status(jobId), DISPUTED);
    }

    function test_RevertWhen_challenge_windowClosed() public {
        (uint256 jobId,) = _settledJob();
        uint256 windowEnd = _windowEnd(jobId);
        vm.warp(windowEnd);
        _fund(challenger, BOND);

        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowChallengeWindowClosed.selector, jobId, windowEnd)
        );
        vm.prank(challenger);
        escrow.challenge(jobId);
        assertEq(token.balanceOf(challenger), BOND);
    }

    function test_RevertWhen_challenge_notSettled() public {
        uint256 jobId = _createJob();
        _fund(challenger, BOND);

        vm.expectRevert(_wrongStatus(jobId, CREATED));
        vm.prank(challenger);
        escrow.challenge(jobId);

        vm.expectRevert(_wrongStatus(99, NONE));
        vm.prank(challenger);
        escrow.challenge(99);
    }

    function test_RevertWhen_challenge_alreadyDisputed() public {
        (uint256 jobId,) = _disputedJob();
        _fund(stranger, BOND);

        vm.expectRevert(_wrongStatus(jobId, DISPUTED));
        vm.prank(stranger);
        escrow.challenge(jobId);
        assertEq(token.balanceOf(stranger), BOND);
    }

    function test_RevertWhen_challenge_bondNotApproved() public {
        (uint256 jobId,) = _settledJob();
        token.mint(challenger, BOND);

        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(escrow), 0, BOND)
        );
        vm.prank(challenger);
        escrow.challenge(jobId);
        assertEq(_status(jobId), SETTLED);
    }

    function test_RevertWhen_challenge_paused() public {
        (uint256 jobId,) = _settledJob();
        _fund(challenger, BOND);
        _pause();

        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(challenger);
        escrow.challenge(jobId);
    }

    function test_challenge_blocksRelease() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        vm.warp(block.timestamp + 30 days);

        vm.expectRevert(_wrongStatus(jobId, DISPUTED));
        escrow.release(jobId, RESULT, signers);
    }
}

/*//////////////////////////////////////////////////////////////
                          RESOLVE DISPUTE
//////////////////////////////////////////////////////////////*/

contract JobEscrowResolveDisputeTest is JobEscrowTestBase {
    uint256 internal constant STAKE = 1000 ether;
    uint256 internal constant SLASHED = 300 ether; // 30% overturned penalty of the minimum stake
    uint256 internal constant BOUNTY = 30 ether; // 10% of the slash to the challenger

    function test_RevertWhen_resolveDispute_callerNotArbiter() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        bytes32 role = escrow.ARBITER_ROLE();

        vm.expectRevert(_unauthorized(stranger, role));
        vm.prank(stranger);
        escrow.resolveDispute(jobId, false, RESULT, signers);

        // Governance is not the arbiter either.
        vm.expectRevert(_unauthorized(admin, role));
        vm.prank(admin);
        escrow.resolveDispute(jobId, true, RESULT, signers);
        assertEq(_status(jobId), DISPUTED);
    }

    function test_RevertWhen_resolveDispute_timedOut() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        uint256 disputeEnd = _disputeEnd(jobId);
        vm.warp(disputeEnd);

        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowDisputeTimedOut.selector, jobId, disputeEnd)
        );
        vm.prank(arbiter);
        escrow.resolveDispute(jobId, true, RESULT, signers);
    }

    function test_resolveDispute_worksOneSecondBeforeTimeout() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        vm.warp(_disputeEnd(jobId) - 1);

        vm.prank(arbiter);
        escrow.resolveDispute(jobId, true, RESULT, signers);
        assertEq(_status(jobId), RELEASED);
    }

    function test_resolveDispute_resultStandsPaysSignersAndBondToTreasury() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        address[] memory operators = _operators(signers);

        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.DisputeResolved(jobId, true);
        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.PaymentReleased(jobId, SHARE_OF_3, TREASURY_OF_3);
        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.Credited(treasury, BOND);
        vm.prank(arbiter);
        escrow.resolveDispute(jobId, true, RESULT, signers);

        assertEq(_status(jobId), RELEASED);
        for (uint256 i; i < operators.length; ++i) {
            assertEq(escrow.owed(operators[i]), SHARE_OF_3);
            assertEq(registry.operator(operators[i]).stake, STAKE);
            assertTrue(registry.operator(operators[i]).active);
        }
        assertEq(escrow.owed(treasury), TREASURY_OF_3 + BOND);
        assertEq(escrow.owed(challenger), 0);
        assertEq(escrow.owed(client), 0);
        assertEq(token.balanceOf(address(escrow)), FEE + BOND);
    }

    function test_resolveDispute_overturnedRefundsClientReturnsBondAndSlashesSigners() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        address[] memory operators = _operators(signers);
        uint256 treasuryTokens = token.balanceOf(treasury);

        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.DisputeResolved(jobId, false);
        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.JobRefunded(jobId, client, FEE);
        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.Credited(client, FEE);
        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.Credited(challenger, BOND);
        for (uint256 i; i < operators.length; ++i) {
            vm.expectEmit(address(registry));
            emit IStakingRegistryEvents.Slashed(operators[i], SLASHED, challenger, BOUNTY, true);
        }
        vm.prank(arbiter);
        escrow.resolveDispute(jobId, false, RESULT, signers);

        assertEq(_status(jobId), OVERTURNED);
        assertEq(escrow.owed(client), FEE);
        assertEq(escrow.owed(challenger), BOND);
        assertEq(escrow.owed(treasury), 0);
        for (uint256 i; i < operators.length; ++i) {
            IStakingRegistry.Operator memory o = registry.operator(operators[i]);
            assertEq(o.stake, STAKE - SLASHED);
            assertTrue(o.jailed);
            assertFalse(o.active);
            assertEq(escrow.owed(operators[i]), 0);
            assertTrue(
                slashing.isSlashed(
                    slashing.offenceId(slashing.OFFENCE_OVERTURNED(), operators[i], bytes32(jobId))
                )
            );
        }
        // The operator that did not sign keeps everything.
        assertEq(registry.operator(ops[3].operator).stake, STAKE);
        assertTrue(registry.operator(ops[3].operator).active);
        // Bounty straight to the challenger, the rest of each slash to the treasury.
        assertEq(token.balanceOf(challenger), 3 * BOUNTY);
        assertEq(token.balanceOf(treasury) - treasuryTokens, 3 * (SLASHED - BOUNTY));
        assertEq(token.balanceOf(address(escrow)), FEE + BOND);

        vm.prank(client);
        assertEq(escrow.claim(), FEE);
        vm.prank(challenger);
        assertEq(escrow.claim(), BOND);
        assertEq(token.balanceOf(address(escrow)), 0);
    }

    function test_RevertWhen_resolveDispute_wrongSignerList() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        // An arbiter cannot aim the slash at an operator that did not sign.
        signers[0] = ops[3].signer;

        vm.expectRevert(abi.encodeWithSelector(IJobEscrowErrors.JobEscrowSettlementMismatch.selector, jobId));
        vm.prank(arbiter);
        escrow.resolveDispute(jobId, false, RESULT, signers);
        assertEq(registry.operator(ops[3].operator).stake, STAKE);

        vm.expectRevert(abi.encodeWithSelector(IJobEscrowErrors.JobEscrowSettlementMismatch.selector, jobId));
        vm.prank(arbiter);
        escrow.resolveDispute(jobId, true, RESULT, signers);
        assertEq(_status(jobId), DISPUTED);
    }

    function test_RevertWhen_resolveDispute_wrongResultHash() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();

        vm.expectRevert(abi.encodeWithSelector(IJobEscrowErrors.JobEscrowSettlementMismatch.selector, jobId));
        vm.prank(arbiter);
        escrow.resolveDispute(jobId, false, keccak256("other"), signers);
    }

    function test_RevertWhen_resolveDispute_notDisputed() public {
        (uint256 jobId, address[] memory signers) = _settledJob();

        vm.expectRevert(_wrongStatus(jobId, SETTLED));
        vm.prank(arbiter);
        escrow.resolveDispute(jobId, false, RESULT, signers);
    }

    function test_RevertWhen_resolveDispute_twice() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        vm.prank(arbiter);
        escrow.resolveDispute(jobId, false, RESULT, signers);

        vm.expectRevert(_wrongStatus(jobId, OVERTURNED));
        vm.prank(arbiter);
        escrow.resolveDispute(jobId, true, RESULT, signers);
        assertEq(escrow.owed(client), FEE);
        assertEq(_sumOwed(_operators(signers)), 0);
    }

    function test_resolveDispute_worksWhilePaused() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        _pause();

        vm.prank(arbiter);
        escrow.resolveDispute(jobId, false, RESULT, signers);
        assertEq(_status(jobId), OVERTURNED);
        assertEq(escrow.owed(client), FEE);
    }

    function test_RevertWhen_overturnedJobIsRefundedOrExpired() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        vm.prank(arbiter);
        escrow.resolveDispute(jobId, false, RESULT, signers);
        vm.warp(block.timestamp + 30 days);

        vm.expectRevert(_wrongStatus(jobId, OVERTURNED));
        escrow.refund(jobId);
        vm.expectRevert(_wrongStatus(jobId, OVERTURNED));
        escrow.expireDispute(jobId);
        vm.expectRevert(_wrongStatus(jobId, OVERTURNED));
        escrow.release(jobId, RESULT, signers);
        assertEq(escrow.owed(client), FEE);
    }
}

/*//////////////////////////////////////////////////////////////
                          EXPIRE DISPUTE
//////////////////////////////////////////////////////////////*/

contract JobEscrowExpireDisputeTest is JobEscrowTestBase {
    function test_RevertWhen_expireDispute_tooEarly() public {
        (uint256 jobId,) = _disputedJob();
        uint256 disputeEnd = _disputeEnd(jobId);
        vm.warp(disputeEnd - 1);

        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowDisputeNotTimedOut.selector, jobId, disputeEnd)
        );
        escrow.expireDispute(jobId);
    }

    function test_expireDispute_refundsClientReturnsBondAndSlashesNobody() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        address[] memory operators = _operators(signers);
        uint256 slashedBefore = registry.totalSlashed();
        vm.warp(_disputeEnd(jobId));

        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.DisputeExpired(jobId);
        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.JobRefunded(jobId, client, FEE);
        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.Credited(client, FEE);
        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.Credited(challenger, BOND);
        vm.prank(stranger);
        escrow.expireDispute(jobId);

        assertEq(_status(jobId), REFUNDED);
        assertEq(escrow.owed(client), FEE);
        assertEq(escrow.owed(challenger), BOND);
        assertEq(escrow.owed(treasury), 0);
        assertEq(escrow.owed(stranger), 0);
        assertEq(registry.totalSlashed(), slashedBefore);
        for (uint256 i; i < operators.length; ++i) {
            assertEq(escrow.owed(operators[i]), 0);
            assertEq(registry.operator(operators[i]).stake, 1000 ether);
            assertTrue(registry.operator(operators[i]).active);
        }
    }

    function test_expireDispute_worksWhilePaused() public {
        (uint256 jobId,) = _disputedJob();
        _pause();
        vm.warp(_disputeEnd(jobId));

        escrow.expireDispute(jobId);
        assertEq(_status(jobId), REFUNDED);
        assertEq(escrow.owed(client), FEE);
    }

    function test_RevertWhen_expireDispute_notDisputed() public {
        (uint256 jobId,) = _settledJob();
        vm.warp(block.timestamp + 30 days);

        vm.expectRevert(_wrongStatus(jobId, SETTLED));
        escrow.expireDispute(jobId);
    }

    function test_RevertWhen_expireDispute_twice() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        vm.warp(_disputeEnd(jobId));
        escrow.expireDispute(jobId);

        vm.expectRevert(_wrongStatus(jobId, REFUNDED));
        escrow.expireDispute(jobId);
        vm.expectRevert(_wrongStatus(jobId, REFUNDED));
        escrow.refund(jobId);
        assertEq(escrow.owed(client), FEE);
        assertEq(escrow.owed(challenger), BOND);
        assertEq(_sumOwed(_operators(signers)), 0);
    }

    function test_RevertWhen_expireDispute_afterResolution() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        vm.prank(arbiter);
        escrow.resolveDispute(jobId, true, RESULT, signers);
        vm.warp(block.timestamp + 30 days);

        vm.expectRevert(_wrongStatus(jobId, RELEASED));
        escrow.expireDispute(jobId);
        assertEq(escrow.owed(client), 0);
    }
}

/*//////////////////////////////////////////////////////////////
                               CLAIM
//////////////////////////////////////////////////////////////*/

contract JobEscrowClaimTest is JobEscrowTestBase {
    function test_RevertWhen_claim_nothingToClaim() public {
        vm.expectRevert(abi.encodeWithSelector(IJobEscrowErrors.JobEscrowNothingToClaim.selector, stranger));
        vm.prank(stranger);
        escrow.claim();
    }

    function test_claim_paysAndZeroes() public {
        (, address[] memory signers) = _releasedJob();
        address operator_ = registry.operatorOf(signers[0]);

        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.Claimed(operator_, SHARE_OF_3);
        vm.prank(operator_);
        uint256 paid = escrow.claim();

        assertEq(paid, SHARE_OF_3);
        assertEq(token.balanceOf(operator_), SHARE_OF_3);
        assertEq(escrow.owed(operator_), 0);
        assertEq(token.balanceOf(address(escrow)), FEE - SHARE_OF_3);

        vm.expectRevert(abi.encodeWithSelector(IJobEscrowErrors.JobEscrowNothingToClaim.selector, operator_));
        vm.prank(operator_);
        escrow.claim();
        assertEq(token.balanceOf(operator_), SHARE_OF_3);
    }

    function test_claim_paysCreditsOfSeveralJobsAtOnce() public {
        (, address[] memory signers) = _releasedJob();
        (, address[] memory signers2) = _releasedJob();
        assertEq(keccak256(abi.encode(signers)), keccak256(abi.encode(signers2)));
        address operator_ = registry.operatorOf(signers[0]);

        vm.prank(operator_);
        assertEq(escrow.claim(), 2 * SHARE_OF_3);
        assertEq(token.balanceOf(operator_), 2 * SHARE_OF_3);
    }

    function test_claim_everyPayeeDrainsTheEscrowExactly() public {
        (, address[] memory signers) = _releasedJob();
        address[] memory operators = _operators(signers);
        for (uint256 i; i < operators.length; ++i) {
            vm.prank(operators[i]);
            escrow.claim();
        }
        vm.prank(treasury);
        assertEq(escrow.claim(), TREASURY_OF_3);
        assertEq(token.balanceOf(address(escrow)), 0);
    }

    function test_RevertWhen_claim_paused() public {
        (, address[] memory signers) = _releasedJob();
        address operator_ = registry.operatorOf(signers[0]);
        _pause();

        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(operator_);
        escrow.claim();
        assertEq(escrow.owed(operator_), SHARE_OF_3);
    }
}

/*//////////////////////////////////////////////////////////////
                               VIEWS
//////////////////////////////////////////////////////////////*/

contract JobEscrowViewsTest is JobEscrowTestBase {
    function test_verifySettlement_trueOnlyForTheSettledCommitment() public {
        (uint256 jobId, address[] memory signers) = _settledJob();
        assertTrue(escrow.verifySettlement(jobId, RESULT, signers));
        assertFalse(escrow.verifySettlement(jobId, keccak256("other"), signers));
        assertFalse(escrow.verifySettlement(jobId + 1, RESULT, signers));

        address[] memory subset = new address[](2);
        subset[0] = signers[0];
        subset[1] = signers[1];
        assertFalse(escrow.verifySettlement(jobId, RESULT, subset));

        (signers[0], signers[2]) = (signers[2], signers[0]);
        assertFalse(escrow.verifySettlement(jobId, RESULT, signers));
    }

    function test_verifySettlement_falseBeforeSettlement() public {
        uint256 jobId = _createJob();
        (, address[] memory signers) = _signed(jobId, 3);
        assertFalse(escrow.verifySettlement(jobId, RESULT, signers));
        assertFalse(escrow.verifySettlement(jobId, bytes32(0), new address[](0)));
    }

    function test_hashAttestation_equalsEip712DigestComputedByHand() public view {
        bytes32 domainSeparator = _domainSeparatorByHand(block.chainid, address(escrow));
        bytes32 typeHash = keccak256(
            "Attestation(uint256 jobId,bytes32 modelId,bytes32 inputHash,bytes32 resultHash,bytes32 runtimeId)"
        );
        bytes32 structHash = keccak256(abi.encode(typeHash, uint256(7), MODEL, INPUT, RESULT, RUNTIME));
        bytes32 expected = keccak256(abi.encodePacked("\x19\x01", domainSeparator, structHash));

        assertEq(escrow.hashAttestation(_attestation(7, RESULT, RUNTIME)), expected);
        assertEq(escrow.DOMAIN_SEPARATOR(), domainSeparator);
        assertEq(escrow.ATTESTATION_TYPEHASH(), typeHash);
    }

    function testFuzz_hashAttestation_equalsDigestComputedByHand(
        IJobEscrow.Attestation memory a,
        uint256 chainId
    ) public {
        chainId = bound(chainId, 1, type(uint64).max);
        vm.chainId(chainId);
        bytes32 structHash = keccak256(
            abi.encode(
                escrow.ATTESTATION_TYPEHASH(), a.jobId, a.modelId, a.inputHash, a.resultHash, a.runtimeId
            )
        );
        bytes32 expected = keccak256(
            abi.encodePacked("\x19\x01", _domainSeparatorByHand(chainId, address(escrow)), structHash)
        );
        assertEq(escrow.hashAttestation(a), expected);
    }

    function test_eip712Domain_namesAttestaVersionOne() public view {
        (, string memory name, string memory version, uint256 chainId, address verifyingContract,,) =
            escrow.eip712Domain();
        assertEq(name, "Attesta");
        assertEq(version, "1");
        assertEq(chainId, block.chainid);
        assertEq(verifyingContract, address(escrow));
    }

    function test_job_unknownIdIsEmpty() public view {
        IJobEscrow.Job memory j = escrow.job(123);
        assertEq(j.client, address(0));
        assertEq(uint8(j.status), NONE);
        assertEq(j.fee, 0);
    }

    function test_config_returnsTheCurrentParameters() public {
        IJobEscrow.Config memory c = escrow.config();
        c.minFee = 5e15;
        c.challengeWindow = 20 minutes;
        _setConfig(c);
        assertEq(abi.encode(escrow.config()), abi.encode(c));
    }

    function _domainSeparatorByHand(uint256 chainId, address verifyingContract)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(
            abi.encode(
                keccak256(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                keccak256(bytes("Attesta")),
                keccak256(bytes("1")),
                chainId,
                verifyingContract
            )
        );
    }
}

/*//////////////////////////////////////////////////////////////
                            GOVERNANCE
//////////////////////////////////////////////////////////////*/

contract JobEscrowSetConfigTest is JobEscrowTestBase {
    function _expectOutOfBounds(IJobEscrow.Config memory c, bytes32 parameter, uint256 value) internal {
        bytes memory before = abi.encode(escrow.config());
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowParameterOutOfBounds.selector, parameter, value)
        );
        vm.prank(admin);
        escrow.setConfig(c);
        assertEq(abi.encode(escrow.config()), before);
    }

    function _current() internal view returns (IJobEscrow.Config memory) {
        return escrow.config();
    }

    function test_setConfig_storesAndEmits() public {
        IJobEscrow.Config memory c = _current();
        c.minFee = 2e15;
        c.challengeBond = 5 ether;
        c.protocolFeeBps = 100;

        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.ParameterSet("config", uint256(keccak256(abi.encode(c))));
        vm.prank(admin);
        escrow.setConfig(c);
        assertEq(abi.encode(escrow.config()), abi.encode(c));
    }

    function test_setConfig_takesEffectForNewJobs() public {
        IJobEscrow.Config memory c = _current();
        c.minFee = 2 ether;
        _setConfig(c);
        uint256 deadline = block.timestamp + 1 hours;
        _fund(client, FEE);

        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowFeeOutOfRange.selector, FEE, 2 ether)
        );
        vm.prank(client);
        escrow.createJob(MODEL, INPUT, FEE, deadline);
    }

    function test_RevertWhen_setConfig_callerNotAdmin() public {
        IJobEscrow.Config memory c = _current();
        bytes32 role = escrow.DEFAULT_ADMIN_ROLE();

        vm.expectRevert(_unauthorized(guardian, role));
        vm.prank(guardian);
        escrow.setConfig(c);

        vm.expectRevert(_unauthorized(stranger, role));
        vm.prank(stranger);
        escrow.setConfig(c);
    }

    function test_setConfig_acceptsEveryLowerBound() public {
        IJobEscrow.Config memory c = IJobEscrow.Config({
            minFee: 1,
            challengeBond: 1,
            protocolFeeBps: 0,
            maxOutputBytes: uint32(escrow.MIN_OUTPUT_BYTES()),
            minJobDuration: 0,
            maxJobDuration: 1,
            challengeWindow: uint40(escrow.MIN_CHALLENGE_WINDOW()),
            disputeTimeout: uint40(escrow.MIN_DISPUTE_TIMEOUT())
        });
        _setConfig(c);
        assertEq(abi.encode(escrow.config()), abi.encode(c));
    }

    function test_setConfig_acceptsEveryUpperBound() public {
        vm.prank(admin);
        registry.setUnbondingPeriod(365 days);
        IJobEscrow.Config memory c = IJobEscrow.Config({
            minFee: type(uint96).max,
            challengeBond: type(uint96).max,
            protocolFeeBps: uint16(escrow.MAX_PROTOCOL_FEE_BPS()),
            maxOutputBytes: uint32(escrow.MAX_OUTPUT_BYTES()),
            minJobDuration: uint40(escrow.MAX_JOB_DURATION()),
            maxJobDuration: uint40(escrow.MAX_JOB_DURATION()),
            challengeWindow: uint40(escrow.MAX_CHALLENGE_WINDOW()),
            disputeTimeout: uint40(escrow.MAX_DISPUTE_TIMEOUT())
        });
        _setConfig(c);
        assertEq(abi.encode(escrow.config()), abi.encode(c));
    }

    function test_RevertWhen_setConfig_minFeeZero() public {
        IJobEscrow.Config memory c = _current();
        c.minFee = 0;
        _expectOutOfBounds(c, "minFee", 0);
    }

    function test_RevertWhen_setConfig_challengeBondZero() public {
        IJobEscrow.Config memory c = _current();
        c.challengeBond = 0;
        _expectOutOfBounds(c, "challengeBond", 0);
    }

    function test_RevertWhen_setConfig_protocolFeeAboveMax() public {
        IJobEscrow.Config memory c = _current();
        c.protocolFeeBps = 2001;
        _expectOutOfBounds(c, "protocolFeeBps", 2001);
    }

    function test_RevertWhen_setConfig_maxOutputBytesBelowMin() public {
        IJobEscrow.Config memory c = _current();
        c.maxOutputBytes = 31;
        _expectOutOfBounds(c, "maxOutputBytes", 31);
    }

    function test_RevertWhen_setConfig_maxOutputBytesAboveMax() public {
        IJobEscrow.Config memory c = _current();
        c.maxOutputBytes = 64 * 1024 + 1;
        _expectOutOfBounds(c, "maxOutputBytes", 64 * 1024 + 1);
    }

    function test_RevertWhen_setConfig_maxJobDurationZero() public {
        IJobEscrow.Config memory c = _current();
        c.minJobDuration = 0;
        c.maxJobDuration = 0;
        _expectOutOfBounds(c, "maxJobDuration", 0);
    }

    function test_RevertWhen_setConfig_maxJobDurationAboveMax() public {
        vm.prank(admin);
        registry.setUnbondingPeriod(365 days);
        IJobEscrow.Config memory c = _current();
        c.maxJobDuration = 30 days + 1;
        _expectOutOfBounds(c, "maxJobDuration", 30 days + 1);
    }

    function test_RevertWhen_setConfig_minJobDurationAboveMax() public {
        IJobEscrow.Config memory c = _current();
        c.minJobDuration = c.maxJobDuration + 1;
        _expectOutOfBounds(c, "minJobDuration", uint256(c.maxJobDuration) + 1);
    }

    function test_RevertWhen_setConfig_challengeWindowBelowMin() public {
        IJobEscrow.Config memory c = _current();
        c.challengeWindow = 59;
        _expectOutOfBounds(c, "challengeWindow", 59);
    }

    function test_RevertWhen_setConfig_challengeWindowAboveMax() public {
        vm.prank(admin);
        registry.setUnbondingPeriod(365 days);
        IJobEscrow.Config memory c = _current();
        c.challengeWindow = 30 days + 1;
        _expectOutOfBounds(c, "challengeWindow", 30 days + 1);
    }

    function test_RevertWhen_setConfig_disputeTimeoutBelowMin() public {
        IJobEscrow.Config memory c = _current();
        c.disputeTimeout = 1 hours - 1;
        _expectOutOfBounds(c, "disputeTimeout", 1 hours - 1);
    }

    function test_RevertWhen_setConfig_disputeTimeoutAboveMax() public {
        vm.prank(admin);
        registry.setUnbondingPeriod(365 days);
        IJobEscrow.Config memory c = _current();
        c.disputeTimeout = 90 days + 1;
        _expectOutOfBounds(c, "disputeTimeout", 90 days + 1);
    }

    /// @notice A signer must stay slashable until every dispute over its result can have ended.
    function test_setConfig_acceptsExposureEqualToUnbondingPeriod() public {
        IJobEscrow.Config memory c = _current();
        uint256 unbonding = registry.unbondingPeriod();
        c.disputeTimeout = SafeCast.toUint40(unbonding - c.maxJobDuration - c.challengeWindow);
        _setConfig(c);
        assertEq(escrow.config().disputeTimeout, c.disputeTimeout);
    }

    function test_RevertWhen_setConfig_exposureExceedsUnbondingPeriod() public {
        IJobEscrow.Config memory c = _current();
        uint256 unbonding = registry.unbondingPeriod();
        c.disputeTimeout = SafeCast.toUint40(unbonding - c.maxJobDuration - c.challengeWindow + 1);
        _expectOutOfBounds(c, "exposure", unbonding + 1);
    }

    function testFuzz_setConfig_enforcesExposureRule(uint256 maxJob, uint256 window, uint256 timeout) public {
        IJobEscrow.Config memory c = _current();
        c.minJobDuration = 0;
        c.maxJobDuration = uint40(bound(maxJob, 1, escrow.MAX_JOB_DURATION()));
        c.challengeWindow =
            uint40(bound(window, escrow.MIN_CHALLENGE_WINDOW(), escrow.MAX_CHALLENGE_WINDOW()));
        c.disputeTimeout = uint40(bound(timeout, escrow.MIN_DISPUTE_TIMEOUT(), escrow.MAX_DISPUTE_TIMEOUT()));
        uint256 exposure = uint256(c.maxJobDuration) + c.challengeWindow + c.disputeTimeout;

        if (exposure > registry.unbondingPeriod()) {
            _expectOutOfBounds(c, "exposure", exposure);
        } else {
            _setConfig(c);
            assertEq(abi.encode(escrow.config()), abi.encode(c));
        }
    }
}

contract JobEscrowAddressesTest is JobEscrowTestBase {
    function test_setTreasury_redirectsFutureProtocolFees() public {
        address newTreasury = makeAddr("newTreasury");
        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.AddressSet("treasury", newTreasury);
        vm.prank(admin);
        escrow.setTreasury(newTreasury);
        assertEq(escrow.treasury(), newTreasury);

        _releasedJob();
        assertEq(escrow.owed(newTreasury), TREASURY_OF_3);
        assertEq(escrow.owed(treasury), 0);
    }

    function test_RevertWhen_setTreasury_zero() public {
        vm.expectRevert(IJobEscrowErrors.JobEscrowZeroAddress.selector);
        vm.prank(admin);
        escrow.setTreasury(address(0));
        assertEq(escrow.treasury(), treasury);
    }

    function test_RevertWhen_setTreasury_callerNotAdmin() public {
        vm.expectRevert(_unauthorized(stranger, bytes32(0)));
        vm.prank(stranger);
        escrow.setTreasury(stranger);
    }

    function test_setSlashing_routesOverturnedDisputesToTheNewContract() public {
        vm.startPrank(admin);
        Slashing newSlashing = new Slashing(
            IStakingRegistry(address(registry)), IJobEscrow(address(escrow)), admin, 1 days, cfg.penalties
        );
        registry.grantRole(registry.SLASHER_ROLE(), address(newSlashing));
        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.AddressSet("slashing", address(newSlashing));
        escrow.setSlashing(ISlashing(address(newSlashing)));
        vm.stopPrank();
        assertEq(address(escrow.slashing()), address(newSlashing));

        (uint256 jobId, address[] memory signers) = _disputedJob();
        vm.prank(arbiter);
        escrow.resolveDispute(jobId, false, RESULT, signers);

        bytes32 offence = newSlashing.offenceId(
            newSlashing.OFFENCE_OVERTURNED(), registry.operatorOf(signers[0]), bytes32(jobId)
        );
        assertTrue(newSlashing.isSlashed(offence));
        assertFalse(slashing.isSlashed(offence));
    }

    function test_RevertWhen_setSlashing_zero() public {
        vm.expectRevert(IJobEscrowErrors.JobEscrowZeroAddress.selector);
        vm.prank(admin);
        escrow.setSlashing(ISlashing(address(0)));
        assertEq(address(escrow.slashing()), address(slashing));
    }

    function test_RevertWhen_setSlashing_callerNotAdmin() public {
        vm.expectRevert(_unauthorized(arbiter, bytes32(0)));
        vm.prank(arbiter);
        escrow.setSlashing(ISlashing(stranger));
    }

    function test_setRuntimeAllowed_allowsAndDisallows() public {
        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.RuntimeAllowed(OTHER_RUNTIME, true);
        vm.prank(admin);
        escrow.setRuntimeAllowed(OTHER_RUNTIME, true);
        assertTrue(escrow.isRuntimeAllowed(OTHER_RUNTIME));

        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.RuntimeAllowed(OTHER_RUNTIME, false);
        vm.prank(admin);
        escrow.setRuntimeAllowed(OTHER_RUNTIME, false);
        assertFalse(escrow.isRuntimeAllowed(OTHER_RUNTIME));
        assertTrue(escrow.isRuntimeAllowed(RUNTIME));
    }

    function test_RevertWhen_setRuntimeAllowed_callerNotAdmin() public {
        vm.expectRevert(_unauthorized(guardian, bytes32(0)));
        vm.prank(guardian);
        escrow.setRuntimeAllowed(OTHER_RUNTIME, true);
        assertFalse(escrow.isRuntimeAllowed(OTHER_RUNTIME));
    }
}

contract JobEscrowPauseTest is JobEscrowTestBase {
    function test_pause_byGuardian() public {
        vm.expectEmit(address(escrow));
        emit Pausable.Paused(guardian);
        vm.prank(guardian);
        escrow.pause();
        assertTrue(escrow.paused());
    }

    function test_RevertWhen_pause_callerNotGuardian() public {
        bytes32 role = escrow.GUARDIAN_ROLE();
        vm.expectRevert(_unauthorized(stranger, role));
        vm.prank(stranger);
        escrow.pause();

        vm.expectRevert(_unauthorized(arbiter, role));
        vm.prank(arbiter);
        escrow.pause();
        assertFalse(escrow.paused());
    }

    function test_unpause_byAdmin() public {
        _pause();
        vm.expectEmit(address(escrow));
        emit Pausable.Unpaused(admin);
        vm.prank(admin);
        escrow.unpause();
        assertFalse(escrow.paused());
        // Business as usual afterwards.
        _releasedJob();
    }

    /// @notice A compromised guardian cannot undo an incident response.
    function test_RevertWhen_unpause_byGuardian() public {
        _pause();
        vm.expectRevert(_unauthorized(guardian, bytes32(0)));
        vm.prank(guardian);
        escrow.unpause();
        assertTrue(escrow.paused());
    }

    function test_RevertWhen_unpause_notPaused() public {
        vm.expectRevert(Pausable.ExpectedPause.selector);
        vm.prank(admin);
        escrow.unpause();
    }
}

/*//////////////////////////////////////////////////////////////
                 RELIABILITY C9: REENTRANT PAYEES
//////////////////////////////////////////////////////////////*/

/// @notice Deploys the suite with a token that calls back into payees that opt in, and a payee contract that
/// re-enters the escrow from that callback.
contract JobEscrowReentrancyTest is JobEscrowTestBase {
    HookToken internal hookToken;
    ReentrantPayee internal payee;

    function _beforeOperators() internal override {
        hookToken = new HookToken();
        cfg.token = IERC20(address(hookToken));
        _deployWith(cfg);
        payee = new ReentrantPayee();
        hookToken.setHooked(address(payee), true);
    }

    function _assertReentrancyGuardTripped() internal view {
        assertTrue(payee.reentered(), "hook did not fire");
        assertFalse(payee.reentrySucceeded(), "reentrant call succeeded");
        assertEq(
            payee.reentryRevertData(),
            abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector)
        );
    }

    /// @notice claim -> receive hook -> claim again: the whole claim reverts and nothing moves.
    function test_RevertWhen_claim_payeeReentersClaim() public {
        vm.prank(admin);
        escrow.setTreasury(address(payee));
        _releasedJob();
        uint256 owedBefore = escrow.owed(address(payee));
        uint256 escrowBalance = token.balanceOf(address(escrow));
        assertEq(owedBefore, TREASURY_OF_3);

        payee.arm(address(escrow), abi.encodeCall(escrow.claim, ()), true);
        vm.expectRevert(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector);
        payee.execute(address(escrow), abi.encodeCall(escrow.claim, ()));

        assertEq(escrow.owed(address(payee)), owedBefore);
        assertEq(token.balanceOf(address(payee)), 0);
        assertEq(token.balanceOf(address(escrow)), escrowBalance);

        // Without the hostile callback the legitimate claim pays exactly once.
        payee.disarm();
        payee.execute(address(escrow), abi.encodeCall(escrow.claim, ()));
        assertEq(token.balanceOf(address(payee)), owedBefore);
        assertEq(escrow.owed(address(payee)), 0);
    }

    /// @notice claim -> receive hook -> release of another job: the nested release fails, the claim pays only
    /// what was owed, and the other job is untouched.
    function test_claim_reentrantReleaseFailsAndChangesNothing() public {
        vm.prank(admin);
        escrow.setTreasury(address(payee));
        (, address[] memory signers) = _releasedJob();
        uint256 owedToPayee = escrow.owed(address(payee));
        (uint256 job2,) = _settledJob();
        vm.warp(_windowEnd(job2));
        address[] memory operators = _operators(signers);
        uint256 operatorsOwed = _sumOwed(operators);

        payee.arm(address(escrow), abi.encodeCall(escrow.release, (job2, RESULT, signers)), false);
        payee.execute(address(escrow), abi.encodeCall(escrow.claim, ()));

        _assertReentrancyGuardTripped();
        assertEq(token.balanceOf(address(payee)), owedToPayee);
        assertEq(escrow.owed(address(payee)), 0);
        assertEq(_status(job2), SETTLED);
        assertEq(_sumOwed(operators), operatorsOwed);

        // The release itself was valid; outside the callback it goes through.
        escrow.release(job2, RESULT, signers);
        assertEq(escrow.owed(address(payee)), TREASURY_OF_3);
    }

    /// @notice refund -> client's receive hook -> refund of another expired job: only the first refund pays.
    function test_refund_reentrantRefundFailsAndPaysOnce() public {
        token.mint(address(payee), 2 * FEE);
        payee.execute(address(token), abi.encodeCall(IERC20.approve, (address(escrow), 2 * FEE)));
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory create = abi.encodeCall(escrow.createJob, (MODEL, INPUT, FEE, deadline));
        uint256 job1 = abi.decode(payee.execute(address(escrow), create), (uint256));
        uint256 job2 = abi.decode(payee.execute(address(escrow), create), (uint256));
        vm.warp(deadline + 1);

        payee.arm(address(escrow), abi.encodeCall(escrow.refund, (job2)), false);
        vm.prank(stranger);
        escrow.refund(job1);

        _assertReentrancyGuardTripped();
        assertEq(_status(job1), REFUNDED);
        assertEq(_status(job2), CREATED);
        assertEq(token.balanceOf(address(payee)), FEE);
        assertEq(token.balanceOf(address(escrow)), FEE);
    }

    /// @notice The overturn's slash pays the challenger's bounty in the middle of resolveDispute; a challenger
    /// re-entering claim from there is refused, and its bond stays owed (claimable once, afterwards).
    function test_resolveDispute_challengerReenteringClaimIsRefused() public {
        (uint256 jobId, address[] memory signers) = _settledJob();
        token.mint(address(payee), BOND);
        payee.execute(address(token), abi.encodeCall(IERC20.approve, (address(escrow), BOND)));
        payee.execute(address(escrow), abi.encodeCall(escrow.challenge, (jobId)));

        payee.arm(address(escrow), abi.encodeCall(escrow.claim, ()), false);
        vm.prank(arbiter);
        escrow.resolveDispute(jobId, false, RESULT, signers);

        _assertReentrancyGuardTripped();
        assertEq(_status(jobId), OVERTURNED);
        assertEq(escrow.owed(address(payee)), BOND);
        assertEq(token.balanceOf(address(payee)), 3 * 30 ether); // bounties only
        assertEq(token.balanceOf(address(escrow)), FEE + BOND);

        payee.execute(address(escrow), abi.encodeCall(escrow.claim, ()));
        assertEq(token.balanceOf(address(payee)), 3 * 30 ether + BOND);
    }
}

/*//////////////////////////////////////////////////////////////
            RELIABILITY C10: PAYEES THAT CANNOT RECEIVE
//////////////////////////////////////////////////////////////*/

/// @notice Deploys the suite with a token that refuses transfers to blocked accounts.
contract JobEscrowBlockedPayeeTest is JobEscrowTestBase {
    BlacklistToken internal blacklist;

    function _beforeOperators() internal override {
        blacklist = new BlacklistToken();
        cfg.token = IERC20(address(blacklist));
        _deployWith(cfg);
    }

    function _blocked(address account) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(BlacklistToken.BlacklistTokenBlocked.selector, account);
    }

    function test_release_creditsEveryoneWhenOneOperatorCannotReceive() public {
        (uint256 jobId, address[] memory signers) = _settledJob();
        address[] memory operators = _operators(signers);
        blacklist.setBlocked(operators[0], true);
        vm.warp(_windowEnd(jobId));

        escrow.release(jobId, RESULT, signers);
        assertEq(_status(jobId), RELEASED);
        for (uint256 i; i < operators.length; ++i) {
            assertEq(escrow.owed(operators[i]), SHARE_OF_3);
        }

        // The others are paid ...
        for (uint256 i = 1; i < operators.length; ++i) {
            vm.prank(operators[i]);
            escrow.claim();
            assertEq(token.balanceOf(operators[i]), SHARE_OF_3);
        }
        vm.prank(treasury);
        escrow.claim();
        assertEq(token.balanceOf(treasury), TREASURY_OF_3);

        // ... the blocked one cannot receive, and keeps its credit for later.
        vm.expectRevert(_blocked(operators[0]));
        vm.prank(operators[0]);
        escrow.claim();
        assertEq(escrow.owed(operators[0]), SHARE_OF_3);
        assertEq(token.balanceOf(address(escrow)), SHARE_OF_3);

        blacklist.setBlocked(operators[0], false);
        vm.prank(operators[0]);
        escrow.claim();
        assertEq(token.balanceOf(address(escrow)), 0);
    }

    function test_release_operatorsPaidWhenTreasuryCannotReceive() public {
        (uint256 jobId, address[] memory signers) = _settledJob();
        address[] memory operators = _operators(signers);
        blacklist.setBlocked(treasury, true);
        vm.warp(_windowEnd(jobId));

        escrow.release(jobId, RESULT, signers);
        for (uint256 i; i < operators.length; ++i) {
            vm.prank(operators[i]);
            escrow.claim();
            assertEq(token.balanceOf(operators[i]), SHARE_OF_3);
        }
        vm.expectRevert(_blocked(treasury));
        vm.prank(treasury);
        escrow.claim();
        assertEq(escrow.owed(treasury), TREASURY_OF_3);
    }

    function test_resolveDispute_overturnCreditsChallengerWhenClientCannotReceive() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        blacklist.setBlocked(client, true);

        vm.prank(arbiter);
        escrow.resolveDispute(jobId, false, RESULT, signers);
        assertEq(escrow.owed(client), FEE);

        vm.prank(challenger);
        assertEq(escrow.claim(), BOND);
        vm.expectRevert(_blocked(client));
        vm.prank(client);
        escrow.claim();
        assertEq(escrow.owed(client), FEE);
    }

    function test_expireDispute_returnsBondWhenClientCannotReceive() public {
        (uint256 jobId,) = _disputedJob();
        blacklist.setBlocked(client, true);
        vm.warp(_disputeEnd(jobId));

        escrow.expireDispute(jobId);
        vm.prank(challenger);
        assertEq(escrow.claim(), BOND);
        assertEq(escrow.owed(client), FEE);
    }

    /// @notice A challenger that cannot receive tokens does not shield the signers: the registry pays its
    /// slash bounty to the treasury instead, and the verdict goes through.
    function test_resolveDispute_overturnsEvenWhenChallengerCannotReceive() public {
        (uint256 jobId, address[] memory signers) = _disputedJob();
        blacklist.setBlocked(challenger, true);
        uint256 treasuryBefore = token.balanceOf(treasury);

        vm.prank(arbiter);
        escrow.resolveDispute(jobId, false, RESULT, signers);
        assertEq(_status(jobId), OVERTURNED);
        assertEq(escrow.owed(client), FEE);
        assertEq(escrow.owed(challenger), BOND);
        assertGt(registry.totalSlashed(), 0, "signers slashed");
        assertEq(
            token.balanceOf(treasury) - treasuryBefore, registry.totalSlashed(), "bounty went to treasury"
        );
        assertEq(token.balanceOf(challenger), 0);
    }
}
