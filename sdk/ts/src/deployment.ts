/** Where a deployment lives: the `deployments/<chainId>.json` that `script/Deploy.s.sol` writes. */
import { getAddress, isAddress, type Address } from "viem";
import { attestationDomain, type AttestationDomain } from "./attestation.js";
import { DeploymentError } from "./errors.js";

/** Addresses of one Attesta deployment. */
export interface Deployment {
  /** Chain id the contracts live on. */
  chainId: number;
  /** Block of the deployment (where log queries start). */
  blockNumber: bigint;
  /** Governance account. */
  admin: Address;
  /** Fee and staking token. */
  token: Address;
  /** `StakingRegistry`. */
  stakingRegistry: Address;
  /** `JobEscrow`. */
  jobEscrow: Address;
  /** `Slashing`. */
  slashing: Address;
}

/** Parses a deployment file's JSON (text or parsed); `source` names it in errors. */
export function parseDeployment(json: string | unknown, source = "<deployment>"): Deployment {
  let value: unknown = json;
  if (typeof json === "string") {
    try {
      value = JSON.parse(json);
    } catch (e) {
      throw new DeploymentError(source, `not a deployment file: ${(e as Error).message}`);
    }
  }
  if (typeof value !== "object" || value === null) throw new DeploymentError(source, "not a deployment file: not an object");
  const v = value as Record<string, unknown>;
  const address = (key: string): Address => {
    const a = v[key];
    if (typeof a !== "string" || !isAddress(a, { strict: false })) {
      throw new DeploymentError(source, `not a deployment file: "${key}" is not an address`);
    }
    return getAddress(a);
  };
  const integer = (key: string): number => {
    const n = v[key];
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
      throw new DeploymentError(source, `not a deployment file: "${key}" is not a non-negative integer`);
    }
    return n;
  };
  return {
    chainId: integer("chainId"),
    blockNumber: BigInt(integer("blockNumber")),
    admin: address("admin"),
    token: address("token"),
    stakingRegistry: address("stakingRegistry"),
    jobEscrow: address("jobEscrow"),
    slashing: address("slashing"),
  };
}

/** Reads a deployment file written by `script/Deploy.s.sol` (Node.js only). */
export async function loadDeployment(path: string): Promise<Deployment> {
  const { readFile } = await import("node:fs/promises");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new DeploymentError(path, `${(e as Error).message}; deploy first (make demo) or pass the right path`);
  }
  return parseDeployment(text, path);
}

/** The EIP-712 domain attestations for this deployment are signed in. */
export function deploymentDomain(deployment: Deployment): AttestationDomain {
  return attestationDomain(deployment.chainId, deployment.jobEscrow);
}
