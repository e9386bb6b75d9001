/**
 * The dApp-facing client: create jobs, follow them, verify their settlement without trusting any
 * relayer, and move money (refund, release, claim). Mirrors the Rust sdk's `AttestaClient`.
 */
import {
  decodeFunctionData,
  encodeFunctionData,
  getAbiItem,
  parseEventLogs,
  type Account,
  type Address,
  type ByteArray,
  type Hex,
  type PublicClient,
  type TransactionReceipt,
  type WalletClient,
} from "viem";
import { jobEscrowAbi, stakingRegistryAbi, testTokenAbi } from "./abi/index.js";
import { attestationDigest, batchAttestationDigest, type Attestation, type BatchAttestation } from "./attestation.js";
import { deploymentDomain, type Deployment } from "./deployment.js";
import {
  AttestaError,
  MissingEventError,
  NotSettledError,
  OutputMismatchError,
  SettlementMismatchError,
  TimeoutError,
  TransactionFailedError,
  UnverifiableError,
} from "./errors.js";
import { resultHash } from "./hash.js";
import { BatchTree } from "./merkle.js";
import { checkQuorum, recoverAscending, sameAddress } from "./quorum.js";
import { statusName, toAttestaError, type JobStatus } from "./revert.js";

export type { JobStatus } from "./revert.js";

/** Whether a job in `status` has a settled result (settled, disputed or paid). */
export function hasResult(status: JobStatus | "Unknown"): boolean {
  return status === "Settled" || status === "Disputed" || status === "Released";
}

/** A job as the escrow stores it. */
export interface JobInfo {
  id: bigint;
  /** Who paid. */
  client: Address;
  /** The escrowed fee. */
  fee: bigint;
  /** Lifecycle state. */
  status: JobStatus | "Unknown";
  /** Settlement deadline (unix seconds). */
  deadline: bigint;
  /** When it was settled or challenged. */
  updatedAt: bigint;
  /** The settlement commitment (zero until settled). */
  settlement: Hex;
  /** keccak256 of the model file. */
  modelId: Hex;
  /** keccak256 of the input. */
  inputHash: Hex;
}

/** The fields of a {@link Settlement}. */
export interface SettlementFields {
  jobId: bigint;
  /** The attested result hash. */
  resultHash: Hex;
  /** The runtime that produced it. */
  runtimeId: Hex;
  /** The signers, ascending. */
  signers: Address[];
  /**
   * The canonical output bytes, published by `settle`. Empty (`0x`) for a job settled in a batch:
   * batches publish no outputs, so fetch it from the relayer (`RelayClient.result`) and check it
   * with {@link Settlement.checkOutput}.
   */
  output: Hex;
  /** The block it settled in. */
  blockNumber: bigint;
  /** The settling transaction. */
  txHash: Hex;
  /** The batch it settled in (every entry, from the `settleBatch` calldata), or `undefined` for a job settled alone. */
  batch?: BatchTree | undefined;
}

/**
 * A settlement as the chain reports it: `JobSettled` for a job settled alone (`settle`);
 * `BatchSettled` and the `settleBatch` calldata for a job settled in a batch.
 */
export class Settlement implements SettlementFields {
  jobId: bigint;
  resultHash: Hex;
  runtimeId: Hex;
  signers: Address[];
  output: Hex;
  blockNumber: bigint;
  txHash: Hex;
  batch: BatchTree | undefined;

  constructor(fields: SettlementFields) {
    this.jobId = fields.jobId;
    this.resultHash = fields.resultHash;
    this.runtimeId = fields.runtimeId;
    this.signers = fields.signers;
    this.output = fields.output;
    this.blockNumber = fields.blockNumber;
    this.txHash = fields.txHash;
    this.batch = fields.batch;
  }

  /**
   * Checks output bytes obtained anywhere (a relayer, a cache) against the attested result hash;
   * throws {@link OutputMismatchError} unless they hash to it. Needed for a batch-settled job,
   * whose output is not on chain.
   */
  checkOutput(output: Hex | ByteArray): void {
    const actual = resultHash(output);
    if (actual !== this.resultHash.toLowerCase()) throw new OutputMismatchError(this.jobId, this.resultHash, actual);
  }
}

/** A settlement whose signatures this client re-checked itself. */
export interface VerifiedSettlement {
  settlement: Settlement;
  /** The threshold M at the settlement block. */
  threshold: number;
}

/** How to build an {@link AttestaClient}. */
export interface AttestaClientOptions {
  /** Reads, logs and receipts. A WebSocket transport makes `waitSettled` subscribe to logs. */
  publicClient: PublicClient;
  /** Sends transactions; its `account` is the client's account. Omit for a read-only client. */
  walletClient?: WalletClient;
  /** The contracts. */
  deployment: Deployment;
  /** The account for `owed` on a read-only client (defaults to the wallet's account). */
  account?: Address;
  /** How often `waitSettled` polls (ms, default 500). */
  pollIntervalMs?: number;
}

type SettledLog = {
  args: { jobId?: bigint; resultHash?: Hex; runtimeId?: Hex; signers?: readonly Address[]; output?: Hex };
  blockNumber: bigint | null;
  transactionHash: Hex | null;
};

function settlementFromLog(log: SettledLog): Settlement | undefined {
  const { jobId, resultHash: rh, runtimeId, signers, output } = log.args;
  if (jobId === undefined || !rh || !runtimeId || !signers || output === undefined) return undefined;
  if (log.blockNumber === null || log.transactionHash === null) return undefined;
  return new Settlement({
    jobId,
    resultHash: rh,
    runtimeId,
    signers: [...signers],
    output,
    blockNumber: log.blockNumber,
    txHash: log.transactionHash,
  });
}

type BatchLog = {
  args: { root?: Hex; runtimeId?: Hex; signers?: readonly Address[] };
  blockNumber: bigint | null;
  transactionHash: Hex | null;
};

const SETTLED_EVENTS = [getAbiItem({ abi: jobEscrowAbi, name: "JobSettled" }), getAbiItem({ abi: jobEscrowAbi, name: "BatchSettled" })] as const;

/** Client for dApps and CLIs: one account, one deployment. */
export class AttestaClient {
  readonly publicClient: PublicClient;
  readonly walletClient: WalletClient | undefined;
  readonly deployment: Deployment;
  readonly pollIntervalMs: number;
  readonly #account: Address | undefined;

  constructor(options: AttestaClientOptions) {
    this.publicClient = options.publicClient;
    this.walletClient = options.walletClient;
    this.deployment = options.deployment;
    this.pollIntervalMs = options.pollIntervalMs ?? 500;
    this.#account = options.walletClient?.account?.address ?? options.account;
  }

  /** The account transactions are sent from (and whose `owed` is read). */
  get account(): Address {
    if (!this.#account) throw new AttestaError("this client has no account: pass a walletClient with an account");
    return this.#account;
  }

  /** The token balance of `account` (default: this client's). */
  async balanceOf(account: Address = this.account): Promise<bigint> {
    return this.read(() =>
      this.publicClient.readContract({ address: this.deployment.token, abi: testTokenAbi, functionName: "balanceOf", args: [account] }),
    );
  }

  /**
   * Escrows `fee` for running `modelId` on `inputHash` by `deadline` (unix seconds), approving the
   * escrow first if the allowance is short. Returns the new job id (from `JobCreated`).
   */
  async createJob(modelId: Hex, inputHash: Hex, fee: bigint, deadline: bigint | number): Promise<bigint> {
    const { token, jobEscrow } = this.deployment;
    const allowance = await this.read(() =>
      this.publicClient.readContract({ address: token, abi: testTokenAbi, functionName: "allowance", args: [this.account, jobEscrow] }),
    );
    if (allowance < fee) {
      await this.send(token, encodeFunctionData({ abi: testTokenAbi, functionName: "approve", args: [jobEscrow, fee] }));
    }
    const receipt = await this.send(
      jobEscrow,
      encodeFunctionData({ abi: jobEscrowAbi, functionName: "createJob", args: [modelId, inputHash, fee, BigInt(deadline)] }),
    );
    const created = this.escrowLogs(receipt, "JobCreated")[0];
    if (!created) throw new MissingEventError("JobCreated", receipt.transactionHash);
    return created.args.jobId;
  }

  /** The job as stored on-chain (status "None" if there is no such job). */
  async job(jobId: bigint): Promise<JobInfo> {
    const j = await this.read(() =>
      this.publicClient.readContract({ address: this.deployment.jobEscrow, abi: jobEscrowAbi, functionName: "job", args: [jobId] }),
    );
    return {
      id: jobId,
      client: j.client,
      fee: j.fee,
      status: statusName(j.status),
      deadline: BigInt(j.deadline),
      updatedAt: BigInt(j.updatedAt),
      settlement: j.settlement,
      modelId: j.modelId,
      inputHash: j.inputHash,
    };
  }

  /**
   * The job's settlement: its `JobSettled` event, or for a job settled in a batch, the
   * `BatchSettled` event and entries of its batch (`settlement.batch`). {@link NotSettledError}
   * until then.
   */
  async settlement(jobId: bigint): Promise<Settlement> {
    const logs = await this.read(() =>
      this.publicClient.getContractEvents({
        address: this.deployment.jobEscrow,
        abi: jobEscrowAbi,
        eventName: "JobSettled",
        args: { jobId },
        fromBlock: this.deployment.blockNumber,
        strict: true,
      }),
    );
    for (const log of logs) {
      const s = settlementFromLog(log);
      if (s) return s;
    }
    return this.batchSettlement(jobId);
  }

  /**
   * Finds the batch that settled `jobId`. Batch events do not name their jobs, so this asks the
   * escrow first (one call while the job is unsettled), then reads the entries of each
   * `BatchSettled` since the job was created from its `settleBatch` calldata.
   */
  private async batchSettlement(jobId: bigint): Promise<Settlement> {
    const { status } = await this.job(jobId);
    if (!hasResult(status) && status !== "Overturned") throw new NotSettledError(jobId);
    const address = this.deployment.jobEscrow;
    const created = await this.read(() =>
      this.publicClient.getContractEvents({
        address,
        abi: jobEscrowAbi,
        eventName: "JobCreated",
        args: { jobId },
        fromBlock: this.deployment.blockNumber,
        strict: true,
      }),
    );
    const fromBlock = created[0]?.blockNumber ?? this.deployment.blockNumber;
    const batches = await this.read(() =>
      this.publicClient.getContractEvents({ address, abi: jobEscrowAbi, eventName: "BatchSettled", fromBlock, strict: true }),
    );
    for (const log of batches) {
      const found = await this.settlementInBatch(jobId, log);
      if (found) return found;
    }
    throw new UnverifiableError(
      jobId,
      "the escrow reports it settled, but no JobSettled event and no direct settleBatch call carrying it was found (logs pruned, or settled through another contract)",
    );
  }

  /** The settlement of `jobId` in the batch of one `BatchSettled` log, if that batch holds it. */
  private async settlementInBatch(jobId: bigint, log: BatchLog): Promise<Settlement | undefined> {
    const { root, runtimeId, signers } = log.args;
    if (!root || !runtimeId || !signers || log.blockNumber === null || log.transactionHash === null) return undefined;
    const txHash = log.transactionHash;
    const tx = await this.read(() => this.publicClient.getTransaction({ hash: txHash }));
    // Only a direct call carries the entries in its calldata; the root check also rejects
    // calldata that merely decodes as one.
    let call;
    try {
      call = decodeFunctionData({ abi: jobEscrowAbi, data: tx.input });
    } catch {
      return undefined;
    }
    if (call.functionName !== "settleBatch") return undefined;
    const [callRuntimeId, entries] = call.args;
    const entry = entries.find((e) => e.jobId === jobId);
    if (!entry) return undefined;
    let tree: BatchTree;
    try {
      tree = new BatchTree(entries);
    } catch {
      return undefined;
    }
    if (tree.root !== root.toLowerCase() || callRuntimeId.toLowerCase() !== runtimeId.toLowerCase()) return undefined;
    return new Settlement({
      jobId,
      resultHash: entry.resultHash,
      runtimeId,
      signers: [...signers],
      output: "0x",
      blockNumber: log.blockNumber,
      txHash,
      batch: tree,
    });
  }

  /**
   * Waits until the job settles, alone or in a batch: watches `JobSettled` and `BatchSettled` (a
   * log subscription over WebSocket, filter polling over HTTP; a batch event does not name its
   * jobs, so each one is a cue to look again) and, as a fallback that also covers settlements
   * before the watch started, re-reads the chain every `pollIntervalMs`. Throws
   * {@link TimeoutError} after `timeoutMs`.
   */
  async waitSettled(jobId: bigint, timeoutMs: number): Promise<Settlement> {
    return new Promise<Settlement>((resolve, reject) => {
      let done = false;
      let unwatch: (() => void) | undefined;
      let poller: ReturnType<typeof setTimeout> | undefined;
      const finish = (err: unknown, value?: Settlement): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (poller) clearTimeout(poller);
        unwatch?.();
        if (value) resolve(value);
        else reject(err);
      };
      const timer = setTimeout(() => finish(new TimeoutError(`job ${jobId} to settle`, timeoutMs)), timeoutMs);
      try {
        // Watch before reading history, so a settlement between the two is not missed.
        unwatch = this.publicClient.watchEvent({
          address: this.deployment.jobEscrow,
          events: SETTLED_EVENTS,
          strict: true,
          pollingInterval: this.pollIntervalMs,
          onLogs: (logs) => {
            let batched = false;
            for (const log of logs) {
              if (log.eventName === "JobSettled") {
                const s = settlementFromLog(log);
                if (s && s.jobId === jobId) return finish(undefined, s);
              } else {
                batched = true;
              }
            }
            if (batched) {
              this.settlement(jobId).then(
                (s) => finish(undefined, s),
                () => {
                  // Not this job's batch, or a transient failure: the polling loop carries on.
                },
              );
            }
          },
          onError: () => {
            // The polling loop below carries on.
          },
        });
      } catch {
        unwatch = undefined;
      }
      const poll = async (): Promise<void> => {
        try {
          return finish(undefined, await this.settlement(jobId));
        } catch (e) {
          if (!(e instanceof NotSettledError) && !(e instanceof AttestaError && e.retryable)) return finish(e);
        }
        if (!done) poller = setTimeout(() => void poll(), this.pollIntervalMs);
      };
      void poll();
    });
  }

  /**
   * Re-checks a settlement from the chain alone, trusting no relayer: decodes the settling
   * transaction's calldata, recovers every signature, requires them sorted, distinct, active and at
   * least M at the settlement block, checks the published output against the result hash, and
   * checks the escrow's commitment. For a batch-settled job the signatures are over the root of
   * the batch's entries, which must include (job, result), and the commitment is checked with
   * `verifyBatchSettlement`; its output is not on chain: check the bytes you fetch with
   * {@link Settlement.checkOutput}. Throws {@link UnverifiableError} for a job whose result the
   * arbiter overturned (its settlement event stays in the log).
   */
  async verifySettlement(jobId: bigint): Promise<VerifiedSettlement> {
    return this.verify(await this.settlement(jobId));
  }

  /**
   * {@link AttestaClient.verifySettlement} of a settlement obtained elsewhere (a cache, or built
   * from a relayer's answer): every field is re-checked against the chain, so a wrong result hash,
   * signer list, batch or transaction fails. Returns the settlement as given once it checks out.
   */
  async verify(settlement: Settlement): Promise<VerifiedSettlement> {
    const { jobId } = settlement;
    const tx = await this.read(() => this.publicClient.getTransaction({ hash: settlement.txHash }));
    if (!sameAddress(tx.to ?? "", this.deployment.jobEscrow)) {
      throw new UnverifiableError(jobId, "the settling transaction did not call this deployment's escrow directly");
    }
    const expected = settlement.batch ? "settleBatch" : "settle";
    let call;
    try {
      call = decodeFunctionData({ abi: jobEscrowAbi, data: tx.input });
    } catch {
      throw new UnverifiableError(jobId, `the settling transaction is not a direct ${expected} call`);
    }
    const job = await this.job(jobId);
    // The settlement event stays in the log after an arbiter overturns the result (as the Rust sdk refuses it).
    if (!hasResult(job.status)) {
      throw new UnverifiableError(jobId, "the arbiter overturned this result (the client was refunded); do not use it");
    }
    const same = (a: Hex, b: Hex): boolean => a.toLowerCase() === b.toLowerCase();
    let digest: Hex;
    let signatures: Hex;
    let proof: Hex[] | undefined;
    const domain = deploymentDomain(this.deployment);
    if (call.functionName === "settle" && !settlement.batch) {
      const [callJobId, runtimeId, callResultHash, , packed] = call.args;
      if (callJobId !== jobId || !same(callResultHash, settlement.resultHash) || !same(runtimeId, settlement.runtimeId)) {
        throw new SettlementMismatchError(jobId);
      }
      settlement.checkOutput(settlement.output);
      const attestation: Attestation = {
        jobId,
        modelId: job.modelId,
        inputHash: job.inputHash,
        resultHash: settlement.resultHash,
        runtimeId: settlement.runtimeId,
      };
      digest = attestationDigest(attestation, domain);
      signatures = packed;
    } else if (call.functionName === "settleBatch" && settlement.batch) {
      // The signatures are over the root of exactly these entries, one of which is (job, result).
      const [runtimeId, entries, packed] = call.args;
      let again: BatchTree;
      try {
        again = new BatchTree(entries);
      } catch {
        throw new SettlementMismatchError(jobId);
      }
      proof = again.proof(jobId, settlement.resultHash);
      if (again.root !== settlement.batch.root.toLowerCase() || !same(runtimeId, settlement.runtimeId) || !proof) {
        throw new SettlementMismatchError(jobId);
      }
      digest = batchAttestationDigest({ root: again.root, runtimeId: settlement.runtimeId }, domain);
      signatures = packed;
    } else {
      throw new UnverifiableError(jobId, `the settling transaction is not a direct ${expected} call`);
    }
    // The active set as it stood when the job settled.
    const { signers, threshold: m } = await this.checkSignatures(digest, signatures, settlement.blockNumber);
    if (signers.length !== settlement.signers.length || signers.some((s, i) => !sameAddress(s, settlement.signers[i] ?? ""))) {
      throw new SettlementMismatchError(jobId);
    }

    const address = this.deployment.jobEscrow;
    const committed = await this.read(() =>
      settlement.batch && proof
        ? this.publicClient.readContract({
            address,
            abi: jobEscrowAbi,
            functionName: "verifyBatchSettlement",
            args: [jobId, settlement.batch.root, settlement.resultHash, signers, proof],
          })
        : this.publicClient.readContract({
            address,
            abi: jobEscrowAbi,
            functionName: "verifySettlement",
            args: [jobId, settlement.resultHash, signers],
          }),
    );
    if (!committed) throw new SettlementMismatchError(jobId);
    return { settlement, threshold: m };
  }

  /**
   * Checks packed signatures over `attestation` as `settle` would, against the registry's active
   * set and threshold at `blockNumber` (default: latest): recovers every signer (sorted, distinct,
   * low-s), requires each to be an active signer and at least M of them. Use it to vet a bundle a
   * relayer hands over before trusting or submitting it.
   */
  async verifySignatures(
    attestation: Attestation,
    signatures: Hex | ByteArray,
    blockNumber?: bigint,
  ): Promise<{ signers: Address[]; threshold: number }> {
    return this.checkSignatures(attestationDigest(attestation, deploymentDomain(this.deployment)), signatures, blockNumber);
  }

  /**
   * {@link AttestaClient.verifySignatures} for a batch: packed signatures over the batch's
   * `BatchAttestation(root, runtimeId)`, judged as `settleBatch` would.
   */
  async verifyBatchSignatures(
    attestation: BatchAttestation,
    signatures: Hex | ByteArray,
    blockNumber?: bigint,
  ): Promise<{ signers: Address[]; threshold: number }> {
    return this.checkSignatures(batchAttestationDigest(attestation, deploymentDomain(this.deployment)), signatures, blockNumber);
  }

  private async checkSignatures(
    digest: Hex,
    signatures: Hex | ByteArray,
    blockNumber: bigint | undefined,
  ): Promise<{ signers: Address[]; threshold: number }> {
    const signers = await recoverAscending(digest, signatures);
    const registry = this.deployment.stakingRegistry;
    const at = blockNumber === undefined ? {} : { blockNumber };
    const flags = await Promise.all(
      signers.map((signer) =>
        this.read(() =>
          this.publicClient.readContract({ address: registry, abi: stakingRegistryAbi, functionName: "isActiveSigner", args: [signer], ...at }),
        ),
      ),
    );
    const m = Number(
      await this.read(() => this.publicClient.readContract({ address: registry, abi: stakingRegistryAbi, functionName: "threshold", ...at })),
    );
    checkQuorum(
      signers,
      signers.filter((_, i) => flags[i]),
      m,
    );
    return { signers, threshold: m };
  }

  /** Returns the fee of an unsettled job to its client after the deadline (anyone may call). */
  async refund(jobId: bigint): Promise<TransactionReceipt> {
    return this.send(this.deployment.jobEscrow, encodeFunctionData({ abi: jobEscrowAbi, functionName: "refund", args: [jobId] }));
  }

  /**
   * Releases a settled job's payment once the challenge window is over (anyone may call). For a
   * job settled in a batch this releases the whole batch (`releaseBatch`).
   */
  async release(jobId: bigint): Promise<TransactionReceipt> {
    const s = await this.settlement(jobId);
    const data = s.batch
      ? encodeFunctionData({ abi: jobEscrowAbi, functionName: "releaseBatch", args: [s.batch.entries, s.signers] })
      : encodeFunctionData({ abi: jobEscrowAbi, functionName: "release", args: [jobId, s.resultHash, s.signers] });
    return this.send(this.deployment.jobEscrow, data);
  }

  /** What `account` (default: this client's) can claim. */
  async owed(account: Address = this.account): Promise<bigint> {
    return this.read(() =>
      this.publicClient.readContract({ address: this.deployment.jobEscrow, abi: jobEscrowAbi, functionName: "owed", args: [account] }),
    );
  }

  /** Withdraws everything credited to this client's account; returns the amount. */
  async claim(): Promise<bigint> {
    const receipt = await this.send(this.deployment.jobEscrow, encodeFunctionData({ abi: jobEscrowAbi, functionName: "claim" }));
    const claimed = this.escrowLogs(receipt, "Claimed")[0];
    if (!claimed) throw new MissingEventError("Claimed", receipt.transactionHash);
    return claimed.args.amount;
  }

  private escrowLogs<E extends "JobCreated" | "Claimed">(receipt: TransactionReceipt, eventName: E) {
    return parseEventLogs({ abi: jobEscrowAbi, eventName, logs: receipt.logs }).filter((l) =>
      sameAddress(l.address, this.deployment.jobEscrow),
    );
  }

  private async read<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw toAttestaError(e);
    }
  }

  /**
   * Sends `data` to `to` from this client's account and waits for its receipt. Gas is estimated
   * first, so a revert surfaces as a decoded {@link RevertError} before anything is signed.
   */
  async send(to: Address, data: Hex): Promise<TransactionReceipt> {
    const wallet = this.walletClient;
    const account: Account | undefined = wallet?.account;
    if (!wallet || !account) throw new AttestaError("this client is read-only: pass a walletClient with an account to send transactions");
    const receipt = await this.read(async () => {
      const gas = await this.publicClient.estimateGas({ account, to, data });
      const hash = await wallet.sendTransaction({ account, to, data, gas: gas + gas / 5n, chain: wallet.chain ?? null });
      return this.publicClient.waitForTransactionReceipt({ hash, pollingInterval: Math.min(this.pollIntervalMs, 100) });
    });
    if (receipt.status !== "success") throw new TransactionFailedError(receipt.transactionHash);
    return receipt;
  }
}
