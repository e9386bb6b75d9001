/**
 * The EIP-712 `Attestation` that M-of-N signers sign, its domain, digest and signing: byte for
 * byte the same as `JobEscrow.hashAttestation` and the Rust sdk's `attestation` module.
 */
import {
  hashDomain,
  hashStruct,
  hashTypedData,
  keccak256,
  recoverAddress,
  toHex,
  type Address,
  type Hex,
  type LocalAccount,
  type TypedDataDomain,
} from "viem";
import { InvalidSignatureError, SignerMismatchError } from "./errors.js";
import { checkLowS, sameAddress } from "./quorum.js";

/** What M-of-N signers sign for one job. */
export interface Attestation {
  /** The escrow's job id. */
  jobId: bigint;
  /** keccak256 of the model file. */
  modelId: Hex;
  /** keccak256 of the input bytes. */
  inputHash: Hex;
  /** keccak256 of the canonical output bytes. */
  resultHash: Hex;
  /** Commits to the inference engine, canonicalisation and sandbox policy. */
  runtimeId: Hex;
}

/** The EIP-712 domain name of attestations. */
export const DOMAIN_NAME = "Attesta";
/** The EIP-712 domain version of attestations. */
export const DOMAIN_VERSION = "1";

/** The EIP-712 types of an attestation. */
export const attestationTypes = {
  Attestation: [
    { name: "jobId", type: "uint256" },
    { name: "modelId", type: "bytes32" },
    { name: "inputHash", type: "bytes32" },
    { name: "resultHash", type: "bytes32" },
    { name: "runtimeId", type: "bytes32" },
  ],
} as const;

/** An EIP-712 domain with every field attestations use. */
export interface AttestationDomain extends TypedDataDomain {
  name: string;
  version: string;
  chainId: number;
  verifyingContract: Address;
}

/** The attestation domain of the escrow at `escrow` on chain `chainId`. */
export function attestationDomain(chainId: number | bigint, escrow: Address): AttestationDomain {
  return { name: DOMAIN_NAME, version: DOMAIN_VERSION, chainId: Number(chainId), verifyingContract: escrow };
}

/** keccak256 of `Attestation(uint256 jobId,bytes32 modelId,...)`. */
export function attestationTypeHash(): Hex {
  const fields = attestationTypes.Attestation.map((f) => `${f.type} ${f.name}`).join(",");
  return keccak256(toHex(`Attestation(${fields})`));
}

/** The EIP-712 struct hash of `attestation`. */
export function attestationStructHash(attestation: Attestation): Hex {
  return hashStruct({ data: { ...attestation }, primaryType: "Attestation", types: attestationTypes });
}

/** The EIP-712 domain separator of `domain`. */
export function domainSeparator(domain: AttestationDomain): Hex {
  return hashDomain({
    domain: { ...domain, chainId: BigInt(domain.chainId) },
    types: {
      EIP712Domain: [
        { name: "name", type: "string" },
        { name: "version", type: "string" },
        { name: "chainId", type: "uint256" },
        { name: "verifyingContract", type: "address" },
      ],
    },
  });
}

/** The EIP-712 digest signed in `domain` (`JobEscrow.hashAttestation`). */
export function attestationDigest(attestation: Attestation, domain: AttestationDomain): Hex {
  return hashTypedData({ domain, types: attestationTypes, primaryType: "Attestation", message: { ...attestation } });
}

/** An attestation with its signer and 65-byte (r, s, v) signature, v being 27 or 28. */
export interface SignedAttestation {
  attestation: Attestation;
  /** Who signed it (claimed; `verifySignedAttestation` checks it). */
  signer: Address;
  /** 65 bytes: r, s, v (27/28). */
  signature: Hex;
}

/** Signs with a viem local account (noble secp256k1: s is always low). */
export async function signAttestation(
  attestation: Attestation,
  account: LocalAccount,
  domain: AttestationDomain,
): Promise<SignedAttestation> {
  const signature = await account.signTypedData({
    domain,
    types: attestationTypes,
    primaryType: "Attestation",
    message: { ...attestation },
  });
  return { attestation, signer: account.address, signature };
}

/** Checks that the signature is low-s and recovers to the claimed signer in `domain`. */
export async function verifySignedAttestation(signed: SignedAttestation, domain: AttestationDomain): Promise<void> {
  checkLowS(signed.signature, 0);
  let recovered: Address;
  try {
    recovered = await recoverAddress({ hash: attestationDigest(signed.attestation, domain), signature: signed.signature });
  } catch {
    throw new InvalidSignatureError(0);
  }
  if (!sameAddress(recovered, signed.signer)) throw new SignerMismatchError(signed.signer, recovered);
}

/**
 * What M-of-N signers sign for a whole batch (EIP-712 type `BatchAttestation`): every
 * (jobId, resultHash) entry under the {@link BatchTree} root, produced by one runtime.
 */
export interface BatchAttestation {
  /** The {@link BatchTree} root of the batch's entries. */
  root: Hex;
  /** Commits to the inference engine, canonicalisation and sandbox policy of every entry. */
  runtimeId: Hex;
}

/** The EIP-712 types of a batch attestation. */
export const batchAttestationTypes = {
  BatchAttestation: [
    { name: "root", type: "bytes32" },
    { name: "runtimeId", type: "bytes32" },
  ],
} as const;

/** keccak256 of `BatchAttestation(bytes32 root,bytes32 runtimeId)`. */
export function batchAttestationTypeHash(): Hex {
  const fields = batchAttestationTypes.BatchAttestation.map((f) => `${f.type} ${f.name}`).join(",");
  return keccak256(toHex(`BatchAttestation(${fields})`));
}

/** The EIP-712 struct hash of `attestation`. */
export function batchAttestationStructHash(attestation: BatchAttestation): Hex {
  return hashStruct({ data: { ...attestation }, primaryType: "BatchAttestation", types: batchAttestationTypes });
}

/** The EIP-712 digest signed in `domain` (`JobEscrow.hashBatchAttestation`). */
export function batchAttestationDigest(attestation: BatchAttestation, domain: AttestationDomain): Hex {
  return hashTypedData({ domain, types: batchAttestationTypes, primaryType: "BatchAttestation", message: { ...attestation } });
}

/**
 * Signs a batch attestation with a viem local account (low s); the result is ready for
 * `packSignatures`.
 */
export async function signBatchAttestation(
  attestation: BatchAttestation,
  account: LocalAccount,
  domain: AttestationDomain,
): Promise<{ signer: Address; signature: Hex }> {
  const signature = await account.signTypedData({
    domain,
    types: batchAttestationTypes,
    primaryType: "BatchAttestation",
    message: { ...attestation },
  });
  return { signer: account.address, signature };
}
