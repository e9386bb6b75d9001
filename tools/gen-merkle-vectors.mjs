#!/usr/bin/env node
// Writes sdk/testdata/merkle.json: batch-settlement Merkle vectors computed by OpenZeppelin's own
// reference implementation (@openzeppelin/merkle-tree 1.0.8, StandardMerkleTree with leaf encoding
// ["uint256", "bytes32"]), plus EIP-712 BatchAttestation digests and signatures computed here with
// ethereum-cryptography (its dependency). The contract (test/unit/Vectors.t.sol) and the Rust sdk
// (sdk/src/merkle.rs, sdk/src/attestation.rs) check themselves against this file; neither generated it.
//
// The package is not a dependency of the repository (the vectors are committed). To regenerate:
//   mkdir /tmp/ozmt && (cd /tmp/ozmt && npm install @openzeppelin/merkle-tree@1.0.8)
//   NODE_PATH=/tmp/ozmt/node_modules node tools/gen-merkle-vectors.mjs > sdk/testdata/merkle.json
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.NODE_PATH ?? "", "x.js"));
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");
const { keccak256 } = require("ethereum-cryptography/keccak");
const { secp256k1 } = require("ethereum-cryptography/secp256k1");

const hex = (b) => "0x" + Buffer.from(b).toString("hex");
const bytes = (h) => Uint8Array.from(Buffer.from(h.replace(/^0x/, ""), "hex"));
const word = (n) => BigInt(n).toString(16).padStart(64, "0");
const kec = (x) => keccak256(typeof x === "string" ? new TextEncoder().encode(x) : x);
const cat = (...parts) => bytes(parts.map((p) => (typeof p === "string" ? p.replace(/^0x/, "") : Buffer.from(p).toString("hex"))).join(""));

// The escrow's EIP-712 domain: name "Attesta", version "1".
const DOMAIN_TYPEHASH = kec("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
const BATCH_TYPEHASH = kec("BatchAttestation(bytes32 root,bytes32 runtimeId)");
function domainSeparator(chainId, escrow) {
  return kec(cat(DOMAIN_TYPEHASH, kec("Attesta"), kec("1"), word(chainId), word(BigInt(escrow))));
}
function batchDigest(chainId, escrow, root, runtimeId) {
  const structHash = kec(cat(BATCH_TYPEHASH, root, runtimeId));
  return { structHash: hex(structHash), digest: kec(cat("1901", domainSeparator(chainId, escrow), structHash)) };
}

const runtimeId = hex(kec("attesta/test-runtime/v1"));
const privateKey = hex(kec("attesta merkle vector key"));
const signer = (() => {
  const pub = secp256k1.getPublicKey(bytes(privateKey), false).slice(1);
  return hex(kec(pub).slice(12));
})();

const sizes = [1, 2, 3, 4, 5, 7, 8, 13];
const batches = sizes.map((n, b) => {
  // Job ids that are not simply 1..n, results that are arbitrary hashes: given in "relayer order".
  const values = Array.from({ length: n }, (_, i) => [
    String(1000 * (b + 1) + 7 * i + 1),
    hex(kec(`attesta merkle vector ${n}/${i}`)),
  ]);
  const tree = StandardMerkleTree.of(values, ["uint256", "bytes32"]);
  const sorted = [];
  const proofs = [];
  // tree.dump().tree is the array layout; leaf k of the sorted order sits at tree.length - 1 - k.
  const dump = tree.dump();
  for (let k = 0; k < n; k++) {
    const node = dump.tree.length - 1 - k;
    const entry = dump.values.find((v) => v.treeIndex === node);
    sorted.push({ jobId: entry.value[0], resultHash: entry.value[1], leaf: tree.leafHash(entry.value) });
    proofs.push(tree.getProof(entry.value));
    if (!StandardMerkleTree.verify(tree.root, ["uint256", "bytes32"], entry.value, proofs[k])) throw new Error("verify");
  }
  const chainId = 31337;
  const escrow = "0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0";
  const { structHash, digest } = batchDigest(chainId, escrow, tree.root, runtimeId);
  const sig = secp256k1.sign(digest, bytes(privateKey), { lowS: true });
  const signature = "0x" + word(sig.r) + word(sig.s) + (27 + sig.recovery).toString(16);
  return {
    entries: values.map(([jobId, resultHash]) => ({ jobId, resultHash })),
    sorted,
    tree: dump.tree,
    root: tree.root,
    proofs,
    attestation: {
      chainId,
      verifyingContract: escrow,
      runtimeId,
      typeHash: hex(BATCH_TYPEHASH),
      structHash,
      digest: hex(digest),
      privateKey,
      signer,
      signature,
    },
  };
});

process.stdout.write(
  JSON.stringify(
    { generator: "@openzeppelin/merkle-tree 1.0.8 StandardMerkleTree, leaf encoding [uint256, bytes32]", batches },
    null,
    2,
  ) + "\n",
);
