import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { concatBytes, hexToBytes, toHex } from "viem";
import { CanonicalError, decodeCanonical, encodeCanonical, fromF32, resultHash } from "../../src/index.js";

describe("canonical output (ATO1)", () => {
  it("rounds half away from zero on the exact f32 value", () => {
    // 0.35f32 is 0.34999999..., which rounds to 3 at one decimal.
    const out = fromF32(1, [{ shape: [5], values: [0.25, -0.25, 0.75, 1.0, 0.35] }]);
    assert.deepEqual(out.tensors[0]?.values, [3, -3, 8, 10, 3]);
  });

  it("round-trips, with the documented example", () => {
    const out = fromF32(4, [{ shape: [2], values: [0.12344, -0.5] }]);
    assert.deepEqual(out.tensors[0]?.values, [1234, -5000]);
    assert.deepEqual(decodeCanonical(encodeCanonical(out)), out);
    assert.deepEqual(decodeCanonical(toHex(encodeCanonical(out))), out);
  });

  it("takes Float32Array output directly", () => {
    const a = fromF32(4, [{ shape: [2], values: new Float32Array([0.7312013, 0.2687987]) }]);
    const b = fromF32(4, [{ shape: [2], values: [0.7312013, 0.2687987] }]);
    assert.deepEqual(a, b);
  });

  it("tiny kernel differences hash the same", () => {
    const a = fromF32(4, [{ shape: [2], values: [0.7312013, 0.2687987] }]);
    const b = fromF32(4, [{ shape: [2], values: [0.7312015, 0.2687985] }]);
    assert.equal(resultHash(encodeCanonical(a)), resultHash(encodeCanonical(b)));
  });

  it("never encodes negative zero differently from zero", () => {
    const a = encodeCanonical(fromF32(2, [{ shape: [1], values: [-0.001] }]));
    const b = encodeCanonical(fromF32(2, [{ shape: [1], values: [0] }]));
    assert.deepEqual(a, b);
  });

  it("rejects non-finite values, overflow, bad shapes and bad precision", () => {
    assert.throws(() => fromF32(4, [{ shape: [1], values: [NaN] }]), CanonicalError);
    assert.throws(() => fromF32(4, [{ shape: [1], values: [Infinity] }]), CanonicalError);
    assert.throws(() => fromF32(9, [{ shape: [1], values: [3.0] }]), CanonicalError);
    assert.throws(() => fromF32(4, [{ shape: [3], values: [1.0] }]), CanonicalError);
    assert.throws(() => fromF32(10, [{ shape: [1], values: [1.0] }]), CanonicalError);
    assert.throws(() => fromF32(4, []), CanonicalError);
    assert.throws(() => fromF32(4, [{ shape: [1, 1, 1, 1, 1, 1, 1, 1, 1], values: [1] }]), CanonicalError);
    assert.throws(() => fromF32(4, Array.from({ length: 256 }, () => ({ shape: [], values: [1] }))), CanonicalError);
  });

  it("decode rejects truncation, trailing bytes, bad magic and absurd shapes", () => {
    const bytes = encodeCanonical(fromF32(4, [{ shape: [2, 2], values: [1, 2, 3, 4] }]));
    for (let cut = 0; cut < bytes.length; cut++) {
      assert.throws(() => decodeCanonical(bytes.subarray(0, cut)), CanonicalError, `accepted a ${cut}-byte prefix`);
    }
    assert.throws(() => decodeCanonical(concatBytes([bytes, new Uint8Array([0])])), CanonicalError);
    const wrongMagic = bytes.slice();
    wrongMagic[3] = 0x32;
    assert.throws(() => decodeCanonical(wrongMagic), /ATO1/);
    const absurd = hexToBytes(`${toHex("ATO1")}040102ffffffffffffffff`);
    assert.throws(() => decodeCanonical(absurd), CanonicalError);
    assert.throws(() => decodeCanonical(hexToBytes(`${toHex("ATO1")}0400`)), /no output tensors/);
    assert.throws(() => decodeCanonical(hexToBytes(`${toHex("ATO1")}0a0100`)), /decimals/);
    assert.throws(() => decodeCanonical(hexToBytes(`${toHex("ATO1")}040109`)), /rank/);
  });

  it("encode rejects values that are not i32", () => {
    assert.throws(() => encodeCanonical({ decimals: 4, tensors: [{ shape: [1], values: [2 ** 31] }] }), CanonicalError);
    assert.throws(() => encodeCanonical({ decimals: 4, tensors: [{ shape: [2], values: [1] }] }), CanonicalError);
  });
});
