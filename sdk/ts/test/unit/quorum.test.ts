import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bytesToHex, concatHex, getAddress, hexToBytes, keccak256, numberToHex, sliceHex, toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  HighSError,
  InactiveSignerError,
  InsufficientSignaturesError,
  InvalidSignatureError,
  MalformedSignaturesError,
  SECP256K1_HALF_N,
  SignerMismatchError,
  SignersNotAscendingError,
  attestationDigest,
  attestationDomain,
  checkQuorum,
  packSignatures,
  recoverAscending,
  signAttestation,
  threshold,
  verifySignedAttestation,
  type Attestation,
} from "../../src/index.js";

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const domain = attestationDomain(31337, "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0");
const a: Attestation = {
  jobId: 3n,
  modelId: keccak256(toHex("model")),
  inputHash: keccak256(toHex("input")),
  resultHash: keccak256(toHex("result")),
  runtimeId: keccak256(toHex("runtime")),
};
const digest = attestationDigest(a, domain);
const accounts = [1, 2, 3].map((i) => privateKeyToAccount(keccak256(toHex(`ts-quorum-key-${i}`))));

async function signed() {
  return Promise.all(accounts.map((k) => signAttestation(a, k, domain)));
}

/** The malleated twin of a low-s signature: s' = n - s, v flipped. Recovers to the same signer. */
function malleate(sig: Hex): Hex {
  const s = BigInt(sliceHex(sig, 32, 64));
  const v = hexToBytes(sig)[64] === 27 ? 28 : 27;
  return concatHex([sliceHex(sig, 0, 32), numberToHex(N - s, { size: 32 }), numberToHex(v, { size: 1 })]);
}

describe("quorum", () => {
  it("recovers a packed set in ascending order", async () => {
    const { packed, signers } = packSignatures(await signed());
    assert.equal(signers.length, 3);
    assert.deepEqual(await recoverAscending(digest, packed), signers);
    assert.deepEqual(await recoverAscending(digest, hexToBytes(packed)), signers);
    const sorted = [...signers].sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1));
    assert.deepEqual(signers, sorted);
  });

  it("rejects malformed blobs", async () => {
    const { packed } = packSignatures(await signed());
    await assert.rejects(recoverAscending(digest, "0x"), MalformedSignaturesError);
    await assert.rejects(recoverAscending(digest, sliceHex(packed, 0, 64)), MalformedSignaturesError);
    await assert.rejects(recoverAscending(digest, concatHex([packed, "0x00"])), MalformedSignaturesError);
  });

  it("rejects descending order and duplicates at the right index", async () => {
    const sigs = await signed();
    const { packed, signers } = packSignatures(sigs);
    const first = sliceHex(packed, 0, 65);
    const second = sliceHex(packed, 65, 130);
    await assert.rejects(recoverAscending(digest, concatHex([second, first])), (e: unknown) => {
      assert.ok(e instanceof SignersNotAscendingError);
      assert.equal(e.index, 1);
      assert.equal(e.signer, signers[0]);
      return true;
    });
    await assert.rejects(recoverAscending(digest, concatHex([first, first])), SignersNotAscendingError);
  });

  it("rejects high s, even though it recovers to the same signer", async () => {
    const [one] = await signed();
    assert.ok(one);
    const high = malleate(one.signature);
    assert.ok(BigInt(sliceHex(high, 32, 64)) > SECP256K1_HALF_N);
    await assert.rejects(recoverAscending(digest, high), HighSError);
    await assert.rejects(verifySignedAttestation({ ...one, signature: high }, domain), HighSError);
  });

  it("rejects v other than 27/28 and garbage", async () => {
    const [one] = await signed();
    assert.ok(one);
    const bytes = hexToBytes(one.signature);
    bytes[64] = 1;
    await assert.rejects(recoverAscending(digest, bytesToHex(bytes)), InvalidSignatureError);
    const zero = new Uint8Array(65);
    zero[64] = 27;
    await assert.rejects(recoverAscending(digest, zero), InvalidSignatureError);
  });

  it("a signature over another digest recovers to someone else", async () => {
    const [one] = await signed();
    assert.ok(one);
    const other = attestationDigest({ ...a, resultHash: keccak256(toHex("other")) }, domain);
    const [who] = await recoverAscending(other, one.signature);
    assert.notEqual(who, one.signer);
    await assert.rejects(
      verifySignedAttestation({ ...one, attestation: { ...a, jobId: 4n } }, domain),
      SignerMismatchError,
    );
    await verifySignedAttestation(one, domain);
  });

  it("checkQuorum: inactive signers and too few signatures", async () => {
    const { signers } = packSignatures(await signed());
    checkQuorum(signers, signers, 3);
    checkQuorum(signers, signers.map((s) => s.toLowerCase() as Hex), 2);
    assert.throws(
      () => checkQuorum(signers, signers.slice(0, 2), 2),
      (e: unknown) => e instanceof InactiveSignerError && e.index === 2 && e.signer === signers[2],
    );
    assert.throws(
      () => checkQuorum(signers, signers, 4),
      (e: unknown) => e instanceof InsufficientSignaturesError && e.count === 3 && e.threshold === 4,
    );
  });

  it("threshold matches the registry's formula", () => {
    assert.equal(threshold(4, 6667, 1), 3);
    assert.equal(threshold(7, 6667, 1), 5);
    assert.equal(threshold(16, 6667, 1), 11);
    assert.equal(threshold(32, 6667, 1), 22);
    assert.equal(threshold(1, 6667, 1), 1);
    assert.equal(threshold(0, 6667, 1), 1);
    assert.equal(threshold(3, 5000, 3), 3);
  });

  it("packSignatures checksums, sorts and dedups", async () => {
    const sigs = await signed();
    const lower = sigs.map((s) => ({ ...s, signer: s.signer.toLowerCase() as Hex }));
    const { signers } = packSignatures(lower);
    for (const s of signers) assert.equal(s, getAddress(s));
    assert.throws(() => packSignatures([{ signer: accounts[0]!.address, signature: "0x1234" }]), MalformedSignaturesError);
    assert.deepEqual(packSignatures([]), { packed: "0x", signers: [] });
  });
});
