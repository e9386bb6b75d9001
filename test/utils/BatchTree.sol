// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IJobEscrow} from "../../contracts/interfaces/IJobEscrow.sol";

/// @title BatchTree
/// @notice Test-side model of a batch's Merkle tree, written from the StandardMerkleTree description
/// (`core.ts` of OpenZeppelin's merkle-tree package) rather than from contracts/libraries/BatchMerkle.sol, so tests compare
/// two implementations: sort the entries by leaf, build the array tree, take proofs.
library BatchTree {
    /// @notice keccak256(keccak256(abi.encode(jobId, resultHash))), the StandardMerkleTree leaf.
    function leaf(IJobEscrow.BatchEntry memory e) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(e.jobId, e.resultHash))));
    }

    /// @notice Sorts `entries` in place by ascending leaf (the order `settleBatch` requires).
    function sort(IJobEscrow.BatchEntry[] memory entries) internal pure {
        uint256 n = entries.length;
        bytes32[] memory keys = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            keys[i] = leaf(entries[i]);
        }
        if (n > 1) _quickSort(entries, keys, 0, n - 1);
    }

    function _quickSort(IJobEscrow.BatchEntry[] memory e, bytes32[] memory k, uint256 lo, uint256 hi)
        private
        pure
    {
        bytes32 pivot = k[lo + (hi - lo) / 2];
        uint256 i = lo;
        uint256 j = hi;
        while (i <= j) {
            while (k[i] < pivot) ++i;
            while (k[j] > pivot) --j;
            if (i <= j) {
                (k[i], k[j]) = (k[j], k[i]);
                (e[i], e[j]) = (e[j], e[i]);
                ++i;
                if (j == 0) break;
                --j;
            }
        }
        if (lo < j) _quickSort(e, k, lo, j);
        if (i < hi) _quickSort(e, k, i, hi);
    }

    /// @notice The array tree of sorted entries: leaf k at 2n - 2 - k, node i = hash(sorted children).
    function tree(IJobEscrow.BatchEntry[] memory sorted) internal pure returns (bytes32[] memory t) {
        uint256 n = sorted.length;
        t = new bytes32[](2 * n - 1);
        for (uint256 k; k < n; ++k) {
            t[t.length - 1 - k] = leaf(sorted[k]);
        }
        for (uint256 i = t.length - n; i > 0; --i) {
            bytes32 a = t[2 * (i - 1) + 1];
            bytes32 b = t[2 * (i - 1) + 2];
            t[i - 1] = a < b ? keccak256(abi.encode(a, b)) : keccak256(abi.encode(b, a));
        }
    }

    /// @notice The root of sorted entries.
    function root(IJobEscrow.BatchEntry[] memory sorted) internal pure returns (bytes32) {
        return tree(sorted)[0];
    }

    /// @notice The proof of sorted entry `k`: siblings from the leaf up to the root.
    function proof(bytes32[] memory t, uint256 k) internal pure returns (bytes32[] memory p) {
        uint256 index = t.length - 1 - k;
        uint256 depth;
        for (uint256 i = index; i > 0; i = (i - 1) / 2) {
            ++depth;
        }
        p = new bytes32[](depth);
        for (uint256 d; d < depth; ++d) {
            p[d] = t[index % 2 == 1 ? index + 1 : index - 1];
            index = (index - 1) / 2;
        }
    }
}
