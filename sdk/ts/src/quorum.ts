/**
 * M-of-N signature sets, exactly as `SignatureQuorum.recoverAscending` and
 * `StakingRegistry.checkSigners` judge them on-chain: 65-byte (r, s, v) signatures packed back to
 * back, v in {27, 28}, s in the lower half of the curve order, signers strictly ascending by
 * address (which rejects duplicates in one pass), at least the threshold M, all active.
 */
import { bytesToHex, concatHex, getAddress, hexToBytes, isHex, recoverAddress, type Address, type ByteArray, type Hex } from "viem";
import {
  HighSError,
  InactiveSignerError,
  InsufficientSignaturesError,
  InvalidSignatureError,
  MalformedSignaturesError,
  SignersNotAscendingError,
} from "./errors.js";

/** Length of one packed signature. */
export const SIGNATURE_LENGTH = 65;

/** Half the secp256k1 group order: a valid `s` is at most this (EIP-2). */
export const SECP256K1_HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;

const ZERO_ADDRESS: Address = "0x0000000000000000000000000000000000000000";

/** Whether two addresses are the same, whatever their case. */
export function sameAddress(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

function toBytes(signatures: ByteArray | Hex): Uint8Array {
  return typeof signatures === "string" ? hexToBytes(signatures) : signatures;
}

/** @internal Throws {@link HighSError} unless the 65-byte signature's s is low. */
export function checkLowS(signature: ByteArray | Hex, index: number): void {
  const raw = toBytes(signature);
  if (raw.length !== SIGNATURE_LENGTH) throw new MalformedSignaturesError(raw.length);
  if (BigInt(bytesToHex(raw.subarray(32, 64))) > SECP256K1_HALF_N) throw new HighSError(index);
}

/**
 * Recovers every signer of `digest` from packed signatures, with the contract's rules. Returns the
 * signers (checksummed) in the given order; throws on the first signature the contract would reject.
 */
export async function recoverAscending(digest: Hex, signatures: ByteArray | Hex): Promise<Address[]> {
  if (typeof signatures === "string" && !isHex(signatures)) throw new MalformedSignaturesError((signatures as string).length);
  const bytes = toBytes(signatures);
  if (bytes.length === 0 || bytes.length % SIGNATURE_LENGTH !== 0) throw new MalformedSignaturesError(bytes.length);
  let previous: Address = ZERO_ADDRESS;
  const signers: Address[] = [];
  for (let index = 0; index * SIGNATURE_LENGTH < bytes.length; index++) {
    const raw = bytes.subarray(index * SIGNATURE_LENGTH, (index + 1) * SIGNATURE_LENGTH);
    const v = raw[64];
    if (v !== 27 && v !== 28) throw new InvalidSignatureError(index);
    checkLowS(raw, index);
    let signer: Address;
    try {
      signer = getAddress(await recoverAddress({ hash: digest, signature: bytesToHex(raw) }));
    } catch {
      throw new InvalidSignatureError(index);
    }
    if (BigInt(signer) <= BigInt(previous)) throw new SignersNotAscendingError(index, signer, previous);
    signers.push(signer);
    previous = signer;
  }
  return signers;
}

/** Checks a recovered signer list against the active set and the threshold, as `settle` does. */
export function checkQuorum(signers: readonly Address[], active: Iterable<Address>, threshold: number): void {
  const set = new Set([...active].map((a) => a.toLowerCase()));
  signers.forEach((signer, index) => {
    if (!set.has(signer.toLowerCase())) throw new InactiveSignerError(index, signer);
  });
  if (signers.length < threshold) throw new InsufficientSignaturesError(signers.length, threshold);
}

/** One signer's signature, as `signAttestation` returns it. */
export interface SignerSignature {
  signer: Address;
  signature: Hex;
}

/**
 * Packs `(signer, signature)` pairs the way `settle` wants them: sorted ascending by signer, one
 * per signer (the first of duplicates is kept). Returns the packed bytes and the signers in order.
 */
export function packSignatures(pairs: Iterable<SignerSignature>): { packed: Hex; signers: Address[] } {
  const sorted = [...pairs]
    .map((p) => ({ signer: getAddress(p.signer), signature: p.signature, key: BigInt(p.signer) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .filter((p, i, all) => i === 0 || all[i - 1]?.key !== p.key);
  for (const p of sorted) {
    if (toBytes(p.signature).length !== SIGNATURE_LENGTH) throw new MalformedSignaturesError(toBytes(p.signature).length);
  }
  return { packed: sorted.length ? concatHex(sorted.map((p) => p.signature)) : "0x", signers: sorted.map((p) => p.signer) };
}

/** The threshold M for N active signers: `max(floor, ceil(N * bps / 10000))`, as the registry computes it. */
export function threshold(active: number, thresholdBps: number, floor: number): number {
  return Math.max(Math.ceil((active * thresholdBps) / 10_000), floor);
}
