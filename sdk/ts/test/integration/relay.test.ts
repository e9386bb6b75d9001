// RelayClient against the real relayer binary (attesta-relayer, SQLite) watching a real anvil
// chain with the real contracts: uploads, job views, hash-checked results and the network routes.
// Needs the Rust binaries (`cargo build --bins`; tools/test builds them before tools/test-ts).
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { encodeFunctionData, keccak256, parseEther, toHex, type Hex } from "viem";
import {
  BatchTree,
  RelayClient,
  RelayError,
  deploymentDomain,
  encodeInput,
  inputHash,
  jobEscrowAbi,
  magikaInput,
  modelId,
  packSignatures,
  resultHash,
  signAttestation,
  signBatchAttestation,
} from "../../src/index.js";
import { Devnet, ROOT, TEST_RUNTIME_ID, type TestOperator } from "./devnet.js";

const BIN = join(process.env.CARGO_TARGET_DIR ?? join(ROOT, "target"), "debug", "attesta-relayer");
const OUTPUT = toHex("ATO1 label: rust");
const MODEL = modelId(toHex("model bytes"));

async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("RelayClient against attesta-relayer", { concurrency: false, skip: !existsSync(BIN) && `${BIN} is missing: cargo build --bins` }, () => {
  let devnet: Devnet;
  let relayer: ChildProcess;
  let dir: string;
  let relay: RelayClient;
  let ops: TestOperator[];

  before(async () => {
    devnet = await Devnet.spawn();
    ops = await devnet.addOperators(3);
    dir = mkdtempSync(join(tmpdir(), "attesta-relay-ts-"));
    const d = devnet.deployment;
    writeFileSync(
      join(dir, "deployment.json"),
      JSON.stringify({ ...d, blockNumber: Number(d.blockNumber) }),
    );
    const port = await freePort();
    writeFileSync(
      join(dir, "relayer.toml"),
      `database_url = "sqlite://${join(dir, "relayer.db")}?mode=rwc"\n\n[chain]\nrpc_url = "${devnet.url}"\ndeployment = "${join(dir, "deployment.json")}"\nconfirmations = 0\npoll_interval_ms = 100\n\n[api]\nlisten = "127.0.0.1:${port}"\n`,
    );
    relayer = spawn(BIN, ["run", "--config", join(dir, "relayer.toml")], {
      env: { ...process.env, ATTESTA_RELAYER_KEY: keccak256(toHex("attesta-test-account-79")).slice(2), RUST_LOG: "warn" },
      stdio: ["ignore", "ignore", "inherit"],
    });
    relay = new RelayClient(`http://127.0.0.1:${port}`);
    await until("the relayer's API", async () => {
      try {
        return (await fetch(`${relay.baseUrl}/healthz`)).ok || undefined;
      } catch {
        return undefined;
      }
    });
  });

  after(async () => {
    if (relayer && relayer.exitCode === null) {
      await new Promise<void>((resolve) => {
        relayer.once("exit", () => resolve());
        relayer.kill("SIGTERM");
      });
    }
    await devnet?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("uploads by content hash, follows a job, and checks the result against the chain's hash", async () => {
    const input = encodeInput(magikaInput(new TextEncoder().encode("fn main() {}\n")));
    const stored = await relay.uploadBlob(input);
    assert.deepEqual(stored, { hash: inputHash(input), size: input.length });
    assert.equal(await relay.hasBlob(inputHash(input)), true);
    assert.equal(await relay.hasBlob(keccak256(toHex("never uploaded"))), false);

    const client = devnet.client(70);
    await devnet.mint(client.account, parseEther("10"));
    const deadline = (await devnet.now()) + 3600n;
    const jobId = await client.createJob(MODEL, inputHash(input), parseEther("1"), deadline);
    assert.equal(await relay.job(jobId + 1000n), undefined, "an unknown job is undefined, not an error");
    const view = await until("the relayer to see the job", () => relay.job(jobId));
    assert.equal(view.status, "open");
    assert.equal(view.inputHash, inputHash(input));
    assert.equal(view.modelId, MODEL);
    assert.equal(view.fee, parseEther("1"));
    assert.equal(view.client.toLowerCase(), client.account.toLowerCase());
    assert.equal(await relay.result(jobId, resultHash(OUTPUT)), undefined, "not settled yet");

    // Settled on chain by M operators' signatures (no nodes needed for the relayer's view).
    const attestation = { jobId, modelId: MODEL, inputHash: inputHash(input), resultHash: resultHash(OUTPUT), runtimeId: TEST_RUNTIME_ID };
    const domain = deploymentDomain(devnet.deployment);
    const { packed, signers } = packSignatures(await Promise.all(ops.map((op) => signAttestation(attestation, op.signer, domain))));
    await client.send(
      devnet.deployment.jobEscrow,
      encodeFunctionData({ abi: jobEscrowAbi, functionName: "settle", args: [jobId, TEST_RUNTIME_ID, resultHash(OUTPUT), OUTPUT, packed] }),
    );
    const settled = await until("the relayer to see the settlement", async () => {
      const v = await relay.job(jobId);
      return v?.status === "settled" ? v : undefined;
    });
    assert.equal(settled.resultHash, resultHash(OUTPUT));
    assert.equal(settled.batchRoot, undefined, "settled alone");
    const result = await relay.result(jobId, (await client.settlement(jobId)).resultHash);
    assert.equal(result?.output, OUTPUT);
    assert.deepEqual(result?.signers.map((s) => s.toLowerCase()), signers.map((s) => s.toLowerCase()));
    // Expecting another hash (as a chain with another result would say) refuses the relayer's copy.
    await assert.rejects(relay.result(jobId, keccak256(toHex("another result")) as Hex), (e: unknown) => {
      assert.ok(e instanceof RelayError, String(e));
      assert.match(e.message, /chain attests/);
      return true;
    });

    // The network routes the dashboard uses.
    const recent = await relay.recentJobs(5);
    assert.equal(recent[0]?.jobId, jobId);
    assert.deepEqual(await relay.attestations(jobId), [], "settled without attestations through this relayer");
    const network = await relay.network();
    assert.equal(network.chainId, devnet.deployment.chainId);
    assert.equal(network.operators.length, 3);
    const minStake = await devnet.minStake();
    for (const o of network.operators) assert.equal(o.stake, minStake);
    assert.equal(network.threshold, 3, "ceil(3 × 6667 bps)");
    const stats = await relay.stats();
    assert.equal(stats.jobs.settled, 1);
    assert.equal(stats.settled.find((w) => w.seconds === 60)?.jobs, 1);
    assert.deepEqual(await relay.slashings(), { slashes: [], equivocations: [] });
  });

  it("reports the batch root of a job settled in a batch", async () => {
    const client = devnet.client(70);
    const deadline = (await devnet.now()) + 3600n;
    const jobs = [await client.createJob(MODEL, MODEL, parseEther("1"), deadline), await client.createJob(MODEL, MODEL, parseEther("1"), deadline)];
    const tree = new BatchTree(jobs.map((jobId) => ({ jobId, resultHash: resultHash(OUTPUT) })));
    const domain = deploymentDomain(devnet.deployment);
    const statement = { root: tree.root, runtimeId: TEST_RUNTIME_ID };
    const { packed } = packSignatures(await Promise.all(ops.map((op) => signBatchAttestation(statement, op.signer, domain))));
    const receipt = await client.send(
      devnet.deployment.jobEscrow,
      encodeFunctionData({ abi: jobEscrowAbi, functionName: "settleBatch", args: [TEST_RUNTIME_ID, tree.entries, packed] }),
    );
    for (const jobId of jobs) {
      const view = await until(`the relayer to see job ${jobId} settled`, async () => {
        const v = await relay.job(jobId);
        return v?.status === "settled" ? v : undefined;
      });
      assert.equal(view.batchRoot, tree.root);
      assert.equal(view.settleTx, receipt.transactionHash);
      assert.equal(view.resultHash, resultHash(OUTPUT));
      // The chain agrees, and names the same batch.
      assert.equal((await client.settlement(jobId)).batch?.root, view.batchRoot);
    }
  });

  it("reports an unreachable relayer as a retryable RelayError", async () => {
    const gone = new RelayClient(`http://127.0.0.1:${await freePort()}`);
    await assert.rejects(gone.job(1n), (e: unknown) => e instanceof RelayError && e.retryable && /cannot reach the relayer/.test(e.message));
    assert.throws(() => new RelayClient("ftp://example.com"), RelayError);
  });
});
