// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IJobEscrow} from "../../contracts/interfaces/IJobEscrow.sol";
import {IStakingRegistry} from "../../contracts/interfaces/IStakingRegistry.sol";
import {AttestaTest} from "../utils/AttestaTest.sol";
import {ProtocolHandler} from "./handlers/ProtocolHandler.sol";
import {console} from "forge-std/console.sol";

/// @notice Deploys the suite through the shared deployer, bounds the active set below the number of
/// operators the handler may create (so "set full" is reached), seeds six operators, and states every
/// protocol invariant of RELIABILITY once, as internal assertions shared by the invariant campaign and the
/// deterministic coverage test below.
abstract contract ProtocolInvariantBase is AttestaTest {
    uint256 internal constant MAX_ACTIVE = 8;
    uint256 internal constant SEED_OPERATORS = 6;

    ProtocolHandler internal handler;

    function setUp() public virtual override {
        super.setUp();
        vm.prank(admin);
        registry.setMaxActive(MAX_ACTIVE);
        handler = new ProtocolHandler(token, registry, escrow, slashing, arbiter, treasury, RUNTIME);
        vm.label(address(handler), "ProtocolHandler");
        for (uint256 i; i < SEED_OPERATORS; ++i) {
            handler.joinOperator(i);
        }
    }

    /// @notice The handler's actions, as the campaign targets them.
    function _selectors() internal pure returns (bytes4[] memory s) {
        s = new bytes4[](21);
        s[0] = ProtocolHandler.joinOperator.selector;
        s[1] = ProtocolHandler.stake.selector;
        s[2] = ProtocolHandler.registerSigner.selector;
        s[3] = ProtocolHandler.requestUnstake.selector;
        s[4] = ProtocolHandler.withdraw.selector;
        s[5] = ProtocolHandler.toggleActive.selector;
        s[6] = ProtocolHandler.createJob.selector;
        s[7] = ProtocolHandler.settle.selector;
        s[8] = ProtocolHandler.release.selector;
        s[9] = ProtocolHandler.refund.selector;
        s[10] = ProtocolHandler.challenge.selector;
        s[11] = ProtocolHandler.resolveDispute.selector;
        s[12] = ProtocolHandler.expireDispute.selector;
        s[13] = ProtocolHandler.claim.selector;
        s[14] = ProtocolHandler.slashEquivocation.selector;
        s[15] = ProtocolHandler.slashDowntime.selector;
        s[16] = ProtocolHandler.warp.selector;
        s[17] = ProtocolHandler.donate.selector;
        s[18] = ProtocolHandler.settleBatch.selector;
        s[19] = ProtocolHandler.releaseBatch.selector;
        s[20] = ProtocolHandler.challengeBatched.selector;
    }

    /*//////////////////////////////////////////////////////////////
                                 ESCROW
    //////////////////////////////////////////////////////////////*/

    function _sumOwed() internal view returns (uint256 sum) {
        address[] memory payees = handler.payees();
        for (uint256 i; i < payees.length; ++i) {
            sum += escrow.owed(payees[i]);
        }
    }

    /// @dev Token balance >= open fees + open bonds + everything owed (>= because of donations, C14), and
    /// exactly equal once the donations are taken out. Open fees and bonds are recomputed from the escrow's
    /// own job records and must match the handler's ghosts.
    function _assertEscrowSolvent() internal view {
        uint256 fees;
        uint256 bonds;
        uint256 n = escrow.jobCount();
        for (uint256 id = 1; id <= n; ++id) {
            IJobEscrow.Job memory j = escrow.job(id);
            if (j.status == IJobEscrow.JobStatus.Disputed) bonds += handler.ghostBond(id);
            if (j.status >= IJobEscrow.JobStatus.Created && j.status <= IJobEscrow.JobStatus.Disputed) {
                fees += j.fee;
            }
        }
        assertEq(fees, handler.ghostOpenFees(), "open fees: escrow records != ghost");
        assertEq(bonds, handler.ghostOpenBonds(), "open bonds: escrow records != ghost");
        uint256 liabilities = fees + bonds + _sumOwed();
        uint256 balance = token.balanceOf(address(escrow));
        assertGe(balance, liabilities, "escrow insolvent");
        assertEq(
            balance - handler.ghostEscrowDonations(), liabilities, "escrow balance - donations != liabilities"
        );
    }

    function _assertOwedMatchesGhost() internal view {
        assertEq(_sumOwed(), handler.ghostOwed(), "sum owed != credited - claimed");
    }

    /// @dev Only claim lowers what is owed, and by exactly the amount it paid.
    function _assertOnlyClaimLowersOwed() internal view {
        assertEq(
            handler.ghostIllegalOwedDecreases(), 0, "owed fell outside a claim, or by more than was paid"
        );
    }

    /// @dev No job both paid and refunded, none paid or refunded twice, and the counts match the status.
    function _assertEachJobPaysOutOnce() internal view {
        uint256 n = escrow.jobCount();
        for (uint256 id = 1; id <= n; ++id) {
            uint256 paid = handler.ghostPaid(id);
            uint256 refunded = handler.ghostRefunded(id);
            assertLe(paid + refunded, 1, "job paid out more than once");
            IJobEscrow.JobStatus s = escrow.job(id).status;
            if (s == IJobEscrow.JobStatus.Released) {
                assertEq(paid, 1, "released without a payout");
            } else if (s == IJobEscrow.JobStatus.Refunded || s == IJobEscrow.JobStatus.Overturned) {
                assertEq(refunded, 1, "refunded status without a refund");
            } else {
                assertEq(paid + refunded, 0, "open job already paid out");
            }
        }
    }

    /// @dev Status only increases and terminal states never change (checked by the handler after every
    /// action, against the status it saw before).
    function _assertStatusOnlyMovesForward() internal view {
        assertEq(handler.ghostStatusRegressions(), 0, "a job status moved back");
        assertEq(handler.ghostTerminalChanges(), 0, "a terminal job status changed");
        uint256 n = escrow.jobCount();
        for (uint256 id = 1; id <= n; ++id) {
            assertEq(
                uint8(escrow.job(id).status), handler.ghostPrevStatus(id), "status changed outside an action"
            );
        }
    }

    /*//////////////////////////////////////////////////////////////
                                REGISTRY
    //////////////////////////////////////////////////////////////*/

    /// @dev Token balance >= totalStaked + totalUnbonding, and equal once donations are taken out.
    function _assertRegistrySolvent() internal view {
        uint256 owed = registry.totalStaked() + registry.totalUnbonding();
        uint256 balance = token.balanceOf(address(registry));
        assertGe(balance, owed, "registry insolvent");
        assertEq(balance - handler.ghostRegistryDonations(), owed, "registry balance - donations != totals");
    }

    /// @dev totalStaked and totalUnbonding equal the sums over the operators, and the handler's ghosts.
    function _assertRegistryTotals() internal view {
        uint256 staked;
        uint256 unbonding;
        uint256 n = handler.operatorCount();
        for (uint256 i; i < n; ++i) {
            IStakingRegistry.Operator memory o = registry.operator(handler.operators(i));
            staked += o.stake;
            unbonding += o.unbonding;
        }
        assertEq(registry.totalStaked(), staked, "totalStaked != sum of stakes");
        assertEq(registry.totalUnbonding(), unbonding, "totalUnbonding != sum of unbonding");
        assertEq(registry.totalStaked(), handler.ghostTotalStaked(), "totalStaked != ghost");
        assertEq(registry.totalUnbonding(), handler.ghostTotalUnbonding(), "totalUnbonding != ghost");
        assertEq(registry.totalSlashed(), handler.ghostTotalSlashed(), "totalSlashed != ghost");
    }

    /// @dev Per operator: deposits - withdrawals - slashed >= 0 (slashing never takes more than the stake),
    /// and it is exactly what the registry still holds for the operator.
    function _assertSlashingWithinStake() internal view {
        uint256 n = handler.operatorCount();
        for (uint256 i; i < n; ++i) {
            address op = handler.operators(i);
            uint256 deposited = handler.ghostDeposited(op);
            uint256 out = handler.ghostWithdrawn(op) + handler.ghostSlashed(op);
            assertGe(deposited, out, "slashed or withdrew more than was deposited");
            IStakingRegistry.Operator memory o = registry.operator(op);
            assertEq(
                uint256(o.stake) + o.unbonding,
                deposited - out,
                "position != deposits - withdrawals - slashed"
            );
        }
        assertEq(handler.ghostSlashMismatches(), 0, "a slash took other than the penalty of the position");
        assertEq(handler.ghostPaymentMismatches(), 0, "a payment differed from what was due");
    }

    /// @dev activeCount <= maxActive <= 64; every member qualifies (signer bound to an active, unjailed
    /// operator with at least the minimum stake).
    function _assertActiveSetBounded() internal view {
        uint256 count = registry.activeCount();
        assertLe(count, registry.maxActive(), "active set above maxActive");
        assertLe(registry.maxActive(), registry.MAX_ACTIVE_BOUND(), "maxActive above 64");
        address[] memory signers = registry.activeSigners();
        assertEq(signers.length, count, "activeSigners().length != activeCount");
        for (uint256 i; i < signers.length; ++i) {
            address op = registry.operatorOf(signers[i]);
            IStakingRegistry.Operator memory o = registry.operator(op);
            assertEq(o.signer, signers[i], "active key is not the operator's current key");
            assertTrue(o.active, "member's operator not active");
            assertFalse(o.jailed, "jailed member");
            assertGe(o.stake, registry.minStake(), "member below the minimum stake");
        }
    }

    /// @dev 0 < M, and M <= N whenever N reaches the floor.
    function _assertThresholdWithinActiveSet() internal view {
        uint256 m = registry.threshold();
        uint256 n = registry.activeCount();
        assertGt(m, 0, "threshold is zero");
        if (n >= registry.minThreshold()) assertLe(m, n, "threshold above the active set");
        // A strict majority: two conflicting results can never both reach a quorum.
        assertGt(2 * m, n, "threshold not a strict majority");
    }

    function _assertNoDuplicateSigners() internal view {
        address[] memory signers = registry.activeSigners();
        for (uint256 i; i < signers.length; ++i) {
            for (uint256 j = i + 1; j < signers.length; ++j) {
                assertTrue(signers[i] != signers[j], "duplicate active signer");
            }
        }
    }

    /// @dev activeSetVersion and the downtime epoch never decrease.
    function _assertVersionsNeverDecrease() internal view {
        assertEq(handler.ghostVersionDecreases(), 0, "activeSetVersion decreased");
        assertEq(handler.ghostEpochDecreases(), 0, "epoch decreased");
        assertGe(
            registry.activeSetVersion(), handler.ghostPrevActiveSetVersion(), "activeSetVersion behind ghost"
        );
    }

    function _assertAll() internal view {
        _assertEscrowSolvent();
        _assertOwedMatchesGhost();
        _assertOnlyClaimLowersOwed();
        _assertEachJobPaysOutOnce();
        _assertStatusOnlyMovesForward();
        _assertRegistrySolvent();
        _assertRegistryTotals();
        _assertSlashingWithinStake();
        _assertActiveSetBounded();
        _assertThresholdWithinActiveSet();
        _assertNoDuplicateSigners();
        _assertVersionsNeverDecrease();
    }
}

/// @title ProtocolInvariantTest
/// @notice The handler campaign over every RELIABILITY invariant (C14: donations included).
/// @dev The handler only acts on targets that can succeed, so a revert means the protocol refused something
/// it must accept (a valid quorum, a due refund, a claim): fail on it rather than skip it.
/// forge-config: default.invariant.fail-on-revert = true
contract ProtocolInvariantTest is ProtocolInvariantBase {
    function setUp() public override {
        super.setUp();
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: _selectors()}));
    }

    // Foundry runs one campaign per invariant function, so the properties are grouped by contract: each
    // campaign checks all of its group after every call, rather than one property per campaign.

    /// @notice Escrow: solvency (>= with donations, == without), owed = credits - claims, only claim lowers
    /// owed, each job pays out at most once, job status only moves forward.
    function invariant_escrowAccounting() public view {
        _assertEscrowSolvent();
        _assertOwedMatchesGhost();
        _assertOnlyClaimLowersOwed();
        _assertEachJobPaysOutOnce();
        _assertStatusOnlyMovesForward();
    }

    /// @notice Registry and slashing: solvency (>= with donations, == without), totals = sums, slashing never
    /// takes more than the stake.
    function invariant_stakeAccounting() public view {
        _assertRegistrySolvent();
        _assertRegistryTotals();
        _assertSlashingWithinStake();
    }

    /// @notice Active set: bounded, N/2 < M <= N, no duplicate signers, version and epoch never decrease.
    function invariant_activeSet() public view {
        _assertActiveSetBounded();
        _assertThresholdWithinActiveSet();
        _assertNoDuplicateSigners();
        _assertVersionsNeverDecrease();
    }

    /// @notice Shows, with `-vv`, what each run actually exercised.
    function afterInvariant() public view {
        handler.callSummary();
    }
}

/// @title ProtocolHandlerCoverageTest
/// @notice An invariant campaign whose calls all revert proves nothing. This replays a fixed pseudo-random
/// campaign through the same handler and asserts that every action succeeded at least once, that no action
/// reverted (the handler only picks targets that can succeed, so a revert is a handler or protocol bug),
/// and that every invariant holds after every step.
contract ProtocolHandlerCoverageTest is ProtocolInvariantBase {
    /// @dev Like a short campaign: RUNS fresh deployments of DEPTH random actions each.
    uint256 internal constant RUNS = 12;
    uint256 internal constant DEPTH = 128;

    function test_handler_exercisesEveryActionWithoutReverting() public {
        // A campaign's worth of calls exceeds a test's gas limit; gas is not what this test measures.
        vm.pauseGasMetering();
        string[] memory names = handler.actionNames();
        uint256[] memory totals = new uint256[](names.length);
        uint256 rand = 0xa77e57a;
        uint256 reverts;
        for (uint256 run; run < RUNS; ++run) {
            if (run != 0) setUp(); // a fresh deployment and handler, as each invariant run starts
            for (uint256 i; i < DEPTH; ++i) {
                rand = uint256(keccak256(abi.encode(rand, i)));
                // An external self-call per step keeps each step's memory (and its quadratic cost) separate.
                if (!this.runStep(rand)) ++reverts;
            }
            for (uint256 k; k < names.length; ++k) {
                totals[k] += handler.calls(names[k]);
            }
        }
        assertEq(reverts, 0, "handler actions reverted");
        for (uint256 k; k < names.length; ++k) {
            console.log(names[k], totals[k]);
            assertGt(totals[k], 0, names[k]);
        }
    }

    /// @notice One step of the replayed campaign: a random action with random arguments, then every invariant.
    /// @return ok Whether the action succeeded.
    function runStep(uint256 rand) external returns (bool ok) {
        bytes4[] memory selectors = _selectors();
        bytes memory data = abi.encodeWithSelector(
            selectors[rand % selectors.length],
            uint256(keccak256(abi.encode(rand, 1))),
            uint256(keccak256(abi.encode(rand, 2))),
            uint256(keccak256(abi.encode(rand, 3))),
            uint256(keccak256(abi.encode(rand, 4)))
        );
        (ok,) = address(handler).call(data);
        _assertAll();
    }
}
