// Every AttestaClient call against a real anvil chain with the real contracts (no mocks).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { encodeFunctionData, keccak256, parseEther, toHex, type Address, type Hex } from "viem";
import {
  AttestaClient,
  InactiveSignerError,
  InsufficientSignaturesError,
  NotSettledError,
  RevertError,
  SignersNotAscendingError,
  TimeoutError,
  UnverifiableError,
  attestationDigest,
  deploymentDomain,
  inputHash,
  jobEscrowAbi,
  modelId,
  packSignatures,
  resultHash,
  signAttestation,
  stakingRegistryAbi,
  testTokenAbi,
  type Attestation,
} from "../../src/index.js";
import { Devnet, TEST_RUNTIME_ID, type TestOperator } from "./devnet.js";

const OUTPUT = toHex("ATO1 label: rust");
const MODEL = modelId(toHex("m"));
const INPUT = inputHash(toHex("i"));

function attestation(jobId: bigint): Attestation {
  return { jobId, modelId: MODEL, inputHash: INPUT, resultHash: resultHash(OUTPUT), runtimeId: TEST_RUNTIME_ID };
}

async function signed(client: AttestaClient, signers: readonly { signer: TestOperator["signer"] }[], jobId: bigint) {
  const domain = deploymentDomain(client.deployment);
  return packSignatures(await Promise.all(signers.map((op) => signAttestation(attestation(jobId), op.signer, domain))));
}

/** Signs OUTPUT for `jobId` in TypeScript with the given operators' keys and settles it through the escrow. */
async function settle(client: AttestaClient, ops: readonly { signer: TestOperator["signer"] }[], jobId: bigint) {
  const { packed } = await signed(client, ops, jobId);
  return client.send(
    client.deployment.jobEscrow,
    encodeFunctionData({ abi: jobEscrowAbi, functionName: "settle", args: [jobId, TEST_RUNTIME_ID, resultHash(OUTPUT), OUTPUT, packed] }),
  );
}

async function funded(devnet: Devnet, index: number): Promise<AttestaClient> {
  const client = devnet.client(index);
  await devnet.mint(client.account, parseEther("100"));
  return client;
}

function revert(name: string) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof RevertError, `expected RevertError ${name}, got ${String(e)}`);
    assert.equal(e.errorName, name);
    return true;
  };
}

async function allowance(devnet: Devnet, owner: Address): Promise<bigint> {
  return devnet.publicClient.readContract({
    address: devnet.deployment.token,
    abi: testTokenAbi,
    functionName: "allowance",
    args: [owner, devnet.deployment.jobEscrow],
  });
}

describe("AttestaClient against anvil", { concurrency: false }, () => {
  let devnet: Devnet;
  before(async () => {
    devnet = await Devnet.spawn();
  });
  after(async () => {
    await devnet?.stop();
  });

  it("createJob approves when the allowance is short, escrows, and reports status", async () => {
    const client = await funded(devnet, 70);
    const before = await client.balanceOf();
    const deadline = (await devnet.now()) + 3600n;
    assert.equal(await allowance(devnet, client.account), 0n);

    const jobId = await client.createJob(MODEL, INPUT, parseEther("1"), deadline);
    assert.equal(jobId, 1n);
    assert.equal(await allowance(devnet, client.account), 0n, "approved exactly the fee, all spent");

    // With a prior allowance larger than the fee: no new approval, the allowance is drawn down.
    await client.send(
      devnet.deployment.token,
      encodeFunctionData({ abi: testTokenAbi, functionName: "approve", args: [devnet.deployment.jobEscrow, parseEther("5")] }),
    );
    const second = await client.createJob(MODEL, INPUT, parseEther("2"), deadline);
    assert.equal(second, 2n, "ids increase");
    assert.equal(await allowance(devnet, client.account), parseEther("3"), "the existing allowance was used, not replaced");

    const job = await client.job(jobId);
    assert.equal(job.status, "Created");
    assert.equal(job.client, client.account);
    assert.equal(job.fee, parseEther("1"));
    assert.equal(job.deadline, deadline);
    assert.equal(job.modelId, MODEL);
    assert.equal(job.inputHash, INPUT);
    assert.equal((await client.job(second)).fee, parseEther("2"));
    assert.equal(before - (await client.balanceOf()), parseEther("3"), "both fees were pulled");
    assert.equal((await client.job(99n)).status, "None");
  });

  it("the TypeScript digest is the contract's hashAttestation", async () => {
    const a = attestation(12345n);
    const onChain = await devnet.publicClient.readContract({
      address: devnet.deployment.jobEscrow,
      abi: jobEscrowAbi,
      functionName: "hashAttestation",
      args: [a],
    });
    assert.equal(onChain, attestationDigest(a, deploymentDomain(devnet.deployment)));
  });
});

describe("bad requests fail with decoded custom errors and change nothing", { concurrency: false }, () => {
  let devnet: Devnet;
  before(async () => {
    devnet = await Devnet.spawn();
  });
  after(async () => {
    await devnet?.stop();
  });

  it("fee below minimum, deadline in the past, no tokens, nothing to claim", async () => {
    const client = await funded(devnet, 70);
    const now = await devnet.now();

    await assert.rejects(client.createJob(MODEL, INPUT, 1n, now + 3600n), (e: unknown) => {
      revert("JobEscrowFeeOutOfRange")(e);
      const r = e as RevertError;
      assert.equal(r.contract, "JobEscrow");
      assert.equal(r.args.fee, 1n);
      assert.match(r.hint, /raise --fee to at least 1000000000000000$/);
      assert.equal(r.retryable, false);
      return true;
    });
    await assert.rejects(client.createJob(MODEL, INPUT, parseEther("1"), now - 10n), (e: unknown) => {
      revert("JobEscrowDeadlineOutOfRange")(e);
      assert.match((e as RevertError).hint, /^deadline \d+ must lie between \d+ and \d+/);
      return true;
    });
    await assert.rejects(client.createJob(MODEL, INPUT, parseEther("1"), now), revert("JobEscrowDeadlineOutOfRange"));

    // An account without tokens: the token's own custom error, decoded.
    const poor = devnet.client(71);
    await assert.rejects(poor.createJob(MODEL, INPUT, parseEther("1"), now + 3600n), (e: unknown) => {
      revert("ERC20InsufficientBalance")(e);
      assert.equal((e as RevertError).contract, "Token");
      return true;
    });

    const count = await devnet.publicClient.readContract({ address: devnet.deployment.jobEscrow, abi: jobEscrowAbi, functionName: "jobCount" });
    assert.equal(count, 0n, "no job was created");
    await assert.rejects(client.settlement(1n), NotSettledError);
    await assert.rejects(client.verifySettlement(1n), NotSettledError);
    await assert.rejects(client.claim(), revert("JobEscrowNothingToClaim"));
    await assert.rejects(client.refund(1n), revert("JobEscrowWrongStatus"));
  });
});

describe("waitSettled", { concurrency: false }, () => {
  let devnet: Devnet;
  before(async () => {
    devnet = await Devnet.spawn();
  });
  after(async () => {
    await devnet?.stop();
  });

  it("times out, then sees a settlement over HTTP (polling) and over WebSocket (subscription)", async () => {
    const ops = await devnet.addOperators(1);
    const client = await funded(devnet, 70);
    const deadline = (await devnet.now()) + 3600n;

    const jobId = await client.createJob(MODEL, INPUT, parseEther("1"), deadline);
    await assert.rejects(client.waitSettled(jobId, 300), (e: unknown) => e instanceof TimeoutError && e.retryable);
    const waiting = client.waitSettled(jobId, 20_000);
    await new Promise((r) => setTimeout(r, 200));
    const receipt = await settle(client, ops, jobId);
    const settled = await waiting;
    assert.equal(settled.output, OUTPUT);
    assert.deepEqual(settled.signers, [ops[0]!.signer.address]);
    assert.equal(settled.txHash, receipt.transactionHash);
    assert.equal(settled.blockNumber, receipt.blockNumber);
    // Already settled: answered from history at once.
    assert.equal((await client.waitSettled(jobId, 2_000)).txHash, receipt.transactionHash);

    // WebSocket: the same wait through a log subscription (its polling fallback is 5 s, so a quick
    // answer comes from the subscription).
    const ws = devnet.wsClient();
    const next = await client.createJob(MODEL, INPUT, parseEther("1"), deadline);
    const started = Date.now();
    const wsWaiting = ws.waitSettled(next, 20_000);
    await new Promise((r) => setTimeout(r, 300));
    await settle(client, ops, next);
    assert.equal((await wsWaiting).jobId, next);
    assert.ok(Date.now() - started < 4_000, "answered by the subscription, not the 5 s poll");
  });
});

describe("settlement, verification and money", { concurrency: false }, () => {
  let devnet: Devnet;
  before(async () => {
    devnet = await Devnet.spawn();
  });
  after(async () => {
    await devnet?.stop();
  });

  it("verify, release, claim and refund move exact amounts", async () => {
    const ops = await devnet.addOperators(4); // M = 3
    const client = await funded(devnet, 70);
    const deadline = (await devnet.now()) + 3600n;
    const fee = parseEther("1");
    const jobId = await client.createJob(MODEL, INPUT, fee, deadline);
    const unserved = await client.createJob(MODEL, INPUT, fee, deadline);

    await settle(client, ops.slice(0, 3), jobId);
    const verified = await client.verifySettlement(jobId);
    assert.equal(verified.threshold, 3);
    assert.equal(verified.settlement.resultHash, resultHash(OUTPUT));
    assert.equal(verified.settlement.output, OUTPUT);
    const expectedSigners = packSignatures(
      await Promise.all(ops.slice(0, 3).map((op) => signAttestation(attestation(jobId), op.signer, deploymentDomain(devnet.deployment)))),
    ).signers;
    assert.deepEqual(verified.settlement.signers, expectedSigners);
    assert.equal((await client.job(jobId)).status, "Settled");
    await assert.rejects(client.verifySettlement(unserved), NotSettledError);

    // Release waits out the challenge window.
    await assert.rejects(client.release(jobId), revert("JobEscrowChallengeWindowOpen"));
    const config = await devnet.publicClient.readContract({ address: devnet.deployment.jobEscrow, abi: jobEscrowAbi, functionName: "config" });
    await devnet.advance(Number(config.challengeWindow));
    await client.release(jobId);
    assert.equal((await client.job(jobId)).status, "Released");
    await assert.rejects(client.release(jobId), revert("JobEscrowWrongStatus"));

    // 5% protocol fee; the rest split three ways, to the signers' operators; dust to the treasury.
    const protocolFee = (fee * BigInt(config.protocolFeeBps)) / 10_000n;
    assert.equal(protocolFee, parseEther("0.05"));
    const share = (fee - protocolFee) / 3n;
    for (let i = 0; i < 3; i++) {
      const operator = devnet.client(1 + 2 * i);
      assert.equal(await operator.owed(), share);
      const balance = await operator.balanceOf();
      assert.equal(await operator.claim(), share);
      assert.equal((await operator.balanceOf()) - balance, share);
      assert.equal(await operator.owed(), 0n);
    }
    assert.equal(await devnet.client(7).owed(), 0n, "the non-signer is not paid");
    assert.equal(await client.owed(devnet.deployment.admin), fee - 3n * share, "treasury: protocol fee and dust");
    assert.equal(await client.owed(ops[0]!.signer.address), 0n, "signing keys are not paid, operators are");

    // The unserved job is refunded once its deadline passed, to its client, once, by anyone.
    const balance = await client.balanceOf();
    await assert.rejects(client.refund(unserved), revert("JobEscrowDeadlineNotReached"));
    await devnet.advance(3600);
    const stranger = devnet.client(72);
    await stranger.refund(unserved);
    assert.equal(await client.balanceOf(), balance + fee);
    assert.equal((await client.job(unserved)).status, "Refunded");
    await assert.rejects(stranger.refund(unserved), revert("JobEscrowWrongStatus"));
  });

  it("a settlement signed by a non-member is rejected, locally and on-chain", async () => {
    // Continues on the same chain: the four operators above are active (M = 3).
    const client = await funded(devnet, 74);
    const deadline = (await devnet.now()) + 3600n;
    const jobId = await client.createJob(MODEL, INPUT, parseEther("1"), deadline);
    const members = [{ signer: devnet.key(2) }, { signer: devnet.key(4) }];
    const outsider = { signer: devnet.key(60) };
    const withOutsider = await signed(client, [...members, outsider], jobId);
    const outsiderIndex = withOutsider.signers.indexOf(outsider.signer.address);
    assert.ok(outsiderIndex >= 0);

    await assert.rejects(
      client.verifySignatures(attestation(jobId), withOutsider.packed),
      (e: unknown) => e instanceof InactiveSignerError && e.signer === outsider.signer.address && e.index === outsiderIndex,
    );
    await assert.rejects(settle(client, [...members, outsider], jobId), (e: unknown) => {
      revert("JobEscrowInactiveSigner")(e);
      assert.equal((e as RevertError).args.signer, outsider.signer.address);
      assert.equal((e as RevertError).args.index, BigInt(outsiderIndex));
      return true;
    });
    // Two members alone are below M = 3.
    const twoMembers = await signed(client, members, jobId);
    await assert.rejects(
      client.verifySignatures(attestation(jobId), twoMembers.packed),
      (e: unknown) => e instanceof InsufficientSignaturesError && e.count === 2 && e.threshold === 3,
    );
    await assert.rejects(settle(client, members, jobId), revert("JobEscrowInsufficientSignatures"));
    assert.equal((await client.job(jobId)).status, "Created", "nothing settled");
    await assert.rejects(client.verifySettlement(jobId), NotSettledError);
  });

  it("verifySettlement judges the active set at the settlement block", async () => {
    const client = await funded(devnet, 76);
    const deadline = (await devnet.now()) + 3600n;
    const jobId = await client.createJob(MODEL, INPUT, parseEther("1"), deadline);
    const ops = [1, 3, 5].map((i) => ({ account: devnet.key(i), signer: devnet.key(i + 1) }));
    const { packed } = await signed(client, ops, jobId);
    await settle(client, ops, jobId);
    assert.equal((await client.verifySettlement(jobId)).threshold, 3);

    // One signer's operator leaves the active set afterwards.
    await devnet.operator(1).deactivate();
    assert.equal((await devnet.operator(1).status()).active, false);
    const active = await devnet.publicClient.readContract({
      address: devnet.deployment.stakingRegistry,
      abi: stakingRegistryAbi,
      functionName: "isActiveSigner",
      args: [devnet.key(2).address],
    });
    assert.equal(active, false);
    // Today that signer is no longer active, but at the settlement block it was.
    await assert.rejects(client.verifySignatures(attestation(jobId), packed), InactiveSignerError);
    const verified = await client.verifySettlement(jobId);
    assert.equal(verified.threshold, 3);
    assert.equal(verified.settlement.signers.length, 3);
  });

  it("signatures over other data are rejected, locally and on-chain", async () => {
    // Signatures over a different result do not recover to the members, so the contract refuses
    // them, and so does the local check, before anything is submitted.
    const client = await funded(devnet, 78);
    const deadline = (await devnet.now()) + 3600n;
    const jobId = await client.createJob(MODEL, INPUT, parseEther("1"), deadline);
    const ops = [3, 5, 7].map((i) => ({ signer: devnet.key(i + 1) }));
    const { packed } = await signed(client, ops, jobId);
    const other: Attestation = { ...attestation(jobId), resultHash: keccak256(toHex("another result")) };
    await assert.rejects(
      client.verifySignatures(other, packed),
      (e: unknown) => e instanceof SignersNotAscendingError || e instanceof InactiveSignerError,
    );
    const tampered = toHex("ATO1 label: pdf") as Hex;
    await assert.rejects(
      client.send(
        devnet.deployment.jobEscrow,
        encodeFunctionData({ abi: jobEscrowAbi, functionName: "settle", args: [jobId, TEST_RUNTIME_ID, resultHash(tampered), tampered, packed] }),
      ),
      RevertError,
    );
    assert.equal((await client.job(jobId)).status, "Created");
  });

  it("an overturned result no longer verifies", async () => {
    // Continues on the same chain: signers of operators 3, 5 and 7 are active.
    const client = await funded(devnet, 79);
    const deadline = (await devnet.now()) + 3600n;
    const jobId = await client.createJob(MODEL, INPUT, parseEther("1"), deadline);
    const ops = [3, 5, 7].map((i) => ({ signer: devnet.key(i + 1) }));
    await settle(client, ops, jobId);
    const { settlement } = await client.verifySettlement(jobId);

    // The client challenges with the bond; the arbiter (the deployer) overturns the result.
    const { jobEscrow, token } = client.deployment;
    const { challengeBond } = await devnet.publicClient.readContract({ address: jobEscrow, abi: jobEscrowAbi, functionName: "config" });
    await client.send(token, encodeFunctionData({ abi: testTokenAbi, functionName: "approve", args: [jobEscrow, challengeBond] }));
    await client.send(jobEscrow, encodeFunctionData({ abi: jobEscrowAbi, functionName: "challenge", args: [jobId] }));
    await devnet.client(0).send(
      jobEscrow,
      encodeFunctionData({ abi: jobEscrowAbi, functionName: "resolveDispute", args: [jobId, false, settlement.resultHash, settlement.signers] }),
    );
    assert.equal((await client.job(jobId)).status, "Overturned");
    // JobSettled is still in the log, but the result must not verify any more.
    assert.equal((await client.settlement(jobId)).resultHash, settlement.resultHash);
    await assert.rejects(client.verifySettlement(jobId), (e: unknown) => {
      assert.ok(e instanceof UnverifiableError, String(e));
      assert.match(e.message, /overturned/);
      return true;
    });
  });
});

describe("OperatorClient", { concurrency: false }, () => {
  let devnet: Devnet;
  before(async () => {
    devnet = await Devnet.spawn();
  });
  after(async () => {
    await devnet?.stop();
  });

  it("stakes, binds a key, unstakes and withdraws, with decoded registry errors", async () => {
    const [op] = await devnet.addOperators(1);
    assert.ok(op);
    const operator = devnet.operator(1);
    const minStake = await devnet.minStake();
    const status = await operator.status();
    assert.deepEqual(
      { signer: status.signer, stake: status.stake, unbonding: status.unbonding, active: status.active, jailed: status.jailed },
      { signer: op.signer.address, stake: minStake, unbonding: 0n, active: true, jailed: false },
    );
    // The same key cannot be bound to a second operator.
    await devnet.mint(devnet.key(3).address, minStake);
    await assert.rejects(devnet.operator(3).registerSigner(op.signer), (e: unknown) => {
      revert("StakingRegistrySignerAlreadyBound")(e);
      assert.match((e as RevertError).hint, /generate a new signing key$/);
      return true;
    });

    const half = minStake / 2n;
    await operator.requestUnstake(half);
    const unbonding = await operator.status();
    assert.equal(unbonding.stake, minStake - half);
    assert.equal(unbonding.unbonding, half);
    assert.equal(unbonding.active, false, "below the minimum stake, out of the active set");
    await assert.rejects(operator.withdraw(), revert("StakingRegistryNotWithdrawable"));
    await devnet.advance(Number(unbonding.unbondingEnd - (await devnet.now())));
    const before = await devnet.client(1).balanceOf();
    assert.equal(await operator.withdraw(), half);
    assert.equal((await devnet.client(1).balanceOf()) - before, half);
    assert.equal((await operator.status()).unbonding, 0n);
  });
});
