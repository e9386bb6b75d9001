//! The three content hashes every attestation commits to (DESIGN: Contracts).

use alloy::primitives::{B256, keccak256};

/// `modelId`: keccak256 of the model file's bytes.
///
/// ```
/// let id = attesta_sdk::model_id(b"onnx bytes");
/// assert_eq!(id, alloy::primitives::keccak256(b"onnx bytes"));
/// ```
pub fn model_id(model: impl AsRef<[u8]>) -> B256 {
    keccak256(model)
}

/// `inputHash`: keccak256 of the input bytes exactly as the client uploaded them.
pub fn input_hash(input: impl AsRef<[u8]>) -> B256 {
    keccak256(input)
}

/// `resultHash`: keccak256 of the canonical output bytes (see [`crate::canonical`]).
pub fn result_hash(canonical_output: impl AsRef<[u8]>) -> B256 {
    keccak256(canonical_output)
}
