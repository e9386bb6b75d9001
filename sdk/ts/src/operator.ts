/**
 * The operator side: signer-key proofs (what a signing key signs to be bound to an operator in the
 * registry) and {@link OperatorClient} (stake, bind a signing key, unstake and withdraw).
 */
import {
  encodeFunctionData,
  hashTypedData,
  parseEventLogs,
  type Address,
  type Hex,
  type LocalAccount,
  type TransactionReceipt,
} from "viem";
import { stakingRegistryAbi, testTokenAbi } from "./abi/index.js";
import { AttestaClient, type AttestaClientOptions } from "./client.js";
import { MissingEventError } from "./errors.js";
import { sameAddress } from "./quorum.js";
import { toAttestaError } from "./revert.js";

/** The EIP-712 types of a signer-key proof (`StakingRegistry.signerProofDigest`). */
export const signerKeyTypes = {
  SignerKey: [
    { name: "operator", type: "address" },
    { name: "signer", type: "address" },
  ],
} as const;

function stakingDomain(chainId: number | bigint, registry: Address) {
  return { name: "Attesta Staking", version: "1", chainId: Number(chainId), verifyingContract: registry } as const;
}

/** The digest a signing key signs to be bound to `operator` in the registry at `registry`. */
export function signerProofDigest(chainId: number | bigint, registry: Address, operator: Address, signer: Address): Hex {
  return hashTypedData({
    domain: stakingDomain(chainId, registry),
    types: signerKeyTypes,
    primaryType: "SignerKey",
    message: { operator, signer },
  });
}

/** The proof of possession `registerSigner(signer, proof)` takes, signed locally by the signing key. */
export async function signSignerProof(
  key: LocalAccount,
  chainId: number | bigint,
  registry: Address,
  operator: Address,
): Promise<Hex> {
  return key.signTypedData({
    domain: stakingDomain(chainId, registry),
    types: signerKeyTypes,
    primaryType: "SignerKey",
    message: { operator, signer: key.address },
  });
}

/** An operator's position in the registry. */
export interface OperatorStatus {
  /** The bound signing key (zero if none). */
  signer: Address;
  /** Active stake. */
  stake: bigint;
  /** Stake waiting out the unbonding period (still slashable). */
  unbonding: bigint;
  /** When `unbonding` becomes withdrawable (unix seconds). */
  unbondingEnd: bigint;
  /** Whether the signing key is in the active set. */
  active: boolean;
  /** Whether a slash jailed the operator for good. */
  jailed: boolean;
}

/** Client for node operators: one operator account (the wallet's), one deployment. Mirrors the Rust `OperatorClient`. */
export class OperatorClient {
  readonly #client: AttestaClient;

  constructor(options: AttestaClientOptions) {
    this.#client = new AttestaClient(options);
  }

  /** The operator account transactions are sent from. */
  get operator(): Address {
    return this.#client.account;
  }

  get #registry(): Address {
    return this.#client.deployment.stakingRegistry;
  }

  /** Stakes `amount`, approving the registry first if the allowance is short. */
  async stake(amount: bigint): Promise<TransactionReceipt> {
    const { publicClient, deployment } = this.#client;
    let allowance: bigint;
    try {
      allowance = await publicClient.readContract({
        address: deployment.token,
        abi: testTokenAbi,
        functionName: "allowance",
        args: [this.operator, this.#registry],
      });
    } catch (e) {
      throw toAttestaError(e);
    }
    if (allowance < amount) {
      await this.#client.send(deployment.token, encodeFunctionData({ abi: testTokenAbi, functionName: "approve", args: [this.#registry, amount] }));
    }
    return this.#client.send(this.#registry, encodeFunctionData({ abi: stakingRegistryAbi, functionName: "stake", args: [amount] }));
  }

  /**
   * Binds `key` as this operator's signing key (rotating out any previous key for good). The proof
   * of possession is signed locally; the key never leaves this process.
   */
  async registerSigner(key: LocalAccount): Promise<TransactionReceipt> {
    const proof = await signSignerProof(key, this.#client.deployment.chainId, this.#registry, this.operator);
    return this.#client.send(
      this.#registry,
      encodeFunctionData({ abi: stakingRegistryAbi, functionName: "registerSigner", args: [key.address, proof] }),
    );
  }

  /** Moves `amount` of stake into unbonding. */
  async requestUnstake(amount: bigint): Promise<TransactionReceipt> {
    return this.#client.send(this.#registry, encodeFunctionData({ abi: stakingRegistryAbi, functionName: "requestUnstake", args: [amount] }));
  }

  /** Withdraws unbonded stake once the period is over; returns the amount. */
  async withdraw(): Promise<bigint> {
    const receipt = await this.#client.send(this.#registry, encodeFunctionData({ abi: stakingRegistryAbi, functionName: "withdraw" }));
    const withdrawn = parseEventLogs({ abi: stakingRegistryAbi, eventName: "Withdrawn", logs: receipt.logs }).find((l) =>
      sameAddress(l.address, this.#registry),
    );
    if (!withdrawn) throw new MissingEventError("Withdrawn", receipt.transactionHash);
    return withdrawn.args.amount;
  }

  /** Joins the active set explicitly (after a slot freed up or stake was topped up). */
  async activate(): Promise<TransactionReceipt> {
    return this.#client.send(this.#registry, encodeFunctionData({ abi: stakingRegistryAbi, functionName: "activate" }));
  }

  /** Leaves the active set (stake stays, still slashable). */
  async deactivate(): Promise<TransactionReceipt> {
    return this.#client.send(this.#registry, encodeFunctionData({ abi: stakingRegistryAbi, functionName: "deactivate" }));
  }

  /** This operator's position. */
  async status(): Promise<OperatorStatus> {
    try {
      const op = await this.#client.publicClient.readContract({
        address: this.#registry,
        abi: stakingRegistryAbi,
        functionName: "operator",
        args: [this.operator],
      });
      return {
        signer: op.signer,
        stake: op.stake,
        unbonding: op.unbonding,
        unbondingEnd: BigInt(op.unbondingEnd),
        active: op.active,
        jailed: op.jailed,
      };
    } catch (e) {
      throw toAttestaError(e);
    }
  }
}
