import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeErrorResult, getAddress, type Address } from "viem";
import {
  AttestaError,
  ContractCallError,
  DeploymentError,
  RevertError,
  TimeoutError,
  decodeRevertData,
  deploymentDomain,
  jobEscrowAbi,
  parseDeployment,
  stakingRegistryAbi,
  testTokenAbi,
  toAttestaError,
} from "../../src/index.js";

const someone: Address = getAddress("0x1123a73a1a5c9ec9aa62b70a03812bcb5f61a1ef");

describe("revert decoding", () => {
  it("decodes escrow errors with hints and named arguments", () => {
    const data = encodeErrorResult({ abi: jobEscrowAbi, errorName: "JobEscrowFeeOutOfRange", args: [1n, 10n ** 15n] });
    const e = decodeRevertData(data);
    assert.ok(e instanceof RevertError && e instanceof AttestaError);
    assert.equal(e.contract, "JobEscrow");
    assert.equal(e.errorName, "JobEscrowFeeOutOfRange");
    assert.deepEqual(e.args, { fee: 1n, minFee: 10n ** 15n });
    assert.equal(e.hint, "fee 1 is out of range: raise --fee to at least 1000000000000000");
    assert.equal(e.message, `JobEscrow.JobEscrowFeeOutOfRange reverted: ${e.hint}`);
    assert.equal(e.retryable, false);

    const status = decodeRevertData(encodeErrorResult({ abi: jobEscrowAbi, errorName: "JobEscrowWrongStatus", args: [7n, 5] }));
    assert.equal(status?.hint, "job 7 is Refunded, which this call does not accept");
  });

  it("decodes registry and token errors", () => {
    const r = decodeRevertData(
      encodeErrorResult({ abi: stakingRegistryAbi, errorName: "StakingRegistryCannotActivate", args: [someone, 4] }),
    );
    assert.equal(r?.contract, "StakingRegistry");
    assert.equal(r?.hint, `cannot activate ${someone}: the active set is full: wait for a free slot`);
    const t = decodeRevertData(
      encodeErrorResult({ abi: testTokenAbi, errorName: "ERC20InsufficientBalance", args: [someone, 0n, 5n] }),
    );
    assert.equal(t?.contract, "Token");
    assert.equal(t?.errorName, "ERC20InsufficientBalance");
    assert.match(t?.hint ?? "", /top up the account/);
  });

  it("falls back to a generic hint for errors without a tailored one", () => {
    const e = decodeRevertData(encodeErrorResult({ abi: jobEscrowAbi, errorName: "JobEscrowZeroAddress" }));
    assert.equal(e?.errorName, "JobEscrowZeroAddress");
    assert.equal(e?.hint, "JobEscrowZeroAddress {  }");
  });

  it("leaves unknown selectors and plain reverts undecoded", () => {
    assert.equal(decodeRevertData("0xdeadbeef"), undefined);
    assert.equal(decodeRevertData("0x"), undefined);
    const plain = encodeErrorResult({
      abi: [{ type: "error", name: "Error", inputs: [{ name: "message", type: "string" }] }],
      errorName: "Error",
      args: ["nope"],
    });
    assert.equal(decodeRevertData(plain), undefined);
  });

  it("finds revert data nested in causes", () => {
    const data = encodeErrorResult({ abi: jobEscrowAbi, errorName: "JobEscrowNothingToClaim", args: [someone] });
    const wrapped = new Error("outer", { cause: new Error("middle", { cause: Object.assign(new Error("rpc"), { data }) }) });
    const e = toAttestaError(wrapped);
    assert.ok(e instanceof RevertError);
    assert.equal(e.hint, `${someone} has nothing to claim`);
    const other = toAttestaError(new Error("boom"));
    assert.ok(other instanceof ContractCallError);
    assert.equal(other.retryable, false);
    assert.equal(new TimeoutError("x", 1000).retryable, true);
  });
});

describe("deployment", () => {
  const file = {
    admin: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    blockNumber: 5,
    chainId: 31337,
    jobEscrow: "0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0",
    slashing: "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9",
    stakingRegistry: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
    token: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
  };

  it("parses what Deploy.s.sol writes", () => {
    const d = parseDeployment(JSON.stringify(file));
    assert.equal(d.blockNumber, 5n);
    assert.equal(d.jobEscrow, "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0");
    assert.deepEqual(deploymentDomain(d), {
      name: "Attesta",
      version: "1",
      chainId: 31337,
      verifyingContract: "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
    });
  });

  it("rejects what it is not", () => {
    assert.throws(() => parseDeployment("{"), DeploymentError);
    assert.throws(() => parseDeployment({ ...file, token: "0x12" }), /"token" is not an address/);
    assert.throws(() => parseDeployment({ ...file, chainId: "1" }), /"chainId"/);
  });
});
