// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IJobEscrow} from "../../contracts/interfaces/IJobEscrow.sol";
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
