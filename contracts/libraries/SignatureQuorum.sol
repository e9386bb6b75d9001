// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title SignatureQuorum
/// @notice Recovers the signers of a digest from packed 65-byte signatures and enforces that they are
/// strictly ascending by address, so one pass rejects duplicates (Safe's ordering rule).
/// @dev Recovery goes through OpenZeppelin's ECDSA.tryRecover, which rejects high-s (malleated) signatures,
/// v other than 27/28 and signatures that recover to address(0). Signature bytes are never used as ids.
library SignatureQuorum {
    /// @dev Length of one (r, s, v) signature.
    uint256 internal constant SIGNATURE_LENGTH = 65;

    /// @notice The signature blob is empty or not a multiple of 65 bytes.
    error SignatureQuorumMalformed(uint256 length);
    /// @notice The signature at `index` does not recover (bad v, high s, or zero signer).
    error SignatureQuorumInvalidSignature(uint256 index);
    /// @notice The signer at `index` is not above the previous one: duplicates or wrong order.
    error SignatureQuorumSignersNotAscending(uint256 index, address signer, address previous);

    /// @notice Recovers every signer of `digest` from `signatures`.
    /// @param digest The EIP-712 digest that was signed.
    /// @param signatures Concatenated (r, s, v) signatures, signers strictly ascending.
    /// @return signers The recovered signers, in the given order.
    function recoverAscending(bytes32 digest, bytes calldata signatures)
        internal
        pure
        returns (address[] memory signers)
    {
        uint256 length = signatures.length;
        if (length == 0 || length % SIGNATURE_LENGTH != 0) revert SignatureQuorumMalformed(length);
        uint256 count = length / SIGNATURE_LENGTH;
        signers = new address[](count);
        address previous;
        for (uint256 i; i < count; ++i) {
            bytes32 r;
            bytes32 s;
            uint8 v;
            // Reads signature i straight from calldata; offsets stay within `signatures` because
            // count * 65 == length. The last byte read (v) is the 65th byte of signature i.
            assembly ("memory-safe") {
                let p := add(signatures.offset, mul(i, SIGNATURE_LENGTH))
                r := calldataload(p)
                s := calldataload(add(p, 32))
                v := byte(0, calldataload(add(p, 64)))
            }
            // slither-disable-next-line unused-return (the third value only details `err`, which is checked)
            (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, v, r, s);
            if (err != ECDSA.RecoverError.NoError) revert SignatureQuorumInvalidSignature(i);
            if (signer <= previous) revert SignatureQuorumSignersNotAscending(i, signer, previous);
            signers[i] = signer;
            previous = signer;
        }
    }
}
