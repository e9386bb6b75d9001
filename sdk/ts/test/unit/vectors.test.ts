// Every shared vector in sdk/testdata/vectors.json, reproduced byte for byte.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { bytesToHex, getAddress, hexToBytes, keccak256, toHex, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  attestationDigest,
  attestationDomain,
  attestationStructHash,
  attestationTypeHash,
  decodeCanonical,
  domainSeparator,
  encodeCanonical,
  fromF32,
  packSignatures,
  recoverAscending,
  resultHash,
  signAttestation,
  signerProofDigest,
  verifySignedAttestation,
  type Attestation,
} from "../../src/index.js";

interface Vectors {
  version: number;
  attestations: {
    chainId: number;
    verifyingContract: Address;
    attestation: { jobId: string; modelId: Hex; inputHash: Hex; resultHash: Hex; runtimeId: Hex };
    output: Hex;
    typeHash: Hex;
    structHash: Hex;
    domainSeparator: Hex;
    digest: Hex;
    privateKey: Hex;
    signer: Address;
    signature: Hex;
  }[];
  signerProofs: { chainId: number; registry: Address; operator: Address; signer: Address; digest: Hex }[];
  quorum: { digest: Hex; privateKeys: Hex[]; packed: Hex; signers: Address[] };
  canonical: { decimals: number; tensors: { shape: number[]; values: number[] }[]; encoded: Hex; resultHash: Hex }[];
}

const v = JSON.parse(readFileSync(new URL("../../../testdata/vectors.json", import.meta.url), "utf8")) as Vectors;

describe("shared vectors", () => {
  it("cover every kind", () => {
    assert.equal(v.version, 1);
    assert.equal(v.attestations.length, 4);
    assert.equal(v.signerProofs.length, 1);
    assert.equal(v.quorum.privateKeys.length, 5);
    assert.equal(v.canonical.length, 3);
  });

  v.attestations.forEach((c, i) => {
    describe(`attestation ${i} (chain ${c.chainId}, job ${c.attestation.jobId})`, () => {
      const a: Attestation = { ...c.attestation, jobId: BigInt(c.attestation.jobId) };
      const domain = attestationDomain(c.chainId, c.verifyingContract);

      it("result hash is keccak256 of the output", () => {
        assert.equal(resultHash(c.output), c.attestation.resultHash);
      });
      it("type hash, struct hash and domain separator", () => {
        assert.equal(attestationTypeHash(), c.typeHash);
        assert.equal(attestationStructHash(a), c.structHash);
        assert.equal(domainSeparator(domain), c.domainSeparator);
      });
      it("digest", () => {
        assert.equal(attestationDigest(a, domain), c.digest);
        // EIP-712 by hand from the parts, as the contract computes it.
        const manual = keccak256(new Uint8Array([0x19, 0x01, ...hexToBytes(c.domainSeparator), ...hexToBytes(c.structHash)]));
        assert.equal(manual, c.digest);
      });
      it("signature, byte for byte", async () => {
        const account = privateKeyToAccount(c.privateKey);
        assert.equal(account.address, getAddress(c.signer));
        const signed = await signAttestation(a, account, domain);
        assert.equal(signed.signature, c.signature);
        await verifySignedAttestation(signed, domain);
      });
      it("recovers to the signer", async () => {
        assert.deepEqual(await recoverAscending(c.digest, c.signature), [getAddress(c.signer)]);
      });
    });
  });

  it("signer proof digests", () => {
    for (const p of v.signerProofs) {
      assert.equal(signerProofDigest(p.chainId, p.registry, p.operator, p.signer), p.digest);
    }
  });

  it("quorum: five keys sign, packed ascending by signer", async () => {
    const escrow = getAddress("0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0");
    const domain = attestationDomain(31337, escrow);
    const a: Attestation = {
      jobId: 9n,
      modelId: keccak256(toHex("m")),
      inputHash: keccak256(toHex("i")),
      resultHash: keccak256(toHex("r")),
      runtimeId: keccak256(toHex("rt")),
    };
    assert.equal(attestationDigest(a, domain), v.quorum.digest);
    const signed = await Promise.all(v.quorum.privateKeys.map((k) => signAttestation(a, privateKeyToAccount(k), domain)));
    const { packed, signers } = packSignatures(signed);
    assert.equal(packed, v.quorum.packed);
    assert.deepEqual(signers, v.quorum.signers.map((s) => getAddress(s)));
    assert.deepEqual(await recoverAscending(v.quorum.digest, v.quorum.packed), signers);
    // Order of input does not matter, duplicates are dropped.
    const shuffled = packSignatures([...signed].reverse().concat(signed));
    assert.equal(shuffled.packed, v.quorum.packed);
  });

  v.canonical.forEach((c, i) => {
    it(`canonical output ${i} (${c.decimals} decimals)`, () => {
      const out = fromF32(c.decimals, c.tensors);
      const bytes = encodeCanonical(out);
      assert.equal(bytesToHex(bytes), c.encoded);
      assert.equal(resultHash(bytes), c.resultHash);
      assert.deepEqual(decodeCanonical(hexToBytes(c.encoded)), out);
    });
  });
});
