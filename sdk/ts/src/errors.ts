/**
 * The SDK's errors: one class per failure, all extending {@link AttestaError}. Messages say what
 * went wrong and what to do about it, as the Rust sdk's `Error` does (sdk/src/error.rs).
 */
import type { Address, Hex } from "viem";

/** Base class of every error this SDK throws. */
export class AttestaError extends Error {
  override name = "AttestaError";
  /** Whether retrying the same call later can help (network trouble, timeouts). */
  get retryable(): boolean {
    return false;
  }
}

/** A packed signature blob is empty or not a multiple of 65 bytes. */
export class MalformedSignaturesError extends AttestaError {
  override name = "MalformedSignaturesError";
  constructor(readonly length: number) {
    super(
      `signature blob of ${length} bytes is not a non-empty multiple of 65: pass 65-byte (r, s, v) signatures back to back`,
    );
  }
}

/** A signature does not recover (bad v, bad point). */
export class InvalidSignatureError extends AttestaError {
  override name = "InvalidSignatureError";
  constructor(readonly index: number) {
    super(`signature ${index} does not recover to an address: it is corrupt or v is not 27/28`);
  }
}

/** A signature has s in the upper half of the curve order (a malleated signature). */
export class HighSError extends AttestaError {
  override name = "HighSError";
  constructor(readonly index: number) {
    super(`signature ${index} has a high s value (malleated); re-sign with a low-s signer such as viem's`);
  }
}

/** Signers are not strictly ascending (duplicates or wrong order). */
export class SignersNotAscendingError extends AttestaError {
  override name = "SignersNotAscendingError";
  constructor(
    readonly index: number,
    readonly signer: Address,
    readonly previous: Address,
  ) {
    super(
      `signer ${signer} at position ${index} is not above ${previous}: sort signatures by signer address and drop duplicates`,
    );
  }
}

/** A signer is not in the registry's active set. */
export class InactiveSignerError extends AttestaError {
  override name = "InactiveSignerError";
  constructor(
    readonly index: number,
    readonly signer: Address,
  ) {
    super(`signer ${signer} at position ${index} is not an active signer of the registry`);
  }
}

/** Fewer signatures than the threshold M. */
export class InsufficientSignaturesError extends AttestaError {
  override name = "InsufficientSignaturesError";
  constructor(
    readonly count: number,
    readonly threshold: number,
  ) {
    super(`${count} valid signatures, but the threshold is ${threshold}: gather more attestations`);
  }
}

/** A signed attestation names a different signer than the one that signed it. */
export class SignerMismatchError extends AttestaError {
  override name = "SignerMismatchError";
  constructor(
    readonly claimed: Address,
    readonly recovered: Address,
  ) {
    super(`attestation claims signer ${claimed} but was signed by ${recovered}`);
  }
}

/** A settlement on-chain does not match what its event says. */
export class SettlementMismatchError extends AttestaError {
  override name = "SettlementMismatchError";
  constructor(readonly jobId: bigint) {
    super(`job ${jobId}: the JobSettled event does not match the on-chain settlement commitment`);
  }
}

/**
 * The job is not settled (no `JobSettled` event, and the escrow does not report it settled in a
 * batch), or the node pruned the logs.
 */
export class NotSettledError extends AttestaError {
  override name = "NotSettledError";
  constructor(readonly jobId: bigint) {
    super(`job ${jobId} is not settled yet: wait for settlement, or query a node that keeps logs`);
  }
}

/** A batch's entries cannot form a tree (none, more than the escrow takes, or one listed twice). */
export class BatchError extends AttestaError {
  override name = "BatchError";
  constructor(readonly reason: string) {
    super(`batch: ${reason}`);
  }
}

/** The job's result bytes do not hash to the attested result hash. */
export class OutputMismatchError extends AttestaError {
  override name = "OutputMismatchError";
  constructor(
    readonly jobId: bigint,
    readonly expected: Hex,
    readonly actual: Hex,
  ) {
    super(`job ${jobId}: output hashes to ${actual}, but ${expected} was attested`);
  }
}

/** A transaction was mined but reverted. */
export class TransactionFailedError extends AttestaError {
  override name = "TransactionFailedError";
  constructor(readonly txHash: Hex) {
    super(`transaction ${txHash} reverted on-chain; inspect it with \`cast run ${txHash}\``);
  }
}

/** A transaction succeeded but did not emit the event it always emits. */
export class MissingEventError extends AttestaError {
  override name = "MissingEventError";
  constructor(
    readonly event: string,
    readonly txHash: Hex,
  ) {
    super(`transaction ${txHash} emitted no ${event} event: is the deployment file for this chain?`);
  }
}

/** A settlement cannot be re-checked from chain data alone. */
export class UnverifiableError extends AttestaError {
  override name = "UnverifiableError";
  constructor(
    readonly jobId: bigint,
    readonly reason: string,
  ) {
    super(`job ${jobId} cannot be verified: ${reason}`);
  }
}

/** Which contract a custom error came from. */
export type ContractName = "JobEscrow" | "StakingRegistry" | "Slashing" | "Token";

/** A contract call reverted with one of the contracts' custom errors. */
export class RevertError extends AttestaError {
  override name = "RevertError";
  constructor(
    /** The contract whose ABI declares the error. */
    readonly contract: ContractName,
    /** The custom error's name, e.g. `JobEscrowFeeOutOfRange`. */
    readonly errorName: string,
    /** The custom error's decoded arguments, by parameter name. */
    readonly args: Readonly<Record<string, unknown>>,
    /** What to do about it. */
    readonly hint: string,
    options?: { cause?: unknown },
  ) {
    super(`${contract}.${errorName} reverted: ${hint}`, options);
  }
}

/** Waiting for something on-chain timed out. */
export class TimeoutError extends AttestaError {
  override name = "TimeoutError";
  constructor(
    readonly what: string,
    readonly ms: number,
  ) {
    super(`timed out after ${ms / 1000}s waiting for ${what}`);
  }
  override get retryable(): boolean {
    return true;
  }
}

/** The canonical output encoding was violated. */
export class CanonicalError extends AttestaError {
  override name = "CanonicalError";
  constructor(readonly reason: string) {
    super(`canonical output: ${reason}`);
  }
}

/** A deployment file could not be read. */
export class DeploymentError extends AttestaError {
  override name = "DeploymentError";
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`deployment file ${path}: ${reason}`);
  }
}

/** A contract call failed without a decodable custom error (plain revert, ABI or RPC trouble). */
export class ContractCallError extends AttestaError {
  override name = "ContractCallError";
  constructor(
    message: string,
    /** Whether the failure came from the transport (network) rather than the chain. */
    readonly transport: boolean,
    options?: { cause?: unknown },
  ) {
    super(
      transport ? `rpc: ${message}; check that the endpoint is up and reachable` : `contract call failed: ${message}`,
      options,
    );
  }
  override get retryable(): boolean {
    return this.transport;
  }
}

/** A job input (ATI1) or a magika config could not be built or parsed. */
export class InputError extends AttestaError {
  override name = "InputError";
  constructor(readonly reason: string) {
    super(`input: ${reason}`);
  }
}

/**
 * A relayer request failed: unreachable, an error answer (`status` and the API's stable `code`),
 * or an answer that does not check out against its content hash.
 */
export class RelayError extends AttestaError {
  override name = "RelayError";
  constructor(
    message: string,
    /** The HTTP status, when the relayer answered. */
    readonly status?: number,
    /** The API's stable error code (`not_found`, `not_settled`, `rate_limited`, …), when it sent one. */
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
  /** Network trouble, rate limits and server errors may pass; a 4xx answer will not. */
  override get retryable(): boolean {
    return this.status === undefined || this.status === 429 || this.status >= 500;
  }
}
