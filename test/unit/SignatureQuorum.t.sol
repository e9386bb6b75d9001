// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SignatureQuorum} from "../../contracts/libraries/SignatureQuorum.sol";
import {Test} from "forge-std/Test.sol";

/// @title SignatureQuorumHarness
/// @notice Exposes `SignatureQuorum.recoverAscending` with calldata signatures, exactly as JobEscrow.settle and
/// Slashing.slashDowntime call it.
contract SignatureQuorumHarness {
    /// @notice Recovers the strictly ascending signers of `digest` from packed 65-byte signatures.
    function recoverAscending(bytes32 digest, bytes calldata signatures)
        external
        pure
        returns (address[] memory)
    {
        return SignatureQuorum.recoverAscending(digest, signatures);
    }
}

/// @title SignatureQuorumTest
/// @notice The library alone (RELIABILITY C4-C7): recovery order, strict ascent, high-s, bad v, zero signer and
/// blob framing, checked against a reference model written with the bare `ecrecover` precompile.
contract SignatureQuorumTest is Test {
    /// @dev secp256k1 group order n.
    uint256 internal constant SECP256K1_N =
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    /// @dev floor(n / 2): EIP-2's upper bound on s, written out rather than derived from the library.
    uint256 internal constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    bytes32 internal constant DIGEST = keccak256("attesta/signature-quorum/digest");

    SignatureQuorumHarness internal harness;

    function setUp() public {
        harness = new SignatureQuorumHarness();
    }

    /*//////////////////////////////////////////////////////////////
                                HELPERS
    //////////////////////////////////////////////////////////////*/

    function _key(uint256 salt, uint256 i) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode("attesta/sq-key", salt, i))) % (SECP256K1_N - 1) + 1;
    }

    /// @dev `count` distinct keys sorted ascending by address, with those addresses.
    function _sortedKeys(uint256 count, uint256 salt)
        internal
        pure
        returns (uint256[] memory keys, address[] memory addrs)
    {
        keys = new uint256[](count);
        addrs = new address[](count);
        for (uint256 i; i < count; ++i) {
            uint256 k = _key(salt, i);
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
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _pack(uint256[] memory keys, bytes32 digest) internal pure returns (bytes memory blob) {
        for (uint256 i; i < keys.length; ++i) {
            blob = bytes.concat(blob, _sign(keys[i], digest));
        }
    }

    /// @dev Reads (r, s, v) of the 65-byte chunk `i` of `blob`.
    function _chunk(bytes memory blob, uint256 i) internal pure returns (bytes32 r, bytes32 s, uint8 v) {
        uint256 offset = i * 65;
        assembly ("memory-safe") {
            let p := add(add(blob, 32), offset)
            r := mload(p)
            s := mload(add(p, 32))
            v := byte(0, mload(add(p, 64)))
        }
    }

    /// @dev Overwrites chunk `i` of `blob` with (r, s, v).
    function _setChunk(bytes memory blob, uint256 i, bytes32 r, bytes32 s, uint8 v) internal pure {
        bytes memory sig = abi.encodePacked(r, s, v);
        for (uint256 b; b < 65; ++b) {
            blob[i * 65 + b] = sig[b];
        }
    }

    function _malleate(bytes32 s, uint8 v) internal pure returns (bytes32, uint8) {
        return (bytes32(SECP256K1_N - uint256(s)), v == 27 ? 28 : 27);
    }

    function _malformed(uint256 length) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(SignatureQuorum.SignatureQuorumMalformed.selector, length);
    }

    function _invalid(uint256 index) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(SignatureQuorum.SignatureQuorumInvalidSignature.selector, index);
    }

    function _notAscending(uint256 index, address signer, address previous)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodeWithSelector(
            SignatureQuorum.SignatureQuorumSignersNotAscending.selector, index, signer, previous
        );
    }

    /// @dev Reference model: the bare precompile, the EIP-2 bound and a strict `>` against the previous signer.
    /// Returns the exact return data (abi-encoded signers) or revert data the library must produce.
    function _reference(bytes32 digest, bytes memory blob)
        internal
        pure
        returns (bool ok, bytes memory data)
    {
        if (blob.length == 0 || blob.length % 65 != 0) {
            return (false, _malformed(blob.length));
        }
        uint256 count = blob.length / 65;
        address[] memory signers = new address[](count);
        address previous;
        for (uint256 i; i < count; ++i) {
            (bytes32 r, bytes32 s, uint8 v) = _chunk(blob, i);
            address signer = uint256(s) > HALF_N ? address(0) : ecrecover(digest, v, r, s);
            if (signer == address(0)) return (false, _invalid(i));
            if (signer <= previous) return (false, _notAscending(i, signer, previous));
            signers[i] = signer;
            previous = signer;
        }
        return (true, abi.encode(signers));
    }

    /// @dev Calls the harness and compares success and the exact return or revert data with the model.
    function _checkAgainstReference(bytes32 digest, bytes memory blob) internal view returns (bool ok) {
        bytes memory expected;
        (ok, expected) = _reference(digest, blob);
        (bool success, bytes memory data) = address(harness)
            .staticcall(abi.encodeCall(SignatureQuorumHarness.recoverAscending, (digest, blob)));
        assertEq(success, ok, "success differs from the reference");
        assertEq(data, expected, "return or revert data differs from the reference");
    }

    /*//////////////////////////////////////////////////////////////
                             VALID SIGNATURES
    //////////////////////////////////////////////////////////////*/

    function test_recoverAscending_returnsSignersInOrder() public view {
        (uint256[] memory keys, address[] memory addrs) = _sortedKeys(7, 1);
        address[] memory signers = harness.recoverAscending(DIGEST, _pack(keys, DIGEST));
        assertEq(signers, addrs);
    }

    function test_recoverAscending_returnsSingleSigner() public view {
        (uint256[] memory keys, address[] memory addrs) = _sortedKeys(1, 2);
        address[] memory signers = harness.recoverAscending(DIGEST, _pack(keys, DIGEST));
        assertEq(signers.length, 1);
        assertEq(signers[0], addrs[0]);
    }

    function test_recoverAscending_acceptsBothRecoveryIds() public view {
        uint256 key = _key(3, 0);
        bool seen27;
        bool seen28;
        for (uint256 i; i < 64 && !(seen27 && seen28); ++i) {
            bytes32 digest = keccak256(abi.encode(i));
            bytes memory sig = _sign(key, digest);
            (,, uint8 v) = _chunk(sig, 0);
            address[] memory signers = harness.recoverAscending(digest, sig);
            assertEq(signers[0], vm.addr(key));
            if (v == 27) seen27 = true;
            if (v == 28) seen28 = true;
        }
        assertTrue(seen27 && seen28, "both recovery ids exercised");
    }

    /// @dev Concrete replay of the fuzz test below with the largest active set DESIGN allows.
    function test_recoverAscending_returnsSixtyFourSigners() public view {
        (uint256[] memory keys, address[] memory addrs) = _sortedKeys(64, 4);
        assertEq(harness.recoverAscending(DIGEST, _pack(keys, DIGEST)), addrs);
    }

    function testFuzz_recoverAscending_returnsSortedSigners(bytes32 digest, uint256 countSeed, uint256 salt)
        public
        view
    {
        uint256 count = bound(countSeed, 1, 32);
        (uint256[] memory keys, address[] memory addrs) = _sortedKeys(count, salt);
        assertEq(harness.recoverAscending(digest, _pack(keys, digest)), addrs);
    }

    /// @dev The signature binds the digest: the same bytes under another digest recover someone else.
    function test_recoverAscending_bindsDigest() public view {
        uint256 key = _key(5, 0);
        bytes memory sig = _sign(key, DIGEST);
        bytes32 other = keccak256("another digest");
        address[] memory signers = harness.recoverAscending(other, sig);
        assertNotEq(signers[0], vm.addr(key));
        _checkAgainstReference(other, sig);
    }

    /// @dev Only byte 64 of each chunk is v: dirty ABI padding after the blob is never read as data.
    function test_recoverAscending_ignoresCalldataPaddingAfterBlob() public view {
        uint256 key = _key(6, 0);
        bytes memory sig = _sign(key, DIGEST);
        bytes memory data = abi.encodeCall(SignatureQuorumHarness.recoverAscending, (DIGEST, sig));
        // selector (4) + digest (32) + offset (32) + length (32) + 65 bytes, then 31 bytes of padding.
        assertEq(data.length, 4 + 32 * 3 + 96);
        for (uint256 i = data.length - 31; i < data.length; ++i) {
            data[i] = 0xff;
        }
        (bool ok, bytes memory ret) = address(harness).staticcall(data);
        assertTrue(ok);
        address[] memory signers = abi.decode(ret, (address[]));
        assertEq(signers.length, 1);
        assertEq(signers[0], vm.addr(key));
    }

    /*//////////////////////////////////////////////////////////////
                                 FRAMING
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_signaturesEmpty() public {
        vm.expectRevert(_malformed(0));
        harness.recoverAscending(DIGEST, "");
    }

    function test_RevertWhen_signatureIs64Bytes() public {
        (uint256[] memory keys,) = _sortedKeys(1, 7);
        bytes memory sig = _sign(keys[0], DIGEST);
        bytes memory truncated = new bytes(64);
        for (uint256 i; i < 64; ++i) {
            truncated[i] = sig[i];
        }
        vm.expectRevert(_malformed(64));
        harness.recoverAscending(DIGEST, truncated);
    }

    /// @dev An EIP-2098 compact signature (r, vs) is a valid 64-byte signature elsewhere; here it is malformed.
    function test_RevertWhen_signatureIsCompact() public {
        uint256 key = _key(8, 0);
        (bytes32 r, bytes32 vs) = vm.signCompact(key, DIGEST);
        vm.expectRevert(_malformed(64));
        harness.recoverAscending(DIGEST, abi.encodePacked(r, vs));
    }

    function test_RevertWhen_lengthNotMultipleOf65() public {
        (uint256[] memory keys,) = _sortedKeys(2, 9);
        bytes memory blob = _pack(keys, DIGEST);
        uint256[5] memory lengths = [uint256(1), 64, 66, 129, 131];
        for (uint256 i; i < lengths.length; ++i) {
            bytes memory cut = new bytes(lengths[i]);
            for (uint256 b; b < lengths[i] && b < blob.length; ++b) {
                cut[b] = blob[b];
            }
            vm.expectRevert(_malformed(lengths[i]));
            harness.recoverAscending(DIGEST, cut);
        }
    }

    /// @dev Valid signatures followed by one stray byte: rejected, never silently ignored.
    function test_RevertWhen_validBlobHasTrailingByte() public {
        (uint256[] memory keys,) = _sortedKeys(3, 10);
        bytes memory blob = bytes.concat(_pack(keys, DIGEST), hex"1b");
        vm.expectRevert(_malformed(196));
        harness.recoverAscending(DIGEST, blob);
    }

    function testFuzz_RevertWhen_lengthNotMultipleOf65(bytes calldata blob) public {
        bytes memory data = blob.length % 65 == 0 ? bytes.concat(blob, hex"00") : blob;
        vm.expectRevert(_malformed(data.length));
        harness.recoverAscending(DIGEST, data);
    }

    /*//////////////////////////////////////////////////////////////
                            INVALID SIGNATURES
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_vNot27Or28() public {
        (uint256[] memory keys,) = _sortedKeys(3, 11);
        uint8[6] memory badV = [uint8(0), 1, 2, 26, 29, 255];
        for (uint256 i; i < badV.length; ++i) {
            bytes memory blob = _pack(keys, DIGEST);
            (bytes32 r, bytes32 s,) = _chunk(blob, 1);
            _setChunk(blob, 1, r, s, badV[i]);
            vm.expectRevert(_invalid(1));
            harness.recoverAscending(DIGEST, blob);
        }
    }

    /// @dev v in {0, 1} is the raw recovery id other libraries normalise by adding 27; this one must not.
    function test_RevertWhen_vIsRawRecoveryId() public {
        (uint256[] memory keys, address[] memory addrs) = _sortedKeys(1, 12);
        bytes memory sig = _sign(keys[0], DIGEST);
        (bytes32 r, bytes32 s, uint8 v) = _chunk(sig, 0);
        // The same (r, s) with v normalised recovers the signer: only v is wrong.
        assertEq(ecrecover(DIGEST, v, r, s), addrs[0]);
        _setChunk(sig, 0, r, s, v - 27);
        vm.expectRevert(_invalid(0));
        harness.recoverAscending(DIGEST, sig);
    }

    function testFuzz_RevertWhen_vNot27Or28(uint256 countSeed, uint256 posSeed, uint8 v) public {
        vm.assume(v != 27 && v != 28);
        uint256 count = bound(countSeed, 1, 8);
        uint256 pos = bound(posSeed, 0, count - 1);
        (uint256[] memory keys,) = _sortedKeys(count, countSeed);
        bytes memory blob = _pack(keys, DIGEST);
        (bytes32 r, bytes32 s,) = _chunk(blob, pos);
        _setChunk(blob, pos, r, s, v);
        vm.expectRevert(_invalid(pos));
        harness.recoverAscending(DIGEST, blob);
    }

    function test_RevertWhen_signatureZeroed() public {
        vm.expectRevert(_invalid(0));
        harness.recoverAscending(DIGEST, new bytes(65));

        (uint256[] memory keys,) = _sortedKeys(3, 13);
        bytes memory blob = _pack(keys, DIGEST);
        _setChunk(blob, 2, 0, 0, 0);
        vm.expectRevert(_invalid(2));
        harness.recoverAscending(DIGEST, blob);
    }

    /// @dev r = 0, r >= n or s = 0 make the precompile return address(0): never a signer.
    function test_RevertWhen_recoversZeroAddress() public {
        (uint256[] memory keys,) = _sortedKeys(1, 14);
        bytes memory sig = _sign(keys[0], DIGEST);
        (bytes32 r, bytes32 s, uint8 v) = _chunk(sig, 0);

        bytes32[3] memory rs = [bytes32(0), bytes32(SECP256K1_N), r];
        bytes32[3] memory ss = [s, s, bytes32(0)];
        for (uint256 i; i < 3; ++i) {
            assertEq(ecrecover(DIGEST, v, rs[i], ss[i]), address(0));
            _setChunk(sig, 0, rs[i], ss[i], v);
            vm.expectRevert(_invalid(0));
            harness.recoverAscending(DIGEST, sig);
        }
    }

    /// @dev C6: (r, n - s, v flipped) recovers the same signer through the bare precompile; only the EIP-2 bound
    /// rejects it.
    function test_RevertWhen_signatureMalleated() public {
        (uint256[] memory keys, address[] memory addrs) = _sortedKeys(3, 15);
        bytes memory blob = _pack(keys, DIGEST);
        (bytes32 r, bytes32 s, uint8 v) = _chunk(blob, 1);
        (bytes32 s2, uint8 v2) = _malleate(s, v);
        assertEq(ecrecover(DIGEST, v2, r, s2), addrs[1], "malleated twin recovers the same signer");
        _setChunk(blob, 1, r, s2, v2);
        vm.expectRevert(_invalid(1));
        harness.recoverAscending(DIGEST, blob);
    }

    function testFuzz_RevertWhen_signatureMalleated(bytes32 digest, uint256 countSeed, uint256 posSeed)
        public
    {
        uint256 count = bound(countSeed, 1, 8);
        uint256 pos = bound(posSeed, 0, count - 1);
        (uint256[] memory keys, address[] memory addrs) = _sortedKeys(count, posSeed);
        bytes memory blob = _pack(keys, digest);
        (bytes32 r, bytes32 s, uint8 v) = _chunk(blob, pos);
        (bytes32 s2, uint8 v2) = _malleate(s, v);
        assertEq(ecrecover(digest, v2, r, s2), addrs[pos]);
        _setChunk(blob, pos, r, s2, v2);
        vm.expectRevert(_invalid(pos));
        harness.recoverAscending(digest, blob);
    }

    /// @dev The bound is inclusive: s = floor(n / 2) is accepted, s = floor(n / 2) + 1 is not.
    function test_recoverAscending_sBoundIsHalfOrderInclusive() public {
        (uint256[] memory keys,) = _sortedKeys(1, 16);
        (bytes32 r,, uint8 v) = _chunk(_sign(keys[0], DIGEST), 0);

        address atBound = ecrecover(DIGEST, v, r, bytes32(HALF_N));
        assertNotEq(atBound, address(0));
        address[] memory signers = harness.recoverAscending(DIGEST, abi.encodePacked(r, bytes32(HALF_N), v));
        assertEq(signers[0], atBound);

        assertNotEq(ecrecover(DIGEST, v, r, bytes32(HALF_N + 1)), address(0));
        vm.expectRevert(_invalid(0));
        harness.recoverAscending(DIGEST, abi.encodePacked(r, bytes32(HALF_N + 1), v));
    }

    function testFuzz_RevertWhen_sAboveHalfOrder(uint256 s, uint8 vSeed) public {
        s = bound(s, HALF_N + 1, type(uint256).max);
        uint8 v = vSeed % 2 == 0 ? 27 : 28;
        (uint256[] memory keys,) = _sortedKeys(1, 17);
        (bytes32 r,,) = _chunk(_sign(keys[0], DIGEST), 0);
        vm.expectRevert(_invalid(0));
        harness.recoverAscending(DIGEST, abi.encodePacked(r, bytes32(s), v));
    }

    /*//////////////////////////////////////////////////////////////
                                 ORDERING
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_signerRepeated() public {
        (uint256[] memory keys, address[] memory addrs) = _sortedKeys(3, 18);
        bytes memory blob =
            bytes.concat(_sign(keys[0], DIGEST), _sign(keys[1], DIGEST), _sign(keys[1], DIGEST));
        vm.expectRevert(_notAscending(2, addrs[1], addrs[1]));
        harness.recoverAscending(DIGEST, blob);
    }

    /// @dev C4: M copies of one signature can never count as M signers.
    function test_RevertWhen_copiesOfOneSignature() public {
        (uint256[] memory keys, address[] memory addrs) = _sortedKeys(1, 19);
        bytes memory sig = _sign(keys[0], DIGEST);
        for (uint256 copies = 2; copies <= 22; copies += 5) {
            bytes memory blob;
            for (uint256 i; i < copies; ++i) {
                blob = bytes.concat(blob, sig);
            }
            vm.expectRevert(_notAscending(1, addrs[0], addrs[0]));
            harness.recoverAscending(DIGEST, blob);
        }
    }

    function test_RevertWhen_signersDescending() public {
        (uint256[] memory keys, address[] memory addrs) = _sortedKeys(4, 20);
        bytes memory blob;
        for (uint256 i = keys.length; i > 0; --i) {
            blob = bytes.concat(blob, _sign(keys[i - 1], DIGEST));
        }
        vm.expectRevert(_notAscending(1, addrs[2], addrs[3]));
        harness.recoverAscending(DIGEST, blob);
    }

    function test_RevertWhen_signersSwappedInMiddle() public {
        (uint256[] memory keys, address[] memory addrs) = _sortedKeys(5, 21);
        (keys[2], keys[3]) = (keys[3], keys[2]);
        vm.expectRevert(_notAscending(3, addrs[2], addrs[3]));
        harness.recoverAscending(DIGEST, _pack(keys, DIGEST));
    }

    /// @dev Errors are reported for the first offending chunk: an order error at 1 wins over a bad chunk at 2.
    function test_RevertWhen_firstOffenceIsReported() public {
        (uint256[] memory keys, address[] memory addrs) = _sortedKeys(2, 22);
        bytes memory blob = bytes.concat(_sign(keys[1], DIGEST), _sign(keys[0], DIGEST), new bytes(65));
        vm.expectRevert(_notAscending(1, addrs[0], addrs[1]));
        harness.recoverAscending(DIGEST, blob);

        blob = bytes.concat(_sign(keys[0], DIGEST), new bytes(65), _sign(keys[0], DIGEST));
        vm.expectRevert(_invalid(1));
        harness.recoverAscending(DIGEST, blob);
    }

    function testFuzz_RevertWhen_signersNotAscending(uint256 countSeed, uint256 salt, uint256 shuffleSeed)
        public
    {
        uint256 count = bound(countSeed, 2, 12);
        (uint256[] memory keys, address[] memory addrs) = _sortedKeys(count, salt);
        // Random permutation; then the expected error is the first descent (a repeat is impossible: keys distinct).
        uint256[] memory perm = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            perm[i] = i;
        }
        for (uint256 i = count - 1; i > 0; --i) {
            uint256 j = uint256(keccak256(abi.encode(shuffleSeed, i))) % (i + 1);
            (perm[i], perm[j]) = (perm[j], perm[i]);
        }
        uint256 descent = count;
        for (uint256 i = 1; i < count; ++i) {
            if (perm[i] < perm[i - 1]) {
                descent = i;
                break;
            }
        }
        if (descent == count) {
            // The shuffle left the order sorted: reverse it, the first descent is then at 1.
            for (uint256 i; i < count; ++i) {
                perm[i] = count - 1 - i;
            }
            descent = 1;
        }
        bytes memory blob;
        for (uint256 i; i < count; ++i) {
            blob = bytes.concat(blob, _sign(keys[perm[i]], DIGEST));
        }
        vm.expectRevert(_notAscending(descent, addrs[perm[descent]], addrs[perm[descent - 1]]));
        harness.recoverAscending(DIGEST, blob);
    }

    /*//////////////////////////////////////////////////////////////
                       DIFFERENTIAL (REFERENCE MODEL)
    //////////////////////////////////////////////////////////////*/

    /// @dev Concrete replay of the differential fuzz test: each mutation it generates, at each position.
    function test_recoverAscending_matchesReferenceOnEachMutation() public view {
        (uint256[] memory keys,) = _sortedKeys(4, 23);
        bytes memory valid = _pack(keys, DIGEST);
        assertTrue(_checkAgainstReference(DIGEST, valid));
        for (uint8 kind; kind < 7; ++kind) {
            for (uint256 pos; pos < keys.length; ++pos) {
                bytes memory blob = bytes.concat(valid);
                _mutate(blob, pos, kind, uint256(keccak256(abi.encode(kind, pos))));
                bool ok = _checkAgainstReference(DIGEST, blob);
                // Kinds 3 and 6 recover some other address, which the library alone may accept if it sorts.
                if (kind != 3 && kind != 6) assertFalse(ok);
            }
        }
        assertFalse(_checkAgainstReference(DIGEST, bytes.concat(valid, hex"00")));
        assertFalse(_checkAgainstReference(DIGEST, ""));
    }

    /// @dev Applies mutation `kind` to chunk `pos`: 0 malleate, 1 bad v, 2 zero, 3 random (r, s), 4 repeat a
    /// neighbour, 5 swap with a neighbour, 6 flip v only (another public key, so another signer).
    function _mutate(bytes memory blob, uint256 pos, uint8 kind, uint256 rand) internal pure {
        uint256 count = blob.length / 65;
        (bytes32 r, bytes32 s, uint8 v) = _chunk(blob, pos);
        if (kind == 0) {
            (bytes32 s2, uint8 v2) = _malleate(s, v);
            _setChunk(blob, pos, r, s2, v2);
        } else if (kind == 1) {
            // forge-lint: disable-next-line(unsafe-typecast) keeps the low byte on purpose: any v but 27/28
            uint8 bad = uint8(rand);
            _setChunk(blob, pos, r, s, bad == 27 || bad == 28 ? 0 : bad);
        } else if (kind == 2) {
            _setChunk(blob, pos, 0, 0, 0);
        } else if (kind == 3) {
            _setChunk(blob, pos, bytes32(rand), bytes32(rand >> 1), 27);
        } else if (kind == 4) {
            // Repeat the neighbour: a duplicate signer.
            uint256 other = pos == 0 ? 1 % count : pos - 1;
            (bytes32 r2, bytes32 s2, uint8 v2) = _chunk(blob, other);
            _setChunk(blob, pos, r2, s2, v2);
            if (count == 1) _setChunk(blob, pos, 0, 0, 0);
        } else if (kind == 5) {
            // Swap with the neighbour: out of order.
            uint256 other = pos + 1 < count ? pos + 1 : (pos == 0 ? 0 : pos - 1);
            (bytes32 r2, bytes32 s2, uint8 v2) = _chunk(blob, other);
            _setChunk(blob, other, r, s, v);
            _setChunk(blob, pos, r2, s2, v2);
            if (count == 1) _setChunk(blob, pos, r, s, 29);
        } else {
            _setChunk(blob, pos, r, s, v == 27 ? 28 : 27);
        }
    }

    /// @dev Random blobs built from a small key pool (so repeats happen), mutated chunks, shuffles and stray
    /// bytes; the library must agree with the reference model byte for byte.
    function testFuzz_recoverAscending_matchesReference(bytes32 digest, uint256 seed) public view {
        uint256 count = bound(seed, 0, 10);
        (uint256[] memory pool,) = _sortedKeys(6, seed >> 128);
        bytes memory blob;
        for (uint256 i; i < count; ++i) {
            uint256 rand = uint256(keccak256(abi.encode(seed, i)));
            // Mostly ascending picks from the pool (so the valid path is common), sometimes any pool key.
            uint256 idx = rand % 4 == 0 ? (rand >> 8) % pool.length : (i * pool.length) / (count + 1);
            blob = bytes.concat(blob, _sign(pool[idx], digest));
            if ((rand >> 16) % 5 == 0) _mutate(blob, i, uint8((rand >> 24) % 7), rand >> 32);
        }
        uint256 tail = uint256(keccak256(abi.encode(seed, "tail"))) % 12;
        if (tail < 3) blob = bytes.concat(blob, new bytes(tail * 21 + 1));
        _checkAgainstReference(digest, blob);
    }

    function testFuzz_recoverAscending_matchesReferenceOnRandomBytes(bytes32 digest, bytes calldata blob)
        public
        view
    {
        _checkAgainstReference(digest, blob);
    }
}
