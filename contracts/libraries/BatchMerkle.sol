// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title BatchMerkle
/// @notice The Merkle tree a batch settlement commits to, built exactly as
/// `StandardMerkleTree.of(entries, ["uint256", "bytes32"])` of OpenZeppelin's merkle-tree 1.x (npm) builds
/// it, so OpenZeppelin's `MerkleProof` verifies its proofs and that JavaScript library, the Rust sdk
/// (`attesta_sdk::merkle`) and this library produce the same root for the same batch.
/// @dev Leaves are `keccak256(bytes.concat(keccak256(abi.encode(jobId, resultHash))))`. The double hash is
/// deliberate: `abi.encode(uint256, bytes32)` is 64 bytes, exactly the preimage of an inner node, so with a
/// single hash an inner node could be presented as a leaf (second-preimage attack on the tree). Leaves are
/// sorted ascending (which the caller enforces, and which rejects duplicates in the same pass) and stored in
/// the array layout of a complete binary tree: leaf k at index `2n - 2 - k`, node i's children at
/// `2i + 1` and `2i + 2`, pairs hashed commutatively (`Hashes.commutativeKeccak256`).
library BatchMerkle {
    /// @notice The leaf of one batch entry.
    /// @param jobId The escrow's job id.
    /// @param resultHash keccak256 of the job's canonical output.
    /// @return leaf The double keccak of the ABI-encoded pair.
    function leafHash(uint256 jobId, bytes32 resultHash) internal pure returns (bytes32 leaf) {
        // Two keccaks in scratch space: no memory allocation per leaf.
        assembly ("memory-safe") {
            mstore(0x00, jobId)
            mstore(0x20, resultHash)
            mstore(0x00, keccak256(0x00, 0x40))
            leaf := keccak256(0x00, 0x20)
        }
    }

    /// @notice Completes a tree whose `n` leaves are already in place and returns its root.
    /// @param tree An array of length `2n - 1` with leaf k (ascending order) at index `2n - 2 - k`.
    /// @return root The root, `tree[0]` after the inner nodes are filled in.
    function rootOf(bytes32[] memory tree) internal pure returns (bytes32 root) {
        // Inner nodes are indexes n - 2 down to 0, each computed after its children (larger indexes), each
        // the keccak of its two children sorted (Hashes.commutativeKeccak256) in scratch space. In assembly:
        // the Solidity loop's bounds checks were a third of a batch's hashing cost.
        assembly ("memory-safe") {
            let data := add(tree, 0x20)
            // length is 2n - 1 >= 1 (checked by the caller); i runs from n - 1 = length / 2 down to 1.
            for { let i := shr(1, mload(tree)) } gt(i, 0) { i := sub(i, 1) } {
                // node i - 1, children 2i - 1 and 2i
                let left := mload(add(data, shl(5, sub(shl(1, i), 1))))
                let right := mload(add(data, shl(6, i)))
                // sorted pair: the smaller first
                switch lt(left, right)
                case 1 {
                    mstore(0x00, left)
                    mstore(0x20, right)
                }
                default {
                    mstore(0x00, right)
                    mstore(0x20, left)
                }
                mstore(add(data, shl(5, sub(i, 1))), keccak256(0x00, 0x40))
            }
            root := mload(data)
        }
    }
}
