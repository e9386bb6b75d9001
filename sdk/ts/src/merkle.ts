/**
 * The Merkle tree of a batch settlement, identical to the escrow's (`BatchMerkle.sol`), to the Rust
 * sdk's `merkle` module and to OpenZeppelin's `StandardMerkleTree.of(entries, ["uint256", "bytes32"])`.
 *
 * - A leaf is `keccak256(keccak256(abi.encode(jobId, resultHash)))` (OpenZeppelin's double hash:
 *   a 64-byte preimage is the size of an inner node's, so a single hash could pass for one).
 * - Leaves are sorted ascending (the order `settleBatch` requires its entries in) and laid out as
 *   a complete binary tree in an array: leaf `k` at index `2n - 2 - k`, node `i`'s children at
 *   `2i + 1` and `2i + 2`, each pair hashed smaller first.
 * - A proof is the list of siblings from the leaf up (OpenZeppelin's `MerkleProof.verify`).
 *
 * `sdk/testdata/merkle.json`, written by OpenZeppelin's own library, pins all of this.
 */
import { concatHex, encodeAbiParameters, keccak256, type Hex } from "viem";
import { BatchError } from "./errors.js";

/** Most entries the escrow accepts in one batch (`JobEscrow.MAX_BATCH_JOBS`). */
export const MAX_BATCH_JOBS = 1024;

/** One entry of a batch (`IJobEscrow.BatchEntry`): a job and the result hash its signers attest. */
export interface BatchEntry {
  /** The escrow's job id. */
  jobId: bigint;
  /** keccak256 of the job's canonical output. */
  resultHash: Hex;
}

/** The leaf of one batch entry: `keccak256(keccak256(abi.encode(jobId, resultHash)))`. */
export function leafHash(jobId: bigint, resultHash: Hex): Hex {
  return keccak256(keccak256(encodeAbiParameters([{ type: "uint256" }, { type: "bytes32" }], [jobId, resultHash])));
}

/** `keccak256` of the two nodes, smaller first (OpenZeppelin's `Hashes.commutativeKeccak256`). */
export function hashPair(a: Hex, b: Hex): Hex {
  return BigInt(a) <= BigInt(b) ? keccak256(concatHex([a, b])) : keccak256(concatHex([b, a]));
}

/** Whether `proof` leads from `leaf` to `root` (OpenZeppelin's `MerkleProof.verify`). */
export function verifyProof(proof: readonly Hex[], root: Hex, leaf: Hex): boolean {
  return proof.reduce<Hex>((node, sibling) => hashPair(node, sibling), leaf).toLowerCase() === root.toLowerCase();
}

/** A batch's tree: its entries in the order the escrow wants them, every node, the root. */
export class BatchTree {
  /** The entries sorted by ascending leaf: pass them to `settleBatch` / `releaseBatch` in this order. */
  readonly entries: readonly BatchEntry[];
  /** Every node in the array layout: `nodes[0]` is the root, leaf `k` is at `nodes.length - 1 - k`. */
  readonly nodes: readonly Hex[];

  /** Builds the tree of entries given in any order; throws {@link BatchError} for 0, too many or duplicates. */
  constructor(entries: Iterable<BatchEntry>) {
    const leaves = [...entries].map((e) => {
      const entry = { jobId: e.jobId, resultHash: e.resultHash.toLowerCase() as Hex };
      const leaf = leafHash(entry.jobId, entry.resultHash);
      return { leaf, key: BigInt(leaf), entry };
    });
    const n = leaves.length;
    if (n === 0 || n > MAX_BATCH_JOBS) throw new BatchError(`a batch needs 1 to ${MAX_BATCH_JOBS} entries, got ${n}`);
    leaves.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (let k = 1; k < n; k++) {
      if (leaves[k]!.key === leaves[k - 1]!.key) {
        throw new BatchError(`job ${leaves[k]!.entry.jobId} appears twice with the same result: list each entry once`);
      }
    }
    const nodes = new Array<Hex>(2 * n - 1);
    leaves.forEach((l, k) => (nodes[2 * n - 2 - k] = l.leaf));
    for (let i = n - 2; i >= 0; i--) nodes[i] = hashPair(nodes[2 * i + 1]!, nodes[2 * i + 2]!);
    this.entries = leaves.map((l) => l.entry);
    this.nodes = nodes;
  }

  /** The root the signers sign (in `BatchAttestation`) and `BatchSettled` reports. */
  get root(): Hex {
    return this.nodes[0]!;
  }

  /** The proof of the `k`-th entry of {@link BatchTree.entries}; `undefined` if out of range. */
  proofAt(k: number): Hex[] | undefined {
    if (!Number.isInteger(k) || k < 0 || k >= this.entries.length) return undefined;
    let index = this.nodes.length - 1 - k;
    const proof: Hex[] = [];
    while (index > 0) {
      proof.push(this.nodes[index % 2 === 1 ? index + 1 : index - 1]!);
      index = Math.floor((index - 1) / 2);
    }
    return proof;
  }

  /** The proof that `(jobId, resultHash)` is in the batch; `undefined` if it is not. */
  proof(jobId: bigint, resultHash: Hex): Hex[] | undefined {
    const rh = resultHash.toLowerCase();
    return this.proofAt(this.entries.findIndex((e) => e.jobId === jobId && e.resultHash === rh));
  }

  /** The entry of `jobId`, if the batch has one. */
  entry(jobId: bigint): BatchEntry | undefined {
    return this.entries.find((e) => e.jobId === jobId);
  }
}
