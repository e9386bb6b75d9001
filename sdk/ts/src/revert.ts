/** Turns reverts into {@link RevertError} with the contract's custom error name and a hint (mirrors sdk/src/revert.rs). */
import { BaseError, decodeErrorResult, isHex, type Abi, type Hex } from "viem";
import { jobEscrowAbi, slashingAbi, stakingRegistryAbi, testTokenAbi } from "./abi/index.js";
import { AttestaError, ContractCallError, RevertError, type ContractName } from "./errors.js";

/** Job status names, indexed by `IJobEscrow.JobStatus`. */
export const STATUS_NAMES = ["None", "Created", "Settled", "Disputed", "Released", "Refunded", "Overturned"] as const;

/** A job's lifecycle state, as `IJobEscrow.JobStatus`. */
export type JobStatus = (typeof STATUS_NAMES)[number];

/** The status name of `IJobEscrow.JobStatus` value `status`. */
export function statusName(status: number): JobStatus | "Unknown" {
  return STATUS_NAMES[status] ?? "Unknown";
}

type Args = Record<string, unknown>;
const str = (x: unknown): string => String(x);

function escrowHint(name: string, x: Args): string {
  switch (name) {
    case "JobEscrowFeeOutOfRange":
      return `fee ${str(x.fee)} is out of range: raise --fee to at least ${str(x.minFee)}`;
    case "JobEscrowDeadlineOutOfRange":
      return `deadline ${str(x.deadline)} must lie between ${str(x.earliest)} and ${str(x.latest)} (unix seconds): pick a deadline in that window`;
    case "JobEscrowWrongStatus":
      return `job ${str(x.jobId)} is ${statusName(Number(x.status))}, which this call does not accept`;
    case "JobEscrowDeadlinePassed":
      return `job ${str(x.jobId)} passed its deadline ${str(x.deadline)}: it can only be refunded now`;
    case "JobEscrowDeadlineNotReached":
      return `job ${str(x.jobId)} can be refunded only after its deadline ${str(x.deadline)}`;
    case "JobEscrowRuntimeNotAllowed":
      return `runtime ${str(x.runtimeId)} is not allowed by governance: upgrade the node`;
    case "JobEscrowInsufficientSignatures":
      return `${str(x.count)} signatures, ${str(x.threshold)} needed: wait for more attestations`;
    case "JobEscrowInactiveSigner":
      return `signer ${str(x.signer)} (position ${str(x.index)}) is not active in the registry`;
    case "JobEscrowChallengeWindowOpen":
      return `the challenge window of job ${str(x.jobId)} is open until ${str(x.windowEnd)}: release after it`;
    case "JobEscrowNothingToClaim":
      return `${str(x.account)} has nothing to claim`;
    default:
      return generic(name, x);
  }
}

function registryHint(name: string, x: Args): string {
  switch (name) {
    case "StakingRegistryInsufficientAmount":
      return `amount ${str(x.amount)} is not allowed here (available: ${str(x.needed)})`;
    case "StakingRegistryNotWithdrawable":
      // unbondingEnd is 0 when nothing is unbonding.
      return x.unbondingEnd === 0n
        ? "nothing is unbonding: request unstake first, then withdraw after the unbonding period"
        : `nothing withdrawable until ${str(x.unbondingEnd)} (unix seconds): wait, then retry`;
    case "StakingRegistrySignerAlreadyBound":
      return `key ${str(x.signer)} is already bound to ${str(x.operator)}: generate a new signing key`;
    case "StakingRegistryCannotActivate": {
      const why =
        ["", "register a signing key first", "stake at least the minimum stake", "the operator is jailed", "the active set is full: wait for a free slot", "already active"][
          Number(x.reason)
        ] || "unknown reason";
      return `cannot activate ${str(x.operator)}: ${why}`;
    }
    default:
      return generic(name, x);
  }
}

function tokenHint(name: string, x: Args): string {
  switch (name) {
    case "ERC20InsufficientAllowance":
      return `allowance ${str(x.allowance)} is below ${str(x.needed)}: approve the spender ${str(x.spender)} for at least that`;
    case "ERC20InsufficientBalance":
      return `balance ${str(x.balance)} of ${str(x.sender)} is below ${str(x.needed)}: top up the account`;
    default:
      return generic(name, x);
  }
}

function generic(name: string, x: Args): string {
  const fields = Object.entries(x).map(([k, v]) => `${k}: ${str(v)}`);
  return `${name} { ${fields.join(", ")} }`;
}

const decoders: readonly [ContractName, Abi, (name: string, args: Args) => string][] = [
  ["JobEscrow", jobEscrowAbi, escrowHint],
  ["StakingRegistry", stakingRegistryAbi, registryHint],
  ["Slashing", slashingAbi, generic],
  ["Token", testTokenAbi, tokenHint],
];

/** Decodes raw revert data against the contracts' custom errors; `undefined` if none matches. */
export function decodeRevertData(data: Hex, cause?: unknown): RevertError | undefined {
  if (data.length < 10) return undefined;
  for (const [contract, abi, hint] of decoders) {
    try {
      const { errorName, args, abiItem } = decodeErrorResult({ abi, data });
      if (errorName === "Error" || errorName === "Panic") return undefined;
      const named: Args = {};
      const inputs = "inputs" in abiItem ? abiItem.inputs : [];
      inputs.forEach((input, i) => {
        named[input.name ?? String(i)] = (args as readonly unknown[] | undefined)?.[i];
      });
      return new RevertError(contract, errorName, named, hint(errorName, named), { cause });
    } catch {
      // not this contract's error
    }
  }
  return undefined;
}

/** Finds the revert data that an RPC error carries, wherever viem wrapped it. */
export function revertDataOf(err: unknown): Hex | undefined {
  const seen = new Set<unknown>();
  let e: unknown = err;
  while (e && typeof e === "object" && !seen.has(e)) {
    seen.add(e);
    const o = e as { data?: unknown; raw?: unknown; cause?: unknown };
    for (const candidate of [o.raw, o.data, (o.data as { data?: unknown } | undefined)?.data]) {
      if (typeof candidate === "string" && isHex(candidate) && candidate.length >= 10) return candidate;
    }
    e = o.cause;
  }
  return undefined;
}

/** Turns any failure of a contract call into an {@link AttestaError}. */
export function toAttestaError(err: unknown): AttestaError {
  if (err instanceof AttestaError) return err;
  const data = revertDataOf(err);
  const decoded = data ? decodeRevertData(data, err) : undefined;
  if (decoded) return decoded;
  const message = err instanceof BaseError ? err.shortMessage : err instanceof Error ? err.message : String(err);
  const transport =
    err instanceof BaseError &&
    err.walk((e) => e instanceof BaseError && ["HttpRequestError", "WebSocketRequestError", "TimeoutError"].includes(e.name)) !== null;
  return new ContractCallError(message, transport, { cause: err });
}
