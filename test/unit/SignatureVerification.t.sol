// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {JobEscrow} from "../../contracts/JobEscrow.sol";
import {IJobEscrow, IJobEscrowErrors, IJobEscrowEvents} from "../../contracts/interfaces/IJobEscrow.sol";
import {ISlashingErrors} from "../../contracts/interfaces/ISlashing.sol";
import {IStakingRegistry, IStakingRegistryErrors} from "../../contracts/interfaces/IStakingRegistry.sol";
import {SignatureQuorum} from "../../contracts/libraries/SignatureQuorum.sol";
import {AttestaTest} from "../utils/AttestaTest.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";

/// @title SignatureVerificationBase
/// @notice Helpers shared by the concrete and the fuzz suites: settle calls, signature chunk surgery, the
/// expected errors, EIP-712 digests computed by hand, and a reference model of what settle must answer.
abstract contract SignatureVerificationBase is AttestaTest {
    /// @dev floor(n / 2) of secp256k1: EIP-2's upper bound on s, written out rather than taken from a library.
    uint256 internal constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// @dev The EIP-712 type strings, spelled out so a change of the contract's type hash fails a test.
    bytes internal constant ATTESTATION_TYPE =
        "Attestation(uint256 jobId,bytes32 modelId,bytes32 inputHash,bytes32 resultHash,bytes32 runtimeId)";
    bytes internal constant DOMAIN_TYPE =
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";

    /// @dev Statuses as the escrow's errors report them.
    uint8 internal constant STATUS_SETTLED = uint8(IJobEscrow.JobStatus.Settled);
    uint8 internal constant STATUS_RELEASED = uint8(IJobEscrow.JobStatus.Released);

    /*//////////////////////////////////////////////////////////////
                                 SETTLE
    //////////////////////////////////////////////////////////////*/

    function _result() internal pure returns (bytes32) {
        return keccak256(OUTPUT);
    }

    function _settleCall(uint256 jobId, bytes memory sigs) internal pure returns (bytes memory) {
        return abi.encodeCall(JobEscrow.settle, (jobId, RUNTIME, keccak256(OUTPUT), OUTPUT, sigs));
    }

    function _trySettle(uint256 jobId, bytes memory sigs) internal returns (bool ok, bytes memory ret) {
        (ok, ret) = address(escrow).call(_settleCall(jobId, sigs));
    }

    /// @dev Whether `settle(jobId, sigs)` would succeed right now; leaves no trace (the control of a test).
    function _wouldSettle(uint256 jobId, bytes memory sigs) internal returns (bool ok) {
        uint256 snapshot = vm.snapshotState();
        (ok,) = _trySettle(jobId, sigs);
        vm.revertToStateAndDelete(snapshot);
    }

    /// @dev Signatures by `keys` over `digest`, in the given order.
    function _signAll(uint256[] memory keys, bytes32 digest) internal pure returns (bytes memory sigs) {
        (sigs,) = _packSignatures(keys, digest);
    }

    function _status(uint256 jobId) internal view returns (uint8) {
        return uint8(escrow.job(jobId).status);
    }

    /// @dev Asserts `jobId` is settled with exactly `signers`, committed by address and never by signature bytes.
    function _assertSettledWith(uint256 jobId, address[] memory signers) internal view {
        assertEq(_status(jobId), STATUS_SETTLED, "job settled");
        assertEq(
            escrow.job(jobId).settlement,
            bytes20(keccak256(abi.encode(_result(), keccak256(abi.encode(signers))))),
            "settlement commits signers"
        );
        assertTrue(escrow.verifySettlement(jobId, _result(), signers), "signers verifiable");
    }

    /*//////////////////////////////////////////////////////////////
                            SIGNATURE SURGERY
    //////////////////////////////////////////////////////////////*/

    function _chunk(bytes memory blob, uint256 i) internal pure returns (bytes32 r, bytes32 s, uint8 v) {
        uint256 offset = i * 65;
        assembly ("memory-safe") {
            let p := add(add(blob, 32), offset)
            r := mload(p)
            s := mload(add(p, 32))
            v := byte(0, mload(add(p, 64)))
        }
    }

    function _setChunk(bytes memory blob, uint256 i, bytes memory sig) internal pure {
        for (uint256 b; b < 65; ++b) {
            blob[i * 65 + b] = sig[b];
        }
    }

    function _sliceChunk(bytes memory blob, uint256 i) internal pure returns (bytes memory sig) {
        sig = new bytes(65);
        for (uint256 b; b < 65; ++b) {
            sig[b] = blob[i * 65 + b];
        }
    }

    /// @dev `blob` with chunk `i` replaced by its malleated twin (s' = n - s, v flipped).
    function _malleateAt(bytes memory blob, uint256 i) internal pure returns (bytes memory out) {
        out = bytes.concat(blob);
        _setChunk(out, i, _malleate(_sliceChunk(blob, i)));
    }

    /// @dev Keys sorted by address; `_sortByAddress` in the base re-derives addresses, this keeps them.
    function _sortKeys(uint256[] memory keys)
        internal
        pure
        returns (uint256[] memory, address[] memory addrs)
    {
        addrs = new address[](keys.length);
        for (uint256 i; i < keys.length; ++i) {
            uint256 k = keys[i];
            address a = vm.addr(k);
            uint256 j = i;
            while (j > 0 && addrs[j - 1] > a) {
                keys[j] = keys[j - 1];
                addrs[j] = addrs[j - 1];
                --j;
            }
            keys[j] = k;
            addrs[j] = a;
        }
        return (keys, addrs);
    }

    function _positionOf(uint256[] memory keys, address signer) internal pure returns (uint256) {
        for (uint256 i; i < keys.length; ++i) {
            if (vm.addr(keys[i]) == signer) return i;
        }
        revert("signer not in keys");
    }

    /// @dev The first `m` operators' keys sorted by address, minus the key at sorted position `skip`.
    function _keysWithout(uint256 m, uint256 skip) internal view returns (uint256[] memory keys) {
        uint256[] memory all = _firstKeys(m);
        keys = new uint256[](m - 1);
        for (uint256 i; i < m; ++i) {
            if (i != skip) keys[i < skip ? i : i - 1] = all[i];
        }
    }

    /*//////////////////////////////////////////////////////////////
                                 DIGESTS
    //////////////////////////////////////////////////////////////*/

    function _domainSeparator(string memory name, string memory version, uint256 chainId, address verifying)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(
            abi.encode(
                keccak256(DOMAIN_TYPE), keccak256(bytes(name)), keccak256(bytes(version)), chainId, verifying
            )
        );
    }

    function _typedDigest(bytes32 domainSeparator, bytes32 structHash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(hex"1901", domainSeparator, structHash));
    }

    function _structHash(bytes32 typeHash, uint256 jobId) internal pure returns (bytes32) {
        return keccak256(abi.encode(typeHash, jobId, MODEL, INPUT, keccak256(OUTPUT), RUNTIME));
    }

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    function _errMalformed(uint256 length) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(SignatureQuorum.SignatureQuorumMalformed.selector, length);
    }

    function _errInvalid(uint256 index) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(SignatureQuorum.SignatureQuorumInvalidSignature.selector, index);
    }

    function _errNotAscending(uint256 index, address signer, address previous)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodeWithSelector(
            SignatureQuorum.SignatureQuorumSignersNotAscending.selector, index, signer, previous
        );
    }

    function _errInactive(uint256 index, address signer) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IJobEscrowErrors.JobEscrowInactiveSigner.selector, index, signer);
    }

    function _errInsufficient(uint256 count, uint256 threshold) internal pure returns (bytes memory) {
        return
            abi.encodeWithSelector(
                IJobEscrowErrors.JobEscrowInsufficientSignatures.selector, count, threshold
            );
    }

    function _errWrongStatus(uint256 jobId, uint8 status) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IJobEscrowErrors.JobEscrowWrongStatus.selector, jobId, status);
    }

    /*//////////////////////////////////////////////////////////////
                             REFERENCE MODEL
    //////////////////////////////////////////////////////////////*/

    /// @dev M = max(floor, ceil(N * bps / 10000)), computed from the deploy config, not read from the registry.
    function _expectedThreshold(uint256 activeCount) internal view returns (uint256 m) {
        m = (activeCount * cfg.thresholdBps + 9999) / 10_000;
        if (m < cfg.minThreshold) m = cfg.minThreshold;
    }

    function _isOpSigner(address a) internal view returns (bool) {
        for (uint256 i; i < ops.length; ++i) {
            if (ops[i].signer == a) return true;
        }
        return false;
    }

    /// @dev What settle must revert with for `sigs` checked against `digest`, when the active set is exactly
    /// the signers of `ops` (true wherever it is used: every operator those tests add stays active). Recovers
    /// with the bare precompile and the EIP-2 bound. Returns empty bytes when settle must succeed.
    function _expectedError(bytes32 digest, bytes memory sigs) internal view returns (bytes memory) {
        if (sigs.length == 0 || sigs.length % 65 != 0) return _errMalformed(sigs.length);
        uint256 count = sigs.length / 65;
        address[] memory recovered = new address[](count);
        address previous;
        for (uint256 i; i < count; ++i) {
            (bytes32 r, bytes32 s, uint8 v) = _chunk(sigs, i);
            address a = uint256(s) > HALF_N ? address(0) : ecrecover(digest, v, r, s);
            if (a == address(0)) return _errInvalid(i);
            if (a <= previous) return _errNotAscending(i, a, previous);
            recovered[i] = a;
            previous = a;
        }
        for (uint256 i; i < count; ++i) {
            if (!_isOpSigner(recovered[i])) return _errInactive(i, recovered[i]);
        }
        uint256 m = _expectedThreshold(ops.length);
        if (count < m) return _errInsufficient(count, m);
        return "";
    }

    /// @dev `sigs` are valid signatures of active signers over some other digest: settle must revert, with
    /// the error the model derives from what they recover to under the job's real digest.
    function _expectForeign(uint256 jobId, bytes memory sigs) internal {
        bytes memory expected = _expectedError(_digest(jobId, _result()), sigs);
        assertGt(expected.length, 0, "model expects a revert");
        vm.expectRevert(expected);
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }
}

/// @title SignatureVerificationTest
/// @notice M-of-N verification through JobEscrow.settle, one section per RELIABILITY case C1-C8 and the
/// threshold. Revert tests assert the exact custom error with its parameters; where a defect is introduced
/// after signing (a signer leaves, another chain, another deployment) the test also checks the control: the
/// same signatures, without that one defect, settle.
contract SignatureVerificationTest is SignatureVerificationBase {
    /*//////////////////////////////////////////////////////////////
                                C1 REPLAY
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_settledCalldataReplayed() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        (bytes memory sigs, address[] memory signers) =
            _packSignatures(_firstKeys(3), _digest(jobId, _result()));
        bytes memory data = _settleCall(jobId, sigs);

        (bool ok,) = address(escrow).call(data);
        assertTrue(ok, "first settle");
        _assertSettledWith(jobId, signers);
        uint40 settledAt = escrow.job(jobId).updatedAt;

        // The exact same calldata, a little later (it would restart the challenge window if accepted).
        vm.warp(block.timestamp + 5 minutes);
        bytes memory ret;
        (ok, ret) = address(escrow).call(data);
        assertFalse(ok, "replay settled");
        assertEq(ret, _errWrongStatus(jobId, STATUS_SETTLED));
        assertEq(escrow.job(jobId).updatedAt, settledAt, "challenge window not restarted");
        _assertSettledWith(jobId, signers);

        // After the payment is released, the replay still cannot touch the job or the amounts owed.
        vm.warp(block.timestamp + cfg.escrow.challengeWindow);
        escrow.release(jobId, _result(), signers);
        uint256 treasuryOwed = escrow.owed(treasury);
        (ok, ret) = address(escrow).call(data);
        assertFalse(ok, "replay after release settled");
        assertEq(ret, _errWrongStatus(jobId, STATUS_RELEASED));
        assertEq(_status(jobId), STATUS_RELEASED);
        assertEq(escrow.owed(treasury), treasuryOwed);
    }

    function test_RevertWhen_signaturesReusedForAnotherJob() public {
        _addOperators(4);
        uint256 jobA = _createJob();
        uint256 jobB = _createJob(); // same client, model, input, fee and output as jobA
        bytes memory sigsA = _signAll(_firstKeys(3), _digest(jobA, _result()));

        // Before jobA settles, and after: its quorum never settles jobB.
        _expectForeign(jobB, sigsA);
        escrow.settle(jobA, RUNTIME, _result(), OUTPUT, sigsA);
        _expectForeign(jobB, sigsA);
        assertEq(_status(jobB), uint8(IJobEscrow.JobStatus.Created));

        // Control: jobB's own quorum settles it.
        escrow.settle(jobB, RUNTIME, _result(), OUTPUT, _signAll(_firstKeys(3), _digest(jobB, _result())));
    }

    /// @dev Signatures over an attestation for a job id that is not the settled job's. Concrete replay:
    /// test_RevertWhen_signaturesReusedForAnotherJob.
    function testFuzz_RevertWhen_signedForAnotherJobId(uint256 otherId) public {
        _addOperators(4);
        uint256 jobId = _createJob();
        vm.assume(otherId != jobId);
        bytes memory sigs =
            _signAll(_firstKeys(3), escrow.hashAttestation(_attestation(otherId, _result(), RUNTIME)));
        _expectForeign(jobId, sigs);
    }

    /*//////////////////////////////////////////////////////////////
                         C2 CHAIN AND DEPLOYMENT
    //////////////////////////////////////////////////////////////*/

    /// @dev Signed for this very escrow on chain 1: valid there, rejected here.
    function test_RevertWhen_signedForAnotherChainId() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        uint256 home = block.chainid;
        uint256 other = home == 1 ? 10 : 1;

        vm.chainId(other);
        bytes memory sigs = _signAll(_firstKeys(3), _digest(jobId, _result()));
        assertTrue(_wouldSettle(jobId, sigs), "control: valid on the chain they were made for");
        vm.chainId(home);

        _expectForeign(jobId, sigs);
    }

    /// @dev After a chain split the escrow keeps its address; the fork's chain id must reject the home quorum.
    function test_RevertWhen_replayedOnAnotherChain() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        bytes memory sigs = _signAll(_firstKeys(3), _digest(jobId, _result()));
        uint256 home = block.chainid;

        vm.chainId(home + 1);
        bytes memory expected = _expectedError(_digest(jobId, _result()), sigs);
        assertGt(expected.length, 0);
        vm.expectRevert(expected);
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);

        vm.chainId(home);
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }

    /// @dev The domain is (name "Attesta", version "1", chainId, verifyingContract) and the type is exactly
    /// ATTESTATION_TYPE: recomputed by hand, then each field changed in turn.
    function test_hashAttestation_bindsEveryDomainField() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        bytes32 structHash = _structHash(keccak256(ATTESTATION_TYPE), jobId);
        bytes32 home =
            _typedDigest(_domainSeparator("Attesta", "1", block.chainid, address(escrow)), structHash);
        assertEq(home, _digest(jobId, _result()), "digest recomputed by hand");
        assertEq(escrow.DOMAIN_SEPARATOR(), _domainSeparator("Attesta", "1", block.chainid, address(escrow)));

        bytes32[4] memory foreign = [
            _typedDigest(_domainSeparator("Attesta", "1", block.chainid + 1, address(escrow)), structHash),
            _typedDigest(_domainSeparator("Attesta", "1", block.chainid, address(registry)), structHash),
            _typedDigest(_domainSeparator("Attesta", "2", block.chainid, address(escrow)), structHash),
            _typedDigest(_domainSeparator("Attesta Staking", "1", block.chainid, address(escrow)), structHash)
        ];
        for (uint256 i; i < foreign.length; ++i) {
            _expectForeign(jobId, _signAll(_firstKeys(3), foreign[i]));
        }
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, _signAll(_firstKeys(3), home));
    }

    /// @dev A second full deployment (its own registry, in which the same keys are active): the first escrow's
    /// quorum for job 1 does not settle the second escrow's job 1.
    function test_RevertWhen_signaturesForAnotherDeployment() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        bytes memory sigs = _signAll(_firstKeys(3), _digest(jobId, _result()));
        JobEscrow first = escrow;
        Op[] memory firstOps = ops;

        _deployWith(cfg);
        assertNotEq(address(escrow), address(first));
        for (uint256 i; i < firstOps.length; ++i) {
            _stakeAndRegister(firstOps[i], registry.minStake());
            ops.push(firstOps[i]);
        }
        assertEq(_createJob(), jobId, "same job id in both deployments");
        assertTrue(_wouldSettle(jobId, _signAll(_firstKeys(3), _digest(jobId, _result()))), "control");

        _expectForeign(jobId, sigs);

        // And the first deployment still accepts its own quorum.
        first.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }

    /// @dev A second escrow on the same registry (a migration): only verifyingContract differs.
    function test_RevertWhen_signaturesForAnotherEscrowOnSameRegistry() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        JobEscrow second = new JobEscrow(
            IERC20(address(token)),
            IStakingRegistry(address(registry)),
            admin,
            cfg.adminDelay,
            treasury,
            cfg.escrow
        );
        vm.prank(admin);
        second.setRuntimeAllowed(RUNTIME, true);
        token.mint(client, FEE);
        vm.startPrank(client);
        token.approve(address(second), FEE);
        assertEq(second.createJob(MODEL, INPUT, FEE, block.timestamp + 1 hours), jobId);
        vm.stopPrank();

        bytes memory sigsForSecond =
            _signAll(_firstKeys(3), second.hashAttestation(_attestation(jobId, _result(), RUNTIME)));
        _expectForeign(jobId, sigsForSecond);

        second.settle(jobId, RUNTIME, _result(), OUTPUT, sigsForSecond);
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, _signAll(_firstKeys(3), _digest(jobId, _result())));
    }

    /*//////////////////////////////////////////////////////////////
                      C3 REMOVED OR ROTATED SIGNERS
    //////////////////////////////////////////////////////////////*/

    /// @dev Five operators (M = 4); the four first sign, including `ops[0]`, the victim. Returns the job, the
    /// signatures and the victim's position in them, after checking they settle as they are.
    function _signWithVictim() internal returns (uint256 jobId, bytes memory sigs, uint256 pos) {
        _addOperators(5);
        assertEq(registry.threshold(), 4);
        jobId = _createJob();
        uint256[] memory keys = _firstKeys(4);
        sigs = _signAll(keys, _digest(jobId, _result()));
        pos = _positionOf(keys, ops[0].signer);
        assertTrue(_wouldSettle(jobId, sigs), "control: settles while the victim is active");
    }

    /// @dev The victim left (N = 4, M = 3): its signature fails settle even though the other three alone are a
    /// quorum, and those three do settle.
    function _assertVictimRejected(uint256 jobId, bytes memory sigs, uint256 pos, address victimSigner)
        internal
    {
        assertFalse(registry.isActiveSigner(victimSigner));
        assertEq(registry.threshold(), 3);
        vm.expectRevert(_errInactive(pos, victimSigner));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
        escrow.settle(
            jobId, RUNTIME, _result(), OUTPUT, _signAll(_keysWithout(4, pos), _digest(jobId, _result()))
        );
    }

    function test_RevertWhen_signerDeactivated() public {
        (uint256 jobId, bytes memory sigs, uint256 pos) = _signWithVictim();
        vm.prank(ops[0].operator);
        registry.deactivate();
        _assertVictimRejected(jobId, sigs, pos, ops[0].signer);
    }

    function test_RevertWhen_signerUnbondingBelowMinStake() public {
        (uint256 jobId, bytes memory sigs, uint256 pos) = _signWithVictim();
        vm.prank(ops[0].operator);
        registry.requestUnstake(1);
        assertEq(registry.operator(ops[0].operator).unbonding, 1);
        _assertVictimRejected(jobId, sigs, pos, ops[0].signer);
    }

    /// @dev Unbonding part of a stake that stays at or above the minimum keeps the signer in the set.
    function test_settle_succeedsWhenSignerUnbondsAboveMinStake() public {
        (uint256 jobId, bytes memory sigs,) = _signWithVictim();
        uint256 extra = registry.minStake();
        token.mint(ops[0].operator, extra);
        vm.startPrank(ops[0].operator);
        token.approve(address(registry), extra);
        registry.stake(extra);
        registry.requestUnstake(extra);
        vm.stopPrank();
        assertTrue(registry.isActiveSigner(ops[0].signer));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }

    /// @dev Slashed and jailed for equivocation (anyone proves it with two conflicting attestations).
    function test_RevertWhen_signerSlashedForEquivocation() public {
        (uint256 jobId, bytes memory sigs, uint256 pos) = _signWithVictim();
        IJobEscrow.Attestation memory a = _attestation(jobId, _result(), RUNTIME);
        IJobEscrow.Attestation memory b = _attestation(jobId, keccak256("another result"), RUNTIME);
        bytes memory sigA = _sign(ops[0].signerKey, escrow.hashAttestation(a));
        bytes memory sigB = _sign(ops[0].signerKey, escrow.hashAttestation(b));
        vm.prank(challenger);
        slashing.slashEquivocation(a, sigA, b, sigB);
        assertTrue(registry.operator(ops[0].operator).jailed);
        _assertVictimRejected(jobId, sigs, pos, ops[0].signer);
    }

    /// @dev Slashed without jail for downtime, on an M-of-N report of the other four.
    function test_RevertWhen_signerSlashedForDowntime() public {
        (uint256 jobId, bytes memory sigs, uint256 pos) = _signWithVictim();
        uint64 epoch = uint64(slashing.currentEpoch() - 1);
        uint256[] memory reporters = new uint256[](4);
        for (uint256 i; i < 4; ++i) {
            reporters[i] = ops[i + 1].signerKey;
        }
        bytes memory report =
            _signAll(_sortByAddress(reporters), slashing.downtimeDigest(ops[0].operator, epoch));
        slashing.slashDowntime(ops[0].operator, epoch, report);
        assertFalse(registry.operator(ops[0].operator).jailed);
        _assertVictimRejected(jobId, sigs, pos, ops[0].signer);
    }

    function test_RevertWhen_signerSlashedForCollusion() public {
        (uint256 jobId, bytes memory sigs, uint256 pos) = _signWithVictim();
        vm.prank(admin);
        slashing.slashCollusion(ops[0].operator, keccak256("evidence"));
        _assertVictimRejected(jobId, sigs, pos, ops[0].signer);
    }

    /// @dev `ops[0]` binds a fresh key; returns it.
    function _rotateVictim() internal returns (uint256 newKey) {
        newKey = uint256(keccak256("rotated key"));
        bytes memory proof = _signerProof(ops[0].operator, newKey);
        vm.prank(ops[0].operator);
        registry.registerSigner(vm.addr(newKey), proof);
        assertTrue(registry.isActiveSigner(vm.addr(newKey)));
    }

    /// @dev The operator rotated to a new key: the retired key's signature no longer counts (N stays 5, M 4);
    /// the same quorum with the new key's signature settles.
    function test_RevertWhen_signerRotatedOut() public {
        (uint256 jobId, bytes memory sigs, uint256 pos) = _signWithVictim();
        uint256 newKey = _rotateVictim();
        assertEq(registry.threshold(), 4);

        vm.expectRevert(_errInactive(pos, ops[0].signer));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);

        uint256[] memory keys = _firstKeys(4);
        keys[pos] = newKey;
        (keys,) = _sortKeys(keys);
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, _signAll(keys, _digest(jobId, _result())));
    }

    /// @dev A retired key is retired for good: no operator can bind it again to bring it back.
    function test_RevertWhen_rotatedOutKeyRegisteredAgain() public {
        _addOperators(2);
        _rotateVictim();
        Op memory victim = ops[0];
        bytes memory proof = _signerProof(ops[1].operator, victim.signerKey);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStakingRegistryErrors.StakingRegistrySignerAlreadyBound.selector,
                victim.signer,
                victim.operator
            )
        );
        vm.prank(ops[1].operator);
        registry.registerSigner(victim.signer, proof);
        assertFalse(registry.isActiveSigner(victim.signer));
    }

    /*//////////////////////////////////////////////////////////////
                           C4 DUPLICATE SIGNERS
    //////////////////////////////////////////////////////////////*/

    /// @dev Two real signers plus one of them again make three signatures, not three signers.
    function test_RevertWhen_signerSignsTwice() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        uint256[] memory keys = _firstKeys(2);
        bytes32 digest = _digest(jobId, _result());
        bytes memory sigs =
            bytes.concat(_sign(keys[0], digest), _sign(keys[1], digest), _sign(keys[1], digest));
        vm.expectRevert(_errNotAscending(2, vm.addr(keys[1]), vm.addr(keys[1])));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }

    function test_RevertWhen_thresholdCopiesOfOneSignature() public {
        _addOperators(7);
        uint256 m = registry.threshold();
        assertEq(m, 5);
        uint256 jobId = _createJob();
        bytes memory sig = _sign(ops[0].signerKey, _digest(jobId, _result()));
        bytes memory sigs;
        for (uint256 i; i < m; ++i) {
            sigs = bytes.concat(sigs, sig);
        }
        vm.expectRevert(_errNotAscending(1, ops[0].signer, ops[0].signer));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }

    /*//////////////////////////////////////////////////////////////
                            C5 UNSORTED SIGNERS
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_signersUnsorted() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        uint256[] memory keys = _firstKeys(3);
        (keys[1], keys[2]) = (keys[2], keys[1]);
        bytes memory sigs = _signAll(keys, _digest(jobId, _result()));
        vm.expectRevert(_errNotAscending(2, vm.addr(keys[2]), vm.addr(keys[1])));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }

    function test_RevertWhen_signersDescending() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        uint256[] memory sorted = _firstKeys(4);
        uint256[] memory keys = new uint256[](4);
        for (uint256 i; i < 4; ++i) {
            keys[i] = sorted[3 - i];
        }
        bytes memory sigs = _signAll(keys, _digest(jobId, _result()));
        vm.expectRevert(_errNotAscending(1, vm.addr(sorted[2]), vm.addr(sorted[3])));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }

    /*//////////////////////////////////////////////////////////////
                         C6 MALLEATED SIGNATURES
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_signatureMalleated() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        uint256[] memory keys = _firstKeys(3);
        bytes32 digest = _digest(jobId, _result());
        bytes memory sigs = _signAll(keys, digest);
        for (uint256 i; i < keys.length; ++i) {
            bytes memory bad = _malleateAt(sigs, i);
            (bytes32 r, bytes32 s, uint8 v) = _chunk(bad, i);
            assertGt(uint256(s), HALF_N);
            assertEq(ecrecover(digest, v, r, s), vm.addr(keys[i]), "the twin recovers the same signer");
            vm.expectRevert(_errInvalid(i));
            escrow.settle(jobId, RUNTIME, _result(), OUTPUT, bad);
        }
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }

    /// @dev After a valid settle, malleated copies (one chunk or all) neither settle the job again nor any
    /// other job, and leave every state they could touch as it was.
    function test_settle_malleatedCopyHasNoSecondEffect() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        uint256 otherJob = _createJob();
        (bytes memory sigs, address[] memory signers) =
            _packSignatures(_firstKeys(3), _digest(jobId, _result()));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
        IJobEscrow.Job memory settled = escrow.job(jobId);
        vm.warp(block.timestamp + 1 minutes);

        bytes memory allMalleated = sigs;
        for (uint256 i; i < 3; ++i) {
            allMalleated = _malleateAt(allMalleated, i);
            vm.expectRevert(_errWrongStatus(jobId, STATUS_SETTLED));
            escrow.settle(jobId, RUNTIME, _result(), OUTPUT, _malleateAt(sigs, i));
        }
        vm.expectRevert(_errWrongStatus(jobId, STATUS_SETTLED));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, allMalleated);
        vm.expectRevert(_errInvalid(0));
        escrow.settle(otherJob, RUNTIME, _result(), OUTPUT, allMalleated);

        IJobEscrow.Job memory after_ = escrow.job(jobId);
        assertEq(after_.updatedAt, settled.updatedAt);
        assertEq(after_.settlement, settled.settlement);
        assertEq(_status(otherJob), uint8(IJobEscrow.JobStatus.Created));
        _assertSettledWith(jobId, signers);
    }

    /*//////////////////////////////////////////////////////////////
                       C7 MALFORMED AND FOREIGN SIGNATURES
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_vNot27Or28() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        bytes memory sigs = _signAll(_firstKeys(3), _digest(jobId, _result()));
        uint8[3] memory badV = [uint8(0), 1, 29];
        for (uint256 i; i < badV.length; ++i) {
            bytes memory bad = bytes.concat(sigs);
            (bytes32 r, bytes32 s,) = _chunk(bad, 1);
            _setChunk(bad, 1, abi.encodePacked(r, s, badV[i]));
            vm.expectRevert(_errInvalid(1));
            escrow.settle(jobId, RUNTIME, _result(), OUTPUT, bad);
        }
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }

    function test_RevertWhen_signatureZeroed() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        bytes memory sigs = _signAll(_firstKeys(3), _digest(jobId, _result()));
        bytes memory bad = bytes.concat(sigs);
        _setChunk(bad, 2, new bytes(65));
        vm.expectRevert(_errInvalid(2));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, bad);

        vm.expectRevert(_errInvalid(0));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, new bytes(3 * 65));
    }

    /// @dev (r = 0) and (s = 0) make ecrecover return address(0), which must never count as a signer.
    function test_RevertWhen_signatureRecoversZeroAddress() public {
        _addOperators(1);
        uint256 jobId = _createJob();
        bytes32 digest = _digest(jobId, _result());
        (bytes32 r, bytes32 s, uint8 v) = _chunk(_sign(ops[0].signerKey, digest), 0);
        assertEq(ecrecover(digest, v, 0, s), address(0));
        assertEq(ecrecover(digest, v, r, 0), address(0));
        vm.expectRevert(_errInvalid(0));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, abi.encodePacked(bytes32(0), s, v));
        vm.expectRevert(_errInvalid(0));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, abi.encodePacked(r, bytes32(0), v));
    }

    function test_RevertWhen_signatureIs64Bytes() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        bytes32 digest = _digest(jobId, _result());
        bytes memory sigs = _signAll(_firstKeys(3), digest);
        bytes memory truncated = new bytes(sigs.length - 1); // the last signature lost its v
        for (uint256 i; i < truncated.length; ++i) {
            truncated[i] = sigs[i];
        }
        vm.expectRevert(_errMalformed(3 * 65 - 1));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, truncated);

        // A lone EIP-2098 compact signature (r, vs), valid in other schemes, is malformed here.
        (bytes32 r, bytes32 vs) = vm.signCompact(ops[0].signerKey, digest);
        vm.expectRevert(_errMalformed(64));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, abi.encodePacked(r, vs));
    }

    function test_RevertWhen_signatureLengthNotMultipleOf65() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        bytes memory sigs = _signAll(_firstKeys(3), _digest(jobId, _result()));
        bytes memory padded = bytes.concat(sigs, hex"1b");
        vm.expectRevert(_errMalformed(padded.length));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, padded);
        // Three full signatures plus a fourth cut short: a quorum is present yet the blob is rejected whole.
        bytes memory cut = bytes.concat(sigs, new bytes(30));
        vm.expectRevert(_errMalformed(cut.length));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, cut);
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }

    function test_RevertWhen_signaturesEmpty() public {
        _addOperators(1);
        uint256 jobId = _createJob();
        vm.expectRevert(_errMalformed(0));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, "");
    }

    /// @dev A well-formed signature by a key that was never registered.
    function test_RevertWhen_signerNotMember() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        uint256[] memory keys = _firstKeys(3);
        keys[1] = uint256(keccak256("outsider"));
        address[] memory addrs;
        (keys, addrs) = _sortKeys(keys);
        uint256 pos = _positionOf(keys, vm.addr(uint256(keccak256("outsider"))));
        bytes memory sigs = _signAll(keys, _digest(jobId, _result()));
        vm.expectRevert(_errInactive(pos, addrs[pos]));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }

    /// @dev A key bound to an operator whose stake is below the minimum: registered but never active.
    function test_RevertWhen_signerBoundButNeverActive() public {
        _addOperators(4);
        Op memory idle = _newOp();
        _stakeAndRegister(idle, registry.minStake() - 1);
        assertEq(registry.operatorOf(idle.signer), idle.operator);
        assertFalse(registry.isActiveSigner(idle.signer));
        uint256 jobId = _createJob();
        uint256[] memory keys = _firstKeys(4);
        keys[0] = idle.signerKey;
        (keys,) = _sortKeys(keys);
        bytes memory sigs = _signAll(keys, _digest(jobId, _result()));
        vm.expectRevert(_errInactive(_positionOf(keys, idle.signer), idle.signer));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }

    /// @dev v flipped with a low s: a valid-looking signature of some other public key, i.e. a non-member.
    function test_RevertWhen_vFlippedRecoversNonMember() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        bytes32 digest = _digest(jobId, _result());
        bytes memory sigs = _signAll(_firstKeys(3), digest);
        (bytes32 r, bytes32 s, uint8 v) = _chunk(sigs, 0);
        _setChunk(sigs, 0, abi.encodePacked(r, s, v == 27 ? uint8(28) : uint8(27)));
        address stranger = ecrecover(digest, v == 27 ? 28 : 27, r, s);
        assertNotEq(stranger, address(0));
        assertFalse(_isOpSigner(stranger));
        _expectForeign(jobId, sigs);
    }

    /*//////////////////////////////////////////////////////////////
                           C8 OTHER TYPE HASHES
    //////////////////////////////////////////////////////////////*/

    /// @dev The attestation's very fields, hashed under type strings that differ from ATTESTATION_TYPE by a
    /// member name, the type name, member order or a missing member.
    function test_RevertWhen_signedUnderAnotherTypeString() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        bytes32 domain = escrow.DOMAIN_SEPARATOR();
        assertEq(escrow.ATTESTATION_TYPEHASH(), keccak256(ATTESTATION_TYPE));
        bytes32[4] memory typeHashes = [
            keccak256(
                "Attestation(uint256 jobId,bytes32 modelId,bytes32 inputHash,bytes32 resultHash,bytes32 runtime)"
            ),
            keccak256(
                "AttestationV2(uint256 jobId,bytes32 modelId,bytes32 inputHash,bytes32 resultHash,bytes32 runtimeId)"
            ),
            keccak256(
                "Attestation(uint256 jobId,bytes32 inputHash,bytes32 modelId,bytes32 resultHash,bytes32 runtimeId)"
            ),
            keccak256("Attestation(uint256 jobId,bytes32 modelId,bytes32 inputHash,bytes32 resultHash)")
        ];
        for (uint256 i; i < typeHashes.length; ++i) {
            _expectForeign(
                jobId, _signAll(_firstKeys(3), _typedDigest(domain, _structHash(typeHashes[i], jobId)))
            );
        }
        // The old schema without runtimeId, encoded with its own four fields.
        bytes32 legacy = keccak256(abi.encode(typeHashes[3], jobId, MODEL, INPUT, _result()));
        _expectForeign(jobId, _signAll(_firstKeys(3), _typedDigest(domain, legacy)));
        // Control: the real type string.
        bytes32 real = _typedDigest(domain, _structHash(keccak256(ATTESTATION_TYPE), jobId));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, _signAll(_firstKeys(3), real));
    }

    /// @dev The bare struct hash, and the struct hash as an eth_sign personal message: no EIP-712 envelope.
    function test_RevertWhen_signedWithoutTypedDataEnvelope() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        bytes32 structHash = _structHash(keccak256(ATTESTATION_TYPE), jobId);
        _expectForeign(jobId, _signAll(_firstKeys(3), structHash));
        _expectForeign(jobId, _signAll(_firstKeys(3), MessageHashUtils.toEthSignedMessageHash(structHash)));
    }

    /// @dev The proofs of possession signers gave the registry (type SignerKey) are no attestations.
    function test_RevertWhen_signaturesAreSignerKeyProofs() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        uint256[] memory keys = _firstKeys(3);
        bytes memory proofs;
        for (uint256 i; i < keys.length; ++i) {
            address signer = vm.addr(keys[i]);
            proofs = bytes.concat(proofs, _signerProof(registry.operatorOf(signer), keys[i]));
        }
        _expectForeign(jobId, proofs);

        // The SignerKey struct under the escrow's own domain is rejected too.
        bytes32 signerKeyType = keccak256("SignerKey(address operator,address signer)");
        bytes memory sigs;
        for (uint256 i; i < keys.length; ++i) {
            address signer = vm.addr(keys[i]);
            bytes32 structHash = keccak256(abi.encode(signerKeyType, registry.operatorOf(signer), signer));
            sigs = bytes.concat(sigs, _sign(keys[i], _typedDigest(escrow.DOMAIN_SEPARATOR(), structHash)));
        }
        _expectForeign(jobId, sigs);
    }

    /// @dev An M-of-N downtime report (type DowntimeReport) settles no job, and an attestation quorum slashes
    /// nobody: each is accepted only where it was made for.
    function test_RevertWhen_signaturesAreDowntimeReport() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        uint64 epoch = uint64(slashing.currentEpoch() - 1);
        address absent = ops[3].operator;
        bytes memory report = _signAll(_firstKeys(3), slashing.downtimeDigest(absent, epoch));
        _expectForeign(jobId, report);

        bytes memory attestation = _signAll(_firstKeys(3), _digest(jobId, _result()));
        bytes memory expected = _expectedError(slashing.downtimeDigest(absent, epoch), attestation);
        assertGt(expected.length, 0);
        // Translate the escrow-level error into the Slashing contract's own, which has the same shape.
        // forge-lint: disable-next-line(unsafe-typecast) keeps exactly the 4-byte selector of the error
        bytes4 selector = bytes4(expected);
        if (selector == IJobEscrowErrors.JobEscrowInactiveSigner.selector) {
            (uint256 index, address signer) = abi.decode(_stripSelector(expected), (uint256, address));
            expected = abi.encodeWithSelector(ISlashingErrors.SlashingInactiveSigner.selector, index, signer);
        }
        vm.expectRevert(expected);
        slashing.slashDowntime(absent, epoch, attestation);

        // Controls: each signature set works where it belongs.
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, attestation);
        slashing.slashDowntime(absent, epoch, report);
    }

    function _stripSelector(bytes memory data) internal pure returns (bytes memory out) {
        out = new bytes(data.length - 4);
        for (uint256 i; i < out.length; ++i) {
            out[i] = data[i + 4];
        }
    }

    /// @dev Signatures bind result and runtime too: the quorum for one result or runtime settles no other.
    function test_RevertWhen_signedForAnotherResultOrRuntime() public {
        _addOperators(4);
        bytes32 otherRuntime = keccak256("attesta/other-runtime/v1");
        vm.prank(admin);
        escrow.setRuntimeAllowed(otherRuntime, true);
        uint256 jobId = _createJob();
        bytes memory forOtherResult = _signAll(_firstKeys(3), _digest(jobId, keccak256("another output")));
        _expectForeign(jobId, forOtherResult);
        bytes memory forOtherRuntime =
            _signAll(_firstKeys(3), escrow.hashAttestation(_attestation(jobId, _result(), otherRuntime)));
        _expectForeign(jobId, forOtherRuntime);
    }

    /*//////////////////////////////////////////////////////////////
                                THRESHOLD
    //////////////////////////////////////////////////////////////*/

    /// @dev With N operators, M - 1 signatures fail, exactly M settle one job and all N settle another, every
    /// signer recorded (event and settlement commitment).
    function _assertThreshold(uint256 n, uint256 m) internal {
        _addOperators(n);
        assertEq(registry.activeCount(), n);
        assertEq(registry.threshold(), m);
        assertEq(_expectedThreshold(n), m);
        uint256 jobId = _createJob();
        bytes32 digest = _digest(jobId, _result());

        bytes memory fewer = _signAll(_firstKeys(m - 1), digest);
        vm.expectRevert(m == 1 ? _errMalformed(0) : _errInsufficient(m - 1, m));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, fewer);

        (bytes memory exact, address[] memory exactSigners) = _packSignatures(_firstKeys(m), digest);
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, exact);
        _assertSettledWith(jobId, exactSigners);

        uint256 jobAll = _createJob();
        (bytes memory all, address[] memory allSigners) =
            _packSignatures(_firstKeys(n), _digest(jobAll, _result()));
        vm.expectEmit(true, true, false, true, address(escrow));
        emit IJobEscrowEvents.JobSettled(jobAll, _result(), RUNTIME, allSigners, OUTPUT);
        escrow.settle(jobAll, RUNTIME, _result(), OUTPUT, all);
        _assertSettledWith(jobAll, allSigners);
        assertEq(allSigners.length, n);
    }

    function test_settle_threshold1of1() public {
        _assertThreshold(1, 1);
    }

    function test_settle_threshold3of4() public {
        _assertThreshold(4, 3);
    }

    function test_settle_threshold5of7() public {
        _assertThreshold(7, 5);
    }

    function test_settle_threshold11of16() public {
        _assertThreshold(16, 11);
    }

    function test_settle_threshold22of32() public {
        _assertThreshold(32, 22);
    }

    /// @dev M is read when settling, not when signing: operators joining after the quorum signed raise it.
    function test_RevertWhen_thresholdRoseAfterSigning() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        bytes memory sigs = _signAll(_firstKeys(3), _digest(jobId, _result()));
        _addOperators(3);
        assertEq(registry.threshold(), 5);
        vm.expectRevert(_errInsufficient(3, 5));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }

    /// @dev The registry's floor applies: with minThreshold 4 and N = 4, three signatures are not enough.
    function test_RevertWhen_belowMinThresholdFloor() public {
        _addOperators(4);
        vm.prank(admin);
        registry.setThreshold(cfg.thresholdBps, 4);
        uint256 jobId = _createJob();
        bytes32 digest = _digest(jobId, _result());
        bytes memory three = _signAll(_firstKeys(3), digest);
        vm.expectRevert(_errInsufficient(3, 4));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, three);
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, _signAll(_firstKeys(4), digest));
    }

    /// @dev One inactive signer spoils the whole set, even when the active ones alone are a quorum: settle
    /// never skips a bad signature (it would let the relayer choose whom to pay).
    function test_RevertWhen_extraSignerInactive() public {
        _addOperators(4);
        uint256 jobId = _createJob();
        uint256[] memory keys = new uint256[](4);
        for (uint256 i; i < 3; ++i) {
            keys[i] = ops[i].signerKey;
        }
        keys[3] = uint256(keccak256("outsider"));
        address[] memory addrs;
        (keys, addrs) = _sortKeys(keys);
        uint256 pos = _positionOf(keys, vm.addr(uint256(keccak256("outsider"))));
        bytes memory sigs = _signAll(keys, _digest(jobId, _result()));
        vm.expectRevert(_errInactive(pos, addrs[pos]));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }
}

/// @title SignatureVerificationFuzzTest
/// @notice Fuzz campaigns over a pool of 32 operators. Each run shrinks the active set to a random N by
/// deactivating the rest (who then serve as inactive former members), builds a signer list and compares
/// settle with a model that applies the rules independently: strictly ascending, no duplicates, all active,
/// at least M.
contract SignatureVerificationFuzzTest is SignatureVerificationBase {
    uint256 internal constant POOL = 32;
    uint256 internal constant NOT_IN_POOL = type(uint256).max;
    uint256 internal constant FOREIGN_CHAIN_ID = 8453;

    /// @dev Mutation bits of a plan.
    uint256 internal constant MUT_INACTIVE_MEMBER = 1 << 0; // a deactivated pool key joins the list
    uint256 internal constant MUT_NON_MEMBER = 1 << 1; // a never-registered key joins the list
    uint256 internal constant MUT_DUPLICATE = 1 << 2; // one entry appears twice
    uint256 internal constant MUT_HIGH_S = 1 << 3; // one signature is malleated
    uint256 internal constant MUT_OTHER_CHAIN = 1 << 4; // one signature is made for another chain id
    uint256 internal constant MUT_LEAVES = 1 << 5; // one listed active signer leaves after signing
    uint256 internal constant MUT_COUNT = 6;

    /// @dev One signature of the list: who signs, and how.
    struct Entry {
        uint256 key;
        uint256 poolIndex; // NOT_IN_POOL for outsiders
        bool highS;
        bool otherChain;
    }

    /// @dev A run: `n` active, a base of `size` distinct active signers, `mutations`, then sorted or shuffled.
    struct Plan {
        uint256 n;
        uint256 size;
        uint256 mutations;
        bool shuffle;
        uint256 rand;
    }

    /// @dev Model state: who is active now, and how many.
    struct World {
        bool[] active;
        uint256 activeCount;
    }

    function setUp() public override {
        super.setUp();
        _addOperators(POOL);
    }

    /*//////////////////////////////////////////////////////////////
                                 HELPERS
    //////////////////////////////////////////////////////////////*/

    function _next(Plan memory p) internal pure returns (uint256) {
        p.rand = uint256(keccak256(abi.encode(p.rand)));
        return p.rand;
    }

    /// @dev Deactivates pool operators n..31; they stay bound and staked, so they are former members.
    function _shrinkTo(uint256 n) internal returns (World memory w) {
        w.active = new bool[](POOL);
        for (uint256 i; i < POOL; ++i) {
            if (i < n) {
                w.active[i] = true;
            } else {
                vm.prank(ops[i].operator);
                registry.deactivate();
            }
        }
        w.activeCount = n;
        assertEq(registry.activeCount(), n);
    }

    /// @dev `count` distinct indices in [0, n), in random order.
    function _pick(Plan memory p, uint256 n, uint256 count) internal pure returns (uint256[] memory picked) {
        uint256[] memory all = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            all[i] = i;
        }
        picked = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            uint256 j = i + _next(p) % (n - i);
            (all[i], all[j]) = (all[j], all[i]);
            picked[i] = all[i];
        }
    }

    function _poolEntry(uint256 idx) internal view returns (Entry memory e) {
        e.key = ops[idx].signerKey;
        e.poolIndex = idx;
    }

    function _insert(Entry[] memory list, Entry memory e, uint256 at)
        internal
        pure
        returns (Entry[] memory out)
    {
        out = new Entry[](list.length + 1);
        for (uint256 i; i < out.length; ++i) {
            out[i] = i < at ? list[i] : (i == at ? e : list[i - 1]);
        }
    }

    /// @dev Sorts by the address each key would sign as (so an other-chain entry sits where its key sorts).
    function _sortEntries(Entry[] memory list) internal pure {
        address[] memory addrs = new address[](list.length);
        for (uint256 i; i < list.length; ++i) {
            Entry memory e = list[i];
            address a = vm.addr(e.key);
            uint256 j = i;
            while (j > 0 && addrs[j - 1] > a) {
                list[j] = list[j - 1];
                addrs[j] = addrs[j - 1];
                --j;
            }
            list[j] = e;
            addrs[j] = a;
        }
    }

    function _shuffle(Plan memory p, Entry[] memory list) internal pure {
        for (uint256 i = list.length; i > 1; --i) {
            uint256 j = _next(p) % i;
            (list[i - 1], list[j]) = (list[j], list[i - 1]);
        }
    }

    /// @dev Takes pool operator `idx`'s key out of the active set in one of the four ways C3 lists; returns
    /// whether N shrank (a rotation swaps the key and keeps N).
    function _leave(uint256 idx, uint256 how) internal returns (bool shrinks) {
        Op memory op = ops[idx];
        how %= 4;
        if (how == 0) {
            vm.prank(op.operator);
            registry.deactivate();
        } else if (how == 1) {
            vm.prank(op.operator);
            registry.requestUnstake(1);
        } else if (how == 2) {
            vm.prank(address(slashing));
            registry.slash(op.operator, 1000, address(0), 0, true);
        } else {
            uint256 newKey = uint256(keccak256(abi.encode("rotated", idx))) % (SECP256K1_N - 1) + 1;
            bytes memory proof = _signerProof(op.operator, newKey);
            vm.prank(op.operator);
            registry.registerSigner(vm.addr(newKey), proof);
        }
        assertFalse(registry.isActiveSigner(op.signer));
        shrinks = how != 3;
    }

    /// @dev The digest of `jobId` as it would be computed on chain `chainId`.
    function _digestOn(uint256 jobId, uint256 chainId) internal returns (bytes32 d) {
        uint256 home = block.chainid;
        vm.chainId(chainId);
        d = _digest(jobId, _result());
        vm.chainId(home);
    }

    /*//////////////////////////////////////////////////////////////
                              THE MAIN CASE
    //////////////////////////////////////////////////////////////*/

    /// @dev Builds the list a plan describes (mutations applied, sorted or shuffled).
    function _buildList(Plan memory p, World memory w) internal returns (Entry[] memory list) {
        uint256[] memory base = _pick(p, p.n, p.size);
        list = new Entry[](p.size);
        for (uint256 i; i < p.size; ++i) {
            list[i] = _poolEntry(base[i]);
        }
        if (p.mutations & MUT_INACTIVE_MEMBER != 0) {
            Entry memory e;
            if (p.n < POOL) {
                e = _poolEntry(p.n + _next(p) % (POOL - p.n));
            } else {
                e.key = uint256(keccak256(abi.encode("outsider", p.rand))) % (SECP256K1_N - 1) + 1;
                e.poolIndex = NOT_IN_POOL;
            }
            list = _insert(list, e, _next(p) % (list.length + 1));
        }
        if (p.mutations & MUT_NON_MEMBER != 0) {
            Entry memory e;
            e.key = uint256(keccak256(abi.encode("stranger", _next(p)))) % (SECP256K1_N - 1) + 1;
            e.poolIndex = NOT_IN_POOL;
            list = _insert(list, e, _next(p) % (list.length + 1));
        }
        if (p.mutations & MUT_DUPLICATE != 0 && list.length > 0) {
            Entry memory copy = list[_next(p) % list.length];
            list = _insert(list, Entry(copy.key, copy.poolIndex, false, false), _next(p) % (list.length + 1));
        }
        if (p.mutations & MUT_HIGH_S != 0 && list.length > 0) list[_next(p) % list.length].highS = true;
        if (p.mutations & MUT_OTHER_CHAIN != 0 && list.length > 0) {
            list[_next(p) % list.length].otherChain = true;
        }
        if (p.mutations & MUT_LEAVES != 0 && p.size > 0) {
            uint256 idx = base[_next(p) % p.size];
            w.active[idx] = false;
            if (_leave(idx, _next(p))) --w.activeCount;
        }
        if (p.shuffle) _shuffle(p, list);
        else _sortEntries(list);
    }

    function _signList(Entry[] memory list, bytes32 home, bytes32 foreign)
        internal
        pure
        returns (bytes memory sigs)
    {
        for (uint256 i; i < list.length; ++i) {
            bytes memory sig = _sign(list[i].key, list[i].otherChain ? foreign : home);
            sigs = bytes.concat(sigs, list[i].highS ? _malleate(sig) : sig);
        }
    }

    /// @dev The address settle sees for each entry: its key's, or, for an other-chain signature, whatever that
    /// signature recovers to under the real digest (computed with the bare precompile).
    function _seenAs(Entry[] memory list, bytes memory sigs, bytes32 home)
        internal
        pure
        returns (address[] memory seen)
    {
        seen = new address[](list.length);
        for (uint256 i; i < list.length; ++i) {
            if (list[i].otherChain && !list[i].highS) {
                (bytes32 r, bytes32 s, uint8 v) = _chunk(sigs, i);
                seen[i] = ecrecover(home, v, r, s);
            } else {
                seen[i] = vm.addr(list[i].key);
            }
        }
    }

    /// @dev Whether `a` is active in the model: a pool key of an operator that is still active (pool keys of
    /// operators that left, and every key outside the pool, are not).
    function _modelActive(World memory w, address a) internal view returns (bool) {
        for (uint256 i; i < POOL; ++i) {
            if (ops[i].signer == a) return w.active[i];
        }
        return false;
    }

    /// @dev The model's verdict: success iff non-empty, no malleated signature, strictly ascending (hence no
    /// duplicates), all active and at least M; otherwise the error of the first check that fails, in settle's
    /// order.
    function _verdict(World memory w, Entry[] memory list, address[] memory seen)
        internal
        view
        returns (bool ok, bytes memory err)
    {
        uint256 count = list.length;
        if (count == 0) return (false, _errMalformed(0));
        bool noHighS = true;
        bool ascending = true;
        bool allActive = true;
        for (uint256 i; i < count; ++i) {
            if (list[i].highS) noHighS = false;
            if (i > 0 && seen[i] <= seen[i - 1]) ascending = false;
            if (!_modelActive(w, seen[i])) allActive = false;
        }
        uint256 m = _expectedThreshold(w.activeCount);
        ok = noHighS && ascending && allActive && count >= m;
        if (ok) return (true, "");

        for (uint256 i; i < count; ++i) {
            if (list[i].highS) return (false, _errInvalid(i));
            if (i > 0 && seen[i] <= seen[i - 1]) return (false, _errNotAscending(i, seen[i], seen[i - 1]));
        }
        for (uint256 i; i < count; ++i) {
            if (!_modelActive(w, seen[i])) return (false, _errInactive(i, seen[i]));
        }
        return (false, _errInsufficient(count, m));
    }

    /// @dev Runs a plan: builds and signs the list, settles, and compares with the model. Returns whether the
    /// settle succeeded.
    function _run(Plan memory p) internal returns (bool) {
        World memory w = _shrinkTo(p.n);
        uint256 jobId = _createJob();
        bytes32 home = _digest(jobId, _result());
        bytes32 foreign = _digestOn(jobId, FOREIGN_CHAIN_ID);
        Entry[] memory list = _buildList(p, w);
        bytes memory sigs = _signList(list, home, foreign);
        address[] memory seen = _seenAs(list, sigs, home);
        (bool expectOk, bytes memory expectErr) = _verdict(w, list, seen);

        (bool ok, bytes memory ret) = _trySettle(jobId, sigs);
        assertEq(ok, expectOk, "settle outcome differs from the model");
        if (ok) {
            _assertSettledWith(jobId, seen);
        } else {
            assertEq(ret, expectErr, "revert differs from the model");
            assertEq(_status(jobId), uint8(IJobEscrow.JobStatus.Created));
        }
        return ok;
    }

    /// @dev Random N in 1..32, a random base near or anywhere below N, each mutation with probability 1/6,
    /// shuffled with probability 1/4.
    function testFuzz_settle_succeedsIffSortedUniqueActiveQuorum(uint256 nSeed, uint256 seed) public {
        _run(_randomPlan(nSeed, seed));
    }

    function _randomPlan(uint256 nSeed, uint256 seed) internal view returns (Plan memory p) {
        p.rand = seed;
        p.n = bound(nSeed, 1, POOL);
        uint256 m = _expectedThreshold(p.n);
        uint256 r = _next(p);
        if (r % 2 == 0) {
            p.size = m - 1 + (r >> 8) % 3; // M - 1, M or M + 1
            if (p.size > p.n) p.size = p.n;
        } else {
            p.size = (r >> 8) % (p.n + 1);
        }
        for (uint256 i; i < MUT_COUNT; ++i) {
            if (_next(p) % 6 == 0) p.mutations |= 2 ** i;
        }
        p.shuffle = _next(p) % 4 == 0;
    }

    /// @dev Concrete replay of the campaign above: each mutation alone on 5-of-7 fails, and the model agrees
    /// on the error; without mutation exactly M and all N settle, M - 1 and nothing do not.
    function test_settle_modelAgreesOnEachMutation() public {
        uint256 snapshot = vm.snapshotState();
        assertTrue(_run(Plan({n: 7, size: 5, mutations: 0, shuffle: false, rand: 1})), "5 of 7");
        vm.revertToState(snapshot);
        assertTrue(_run(Plan({n: 7, size: 7, mutations: 0, shuffle: false, rand: 2})), "7 of 7");
        vm.revertToState(snapshot);
        assertFalse(_run(Plan({n: 7, size: 4, mutations: 0, shuffle: false, rand: 3})), "4 of 7");
        vm.revertToState(snapshot);
        assertFalse(_run(Plan({n: 7, size: 0, mutations: 0, shuffle: false, rand: 4})), "0 of 7");
        for (uint256 i; i < MUT_COUNT; ++i) {
            vm.revertToState(snapshot);
            assertFalse(
                _run(Plan({n: 7, size: 5, mutations: 2 ** i, shuffle: false, rand: 10 + i})), "mutation"
            );
        }
        vm.revertToState(snapshot);
        assertFalse(_run(Plan({n: 32, size: 22, mutations: 0, shuffle: true, rand: 5})), "shuffled 22 of 32");
        vm.revertToState(snapshot);
        assertFalse(_run(Plan({n: 32, size: 22, mutations: MUT_INACTIVE_MEMBER, shuffle: false, rand: 6})));
        vm.revertToState(snapshot);
        assertTrue(_run(Plan({n: 1, size: 1, mutations: 0, shuffle: false, rand: 7})), "1 of 1");
    }

    /*//////////////////////////////////////////////////////////////
                         FOCUSED FUZZ CAMPAIGNS
    //////////////////////////////////////////////////////////////*/

    /// @dev `size` distinct active pool keys, sorted by address.
    function _sortedQuorum(Plan memory p, uint256 size) internal view returns (uint256[] memory keys) {
        uint256[] memory idx = _pick(p, p.n, size);
        keys = new uint256[](size);
        for (uint256 i; i < size; ++i) {
            keys[i] = ops[idx[i]].signerKey;
        }
        (keys,) = _sortKeys(keys);
    }

    function _plan(uint256 nSeed, uint256 minN, uint256 seed) internal returns (Plan memory p) {
        p.rand = seed;
        p.n = bound(nSeed, minN, POOL);
        _shrinkTo(p.n);
    }

    /// @dev Any sorted set of distinct active signers of size M..N settles, all recorded. Concrete replay:
    /// the test_settle_threshold* tests of SignatureVerificationTest.
    function testFuzz_settle_succeedsWithAnySortedQuorum(uint256 nSeed, uint256 sizeSeed, uint256 seed)
        public
    {
        Plan memory p = _plan(nSeed, 1, seed);
        uint256 size = bound(sizeSeed, _expectedThreshold(p.n), p.n);
        uint256 jobId = _createJob();
        (bytes memory sigs, address[] memory signers) =
            _packSignatures(_sortedQuorum(p, size), _digest(jobId, _result()));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
        _assertSettledWith(jobId, signers);
    }

    /// @dev Concrete replay: test_settle_threshold* (the M - 1 half) and test_RevertWhen_thresholdRoseAfterSigning.
    function testFuzz_RevertWhen_fewerThanThreshold(uint256 nSeed, uint256 sizeSeed, uint256 seed) public {
        Plan memory p = _plan(nSeed, 2, seed);
        uint256 m = _expectedThreshold(p.n);
        uint256 size = bound(sizeSeed, 1, m - 1);
        uint256 jobId = _createJob();
        bytes memory sigs = _signAll(_sortedQuorum(p, size), _digest(jobId, _result()));
        vm.expectRevert(_errInsufficient(size, m));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }

    /// @dev Concrete replay: SignatureVerificationTest.test_RevertWhen_signatureMalleated.
    function testFuzz_RevertWhen_signatureHighS(uint256 nSeed, uint256 posSeed, uint256 seed) public {
        Plan memory p = _plan(nSeed, 1, seed);
        uint256 m = _expectedThreshold(p.n);
        uint256 pos = bound(posSeed, 0, m - 1);
        uint256 jobId = _createJob();
        bytes memory sigs = _signAll(_sortedQuorum(p, m), _digest(jobId, _result()));
        bytes memory bad = _malleateAt(sigs, pos);
        vm.expectRevert(_errInvalid(pos));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, bad);
    }

    /// @dev Concrete replay: SignatureVerificationTest.test_RevertWhen_signedForAnotherChainId.
    function testFuzz_RevertWhen_signedForAnotherChainId(uint256 nSeed, uint64 chainId, uint256 seed) public {
        vm.assume(chainId != block.chainid && chainId != 0);
        Plan memory p = _plan(nSeed, 1, seed);
        uint256 jobId = _createJob();
        uint256[] memory keys = _sortedQuorum(p, _expectedThreshold(p.n));
        bytes memory sigs = _signAll(keys, _digestOn(jobId, chainId));
        bytes32 home = _digest(jobId, _result());
        // The model: what those signatures recover to here, none of them an active signer.
        address[] memory seen = new address[](keys.length);
        for (uint256 i; i < keys.length; ++i) {
            (bytes32 r, bytes32 s, uint8 v) = _chunk(sigs, i);
            seen[i] = ecrecover(home, v, r, s);
            assertFalse(registry.isActiveSigner(seen[i]));
        }
        bytes memory expected = _errInactive(0, seen[0]);
        for (uint256 i = 1; i < keys.length; ++i) {
            if (seen[i] <= seen[i - 1]) {
                expected = _errNotAscending(i, seen[i], seen[i - 1]);
                break;
            }
        }
        vm.expectRevert(expected);
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }

    /// @dev A signer of an otherwise valid quorum leaves after signing: deactivated, unbonding below the
    /// minimum, slashed and jailed, or rotated out. Concrete replays: the C3 tests of SignatureVerificationTest.
    function testFuzz_RevertWhen_signerLeftAfterSigning(
        uint256 nSeed,
        uint256 posSeed,
        uint256 how,
        uint256 seed
    ) public {
        Plan memory p = _plan(nSeed, 1, seed);
        uint256 jobId = _createJob();
        uint256 size = bound(uint256(keccak256(abi.encode(seed))), _expectedThreshold(p.n), p.n);
        uint256[] memory keys = _sortedQuorum(p, size);
        bytes memory sigs = _signAll(keys, _digest(jobId, _result()));
        uint256 pos = bound(posSeed, 0, size - 1);
        address leaver = vm.addr(keys[pos]);
        uint256 idx;
        while (ops[idx].signer != leaver) {
            ++idx;
        }
        _leave(idx, how);
        vm.expectRevert(_errInactive(pos, leaver));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }

    /// @dev Concrete replays: test_RevertWhen_signerSignsTwice, test_RevertWhen_thresholdCopiesOfOneSignature.
    function testFuzz_RevertWhen_signerDuplicated(uint256 nSeed, uint256 posSeed, uint256 seed) public {
        Plan memory p = _plan(nSeed, 1, seed);
        uint256 m = _expectedThreshold(p.n);
        uint256 jobId = _createJob();
        uint256[] memory keys = _sortedQuorum(p, m);
        uint256 pos = bound(posSeed, 0, m - 1);
        bytes32 digest = _digest(jobId, _result());
        bytes memory sigs;
        for (uint256 i; i < m; ++i) {
            sigs = bytes.concat(sigs, _sign(keys[i], digest));
            if (i == pos) sigs = bytes.concat(sigs, _sign(keys[i], digest));
        }
        vm.expectRevert(_errNotAscending(pos + 1, vm.addr(keys[pos]), vm.addr(keys[pos])));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }

    /// @dev A quorum in any order but ascending. Concrete replays: test_RevertWhen_signersUnsorted,
    /// test_RevertWhen_signersDescending.
    function testFuzz_RevertWhen_signersNotAscending(uint256 nSeed, uint256 seed) public {
        Plan memory p = _plan(nSeed, 2, seed);
        uint256 m = _expectedThreshold(p.n);
        uint256 jobId = _createJob();
        uint256[] memory sorted = _sortedQuorum(p, m);
        uint256[] memory perm = _pick(p, m, m);
        uint256 descent;
        for (uint256 i = 1; i < m && descent == 0; ++i) {
            if (perm[i] < perm[i - 1]) descent = i;
        }
        if (descent == 0) {
            (perm[0], perm[1]) = (perm[1], perm[0]);
            descent = 1;
        }
        uint256[] memory keys = new uint256[](m);
        for (uint256 i; i < m; ++i) {
            keys[i] = sorted[perm[i]];
        }
        bytes memory sigs = _signAll(keys, _digest(jobId, _result()));
        vm.expectRevert(_errNotAscending(descent, vm.addr(keys[descent]), vm.addr(keys[descent - 1])));
        escrow.settle(jobId, RUNTIME, _result(), OUTPUT, sigs);
    }

    /// @dev M is the smallest count above two thirds of N for every N the pool covers (6667 bps, floor 1).
    function test_threshold_isMoreThanTwoThirds() public {
        for (uint256 n = POOL; n > 0; --n) {
            assertEq(registry.activeCount(), n);
            assertEq(registry.threshold(), 2 * n / 3 + 1, "M = floor(2N/3) + 1");
            assertEq(_expectedThreshold(n), 2 * n / 3 + 1);
            vm.prank(ops[n - 1].operator);
            registry.deactivate();
        }
    }
}
