// Jobs settled in a batch (`settleBatch`, one M-of-N signature set over a Merkle root, no outputs
// on chain) through the same AttestaClient calls as jobs settled alone, against a real anvil with
// the real contracts: found from BatchSettled and the settleBatch calldata, waited for, verified,
// their output checked, released with the whole batch; tampered settlements do not verify.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { encodeFunctionData, keccak256, parseEther, toHex, type Hex } from "viem";
import {
  AttestaClient,
  BatchTree,
  InactiveSignerError,
  NotSettledError,
  OutputMismatchError,
  RelayClient,
  RelayError,
  RevertError,
  Settlement,
  SettlementMismatchError,
  SignersNotAscendingError,
  TimeoutError,
  UnverifiableError,
  deploymentDomain,
  inputHash,
  jobEscrowAbi,
  modelId,
  packSignatures,
  resultHash,
  signBatchAttestation,
  testTokenAbi,
  type BatchAttestation,
  type BatchEntry,
} from "../../src/index.js";
import { Devnet, TEST_RUNTIME_ID, type TestOperator } from "./devnet.js";

const OUTPUT = toHex("ATO1 label: rust");
const OTHER = toHex("ATO1 label: pdf");
const MODEL = modelId(toHex("m"));
const INPUT = inputHash(toHex("i"));
const FEE = parseEther("1");

/** Signs the batch of `entries` with the operators' keys; returns the tree, packed signatures and signers. */
async function signBatch(client: AttestaClient, ops: readonly Pick<TestOperator, "signer">[], entries: BatchEntry[], root?: Hex) {
  const tree = new BatchTree(entries);
  const statement: BatchAttestation = { root: root ?? tree.root, runtimeId: TEST_RUNTIME_ID };
  const domain = deploymentDomain(client.deployment);
  const { packed, signers } = packSignatures(await Promise.all(ops.map((op) => signBatchAttestation(statement, op.signer, domain))));
  return { tree, statement, packed, signers };
}

/** Sends `settleBatch` for `tree`'s entries with the packed signatures. */
function settleBatch(client: AttestaClient, tree: BatchTree, packed: Hex) {
  return client.send(
    client.deployment.jobEscrow,
    encodeFunctionData({ abi: jobEscrowAbi, functionName: "settleBatch", args: [TEST_RUNTIME_ID, tree.entries, packed] }),
  );
}

function revert(name: string) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof RevertError, `expected RevertError ${name}, got ${String(e)}`);
    assert.equal(e.errorName, name);
    return true;
  };
}

describe("jobs settled in a batch", { concurrency: false }, () => {
  let devnet: Devnet;
  let ops: TestOperator[];
  let client: AttestaClient;
  before(async () => {
    devnet = await Devnet.spawn();
    ops = await devnet.addOperators(4); // M = 3
    client = devnet.client(70);
    await devnet.mint(client.account, parseEther("100"));
  });
  after(async () => {
    await devnet?.stop();
  });

  it("are found, waited for (polling and subscription), verified, output-checked and released with the whole batch", async () => {
    const deadline = (await devnet.now()) + 3600n;
    const jobs = [
      await client.createJob(MODEL, INPUT, FEE, deadline),
      await client.createJob(MODEL, INPUT, FEE, deadline),
      await client.createJob(MODEL, INPUT, FEE, deadline),
    ] as const;
    const waiting = client.waitSettled(jobs[0], 60_000);
    const ws = devnet.wsClient();
    const wsWaiting = ws.waitSettled(jobs[1], 20_000).then((settlement) => ({ settlement, at: Date.now() }));
    await assert.rejects(client.settlement(jobs[0]), NotSettledError);
    await new Promise((r) => setTimeout(r, 300));

    // Jobs 0 and 1 settle in one batch signed by 3 of 4 (M = 3); job 2 stays open.
    const started = Date.now();
    const { tree, statement, packed, signers } = await signBatch(client, ops.slice(0, 3), [
      { jobId: jobs[0], resultHash: resultHash(OUTPUT) },
      { jobId: jobs[1], resultHash: resultHash(OTHER) },
    ]);
    // The bundle vets locally as settleBatch would judge it.
    assert.deepEqual((await client.verifyBatchSignatures(statement, packed)).signers, signers);
    const receipt = await settleBatch(client, tree, packed);

    const waited = await waiting;
    const found = await client.settlement(jobs[0]);
    assert.deepEqual(waited, found);
    assert.ok(found instanceof Settlement);
    assert.equal(found.batch?.root, tree.root);
    assert.deepEqual(found.batch?.entries, tree.entries);
    assert.equal(found.resultHash, resultHash(OUTPUT));
    assert.equal(found.runtimeId, TEST_RUNTIME_ID);
    assert.deepEqual(found.signers, signers);
    assert.equal(found.txHash, receipt.transactionHash);
    assert.equal(found.blockNumber, receipt.blockNumber);
    assert.equal(found.output, "0x", "batches publish no outputs");
    found.checkOutput(OUTPUT);
    assert.throws(
      () => found.checkOutput(toHex("forged")),
      (e: unknown) => e instanceof OutputMismatchError && e.expected === resultHash(OUTPUT) && e.actual === keccak256(toHex("forged")),
    );

    // The output comes from a relayer, which is not trusted for it: here one that serves whatever
    // `served` holds (a real relayer's answer shape), honest, lying, or not yet holding it.
    let served: Hex | undefined = OUTPUT;
    const untrusted = new RelayClient("http://relayer.invalid", {
      fetch: async (url) => {
        assert.equal(String(url), `http://relayer.invalid/v1/jobs/${jobs[0]}/result`);
        if (served === undefined) return Response.json({ code: "not_settled", message: "not settled yet" }, { status: 404 });
        return Response.json({ job_id: String(jobs[0]), result_hash: resultHash(OUTPUT), output: served, signers });
      },
    });
    assert.equal(await untrusted.output(found), OUTPUT);
    served = toHex("forged");
    await assert.rejects(untrusted.output(found), (e: unknown) => e instanceof RelayError && /chain attests/.test(e.message));
    served = undefined;
    assert.equal(await untrusted.output(found), undefined);
    // A job settled alone has its output on chain: no relayer is asked, the bytes are checked.
    assert.equal(await untrusted.output(new Settlement({ ...found, batch: undefined, output: OUTPUT })), OUTPUT);
    await assert.rejects(untrusted.output(new Settlement({ ...found, batch: undefined, output: OTHER })), OutputMismatchError);

    // Over WebSocket the BatchSettled log is the cue (the wsClient's polling fallback is 5 s).
    const { settlement: wsFound, at } = await wsWaiting;
    assert.equal(wsFound.jobId, jobs[1]);
    assert.equal(wsFound.resultHash, resultHash(OTHER));
    assert.ok(at - started < 4_000, "answered by the subscription, not the 5 s poll");

    for (const [job, output] of [
      [jobs[0], OUTPUT],
      [jobs[1], OTHER],
    ] as const) {
      const verified = await client.verifySettlement(job);
      assert.equal(verified.threshold, 3);
      assert.equal(verified.settlement.resultHash, resultHash(output));
      verified.settlement.checkOutput(output);
      assert.equal((await client.job(job)).status, "Settled");
    }

    // The job outside the batch stays unsettled for every call.
    assert.equal((await client.job(jobs[2])).status, "Created");
    await assert.rejects(client.settlement(jobs[2]), NotSettledError);
    await assert.rejects(client.verifySettlement(jobs[2]), NotSettledError);
    await assert.rejects(client.waitSettled(jobs[2], 300), TimeoutError);
    await assert.rejects(client.release(jobs[2]), NotSettledError);

    // After the batch's window one release pays both jobs of the batch, and only them.
    await assert.rejects(client.release(jobs[0]), revert("JobEscrowBatchWindowOpen"));
    const config = await devnet.publicClient.readContract({ address: devnet.deployment.jobEscrow, abi: jobEscrowAbi, functionName: "config" });
    await devnet.advance(Number(config.challengeWindow) + 1);
    const operators = [0, 1, 2, 3].map((i) => devnet.client(1 + 2 * i));
    const owedBefore = await Promise.all(operators.map((o) => o.owed()));
    const treasuryBefore = await client.owed(devnet.deployment.admin);
    await devnet.client(72).release(jobs[1]);
    assert.equal((await client.job(jobs[0])).status, "Released");
    assert.equal((await client.job(jobs[1])).status, "Released");
    assert.equal((await client.job(jobs[2])).status, "Created");
    const protocolFee = (FEE * BigInt(config.protocolFeeBps)) / 10_000n;
    const share = (FEE - protocolFee) / 3n;
    const signed = new Set(signers.map((s) => s.toLowerCase()));
    for (const [i, operator] of operators.entries()) {
      const paid = signed.has(ops[i]!.signer.address.toLowerCase()) ? 2n * share : 0n;
      assert.equal((await operator.owed()) - owedBefore[i]!, paid, `operator ${i}`);
    }
    assert.equal((await client.owed(devnet.deployment.admin)) - treasuryBefore, 2n * (FEE - 3n * share));
    await assert.rejects(client.release(jobs[0]), revert("JobEscrowNothingToRelease"));
    // Released, it still verifies.
    assert.equal((await client.verifySettlement(jobs[0])).settlement.batch?.root, tree.root);
  });

  it("do not verify with a tampered signer list, batch, result or transaction, nor with signatures over another root", async () => {
    // Continues on the same chain: the four operators above are active (M = 3).
    const deadline = (await devnet.now()) + 3600n;
    const a = await client.createJob(MODEL, INPUT, FEE, deadline);
    const b = await client.createJob(MODEL, INPUT, FEE, deadline);
    const entries = [
      { jobId: a, resultHash: resultHash(OUTPUT) },
      { jobId: b, resultHash: resultHash(OTHER) },
    ];

    // Signatures over another root: refused locally and on chain; nothing settles.
    const wrong = await signBatch(client, ops.slice(0, 3), entries, keccak256(toHex("another root")));
    await assert.rejects(
      client.verifyBatchSignatures({ root: wrong.tree.root, runtimeId: TEST_RUNTIME_ID }, wrong.packed),
      (e: unknown) => e instanceof SignersNotAscendingError || e instanceof InactiveSignerError,
    );
    await assert.rejects(settleBatch(client, wrong.tree, wrong.packed), RevertError);
    assert.equal((await client.job(a)).status, "Created");
    await assert.rejects(client.settlement(a), NotSettledError);

    const { tree, packed, signers } = await signBatch(client, ops.slice(1, 4), entries);
    await settleBatch(client, tree, packed);
    const s = await client.settlement(a);
    assert.equal((await client.verify(s)).threshold, 3, "the untampered settlement verifies");

    const mismatch = (e: unknown): boolean => e instanceof SettlementMismatchError && e.jobId === a;
    // An active signer that did not sign in place of one that did, then one signer dropped.
    const swapped = packSignatures(
      [ops[0]!, ops[1]!, ops[2]!].map((op) => ({ signer: op.signer.address, signature: `0x${"11".repeat(65)}` as Hex })),
    ).signers;
    assert.notDeepEqual(swapped, signers);
    await assert.rejects(client.verify(new Settlement({ ...s, signers: swapped })), mismatch);
    await assert.rejects(client.verify(new Settlement({ ...s, signers: signers.slice(1) })), mismatch);
    // Another batch (a different root), and another job's result within the right batch.
    const other = new BatchTree([...entries, { jobId: 999n, resultHash: resultHash(OUTPUT) }]);
    await assert.rejects(client.verify(new Settlement({ ...s, batch: other })), mismatch);
    await assert.rejects(client.verify(new Settlement({ ...s, resultHash: resultHash(OTHER) })), mismatch);
    // The batch's transaction passed off as a single settlement, and another transaction as the batch's.
    await assert.rejects(client.verify(new Settlement({ ...s, batch: undefined, output: OUTPUT })), UnverifiableError);
    const { jobEscrow, token } = client.deployment;
    const approve = await client.send(token, encodeFunctionData({ abi: testTokenAbi, functionName: "approve", args: [jobEscrow, FEE] }));
    await assert.rejects(client.verify(new Settlement({ ...s, txHash: approve.transactionHash })), /did not call this deployment's escrow/);
    const create = await client.send(
      jobEscrow,
      encodeFunctionData({ abi: jobEscrowAbi, functionName: "createJob", args: [MODEL, INPUT, FEE, deadline] }),
    );
    await assert.rejects(client.verify(new Settlement({ ...s, txHash: create.transactionHash })), (e: unknown) => {
      assert.ok(e instanceof UnverifiableError, String(e));
      assert.match(e.message, /not a direct settleBatch call/);
      return true;
    });
  });

  it("still verify while challenged, and not once the arbiter overturned the result", async () => {
    // Continues on the same chain: the four operators above are active (M = 3).
    const deadline = (await devnet.now()) + 3600n;
    const a = await client.createJob(MODEL, INPUT, FEE, deadline);
    const b = await client.createJob(MODEL, INPUT, FEE, deadline);
    const { tree, packed } = await signBatch(client, ops.slice(0, 3), [
      { jobId: a, resultHash: resultHash(OUTPUT) },
      { jobId: b, resultHash: resultHash(OTHER) },
    ]);
    await settleBatch(client, tree, packed);
    const s = await client.settlement(a);

    // The client disputes job a alone, with the proof of its entry; it gets its own state.
    const { jobEscrow, token } = client.deployment;
    const { challengeBond } = await devnet.publicClient.readContract({ address: jobEscrow, abi: jobEscrowAbi, functionName: "config" });
    await client.send(token, encodeFunctionData({ abi: testTokenAbi, functionName: "approve", args: [jobEscrow, challengeBond] }));
    const proof = s.batch!.proof(a, s.resultHash)!;
    await client.send(
      jobEscrow,
      encodeFunctionData({ abi: jobEscrowAbi, functionName: "challengeBatched", args: [a, tree.root, s.resultHash, proof] }),
    );
    assert.equal((await client.job(a)).status, "Disputed");
    assert.equal((await client.verifySettlement(a)).settlement.batch?.root, tree.root, "disputed, the result still stands for now");

    await devnet.client(0).send(
      jobEscrow,
      encodeFunctionData({ abi: jobEscrowAbi, functionName: "resolveDispute", args: [a, false, s.resultHash, s.signers] }),
    );
    assert.equal((await client.job(a)).status, "Overturned");
    // Still found (its batch is in the log), but it must not verify any more; its batch-mate does.
    assert.deepEqual(await client.settlement(a), s);
    await assert.rejects(client.verifySettlement(a), (e: unknown) => e instanceof UnverifiableError && /overturned/.test(e.message));
    assert.equal((await client.verifySettlement(b)).threshold, 3);
  });
});
