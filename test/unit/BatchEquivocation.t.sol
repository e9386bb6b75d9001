// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IJobEscrow} from "../../contracts/interfaces/IJobEscrow.sol";
import {ISlashing, ISlashingErrors} from "../../contracts/interfaces/ISlashing.sol";
import {IStakingRegistryEvents} from "../../contracts/interfaces/IStakingRegistry.sol";
import {BatchTree} from "../utils/BatchTree.sol";
import {SlashingTestBase} from "./Slashing.t.sol";

/// @title BatchEquivocationTest
/// @notice A key that signs two results for one job is slashed whether the results were in batch
/// attestations or one in a batch and one alone, once per (operator, job) across all kinds of evidence.
contract BatchEquivocationTest is SlashingTestBase {
    /// @dev A batch of `jobId` with `result` and two other jobs, signed by `key`; the statement for `jobId`.
    function _statement(uint256 key, uint256 jobId, bytes32 result, bytes32 salt)
        internal
        view
        returns (ISlashing.BatchStatement memory s)
    {
        IJobEscrow.BatchEntry[] memory entries = new IJobEscrow.BatchEntry[](3);
        entries[0] = IJobEscrow.BatchEntry(jobId, result);
        entries[1] = IJobEscrow.BatchEntry(jobId + 100, keccak256(abi.encode(salt, 1)));
        entries[2] = IJobEscrow.BatchEntry(jobId + 200, keccak256(abi.encode(salt, 2)));
        BatchTree.sort(entries);
        bytes32[] memory tree = BatchTree.tree(entries);
        uint256 k;
        while (entries[k].jobId != jobId) ++k;
        s = ISlashing.BatchStatement({
            root: tree[0],
            runtimeId: RUNTIME,
            jobId: jobId,
            resultHash: result,
            proof: BatchTree.proof(tree, k),
            signature: _sign(key, escrow.hashBatchAttestation(tree[0], RUNTIME))
        });
    }

    function test_slashBatchEquivocation_slashesTheSignerOfTwoBatches() public {
        Op memory op = ops[1];
        uint256 jobId = _createJob();
        ISlashing.BatchStatement memory a = _statement(op.signerKey, jobId, RESULT_A, "a");
        ISlashing.BatchStatement memory b = _statement(op.signerKey, jobId, RESULT_B, "b");
        uint256 amount = _penalty(minStake, slashing.penalties().equivocationBps);

        vm.expectEmit(address(registry));
        emit IStakingRegistryEvents.Slashed(op.operator, amount, reporter, _bounty(amount), true);
        vm.prank(reporter);
        assertEq(slashing.slashBatchEquivocation(a, b), amount);
        assertTrue(slashing.isSlashed(_offence(slashing.OFFENCE_EQUIVOCATION(), op.operator, bytes32(jobId))));
        assertFalse(registry.isActiveSigner(op.signer), "jailed");
    }

    function test_slashMixedEquivocation_slashesASingleAttestationAgainstABatchEntry() public {
        Op memory op = ops[2];
        uint256 jobId = _createJob();
        IJobEscrow.Attestation memory a = _attestation(jobId, RESULT_A, RUNTIME);
        bytes memory sigA = _sign(op.signerKey, escrow.hashAttestation(a));
        ISlashing.BatchStatement memory b = _statement(op.signerKey, jobId, RESULT_B, "b");
        vm.prank(reporter);
        uint256 amount = slashing.slashMixedEquivocation(a, sigA, b);
        assertEq(amount, _penalty(minStake, slashing.penalties().equivocationBps));
        assertEq(registry.operator(op.operator).stake, minStake - amount);
    }

    /// @dev The same offence whatever the evidence: after a single-attestation slash, batch evidence for
    /// the same job is refused.
    function test_RevertWhen_slashBatchEquivocation_alreadySlashedForTheJob() public {
        Op memory op = ops[0];
        uint256 jobId = _createJob();
        _reportEquivocation(op.signerKey, jobId);
        ISlashing.BatchStatement memory a = _statement(op.signerKey, jobId, RESULT_A, "a");
        ISlashing.BatchStatement memory b = _statement(op.signerKey, jobId, RESULT_C, "c");
        bytes32 offence = _offence(slashing.OFFENCE_EQUIVOCATION(), op.operator, bytes32(jobId));
        vm.expectRevert(abi.encodeWithSelector(ISlashingErrors.SlashingAlreadySlashed.selector, offence));
        slashing.slashBatchEquivocation(a, b);
    }

    function test_RevertWhen_slashBatchEquivocation_sameResult() public {
        uint256 jobId = _createJob();
        ISlashing.BatchStatement memory a = _statement(ops[0].signerKey, jobId, RESULT_A, "a");
        ISlashing.BatchStatement memory b = _statement(ops[0].signerKey, jobId, RESULT_A, "b");
        vm.expectRevert(
            abi.encodeWithSelector(ISlashingErrors.SlashingNotEquivocation.selector, jobId, jobId)
        );
        slashing.slashBatchEquivocation(a, b);
    }

    function test_RevertWhen_slashBatchEquivocation_differentJobs() public {
        uint256 jobId = _createJob();
        ISlashing.BatchStatement memory a = _statement(ops[0].signerKey, jobId, RESULT_A, "a");
        ISlashing.BatchStatement memory b = _statement(ops[0].signerKey, jobId + 1, RESULT_B, "b");
        vm.expectRevert(
            abi.encodeWithSelector(ISlashingErrors.SlashingNotEquivocation.selector, jobId, jobId + 1)
        );
        slashing.slashBatchEquivocation(a, b);
    }

    function test_RevertWhen_slashBatchEquivocation_proofDoesNotShowTheEntry() public {
        uint256 jobId = _createJob();
        ISlashing.BatchStatement memory a = _statement(ops[0].signerKey, jobId, RESULT_A, "a");
        ISlashing.BatchStatement memory b = _statement(ops[0].signerKey, jobId, RESULT_B, "b");
        // Claim the batch said RESULT_C: the proof of RESULT_B's leaf does not show it.
        b.resultHash = RESULT_C;
        vm.expectRevert(abi.encodeWithSelector(ISlashingErrors.SlashingNotInBatch.selector, jobId, b.root));
        slashing.slashBatchEquivocation(a, b);
    }

    function test_RevertWhen_slashBatchEquivocation_differentSigners() public {
        uint256 jobId = _createJob();
        ISlashing.BatchStatement memory a = _statement(ops[0].signerKey, jobId, RESULT_A, "a");
        ISlashing.BatchStatement memory b = _statement(ops[1].signerKey, jobId, RESULT_B, "b");
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingErrors.SlashingSignerMismatch.selector, ops[0].signer, ops[1].signer
            )
        );
        slashing.slashBatchEquivocation(a, b);
    }

    /// @dev A single attestation over other model or input bytes is another question, not equivocation.
    function test_RevertWhen_slashMixedEquivocation_attestationForOtherInput() public {
        uint256 jobId = _createJob();
        IJobEscrow.Attestation memory a = _attestation(jobId, RESULT_A, RUNTIME);
        a.inputHash = keccak256("other input");
        bytes memory sigA = _sign(ops[0].signerKey, escrow.hashAttestation(a));
        ISlashing.BatchStatement memory b = _statement(ops[0].signerKey, jobId, RESULT_B, "b");
        vm.expectRevert(
            abi.encodeWithSelector(ISlashingErrors.SlashingNotEquivocation.selector, jobId, jobId)
        );
        slashing.slashMixedEquivocation(a, sigA, b);
    }
}
