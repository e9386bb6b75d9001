// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IJobEscrow, IJobEscrowErrors, IJobEscrowEvents} from "../../contracts/interfaces/IJobEscrow.sol";
import {IStakingRegistryEvents} from "../../contracts/interfaces/IStakingRegistry.sol";
import {SignatureQuorum} from "../../contracts/libraries/SignatureQuorum.sol";
import {BatchTree} from "../utils/BatchTree.sol";
import {JobEscrowTestBase} from "./JobEscrow.t.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @notice Shared fixture for batch settlement: N = 4 active operators (M = 3), batches of fresh jobs.
abstract contract BatchTestBase is JobEscrowTestBase {
    /// @dev `n` fresh jobs with distinct results, sorted as `settleBatch` wants them.
    function _batch(uint256 n) internal returns (IJobEscrow.BatchEntry[] memory entries) {
        entries = new IJobEscrow.BatchEntry[](n);
        for (uint256 i; i < n; ++i) {
            entries[i] =
                IJobEscrow.BatchEntry({jobId: _createJob(), resultHash: keccak256(abi.encode("out", i))});
        }
        BatchTree.sort(entries);
    }

    /// @dev Signatures of the first `m` operators over the batch attestation of `entries` under RUNTIME.
    function _signBatch(IJobEscrow.BatchEntry[] memory entries, uint256 m)
        internal
        view
        returns (bytes memory sigs, address[] memory signers)
    {
        return _packSignatures(_firstKeys(m), escrow.hashBatchAttestation(BatchTree.root(entries), RUNTIME));
    }

    function _settleBatch(IJobEscrow.BatchEntry[] memory entries)
        internal
        returns (address[] memory signers)
    {
        bytes memory sigs;
        (sigs, signers) = _signBatch(entries, 3);
        escrow.settleBatch(RUNTIME, entries, sigs);
    }

    function _expectRevertBatch(IJobEscrow.BatchEntry[] memory entries, bytes memory sigs, bytes memory err)
        internal
    {
        vm.expectRevert(err);
        escrow.settleBatch(RUNTIME, entries, sigs);
    }
}

/// @title SettleBatchTest
/// @notice `settleBatch`: one M-of-N signature set over a Merkle root settles every job in it.
contract SettleBatchTest is BatchTestBase {
    function test_settleBatch_settlesEveryJobAsSettleWould() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(5);
        (bytes memory sigs, address[] memory signers) = _signBatch(entries, 3);
        bytes32 root = BatchTree.root(entries);
        bytes32[] memory tree = BatchTree.tree(entries);

        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.BatchSettled(root, RUNTIME, signers, 5);
        assertEq(escrow.settleBatch(RUNTIME, entries, sigs), root, "returned root");

        IJobEscrow.BatchRecord memory b = escrow.batch(root);
        assertEq(b.signersHash, keccak256(abi.encode(signers)), "record: signers");
        assertEq(b.settledAt, block.timestamp, "record: settledAt");
        for (uint256 i; i < entries.length; ++i) {
            IJobEscrow.Job memory j = escrow.job(entries[i].jobId);
            assertEq(uint8(j.status), SETTLED, "status reported");
            assertTrue(escrow.isBatchSettled(entries[i].jobId), "bit");
            assertEq(j.updatedAt, 0, "the job's own word is not written");
            assertEq(j.settlement, bytes20(0), "no per-job settlement");
            assertEq(j.deadline, block.timestamp + 1 hours, "deadline kept");
            assertEq(j.client, client, "client kept");
            assertEq(j.fee, FEE, "fee kept");
            assertEq(j.modelId, MODEL, "model kept");
            bytes32[] memory proof = BatchTree.proof(tree, i);
            assertTrue(
                escrow.verifyBatchSettlement(entries[i].jobId, root, entries[i].resultHash, signers, proof),
                "settlement"
            );
            // Another job's result, other signers or a root never settled do not verify.
            assertFalse(
                escrow.verifyBatchSettlement(
                    entries[i].jobId, root, entries[(i + 1) % 5].resultHash, signers, proof
                ),
                "other result"
            );
            address[] memory others = new address[](3);
            (others[0], others[1], others[2]) = (signers[0], signers[1], ops[3].signer);
            assertFalse(
                escrow.verifyBatchSettlement(entries[i].jobId, root, entries[i].resultHash, others, proof),
                "other signers"
            );
            assertFalse(
                escrow.verifyBatchSettlement(
                    entries[i].jobId, tree[1], entries[i].resultHash, signers, proof
                ),
                "not a settled root"
            );
            // The single-settlement check does not apply to a batch-settled job.
            assertFalse(escrow.verifySettlement(entries[i].jobId, entries[i].resultHash, signers), "single");
        }
    }

    /// @dev The bitmap across word boundaries: ids around multiples of 256 land in the right bit and word,
    /// and no other job reads as batch-settled.
    /// forge-config: default.fuzz.runs = 64
    function testFuzz_settleBatch_bitmapAcrossWordBoundaries(uint256 skip, uint256 size, uint256 seed)
        public
    {
        skip = bound(skip, 250, 520);
        size = bound(size, 1, 12);
        for (uint256 i; i < skip; ++i) {
            _createJob();
        }
        // `size` of the next 16 ids (crossing 256 or 512 for most skips), chosen by `seed`.
        uint256 first = escrow.jobCount() + 1;
        for (uint256 i; i < 16; ++i) {
            _createJob();
        }
        IJobEscrow.BatchEntry[] memory entries = new IJobEscrow.BatchEntry[](size);
        bool[16] memory chosen;
        uint256 n;
        for (uint256 i; n < size; ++i) {
            uint256 offset = uint256(keccak256(abi.encode(seed, i))) % 16;
            if (chosen[offset]) continue;
            chosen[offset] = true;
            entries[n++] = IJobEscrow.BatchEntry(first + offset, keccak256(abi.encode("out", offset)));
        }
        BatchTree.sort(entries);
        _settleBatch(entries);
        for (uint256 offset; offset < 16; ++offset) {
            assertEq(escrow.isBatchSettled(first + offset), chosen[offset], "bit");
            assertEq(_status(first + offset), chosen[offset] ? SETTLED : CREATED, "status");
        }
        assertFalse(escrow.isBatchSettled(first - 1), "before");
        assertFalse(escrow.isBatchSettled(first + 16), "after");
        // Every chosen job refuses a second settlement, single or batched; the others still settle alone.
        for (uint256 offset; offset < 16; ++offset) {
            uint256 jobId = first + offset;
            (bytes memory sigs,) = _packSignatures(_firstKeys(3), _digest(jobId, RESULT));
            if (chosen[offset]) {
                vm.expectRevert(_wrongStatus(jobId, SETTLED));
                escrow.settle(jobId, RUNTIME, RESULT, OUTPUT, sigs);
            } else {
                escrow.settle(jobId, RUNTIME, RESULT, OUTPUT, sigs);
            }
        }
    }

    function test_settleBatch_singleEntryRootIsItsLeaf() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(1);
        _settleBatch(entries);
        bytes32 leaf = escrow.batchLeaf(entries[0].jobId, entries[0].resultHash);
        assertEq(leaf, BatchTree.leaf(entries[0]));
        assertTrue(
            escrow.verifyBatchInclusion(leaf, entries[0].jobId, entries[0].resultHash, new bytes32[](0))
        );
        assertEq(uint8(escrow.job(entries[0].jobId).status), SETTLED);
    }

    function test_settleBatch_everyEntryProvesInclusionWithOpenZeppelinMerkleProof() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(7);
        bytes32[] memory tree = BatchTree.tree(entries);
        bytes32 root = _settleRoot(entries);
        assertEq(root, tree[0], "contract root equals the model's root");
        for (uint256 k; k < entries.length; ++k) {
            bytes32[] memory proof = BatchTree.proof(tree, k);
            assertTrue(
                escrow.verifyBatchInclusion(root, entries[k].jobId, entries[k].resultHash, proof), "in"
            );
            assertTrue(
                MerkleProof.verify(proof, root, BatchTree.leaf(entries[k])), "OpenZeppelin MerkleProof"
            );
            // The same proof does not prove another result for the job.
            assertFalse(
                escrow.verifyBatchInclusion(root, entries[k].jobId, bytes32(uint256(1)), proof), "forged"
            );
        }
    }

    function _settleRoot(IJobEscrow.BatchEntry[] memory entries) internal returns (bytes32 root) {
        (bytes memory sigs,) = _signBatch(entries, 3);
        root = escrow.settleBatch(RUNTIME, entries, sigs);
    }

    function test_settleBatch_acceptsEveryActiveSigner() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(3);
        (bytes memory sigs, address[] memory signers) = _signBatch(entries, 4);
        bytes32 root = escrow.settleBatch(RUNTIME, entries, sigs);
        assertEq(signers.length, 4);
        assertEq(escrow.batch(root).signersHash, keccak256(abi.encode(signers)));
    }

    function test_RevertWhen_settleBatch_empty() public {
        _expectRevertBatch(
            new IJobEscrow.BatchEntry[](0),
            "",
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowBatchSizeOutOfRange.selector, 0, 1024)
        );
    }

    function test_RevertWhen_settleBatch_moreThanMaxEntries() public {
        IJobEscrow.BatchEntry[] memory entries = new IJobEscrow.BatchEntry[](1025);
        _expectRevertBatch(
            entries,
            "",
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowBatchSizeOutOfRange.selector, 1025, 1024)
        );
    }

    function test_RevertWhen_settleBatch_entriesNotAscending() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(4);
        (bytes memory sigs,) = _signBatch(entries, 3);
        (entries[1], entries[2]) = (entries[2], entries[1]);
        _expectRevertBatch(
            entries, sigs, abi.encodeWithSelector(IJobEscrowErrors.JobEscrowBatchNotAscending.selector, 2)
        );
    }

    function test_RevertWhen_settleBatch_duplicateEntry() public {
        IJobEscrow.BatchEntry[] memory three = _batch(3);
        IJobEscrow.BatchEntry[] memory entries = new IJobEscrow.BatchEntry[](4);
        (entries[0], entries[1], entries[2], entries[3]) = (three[0], three[1], three[1], three[2]);
        _expectRevertBatch(
            entries, "", abi.encodeWithSelector(IJobEscrowErrors.JobEscrowBatchNotAscending.selector, 2)
        );
    }

    function test_RevertWhen_settleBatch_jobTwiceWithDifferentResults() public {
        uint256 jobId = _createJob();
        IJobEscrow.BatchEntry[] memory entries = new IJobEscrow.BatchEntry[](2);
        entries[0] = IJobEscrow.BatchEntry(jobId, keccak256("a"));
        entries[1] = IJobEscrow.BatchEntry(jobId, keccak256("b"));
        BatchTree.sort(entries);
        (bytes memory sigs,) = _signBatch(entries, 3);
        _expectRevertBatch(
            entries,
            sigs,
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowWrongStatus.selector, jobId, SETTLED)
        );
    }

    function test_RevertWhen_settleBatch_replayed() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(3);
        (bytes memory sigs,) = _signBatch(entries, 3);
        escrow.settleBatch(RUNTIME, entries, sigs);
        _expectRevertBatch(
            entries,
            sigs,
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowWrongStatus.selector, entries[0].jobId, SETTLED)
        );
    }

    function test_RevertWhen_settleBatch_jobAlreadySettledAlone() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(3);
        (bytes memory sigs,) = _signBatch(entries, 3);
        _settleWith(entries[1].jobId, 3);
        _expectRevertBatch(
            entries,
            sigs,
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowWrongStatus.selector, entries[1].jobId, SETTLED)
        );
    }

    function test_RevertWhen_settleBatch_unknownJob() public {
        IJobEscrow.BatchEntry[] memory entries = new IJobEscrow.BatchEntry[](1);
        entries[0] = IJobEscrow.BatchEntry(99, RESULT);
        (bytes memory sigs,) = _signBatch(entries, 3);
        _expectRevertBatch(
            entries, sigs, abi.encodeWithSelector(IJobEscrowErrors.JobEscrowWrongStatus.selector, 99, NONE)
        );
    }

    function test_RevertWhen_settleBatch_oneJobPastItsDeadline() public {
        IJobEscrow.BatchEntry[] memory entries = new IJobEscrow.BatchEntry[](2);
        entries[0] = IJobEscrow.BatchEntry(_createJob(), RESULT);
        uint256 late = _createJobFor(client, FEE, block.timestamp + 10 minutes);
        entries[1] = IJobEscrow.BatchEntry(late, RESULT);
        BatchTree.sort(entries);
        vm.warp(block.timestamp + 10 minutes + 1);
        (bytes memory sigs,) = _signBatch(entries, 3);
        _expectRevertBatch(
            entries,
            sigs,
            abi.encodeWithSelector(
                IJobEscrowErrors.JobEscrowDeadlinePassed.selector, late, escrow.job(late).deadline
            )
        );
    }

    function test_RevertWhen_settleBatch_refundedJob() public {
        IJobEscrow.BatchEntry[] memory entries = new IJobEscrow.BatchEntry[](1);
        uint256 jobId = _createJobFor(client, FEE, block.timestamp + 10 minutes);
        entries[0] = IJobEscrow.BatchEntry(jobId, RESULT);
        vm.warp(block.timestamp + 10 minutes + 1);
        escrow.refund(jobId);
        (bytes memory sigs,) = _signBatch(entries, 3);
        _expectRevertBatch(
            entries,
            sigs,
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowWrongStatus.selector, jobId, REFUNDED)
        );
    }

    function test_RevertWhen_settleBatch_runtimeNotAllowed() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(2);
        bytes memory sigs;
        (sigs,) = _packSignatures(
            _firstKeys(3), escrow.hashBatchAttestation(BatchTree.root(entries), OTHER_RUNTIME)
        );
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowRuntimeNotAllowed.selector, OTHER_RUNTIME)
        );
        escrow.settleBatch(OTHER_RUNTIME, entries, sigs);
    }

    function test_RevertWhen_settleBatch_belowThreshold() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(2);
        (bytes memory sigs,) = _signBatch(entries, 2);
        _expectRevertBatch(
            entries,
            sigs,
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowInsufficientSignatures.selector, 2, 3)
        );
    }

    function test_RevertWhen_settleBatch_signerNotActive() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(2);
        uint256[] memory keys = _firstKeys(3);
        Op memory outsider = _newOp(); // never staked
        keys[0] = outsider.signerKey;
        keys = _sortByAddress(keys);
        (bytes memory sigs, address[] memory signers) =
            _packSignatures(keys, escrow.hashBatchAttestation(BatchTree.root(entries), RUNTIME));
        uint256 index;
        while (signers[index] != outsider.signer) ++index;
        _expectRevertBatch(
            entries,
            sigs,
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowInactiveSigner.selector, index, outsider.signer)
        );
    }

    /// @dev Signatures over another batch's root recover to other addresses: never members (C8-style).
    function test_RevertWhen_settleBatch_signaturesOverAnotherBatch() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(3);
        IJobEscrow.BatchEntry[] memory other = _batch(3);
        (bytes memory sigs,) = _signBatch(other, 3);
        vm.expectRevert();
        escrow.settleBatch(RUNTIME, entries, sigs);
        assertEq(uint8(escrow.job(entries[0].jobId).status), CREATED);
    }

    /// @dev A single-job Attestation signature is not a batch attestation, even for a batch of that one job.
    function test_RevertWhen_settleBatch_signaturesOverTheSingleAttestation() public {
        IJobEscrow.BatchEntry[] memory entries = new IJobEscrow.BatchEntry[](1);
        entries[0] = IJobEscrow.BatchEntry(_createJob(), RESULT);
        (bytes memory sigs,) = _signed(entries[0].jobId, 3);
        vm.expectRevert();
        escrow.settleBatch(RUNTIME, entries, sigs);
        assertEq(uint8(escrow.job(entries[0].jobId).status), CREATED);
    }

    function test_RevertWhen_settleBatch_duplicateSigner() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(2);
        (bytes memory sigs,) = _signBatch(entries, 3);
        bytes memory first = new bytes(65);
        for (uint256 i; i < 65; ++i) {
            first[i] = sigs[i];
        }
        bytes memory doubled = bytes.concat(first, sigs);
        vm.expectRevert(
            abi.encodeWithSelector(
                SignatureQuorum.SignatureQuorumSignersNotAscending.selector,
                1,
                vm.addr(_firstKeys(3)[0]),
                vm.addr(_firstKeys(3)[0])
            )
        );
        escrow.settleBatch(RUNTIME, entries, doubled);
    }

    function test_RevertWhen_settleBatch_paused() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(2);
        (bytes memory sigs,) = _signBatch(entries, 3);
        vm.prank(guardian);
        escrow.pause();
        _expectRevertBatch(entries, sigs, abi.encodeWithSelector(Pausable.EnforcedPause.selector));
    }

    /// @dev Random batches: the contract's root equals the independent model's, every proof verifies and
    /// every job settles; a flipped bit in any proof element or result fails.
    function testFuzz_settleBatch_randomBatches(uint256 seed, uint256 size) public {
        size = bound(size, 1, 33);
        IJobEscrow.BatchEntry[] memory entries = new IJobEscrow.BatchEntry[](size);
        for (uint256 i; i < size; ++i) {
            entries[i] = IJobEscrow.BatchEntry(_createJob(), keccak256(abi.encode(seed, i)));
        }
        BatchTree.sort(entries);
        bytes32[] memory tree = BatchTree.tree(entries);
        bytes32 root = _settleRoot(entries);
        assertEq(root, tree[0], "root");
        uint256 k = seed % size;
        bytes32[] memory proof = BatchTree.proof(tree, k);
        assertTrue(escrow.verifyBatchInclusion(root, entries[k].jobId, entries[k].resultHash, proof), "proof");
        assertFalse(
            escrow.verifyBatchInclusion(
                root, entries[k].jobId, entries[k].resultHash ^ bytes32(uint256(1)), proof
            ),
            "tampered result"
        );
        if (proof.length > 0) {
            uint256 d = (seed >> 128) % proof.length;
            proof[d] ^= bytes32(uint256(1) << (seed % 256));
            assertFalse(
                escrow.verifyBatchInclusion(root, entries[k].jobId, entries[k].resultHash, proof),
                "tampered proof"
            );
        }
        for (uint256 i; i < size; ++i) {
            assertEq(uint8(escrow.job(entries[i].jobId).status), SETTLED);
        }
    }
}

/// @title BatchLifecycleTest
/// @notice After a batch settles, `releaseBatch` pays it against its record, `challengeBatched` disputes one
/// job (which then resolves, expires and slashes as a job settled alone), and nothing pays or refunds twice.
contract BatchLifecycleTest is BatchTestBase {
    uint256 internal constant SLASHED = 300 ether; // 30% overturned penalty of the minimum stake
    uint256 internal constant BOUNTY = 30 ether; // 10% of the slash to the challenger

    function _batchWindowEnd(IJobEscrow.BatchEntry[] memory entries) internal view returns (uint256) {
        return uint256(escrow.batch(BatchTree.root(entries)).settledAt) + escrow.config().challengeWindow;
    }

    function _challengeBatched(IJobEscrow.BatchEntry[] memory entries, uint256 k) internal {
        _fund(challenger, BOND);
        vm.prank(challenger);
        escrow.challengeBatched(
            entries[k].jobId,
            BatchTree.root(entries),
            entries[k].resultHash,
            BatchTree.proof(BatchTree.tree(entries), k)
        );
    }

    function test_releaseBatch_paysExactlyWhatSingleReleasesPay() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(4);
        address[] memory signers = _settleBatch(entries);
        address[] memory operators = _operators(signers);
        vm.warp(_batchWindowEnd(entries));

        for (uint256 k; k < entries.length; ++k) {
            vm.expectEmit(address(escrow));
            emit IJobEscrowEvents.PaymentReleased(entries[k].jobId, SHARE_OF_3, TREASURY_OF_3);
        }
        for (uint256 i; i < 3; ++i) {
            vm.expectEmit(address(escrow));
            emit IJobEscrowEvents.Credited(operators[i], 4 * SHARE_OF_3);
        }
        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.Credited(treasury, 4 * TREASURY_OF_3);
        escrow.releaseBatch(entries, signers);

        for (uint256 k; k < entries.length; ++k) {
            assertEq(uint8(escrow.job(entries[k].jobId).status), RELEASED);
            assertTrue(escrow.isBatchSettled(entries[k].jobId), "the bit stays");
        }
        assertEq(_sumOwed(operators) + escrow.owed(treasury), 4 * FEE, "credits sum to the fees");
        assertEq(token.balanceOf(address(escrow)), 4 * FEE, "nothing left the escrow yet");
    }

    function test_RevertWhen_releaseBatch_twice() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(3);
        address[] memory signers = _settleBatch(entries);
        vm.warp(_batchWindowEnd(entries));
        escrow.releaseBatch(entries, signers);
        uint256 owedTreasury = escrow.owed(treasury);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrowErrors.JobEscrowNothingToRelease.selector, BatchTree.root(entries)
            )
        );
        escrow.releaseBatch(entries, signers);
        assertEq(escrow.owed(treasury), owedTreasury, "paid once");
    }

    function test_RevertWhen_release_batchSettledJobAlone() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(3);
        address[] memory signers = _settleBatch(entries);
        vm.warp(_batchWindowEnd(entries));
        // `release` is for jobs settled alone: a batch job has no per-job settlement to check against.
        vm.expectRevert(_wrongStatus(entries[1].jobId, CREATED));
        escrow.release(entries[1].jobId, entries[1].resultHash, signers);
    }

    function test_RevertWhen_releaseBatch_windowOpen() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(2);
        address[] memory signers = _settleBatch(entries);
        uint256 windowEnd = _batchWindowEnd(entries);
        vm.warp(windowEnd - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrowErrors.JobEscrowBatchWindowOpen.selector, BatchTree.root(entries), windowEnd
            )
        );
        escrow.releaseBatch(entries, signers);
    }

    function test_RevertWhen_releaseBatch_wrongSigners() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(2);
        address[] memory signers = _settleBatch(entries);
        vm.warp(_batchWindowEnd(entries));
        signers[0] = ops[3].signer;
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrowErrors.JobEscrowBatchSignersMismatch.selector, BatchTree.root(entries)
            )
        );
        escrow.releaseBatch(entries, signers);
    }

    function test_RevertWhen_releaseBatch_wrongResult() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(2);
        address[] memory signers = _settleBatch(entries);
        vm.warp(_batchWindowEnd(entries));
        entries[1].resultHash = RESULT;
        BatchTree.sort(entries);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowUnknownBatch.selector, BatchTree.root(entries))
        );
        escrow.releaseBatch(entries, signers);
    }

    function test_RevertWhen_releaseBatch_partOfTheBatch() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(3);
        address[] memory signers = _settleBatch(entries);
        vm.warp(_batchWindowEnd(entries));
        IJobEscrow.BatchEntry[] memory part = new IJobEscrow.BatchEntry[](2);
        (part[0], part[1]) = (entries[0], entries[1]);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowUnknownBatch.selector, BatchTree.root(part))
        );
        escrow.releaseBatch(part, signers);
    }

    function test_RevertWhen_releaseBatch_jobTwice() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(2);
        address[] memory signers = _settleBatch(entries);
        vm.warp(_batchWindowEnd(entries));
        IJobEscrow.BatchEntry[] memory twice = new IJobEscrow.BatchEntry[](2);
        (twice[0], twice[1]) = (entries[0], entries[0]);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrowErrors.JobEscrowBatchNotAscending.selector, 1));
        escrow.releaseBatch(twice, signers);
    }

    function test_RevertWhen_releaseBatch_jobsSettledAlone() public {
        uint256 a = _createJob();
        address[] memory signers = _settleWith(a, 3);
        IJobEscrow.BatchEntry[] memory entries = new IJobEscrow.BatchEntry[](1);
        entries[0] = IJobEscrow.BatchEntry(a, RESULT);
        vm.warp(_windowEnd(a));
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowUnknownBatch.selector, BatchTree.root(entries))
        );
        escrow.releaseBatch(entries, signers);
    }

    function test_RevertWhen_releaseBatch_empty() public {
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowBatchSizeOutOfRange.selector, 0, 1024)
        );
        escrow.releaseBatch(new IJobEscrow.BatchEntry[](0), new address[](0));
    }

    function test_RevertWhen_releaseBatch_paused() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(1);
        address[] memory signers = _settleBatch(entries);
        vm.warp(_batchWindowEnd(entries));
        _pause();
        vm.expectRevert(Pausable.EnforcedPause.selector);
        escrow.releaseBatch(entries, signers);
    }

    /// @dev A challenged job is skipped: the rest of the batch is paid, the dispute decides the other one.
    function test_releaseBatch_skipsAChallengedJob() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(3);
        address[] memory signers = _settleBatch(entries);
        _challengeBatched(entries, 1);
        vm.warp(_batchWindowEnd(entries));
        escrow.releaseBatch(entries, signers);
        assertEq(uint8(escrow.job(entries[0].jobId).status), RELEASED);
        assertEq(uint8(escrow.job(entries[1].jobId).status), DISPUTED);
        assertEq(uint8(escrow.job(entries[2].jobId).status), RELEASED);
        assertEq(escrow.owed(treasury), 2 * TREASURY_OF_3, "two jobs paid");

        // The dispute upholds the result: paid once, with the bond to the treasury.
        vm.prank(arbiter);
        escrow.resolveDispute(entries[1].jobId, true, entries[1].resultHash, signers);
        assertEq(escrow.owed(treasury), 3 * TREASURY_OF_3 + BOND);
        assertEq(_sumOwed(_operators(signers)) + escrow.owed(treasury), 3 * FEE + BOND);
    }

    /// @dev Batch then single: a batch-settled job cannot be settled, batched again or refunded.
    function test_RevertWhen_settle_batchSettledJob() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(2);
        _settleBatch(entries);
        uint256 jobId = entries[0].jobId;
        (bytes memory sigs,) = _signed(jobId, 3);
        vm.expectRevert(_wrongStatus(jobId, SETTLED));
        escrow.settle(jobId, RUNTIME, RESULT, OUTPUT, sigs);
    }

    function test_RevertWhen_refund_batchSettledJob() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(2);
        _settleBatch(entries);
        vm.warp(block.timestamp + 1 hours + 1);
        vm.expectRevert(_wrongStatus(entries[0].jobId, SETTLED));
        escrow.refund(entries[0].jobId);
        assertEq(token.balanceOf(address(escrow)), 2 * FEE, "nothing refunded");
    }

    function test_RevertWhen_challenge_batchSettledJobWithoutProof() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(2);
        _settleBatch(entries);
        _fund(challenger, BOND);
        vm.expectRevert(_wrongStatus(entries[0].jobId, CREATED));
        vm.prank(challenger);
        escrow.challenge(entries[0].jobId);
    }

    function test_challengeBatched_materializesTheJob() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(3);
        address[] memory signers = _settleBatch(entries);
        vm.warp(block.timestamp + 5);
        _fund(challenger, BOND);
        bytes32 root = BatchTree.root(entries);
        bytes32[] memory proof = BatchTree.proof(BatchTree.tree(entries), 2);
        vm.expectEmit(address(escrow));
        emit IJobEscrowEvents.JobChallenged(entries[2].jobId, challenger, BOND);
        vm.prank(challenger);
        escrow.challengeBatched(entries[2].jobId, root, entries[2].resultHash, proof);
        IJobEscrow.Job memory j = escrow.job(entries[2].jobId);
        assertEq(uint8(j.status), DISPUTED);
        assertEq(j.updatedAt, block.timestamp);
        assertTrue(escrow.verifySettlement(entries[2].jobId, entries[2].resultHash, signers), "own word");
        assertEq(token.balanceOf(address(escrow)), 3 * FEE + BOND, "bond held");
        // Challenged once only.
        _fund(challenger, BOND);
        vm.expectRevert(_wrongStatus(entries[2].jobId, DISPUTED));
        vm.prank(challenger);
        escrow.challengeBatched(entries[2].jobId, root, entries[2].resultHash, proof);
    }

    function test_RevertWhen_challengeBatched_wrongProof() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(4);
        _settleBatch(entries);
        bytes32 root = BatchTree.root(entries);
        bytes32[] memory otherProof = BatchTree.proof(BatchTree.tree(entries), 1);
        _fund(challenger, BOND);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowNotInBatch.selector, entries[0].jobId, root)
        );
        vm.prank(challenger);
        escrow.challengeBatched(entries[0].jobId, root, entries[0].resultHash, otherProof);
    }

    function test_RevertWhen_challengeBatched_wrongResult() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(4);
        _settleBatch(entries);
        bytes32 root = BatchTree.root(entries);
        bytes32[] memory proof = BatchTree.proof(BatchTree.tree(entries), 0);
        _fund(challenger, BOND);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowNotInBatch.selector, entries[0].jobId, root)
        );
        vm.prank(challenger);
        escrow.challengeBatched(entries[0].jobId, root, RESULT, proof);
    }

    function test_RevertWhen_challengeBatched_unknownRoot() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(4);
        _settleBatch(entries);
        bytes32[] memory tree = BatchTree.tree(entries);
        _fund(challenger, BOND);
        // An inner node of the settled tree is not a settled batch.
        vm.expectRevert(abi.encodeWithSelector(IJobEscrowErrors.JobEscrowUnknownBatch.selector, tree[1]));
        vm.prank(challenger);
        escrow.challengeBatched(entries[0].jobId, tree[1], entries[0].resultHash, new bytes32[](0));
    }

    function test_RevertWhen_challengeBatched_jobOfAnotherBatch() public {
        IJobEscrow.BatchEntry[] memory a = _batch(2);
        IJobEscrow.BatchEntry[] memory b = _batch(2);
        _settleBatch(a);
        // b's root is not settled; a job of b with a's root has no valid proof.
        _fund(challenger, BOND);
        vm.expectRevert(_wrongStatus(b[0].jobId, CREATED));
        vm.prank(challenger);
        escrow.challengeBatched(b[0].jobId, BatchTree.root(a), b[0].resultHash, new bytes32[](0));
    }

    function test_RevertWhen_challengeBatched_windowClosed() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(2);
        _settleBatch(entries);
        uint256 windowEnd = _batchWindowEnd(entries);
        vm.warp(windowEnd);
        _fund(challenger, BOND);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrowErrors.JobEscrowChallengeWindowClosed.selector, entries[0].jobId, windowEnd
            )
        );
        vm.prank(challenger);
        escrow.challengeBatched(
            entries[0].jobId,
            BatchTree.root(entries),
            entries[0].resultHash,
            BatchTree.proof(BatchTree.tree(entries), 0)
        );
    }

    function test_RevertWhen_challengeBatched_afterRelease() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(2);
        address[] memory signers = _settleBatch(entries);
        vm.warp(_batchWindowEnd(entries));
        escrow.releaseBatch(entries, signers);
        _fund(challenger, BOND);
        vm.expectRevert(_wrongStatus(entries[0].jobId, RELEASED));
        vm.prank(challenger);
        escrow.challengeBatched(
            entries[0].jobId,
            BatchTree.root(entries),
            entries[0].resultHash,
            BatchTree.proof(BatchTree.tree(entries), 0)
        );
    }

    /// @dev One job of a batch is challenged and overturned: its client is refunded, its signers slashed,
    /// the other jobs of the batch are unaffected and still paid by `releaseBatch`.
    function test_resolveDispute_overturnsOneBatchJobAndSlashesItsSigners() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(3);
        address[] memory signers = _settleBatch(entries);
        address[] memory operators = _operators(signers);
        uint256 jobId = entries[2].jobId;
        _challengeBatched(entries, 2);

        for (uint256 i; i < operators.length; ++i) {
            vm.expectEmit(address(registry));
            emit IStakingRegistryEvents.Slashed(operators[i], SLASHED, challenger, BOUNTY, true);
        }
        vm.prank(arbiter);
        escrow.resolveDispute(jobId, false, entries[2].resultHash, signers);
        assertEq(uint8(escrow.job(jobId).status), OVERTURNED);
        assertEq(escrow.owed(client), FEE, "client refunded");
        assertEq(escrow.owed(challenger), BOND, "bond returned");
        assertEq(uint8(escrow.job(entries[0].jobId).status), SETTLED, "rest of the batch untouched");

        // The overturned job is neither refunded again nor paid by the batch release.
        vm.warp(block.timestamp + 1 hours + 1);
        vm.expectRevert(_wrongStatus(jobId, OVERTURNED));
        escrow.refund(jobId);
        escrow.releaseBatch(entries, signers);
        assertEq(_sumOwed(operators) + escrow.owed(treasury), 2 * FEE, "two jobs paid");
        assertEq(uint8(escrow.job(jobId).status), OVERTURNED);
    }

    function test_expireDispute_refundsABatchJob() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(2);
        _settleBatch(entries);
        _challengeBatched(entries, 0);
        vm.warp(_disputeEnd(entries[0].jobId));
        escrow.expireDispute(entries[0].jobId);
        assertEq(uint8(escrow.job(entries[0].jobId).status), REFUNDED);
        assertEq(escrow.owed(client), FEE);
        assertEq(escrow.owed(challenger), BOND);
    }

    function test_RevertWhen_resolveDispute_batchJobWithAnotherJobsResult() public {
        IJobEscrow.BatchEntry[] memory entries = _batch(2);
        address[] memory signers = _settleBatch(entries);
        _challengeBatched(entries, 0);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrowErrors.JobEscrowSettlementMismatch.selector, entries[0].jobId)
        );
        vm.prank(arbiter);
        escrow.resolveDispute(entries[0].jobId, false, entries[1].resultHash, signers);
    }
}
