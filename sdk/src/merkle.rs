//! The Merkle tree of a batch settlement, identical to the escrow's (`BatchMerkle.sol`) and to
//! OpenZeppelin's `StandardMerkleTree.of(entries, ["uint256", "bytes32"])`.
//!
//! - A leaf is `keccak256(keccak256(abi.encode(jobId, resultHash)))`. The double hash is
//!   OpenZeppelin's: `abi.encode(uint256, bytes32)` is 64 bytes, the size of an inner node's
//!   preimage, so a single hash would let an inner node pass for a leaf.
//! - Leaves are sorted ascending (the order `JobEscrow.settleBatch` requires its entries in) and laid
//!   out as a complete binary tree in an array: leaf `k` at index `2n - 2 - k`, node `i`'s children
//!   at `2i + 1` and `2i + 2`, each pair hashed in sorted order.
//! - A proof is the list of siblings from the leaf up; OpenZeppelin's `MerkleProof.verify` (and
//!   [`verify`] here) accept it.
//!
//! `sdk/testdata/merkle.json`, written by OpenZeppelin's own library, pins all of this; the escrow
//! and this module are both tested against it.
//!
//! ```
//! use alloy::primitives::{U256, keccak256};
//! use attesta_sdk::merkle::{BatchTree, verify};
//!
//! let tree = BatchTree::new([
//!     (U256::from(1), keccak256(b"first output")),
//!     (U256::from(2), keccak256(b"second output")),
//!     (U256::from(3), keccak256(b"third output")),
//! ])
//! .unwrap();
//! let (job, result) = (U256::from(2), keccak256(b"second output"));
//! let proof = tree.proof(job, result).unwrap();
//! assert!(verify(&proof, tree.root(), attesta_sdk::merkle::leaf_hash(job, result)));
//! ```

use crate::bindings::IJobEscrow;
use alloy::primitives::{B256, U256, keccak256};

/// Most entries the escrow accepts in one batch (`JobEscrow.MAX_BATCH_JOBS`).
pub const MAX_BATCH_JOBS: usize = 1024;

/// Why a batch cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// A batch needs between 1 and [`MAX_BATCH_JOBS`] entries.
    #[error("a batch needs 1 to {MAX_BATCH_JOBS} entries, got {0}")]
    Size(usize),
    /// The same (jobId, resultHash) entry appears twice.
    #[error("job {job_id} appears twice with the same result: list each entry once")]
    Duplicate {
        /// The repeated job.
        job_id: U256,
    },
}

/// The leaf of one batch entry: `keccak256(keccak256(abi.encode(jobId, resultHash)))`.
pub fn leaf_hash(job_id: U256, result_hash: B256) -> B256 {
    let mut encoded = [0u8; 64];
    encoded[..32].copy_from_slice(&job_id.to_be_bytes::<32>());
    encoded[32..].copy_from_slice(result_hash.as_slice());
    keccak256(keccak256(encoded))
}

/// `keccak256` of the two nodes, smaller first (OpenZeppelin's `Hashes.commutativeKeccak256`).
pub fn hash_pair(a: B256, b: B256) -> B256 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(lo.as_slice());
    buf[32..].copy_from_slice(hi.as_slice());
    keccak256(buf)
}

/// Whether `proof` leads from `leaf` to `root` (OpenZeppelin's `MerkleProof.verify`).
pub fn verify(proof: &[B256], root: B256, leaf: B256) -> bool {
    proof.iter().fold(leaf, |node, sibling| hash_pair(node, *sibling)) == root
}

/// One entry of a batch: a job and the result hash its signers attest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The escrow's job id.
    pub job_id: U256,
    /// keccak256 of the job's canonical output.
    pub result_hash: B256,
}

impl From<Entry> for IJobEscrow::BatchEntry {
    fn from(e: Entry) -> Self {
        Self { jobId: e.job_id, resultHash: e.result_hash }
    }
}

/// A batch's tree: its entries in the order the escrow wants them, every node, the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchTree {
    /// Entries sorted by ascending leaf.
    entries: Vec<Entry>,
    /// The array layout: `nodes[0]` is the root, leaf `k` is at `nodes.len() - 1 - k`.
    nodes: Vec<B256>,
}

impl BatchTree {
    /// Builds the tree of `(jobId, resultHash)` entries given in any order.
    pub fn new(entries: impl IntoIterator<Item = (U256, B256)>) -> Result<Self, MerkleError> {
        let mut leaves: Vec<(B256, Entry)> = entries
            .into_iter()
            .map(|(job_id, result_hash)| {
                (leaf_hash(job_id, result_hash), Entry { job_id, result_hash })
            })
            .collect();
        let n = leaves.len();
        if n == 0 || n > MAX_BATCH_JOBS {
            return Err(MerkleError::Size(n));
        }
        leaves.sort_unstable_by_key(|(leaf, _)| *leaf);
        if let Some(w) = leaves.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(MerkleError::Duplicate { job_id: w[0].1.job_id });
        }
        let mut nodes = vec![B256::ZERO; 2 * n - 1];
        for (k, (leaf, _)) in leaves.iter().enumerate() {
            nodes[2 * n - 2 - k] = *leaf;
        }
        for i in (0..n - 1).rev() {
            nodes[i] = hash_pair(nodes[2 * i + 1], nodes[2 * i + 2]);
        }
        Ok(Self { entries: leaves.into_iter().map(|(_, e)| e).collect(), nodes })
    }

    /// The root the signers sign (in `BatchAttestation`) and `BatchSettled` reports.
    pub fn root(&self) -> B256 {
        self.nodes[0]
    }

    /// The entries sorted by leaf: pass them to `settleBatch` in this order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entries as the contract binding's type, in `settleBatch` order.
    pub fn batch_entries(&self) -> Vec<IJobEscrow::BatchEntry> {
        self.entries.iter().copied().map(Into::into).collect()
    }

    /// Every node in the array layout (`[0]` is the root).
    pub fn nodes(&self) -> &[B256] {
        &self.nodes
    }

    /// The proof of the `k`-th entry of [`BatchTree::entries`]; `None` if out of range.
    pub fn proof_at(&self, k: usize) -> Option<Vec<B256>> {
        if k >= self.entries.len() {
            return None;
        }
        let mut index = self.nodes.len() - 1 - k;
        let mut proof = Vec::new();
        while index > 0 {
            let sibling = if index % 2 == 1 { index + 1 } else { index - 1 };
            proof.push(self.nodes[sibling]);
            index = (index - 1) / 2;
        }
        Some(proof)
    }

    /// The proof that `(job_id, result_hash)` is in the batch; `None` if it is not.
    pub fn proof(&self, job_id: U256, result_hash: B256) -> Option<Vec<B256>> {
        let k =
            self.entries.iter().position(|e| e.job_id == job_id && e.result_hash == result_hash)?;
        self.proof_at(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/merkle.json"))
                .expect("sdk/testdata/merkle.json");
        serde_json::from_str(&text).expect("valid json")
    }

    fn b256(v: &Value) -> B256 {
        v.as_str().unwrap().parse().unwrap()
    }

    fn u256(v: &Value) -> U256 {
        v.as_str().unwrap().parse().unwrap()
    }

    #[test]
    fn roots_leaves_and_proofs_match_openzeppelins_standard_merkle_tree() {
        let v = vectors();
        let batches = v["batches"].as_array().unwrap();
        assert_eq!(batches.len(), 8);
        for b in batches {
            // Built from the entries in the relayer's (unsorted) order.
            let tree = BatchTree::new(
                b["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| (u256(&e["jobId"]), b256(&e["resultHash"]))),
            )
            .unwrap();
            assert_eq!(tree.root(), b256(&b["root"]));
            let nodes: Vec<B256> = b["tree"].as_array().unwrap().iter().map(b256).collect();
            assert_eq!(tree.nodes(), nodes.as_slice());
            for (k, e) in b["sorted"].as_array().unwrap().iter().enumerate() {
                let (job, result) = (u256(&e["jobId"]), b256(&e["resultHash"]));
                assert_eq!(tree.entries()[k], Entry { job_id: job, result_hash: result });
                assert_eq!(leaf_hash(job, result), b256(&e["leaf"]));
                let expected: Vec<B256> =
                    b["proofs"][k].as_array().unwrap().iter().map(b256).collect();
                let proof = tree.proof(job, result).unwrap();
                assert_eq!(proof, expected);
                assert!(verify(&proof, tree.root(), leaf_hash(job, result)));
            }
        }
    }

    #[test]
    fn batch_attestation_digests_and_signatures_match_the_vectors() {
        use crate::attestation::{BatchAttestation, domain};
        use alloy::{primitives::Address, signers::local::PrivateKeySigner};
        for b in vectors()["batches"].as_array().unwrap() {
            let a = &b["attestation"];
            let domain = domain(
                a["chainId"].as_u64().unwrap(),
                a["verifyingContract"].as_str().unwrap().parse::<Address>().unwrap(),
            );
            let tree = BatchTree::new(
                b["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| (u256(&e["jobId"]), b256(&e["resultHash"]))),
            )
            .unwrap();
            let attestation = BatchAttestation::of(&tree, b256(&a["runtimeId"]));
            assert_eq!(attestation.digest(&domain), b256(&a["digest"]));
            let key: PrivateKeySigner = a["privateKey"].as_str().unwrap().parse().unwrap();
            let (signer, signature) = attestation.sign(&key, &domain).unwrap();
            assert_eq!(signer, a["signer"].as_str().unwrap().parse::<Address>().unwrap());
            // RFC 6979 on both sides: alloy's signature is byte-for-byte the reference one.
            let expected: alloy::primitives::Bytes =
                a["signature"].as_str().unwrap().parse().unwrap();
            assert_eq!(signature.as_bytes().as_slice(), expected.as_ref());
        }
    }

    #[test]
    fn a_proof_does_not_prove_another_result_or_survive_a_flipped_bit() {
        let tree =
            BatchTree::new((1..=9u64).map(|i| (U256::from(i), keccak256([i as u8])))).unwrap();
        for (k, e) in tree.entries().iter().enumerate() {
            let proof = tree.proof_at(k).unwrap();
            assert!(verify(&proof, tree.root(), leaf_hash(e.job_id, e.result_hash)));
            assert!(!verify(&proof, tree.root(), leaf_hash(e.job_id, B256::ZERO)));
            let mut bad = proof.clone();
            bad[0].0[31] ^= 1;
            assert!(!verify(&bad, tree.root(), leaf_hash(e.job_id, e.result_hash)));
        }
        assert_eq!(tree.proof(U256::from(10), keccak256([10u8])), None);
        assert_eq!(tree.proof_at(9), None);
    }

    #[test]
    fn a_single_entry_batch_has_its_leaf_as_root_and_an_empty_proof() {
        let (job, result) = (U256::from(7), keccak256(b"out"));
        let tree = BatchTree::new([(job, result)]).unwrap();
        assert_eq!(tree.root(), leaf_hash(job, result));
        assert_eq!(tree.proof(job, result).unwrap(), Vec::<B256>::new());
    }

    #[test]
    fn empty_oversized_and_duplicate_batches_are_refused() {
        assert_eq!(BatchTree::new([]), Err(MerkleError::Size(0)));
        let big = (0..=MAX_BATCH_JOBS as u64).map(|i| (U256::from(i), B256::ZERO));
        assert_eq!(BatchTree::new(big), Err(MerkleError::Size(MAX_BATCH_JOBS + 1)));
        let e = (U256::from(3), keccak256(b"x"));
        assert_eq!(BatchTree::new([e, e]), Err(MerkleError::Duplicate { job_id: U256::from(3) }));
    }
}
