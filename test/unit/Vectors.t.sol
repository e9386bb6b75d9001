// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IJobEscrow} from "../../contracts/interfaces/IJobEscrow.sol";
import {BatchMerkle} from "../../contracts/libraries/BatchMerkle.sol";
import {AttestaTest} from "../utils/AttestaTest.sol";
import {stdJson} from "forge-std/StdJson.sol";

/// @title VectorsTest
/// @notice The contracts reproduce the shared test vectors in sdk/testdata/vectors.json, which the Rust sdk
/// generates and checks (and the TypeScript sdk must match): EIP-712 digests, domain separators, type hashes,
/// signatures and signer-key proofs. The escrow and registry code is placed at each vector's address with
/// `vm.etch`, on each vector's chain id, so the digest is the contract's own computation.
contract VectorsTest is AttestaTest {
    using stdJson for string;

    string internal json;

    function setUp() public override {
        super.setUp();
        json = vm.readFile(string.concat(vm.projectRoot(), "/sdk/testdata/vectors.json"));
    }

    function test_vectors_attestationDigestsMatchTheEscrow() public {
        uint256 count;
        while (vm.keyExistsJson(json, string.concat(".attestations[", vm.toString(count), "]"))) {
            ++count;
        }
        assertEq(count, 4, "expected the 4 attestation vectors");
        for (uint256 i; i < count; ++i) {
            string memory p = string.concat(".attestations[", vm.toString(i), "]");
            address at = json.readAddress(string.concat(p, ".verifyingContract"));
            vm.chainId(json.readUint(string.concat(p, ".chainId")));
            vm.etch(at, address(escrow).code);
            IJobEscrow target = IJobEscrow(at);

            IJobEscrow.Attestation memory a = IJobEscrow.Attestation({
                jobId: vm.parseUint(json.readString(string.concat(p, ".attestation.jobId"))),
                modelId: json.readBytes32(string.concat(p, ".attestation.modelId")),
                inputHash: json.readBytes32(string.concat(p, ".attestation.inputHash")),
                resultHash: json.readBytes32(string.concat(p, ".attestation.resultHash")),
                runtimeId: json.readBytes32(string.concat(p, ".attestation.runtimeId"))
            });
            bytes32 digest = json.readBytes32(string.concat(p, ".digest"));
            assertEq(target.hashAttestation(a), digest, string.concat("digest ", vm.toString(i)));
            assertEq(
                escrow.ATTESTATION_TYPEHASH(), json.readBytes32(string.concat(p, ".typeHash")), "type hash"
            );
            (bool ok, bytes memory sep) = at.staticcall(abi.encodeWithSignature("DOMAIN_SEPARATOR()"));
            assertTrue(ok);
            assertEq(
                abi.decode(sep, (bytes32)), json.readBytes32(string.concat(p, ".domainSeparator")), "domain"
            );
            assertEq(keccak256(json.readBytes(string.concat(p, ".output"))), a.resultHash, "resultHash");

            // The vector's signature recovers to its signer, and the signer is the key's address.
            bytes memory sig = json.readBytes(string.concat(p, ".signature"));
            (bytes32 r, bytes32 s, uint8 v) = _split(sig);
            address signer = json.readAddress(string.concat(p, ".signer"));
            assertEq(ecrecover(digest, v, r, s), signer, "signature");
            assertEq(vm.addr(uint256(json.readBytes32(string.concat(p, ".privateKey")))), signer, "key");
        }
    }

    function test_vectors_signerProofDigestMatchesTheRegistry() public {
        address at = json.readAddress(".signerProofs[0].registry");
        vm.chainId(json.readUint(".signerProofs[0].chainId"));
        vm.etch(at, address(registry).code);
        (bool ok, bytes memory ret) = at.staticcall(
            abi.encodeWithSignature(
                "signerProofDigest(address,address)",
                json.readAddress(".signerProofs[0].operator"),
                json.readAddress(".signerProofs[0].signer")
            )
        );
        assertTrue(ok);
        assertEq(abi.decode(ret, (bytes32)), json.readBytes32(".signerProofs[0].digest"));
    }
}

/// @notice A harness over the library the escrow builds batch roots with.
contract BatchMerkleHarness {
    function root(IJobEscrow.BatchEntry[] calldata sorted) external pure returns (bytes32) {
        bytes32[] memory tree = new bytes32[](2 * sorted.length - 1);
        for (uint256 k; k < sorted.length; ++k) {
            tree[tree.length - 1 - k] = BatchMerkle.leafHash(sorted[k].jobId, sorted[k].resultHash);
        }
        return BatchMerkle.rootOf(tree);
    }
}

/// @title MerkleVectorsTest
/// @notice sdk/testdata/merkle.json comes from OpenZeppelin's own StandardMerkleTree (tools/gen-merkle-vectors.mjs);
/// the escrow's leaves, roots, proofs, batch digests and a real settlement reproduce it. The Rust sdk checks the
/// same file.
contract MerkleVectorsTest is AttestaTest {
    using stdJson for string;

    string internal json;
    BatchMerkleHarness internal harness;

    function setUp() public override {
        super.setUp();
        json = vm.readFile(string.concat(vm.projectRoot(), "/sdk/testdata/merkle.json"));
        harness = new BatchMerkleHarness();
    }

    function _sorted(string memory p) internal view returns (IJobEscrow.BatchEntry[] memory entries) {
        uint256 n;
        while (vm.keyExistsJson(json, string.concat(p, ".sorted[", vm.toString(n), "]"))) {
            ++n;
        }
        entries = new IJobEscrow.BatchEntry[](n);
        for (uint256 k; k < n; ++k) {
            string memory e = string.concat(p, ".sorted[", vm.toString(k), "]");
            entries[k] = IJobEscrow.BatchEntry({
                jobId: vm.parseUint(json.readString(string.concat(e, ".jobId"))),
                resultHash: json.readBytes32(string.concat(e, ".resultHash"))
            });
        }
    }

    function test_vectors_batchRootsLeavesAndProofsMatchOpenZeppelin() public view {
        uint256 batches;
        while (vm.keyExistsJson(json, string.concat(".batches[", vm.toString(batches), "]"))) {
            ++batches;
        }
        assertEq(batches, 8, "expected the 8 batch vectors");
        for (uint256 b; b < batches; ++b) {
            string memory p = string.concat(".batches[", vm.toString(b), "]");
            IJobEscrow.BatchEntry[] memory sorted = _sorted(p);
            bytes32 root = json.readBytes32(string.concat(p, ".root"));
            assertEq(harness.root(sorted), root, string.concat("root ", vm.toString(b)));
            for (uint256 k; k < sorted.length; ++k) {
                string memory e = string.concat(p, ".sorted[", vm.toString(k), "]");
                assertEq(
                    escrow.batchLeaf(sorted[k].jobId, sorted[k].resultHash),
                    json.readBytes32(string.concat(e, ".leaf"))
                );
                bytes32[] memory proof =
                    json.readBytes32Array(string.concat(p, ".proofs[", vm.toString(k), "]"));
                assertTrue(
                    escrow.verifyBatchInclusion(root, sorted[k].jobId, sorted[k].resultHash, proof), "proof"
                );
            }
        }
    }

    function test_vectors_batchAttestationDigestsMatchTheEscrow() public {
        for (uint256 b; b < 8; ++b) {
            string memory p = string.concat(".batches[", vm.toString(b), "].attestation");
            address at = json.readAddress(string.concat(p, ".verifyingContract"));
            vm.chainId(json.readUint(string.concat(p, ".chainId")));
            vm.etch(at, address(escrow).code);
            bytes32 digest = IJobEscrow(at)
                .hashBatchAttestation(
                    json.readBytes32(string.concat(".batches[", vm.toString(b), "].root")),
                    json.readBytes32(string.concat(p, ".runtimeId"))
                );
            assertEq(digest, json.readBytes32(string.concat(p, ".digest")), "digest");
            assertEq(escrow.BATCH_ATTESTATION_TYPEHASH(), json.readBytes32(string.concat(p, ".typeHash")));
            (bytes32 r, bytes32 s, uint8 v) = _split(json.readBytes(string.concat(p, ".signature")));
            assertEq(ecrecover(digest, v, r, s), json.readAddress(string.concat(p, ".signer")), "signature");
        }
    }
}
