/**
 * Canonical output encoding, version 1 ("ATO1"): what nodes hash into `resultHash` and publish
 * on-chain. Byte for byte the same as the Rust sdk's `canonical` module. Layout (big-endian):
 *
 * ```text
 * "ATO1"            magic and version
 * u8   decimals     values are round(x * 10^decimals), half away from zero
 * u8   tensors      number of output tensors, 1..=255
 * per tensor:
 *   u8  rank        0..=8
 *   u32 dim × rank  shape
 *   i32 × product   values, row-major
 * ```
 */
import { hexToBytes, type Hex } from "viem";
import { CanonicalError } from "./errors.js";

/** The magic and version prefix. */
export const CANONICAL_MAGIC = new Uint8Array([0x41, 0x54, 0x4f, 0x31]); // "ATO1"
/** The default precision: 4 decimals. */
export const DEFAULT_DECIMALS = 4;
/** Largest precision accepted. */
export const MAX_DECIMALS = 9;
/** Largest rank accepted. */
export const MAX_RANK = 8;

const I32_MIN = -2147483648;
const I32_MAX = 2147483647;
const U32_MAX = 4294967295;

/** One output tensor in canonical (fixed-point) form. */
export interface CanonicalTensor {
  /** Shape, row-major (each dimension a u32). */
  shape: number[];
  /** `round(x * 10^decimals)` for each element (each an i32). */
  values: number[];
}

/** A canonical output: fixed-point tensors at one precision. */
export interface CanonicalOutput {
  /** Decimal places kept. */
  decimals: number;
  /** The model's outputs, in the model's order. */
  tensors: CanonicalTensor[];
}

/** A float output tensor, as inference returns it. Values are taken as f32 (`Math.fround`). */
export interface F32Tensor {
  shape: readonly number[];
  values: ArrayLike<number>;
}

function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) {
      throw new CanonicalError(`shape [${shape.join(", ")}] has more elements than this machine can address`);
    }
  }
  return n;
}

function checkShape(shape: readonly number[], len: number): void {
  if (shape.length > MAX_RANK) throw new CanonicalError(`rank ${shape.length} is above ${MAX_RANK}`);
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0 || d > U32_MAX) {
      throw new CanonicalError(`dimension ${d} is not a u32`);
    }
  }
  const elements = elementCount(shape);
  if (elements !== len) {
    throw new CanonicalError(`shape [${shape.join(", ")}] holds ${elements} values, got ${len}`);
  }
}

/** Rounds half away from zero, as Rust's `f64::round`. */
function roundHalfAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/**
 * Canonicalises f32 tensors at `decimals` places. Fails on NaN or infinity, on values too large
 * for 32-bit fixed point, and on shapes that do not match the number of values.
 */
export function fromF32(decimals: number, outputs: readonly F32Tensor[]): CanonicalOutput {
  if (!Number.isInteger(decimals) || decimals < 0 || decimals > MAX_DECIMALS) {
    throw new CanonicalError(`${decimals} decimals requested; at most ${MAX_DECIMALS} are supported`);
  }
  if (outputs.length === 0 || outputs.length > 255) {
    throw new CanonicalError(`${outputs.length} output tensors; 1 to 255 are supported`);
  }
  const scale = 10 ** decimals;
  return {
    decimals,
    tensors: outputs.map(({ shape, values }, t) => {
      checkShape(shape, values.length);
      const fixed: number[] = [];
      for (let i = 0; i < values.length; i++) {
        const x = Math.fround(values[i] as number);
        if (!Number.isFinite(x)) throw new CanonicalError(`output ${t} element ${i} is ${x}`);
        const scaled = roundHalfAway(x * scale);
        if (scaled < I32_MIN || scaled > I32_MAX) {
          throw new CanonicalError(
            `output ${t} element ${i} = ${x} does not fit 32-bit fixed point at ${decimals} decimals; use fewer decimals`,
          );
        }
        fixed.push(scaled === 0 ? 0 : scaled); // no -0
      }
      return { shape: [...shape], values: fixed };
    }),
  };
}

/** The canonical bytes (hash them with `resultHash`). */
export function encodeCanonical(output: CanonicalOutput): Uint8Array {
  const { decimals, tensors } = output;
  if (!Number.isInteger(decimals) || decimals < 0 || decimals > MAX_DECIMALS) {
    throw new CanonicalError(`${decimals} decimals is above ${MAX_DECIMALS}`);
  }
  if (tensors.length === 0 || tensors.length > 255) {
    throw new CanonicalError(`${tensors.length} output tensors; 1 to 255 are supported`);
  }
  let len = 6;
  for (const t of tensors) {
    checkShape(t.shape, t.values.length);
    len += 1 + 4 * t.shape.length + 4 * t.values.length;
  }
  const out = new Uint8Array(len);
  const view = new DataView(out.buffer);
  out.set(CANONICAL_MAGIC, 0);
  out[4] = decimals;
  out[5] = tensors.length;
  let pos = 6;
  for (const t of tensors) {
    out[pos++] = t.shape.length;
    for (const d of t.shape) {
      view.setUint32(pos, d);
      pos += 4;
    }
    for (const v of t.values) {
      if (!Number.isInteger(v) || v < I32_MIN || v > I32_MAX) throw new CanonicalError(`value ${v} is not an i32`);
      view.setInt32(pos, v);
      pos += 4;
    }
  }
  return out;
}

/** Parses canonical bytes (or their 0x-hex, as `JobSettled` carries them), rejecting anything `encodeCanonical` would not produce. */
export function decodeCanonical(input: Uint8Array | Hex): CanonicalOutput {
  const bytes = typeof input === "string" ? hexToBytes(input) : input;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const need = (n: number): void => {
    if (pos + n > bytes.length) throw new CanonicalError(`truncated: wanted ${n} bytes at offset ${pos}`);
  };
  const u8 = (): number => {
    need(1);
    return bytes[pos++] as number;
  };
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(pos);
    pos += 4;
    return v;
  };
  need(4);
  if (!CANONICAL_MAGIC.every((b, i) => bytes[i] === b)) {
    throw new CanonicalError('not canonical output v1: missing "ATO1" prefix');
  }
  pos = 4;
  const decimals = u8();
  if (decimals > MAX_DECIMALS) throw new CanonicalError(`${decimals} decimals is above ${MAX_DECIMALS}`);
  const count = u8();
  if (count === 0) throw new CanonicalError("no output tensors");
  const tensors: CanonicalTensor[] = [];
  for (let t = 0; t < count; t++) {
    const rank = u8();
    if (rank > MAX_RANK) throw new CanonicalError(`rank ${rank} is above ${MAX_RANK}`);
    const shape: number[] = [];
    for (let i = 0; i < rank; i++) shape.push(u32());
    const elements = elementCount(shape);
    if (elements > (bytes.length - pos) / 4) {
      throw new CanonicalError(`shape [${shape.join(", ")}] needs more bytes than remain`);
    }
    const values: number[] = [];
    for (let i = 0; i < elements; i++) {
      values.push(view.getInt32(pos));
      pos += 4;
    }
    tensors.push({ shape, values });
  }
  if (pos !== bytes.length) throw new CanonicalError(`${bytes.length - pos} trailing bytes`);
  return { decimals, tensors };
}
