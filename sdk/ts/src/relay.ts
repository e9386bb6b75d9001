/**
 * A client of a relayer's public HTTP routes (`docs/relayer.md`, "HTTP API"), mirroring the Rust
 * sdk's `relay::RelayClient`: upload inputs and models, check that a blob is stored, follow a job,
 * and fetch its result checked against the result hash you read on-chain. It also reads the
 * read-only network routes the relayer's dashboard is built from.
 *
 * The relayer is trusted for liveness only: every byte it returns is checked against a hash you
 * already hold, and settlements are verified from chain data by `AttestaClient.verifySettlement`.
 * Works in browsers and Node.js (≥ 18): it only needs `fetch`.
 */
import { bytesToHex, hexToBytes, keccak256, type Address, type Hex } from "viem";
import type { Settlement } from "./client.js";
import { RelayError } from "./errors.js";

/** `POST /v1/blobs` answer. */
export interface BlobStored {
  /** keccak256 of the bytes (a `modelId` or an `inputHash`). */
  hash: Hex;
  /** Length in bytes. */
  size: number;
}

/** A job's lifecycle as the relayer has seen it on chain. */
export type RelayJobStatus = "open" | "settling" | "settled" | "released" | "challenged" | "refunded";

/** How many distinct signers attested one result hash. */
export interface ResultTally {
  resultHash: Hex;
  signers: number;
}

/** `GET /v1/jobs/{id}` answer. */
export interface RelayJobView {
  jobId: bigint;
  /** Who escrowed the fee. */
  client: Address;
  modelId: Hex;
  inputHash: Hex;
  /** The escrowed fee in token units. */
  fee: bigint;
  /** Unix time after which an unsettled job can be refunded. */
  deadline: number;
  status: RelayJobStatus;
  /** Block of the `JobCreated` event. */
  createdBlock: number;
  /** Valid attestations received, per result hash, most agreed first. */
  attestations: ResultTally[];
  /** The settled result, once `JobSettled` is confirmed. */
  resultHash: Hex | undefined;
  /** The settling signers, once settled. */
  signers: Address[];
  /** The settlement transaction, once mined. */
  settleTx: Hex | undefined;
  /**
   * The Merkle root of the batch that settled the job, when `settleBatch` did (then `settleTx` is
   * the batch's transaction and the output is in no log: {@link RelayClient.result} serves it,
   * checked against the result hash).
   */
  batchRoot: Hex | undefined;
}

/** `GET /v1/jobs/{id}/result` answer, checked against the expected result hash. */
export interface RelayJobResult {
  jobId: bigint;
  resultHash: Hex;
  /** The canonical output bytes (decode with `decodeCanonical`). */
  output: Hex;
  /** The settling signers, ascending. */
  signers: Address[];
}

/** One attestation a node submitted for a job (`GET /v1/jobs/{id}/attestations`). */
export interface RelayAttestation {
  signer: Address;
  resultHash: Hex;
  runtimeId: Hex;
  /** 65-byte r‖s‖v signature over the EIP-712 attestation. */
  signature: Hex;
  /** Unix time the relayer received it. */
  receivedAt: number;
}

/** An operator of the active set (`GET /v1/network`). */
export interface NetworkOperator {
  operator: Address;
  /** The operator's signing key. */
  signer: Address;
  /** Bonded stake in token units. */
  stake: bigint;
  /** Stake waiting out the unbonding period. */
  unbonding: bigint;
  jailed: boolean;
  /** The node's last heartbeat at this relayer (unix seconds), if it registered. */
  lastHeartbeat: number | undefined;
  /** The node's software version, if it registered. */
  version: string | undefined;
}

/** `GET /v1/network` answer: the active set as the relayer last read it from the registry. */
export interface NetworkView {
  chainId: number;
  /** The threshold M. */
  threshold: number;
  /** `activeSetVersion()` of the registry. */
  activeSetVersion: number;
  operators: NetworkOperator[];
  /** The next block the relayer's watcher will read. */
  nextBlock: number | undefined;
}

/** A `Slashed` event of the registry (`GET /v1/slashings`). */
export interface SlashEvent {
  operator: Address;
  amount: bigint;
  reporter: Address;
  bounty: bigint;
  jailed: boolean;
  blockNumber: number;
  blockTime: number;
  txHash: Hex;
}

/** Equivocation evidence the relayer caught (one signer, one job, two results). */
export interface Equivocation {
  jobId: bigint;
  signer: Address;
  resultA: Hex;
  resultB: Hex;
  /** Unix time it was recorded. */
  createdAt: number;
}

/** `GET /v1/slashings` answer. */
export interface SlashingsView {
  slashes: SlashEvent[];
  equivocations: Equivocation[];
}

/** `GET /v1/stats` answer. */
export interface StatsView {
  /** Jobs per relayer status. */
  jobs: Record<RelayJobStatus, number>;
  /** Attestations received, all jobs. */
  attestations: number;
  /** Jobs settled in the last `seconds` of chain time, per window. */
  settled: { seconds: number; jobs: number }[];
  /** The chain time the windows end at (the newest block the relayer stored). */
  chainTime: number | undefined;
}

/** How to build a {@link RelayClient}. */
export interface RelayClientOptions {
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
  /** Per-request time limit in ms (default 120 000, as the Rust client). */
  timeoutMs?: number;
}

type Json = Record<string, unknown>;

function u256(value: unknown): bigint {
  if (typeof value === "string" || typeof value === "number") return BigInt(value);
  throw new RelayError(`unexpected answer from the relayer: ${String(value)} is not a number`);
}

function num(value: unknown): number {
  if (typeof value === "number") return value;
  if (typeof value === "string") return Number(value);
  throw new RelayError(`unexpected answer from the relayer: ${String(value)} is not a number`);
}

function optNum(value: unknown): number | undefined {
  return value === null || value === undefined ? undefined : num(value);
}

function hex(value: unknown): Hex {
  if (typeof value === "string" && /^0x[0-9a-fA-F]*$/.test(value)) return value.toLowerCase() as Hex;
  throw new RelayError(`unexpected answer from the relayer: ${String(value)} is not 0x-hex`);
}

function optHex(value: unknown): Hex | undefined {
  return value === null || value === undefined ? undefined : hex(value);
}

function addr(value: unknown): Address {
  return hex(value) as Address;
}

function list(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  throw new RelayError("unexpected answer from the relayer: expected a list");
}

function jobView(j: Json): RelayJobView {
  return {
    jobId: u256(j.job_id),
    client: addr(j.client),
    modelId: hex(j.model_id),
    inputHash: hex(j.input_hash),
    fee: u256(j.fee),
    deadline: num(j.deadline),
    status: j.status as RelayJobStatus,
    createdBlock: num(j.created_block),
    attestations: list(j.attestations).map((t) => ({ resultHash: hex((t as Json).result_hash), signers: num((t as Json).signers) })),
    resultHash: optHex(j.result_hash),
    signers: list(j.signers).map(addr),
    settleTx: optHex(j.settle_tx),
    batchRoot: optHex(j.batch_root),
  };
}

/** A client of one relayer's public routes. */
export class RelayClient {
  readonly baseUrl: string;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;

  /** A client of the relayer at `baseUrl` (e.g. `http://127.0.0.1:7545`). */
  constructor(baseUrl: string, options: RelayClientOptions = {}) {
    const base = baseUrl.replace(/\/+$/, "");
    if (!/^https?:\/\//.test(base) && !base.startsWith("/")) {
      throw new RelayError(`relayer URL ${JSON.stringify(baseUrl)} is not http(s): pass e.g. http://127.0.0.1:7545`);
    }
    this.baseUrl = base;
    // Bound to globalThis: browsers refuse a detached `fetch`.
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#timeoutMs = options.timeoutMs ?? 120_000;
  }

  /** Uploads bytes (an ATI1 input or a model); returns their content hash, checked. Idempotent. */
  async uploadBlob(bytes: Uint8Array): Promise<BlobStored> {
    const expected = keccak256(bytes);
    const response = await this.request("POST", "/v1/blobs", {
      headers: { "content-type": "application/octet-stream" },
      // A copy in a fresh ArrayBuffer: fetch's body types exclude views over shared memory.
      body: new Uint8Array(bytes).buffer,
    });
    const stored = (await this.json(response, "/v1/blobs")) as Json;
    const hash = hex(stored.hash);
    if (hash !== expected) {
      throw new RelayError(`the relayer stored the upload as ${hash} but its keccak256 is ${expected}: use another relayer`);
    }
    return { hash, size: num(stored.size) };
  }

  /** Whether the relayer holds the blob `hash`. */
  async hasBlob(hash: Hex): Promise<boolean> {
    const path = `/v1/blobs/${hash}`;
    const response = await this.request("HEAD", path);
    if (response.status === 200) return true;
    if (response.status === 404) return false;
    throw new RelayError(`HEAD ${path} answered ${response.status}`, response.status);
  }

  /** The relayer's view of a job, or `undefined` if it has not seen the job (yet). */
  async job(jobId: bigint): Promise<RelayJobView | undefined> {
    const path = `/v1/jobs/${jobId}`;
    const response = await this.request("GET", path);
    if (response.status === 404) return undefined;
    return jobView((await this.json(response, path)) as Json);
  }

  /**
   * A settled job's result, or `undefined` while it is not settled. `expectedResultHash` is the
   * result hash you read on-chain (`AttestaClient.settlement(jobId)`): the answer is refused
   * unless both it and keccak256 of its output equal it, so a relayer cannot swap the output.
   * This is where a job settled in a batch gets its output: batches publish none on chain.
   */
  async result(jobId: bigint, expectedResultHash: Hex): Promise<RelayJobResult | undefined> {
    const path = `/v1/jobs/${jobId}/result`;
    const response = await this.request("GET", path);
    if (response.status === 404) {
      const body = await this.errorBody(response);
      if (body?.code === "not_settled" || body?.code === "not_found") return undefined;
      throw this.failure(path, response.status, body);
    }
    const r = (await this.json(response, path)) as Json;
    const output = hex(r.output);
    const claimed = hex(r.result_hash);
    const actual = keccak256(hexToBytes(output));
    const expected = expectedResultHash.toLowerCase();
    if (claimed !== expected || actual !== expected) {
      throw new RelayError(
        `job ${jobId}: the relayer's output hashes to ${actual} (it claims ${claimed}), but the chain attests ${expected}: use the on-chain output or another relayer`,
      );
    }
    return { jobId: u256(r.job_id), resultHash: claimed, output: bytesToHex(hexToBytes(output)), signers: list(r.signers).map(addr) };
  }

  /**
   * The output bytes of a settlement (from `AttestaClient.settlement` or `verifySettlement`),
   * checked against its attested result hash: the published ones for a job settled alone, this
   * relayer's copy for a job settled in a batch (batches publish no outputs), `undefined` while
   * the relayer does not serve it. Throws `OutputMismatchError` or {@link RelayError} for bytes
   * that do not hash to the result.
   */
  async output(settlement: Settlement): Promise<Hex | undefined> {
    if (!settlement.batch) {
      settlement.checkOutput(settlement.output);
      return settlement.output;
    }
    const copy = await this.result(settlement.jobId, settlement.resultHash);
    if (!copy) return undefined;
    settlement.checkOutput(copy.output);
    return copy.output;
  }

  /** Every attestation the relayer received for a job (empty for an unknown job). */
  async attestations(jobId: bigint): Promise<RelayAttestation[]> {
    const path = `/v1/jobs/${jobId}/attestations`;
    const response = await this.request("GET", path);
    if (response.status === 404) return [];
    const body = (await this.json(response, path)) as Json;
    return list(body.attestations).map((a) => {
      const x = a as Json;
      return {
        signer: addr(x.signer),
        resultHash: hex(x.result_hash),
        runtimeId: hex(x.runtime_id),
        signature: hex(x.signature),
        receivedAt: num(x.received_at),
      };
    });
  }

  /** The newest jobs, newest first (at most `limit`, capped by the relayer at 100). */
  async recentJobs(limit = 20): Promise<RelayJobView[]> {
    const path = `/v1/jobs?limit=${limit}`;
    const body = (await this.json(await this.request("GET", path), path)) as Json;
    return list(body.jobs).map((j) => jobView(j as Json));
  }

  /** The active set with stakes and the threshold, as the relayer read it from the registry. */
  async network(): Promise<NetworkView> {
    const n = (await this.json(await this.request("GET", "/v1/network"), "/v1/network")) as Json;
    return {
      chainId: num(n.chain_id),
      threshold: num(n.threshold),
      activeSetVersion: num(n.active_set_version),
      nextBlock: optNum(n.next_block),
      operators: list(n.operators).map((o) => {
        const x = o as Json;
        return {
          operator: addr(x.operator),
          signer: addr(x.signer),
          stake: u256(x.stake),
          unbonding: u256(x.unbonding),
          jailed: Boolean(x.jailed),
          lastHeartbeat: optNum(x.last_heartbeat),
          version: typeof x.version === "string" ? x.version : undefined,
        };
      }),
    };
  }

  /** Confirmed `Slashed` events and the equivocations this relayer caught. */
  async slashings(): Promise<SlashingsView> {
    const s = (await this.json(await this.request("GET", "/v1/slashings"), "/v1/slashings")) as Json;
    return {
      slashes: list(s.slashes).map((e) => {
        const x = e as Json;
        return {
          operator: addr(x.operator),
          amount: u256(x.amount),
          reporter: addr(x.reporter),
          bounty: u256(x.bounty),
          jailed: Boolean(x.jailed),
          blockNumber: num(x.block_number),
          blockTime: num(x.block_time),
          txHash: hex(x.tx_hash),
        };
      }),
      equivocations: list(s.equivocations).map((e) => {
        const x = e as Json;
        return { jobId: u256(x.job_id), signer: addr(x.signer), resultA: hex(x.result_a), resultB: hex(x.result_b), createdAt: num(x.created_at) };
      }),
    };
  }

  /** Jobs per status, attestations, and settled jobs over recent windows of chain time. */
  async stats(): Promise<StatsView> {
    const s = (await this.json(await this.request("GET", "/v1/stats"), "/v1/stats")) as Json;
    const jobs = s.jobs as Record<string, unknown>;
    const statuses: RelayJobStatus[] = ["open", "settling", "settled", "released", "challenged", "refunded"];
    return {
      jobs: Object.fromEntries(statuses.map((k) => [k, num(jobs[k] ?? 0)])) as Record<RelayJobStatus, number>,
      attestations: num(s.attestations),
      settled: list(s.settled).map((w) => ({ seconds: num((w as Json).seconds), jobs: num((w as Json).jobs) })),
      chainTime: optNum(s.chain_time),
    };
  }

  private async request(method: string, path: string, init: RequestInit = {}): Promise<Response> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.#timeoutMs);
    try {
      return await this.#fetch(`${this.baseUrl}${path}`, { ...init, method, signal: controller.signal });
    } catch (e) {
      throw new RelayError(`cannot reach the relayer at ${this.baseUrl} (${String(e)}): start it or pass the right URL`, undefined, undefined, {
        cause: e,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  private async errorBody(response: Response): Promise<{ code: string; message: string } | undefined> {
    try {
      const body = (await response.json()) as { code?: unknown; message?: unknown };
      if (typeof body.code === "string" && typeof body.message === "string") return { code: body.code, message: body.message };
    } catch {
      // Not the API's error shape; the status alone is reported.
    }
    return undefined;
  }

  private failure(path: string, status: number, body: { code: string; message: string } | undefined): RelayError {
    const detail = body ? `${body.code}: ${body.message}` : "no details";
    return new RelayError(`the relayer answered ${status} to ${path}: ${detail}`, status, body?.code);
  }

  private async json(response: Response, path: string): Promise<unknown> {
    if (!response.ok) throw this.failure(path, response.status, await this.errorBody(response));
    try {
      return await response.json();
    } catch (e) {
      throw new RelayError(`unexpected answer from the relayer to ${path}: ${String(e)}`, response.status);
    }
  }
}
