// Batch trees and batch attestations against sdk/testdata/merkle.json (written by OpenZeppelin's
// StandardMerkleTree), as the Rust sdk's merkle tests check them.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { keccak256, toHex, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  BatchError,
  BatchTree,
  MAX_BATCH_JOBS,
  attestationDomain,
  batchAttestationDigest,
  batchAttestationStructHash,
  batchAttestationTypeHash,
  leafHash,
  signBatchAttestation,
  verifyProof,
} from "../../src/index.js";

interface Vectors {
  batches: {
    entries: { jobId: string; resultHash: Hex }[];
    sorted: { jobId: string; resultHash: Hex; leaf: Hex }[];
    tree: Hex[];
    root: Hex;
    proofs: Hex[][];
    attestation: {
      chainId: number;
      verifyingContract: Address;
      runtimeId: Hex;
      typeHash: Hex;
      structHash: Hex;
      digest: Hex;
      privateKey: Hex;
      signer: Address;
      signature: Hex;
    };
  }[];
}

const v = JSON.parse(readFileSync(new URL("../../../testdata/merkle.json", import.meta.url), "utf8")) as Vectors;

describe("batch trees (sdk/testdata/merkle.json)", () => {
  it("has every batch size the vectors pin", () => assert.equal(v.batches.length, 8));

  v.batches.forEach((b, i) => {
    it(`batch ${i} (${b.entries.length} entries): root, nodes, sorted leaves, proofs and the signed attestation`, async () => {
      // Built from the entries in the relayer's (unsorted) order.
      const tree = new BatchTree(b.entries.map((e) => ({ jobId: BigInt(e.jobId), resultHash: e.resultHash })));
      assert.equal(tree.root, b.root.toLowerCase());
      assert.deepEqual(tree.nodes, b.tree.map((h) => h.toLowerCase()));
      b.sorted.forEach((e, k) => {
        const jobId = BigInt(e.jobId);
        assert.deepEqual(tree.entries[k], { jobId, resultHash: e.resultHash.toLowerCase() });
        assert.equal(leafHash(jobId, e.resultHash), e.leaf.toLowerCase());
        const proof = tree.proof(jobId, e.resultHash);
        assert.deepEqual(proof, b.proofs[k]!.map((h) => h.toLowerCase()));
        assert.ok(verifyProof(proof!, tree.root, e.leaf));
      });

      const a = b.attestation;
      const domain = attestationDomain(a.chainId, a.verifyingContract);
      const statement = { root: tree.root, runtimeId: a.runtimeId };
      assert.equal(batchAttestationTypeHash(), a.typeHash);
      assert.equal(batchAttestationStructHash(statement), a.structHash);
      assert.equal(batchAttestationDigest(statement, domain), a.digest);
      const signed = await signBatchAttestation(statement, privateKeyToAccount(a.privateKey), domain);
      assert.equal(signed.signer.toLowerCase(), a.signer.toLowerCase());
      // RFC 6979 on both sides: the signature is byte for byte the reference one.
      assert.equal(signed.signature, a.signature);
    });
  });

  it("a proof does not prove another result, nor survive a flipped bit", () => {
    const tree = new BatchTree(Array.from({ length: 9 }, (_, i) => ({ jobId: BigInt(i + 1), resultHash: keccak256(toHex(i + 1)) })));
    tree.entries.forEach((e, k) => {
      const proof = tree.proofAt(k)!;
      assert.ok(verifyProof(proof, tree.root, leafHash(e.jobId, e.resultHash)));
      assert.ok(!verifyProof(proof, tree.root, leafHash(e.jobId, `0x${"00".repeat(32)}`)));
      const flipped = proof[0]!.slice(0, -1) + (proof[0]!.endsWith("0") ? "1" : "0");
      assert.ok(!verifyProof([flipped as Hex, ...proof.slice(1)], tree.root, leafHash(e.jobId, e.resultHash)));
    });
    assert.equal(tree.proof(10n, keccak256(toHex(10))), undefined);
    assert.equal(tree.proofAt(9), undefined);
    assert.deepEqual(tree.entry(3n), { jobId: 3n, resultHash: keccak256(toHex(3)) });
  });

  it("a single-entry batch has its leaf as root and an empty proof", () => {
    const tree = new BatchTree([{ jobId: 7n, resultHash: keccak256(toHex("out")) }]);
    assert.equal(tree.root, leafHash(7n, keccak256(toHex("out"))));
    assert.deepEqual(tree.proof(7n, keccak256(toHex("out"))), []);
  });

  it("empty, oversized and duplicate batches are refused", () => {
    assert.throws(() => new BatchTree([]), (e: unknown) => e instanceof BatchError && /1 to 1024 entries, got 0/.test(e.message));
    const big = Array.from({ length: MAX_BATCH_JOBS + 1 }, (_, i) => ({ jobId: BigInt(i), resultHash: keccak256(toHex(i)) }));
    assert.throws(() => new BatchTree(big), BatchError);
    const e = { jobId: 3n, resultHash: keccak256(toHex("x")) };
    assert.throws(() => new BatchTree([e, e]), (err: unknown) => err instanceof BatchError && /job 3 appears twice/.test(err.message));
  });
});
