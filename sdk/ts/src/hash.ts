/** The three content hashes every attestation commits to (DESIGN: Contracts). */
import { keccak256, type ByteArray, type Hex } from "viem";

/** `modelId`: keccak256 of the model file's bytes. A string argument must be 0x-hex. */
export function modelId(model: ByteArray | Hex): Hex {
  return keccak256(model);
}

/** `inputHash`: keccak256 of the input bytes exactly as the client uploaded them. */
export function inputHash(input: ByteArray | Hex): Hex {
  return keccak256(input);
}

/** `resultHash`: keccak256 of the canonical output bytes (see `encodeCanonical`). */
export function resultHash(canonicalOutput: ByteArray | Hex): Hex {
  return keccak256(canonicalOutput);
}
