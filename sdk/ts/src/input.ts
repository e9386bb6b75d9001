/**
 * Job input encoding, version 1 ("ATI1"): the tensors a client uploads and `inputHash` commits to.
 * Byte for byte the Rust sdk's `input` module (`sdk/src/input.rs`). Layout (big-endian):
 *
 * ```text
 * "ATI1"            magic and version
 * u8   tensors      number of input tensors, 1..=255, in the model's input order
 * per tensor:
 *   u8  dtype       1 = f32, 2 = i32, 3 = i64, 4 = u8
 *   u8  rank        0..=8
 *   u32 dim × rank  shape
 *   value × product row-major (f32 as its IEEE 754 bits; NaN and ±inf rejected)
 * ```
 *
 * {@link magikaInput} builds the input of the demo model (magika 1.0) from any file's bytes, and
 * {@link magikaLabels} / {@link topLabel} turn its output back into a content type.
 */
import { hexToBytes, type Hex } from "viem";
import type { CanonicalOutput } from "./canonical.js";
import { InputError } from "./errors.js";

/** The magic and version prefix. */
export const INPUT_MAGIC = new Uint8Array([0x41, 0x54, 0x49, 0x31]); // "ATI1"
/** Largest rank accepted. */
export const INPUT_MAX_RANK = 8;
/** Largest encoded input accepted: 64 MiB. */
export const MAX_INPUT_BYTES = 64 << 20;

/** Element type of an input tensor. */
export type DType = "f32" | "i32" | "i64" | "u8";

const TAGS: Record<DType, number> = { f32: 1, i32: 2, i64: 3, u8: 4 };
const SIZES: Record<DType, number> = { f32: 4, i32: 4, i64: 8, u8: 1 };
const BY_TAG: readonly (DType | undefined)[] = [undefined, "f32", "i32", "i64", "u8"];

/** One input tensor: a shape and the values that fill it, row-major. */
export type InputTensor =
  | { dtype: "f32"; shape: number[]; values: ArrayLike<number> }
  | { dtype: "i32"; shape: number[]; values: ArrayLike<number> }
  | { dtype: "u8"; shape: number[]; values: ArrayLike<number> }
  | { dtype: "i64"; shape: number[]; values: ArrayLike<bigint> };

/** A job input: the model's input tensors, in the model's input order. */
export interface Input {
  tensors: InputTensor[];
}

const U32_MAX = 4294967295;

function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) throw new InputError(`shape [${shape.join(", ")}] has more elements than this machine can address`);
  }
  return n;
}

function checkTensor(t: InputTensor, index: number): void {
  if (!(t.dtype in TAGS)) throw new InputError(`tensor ${index}: unknown dtype ${String(t.dtype)}: use f32, i32, i64 or u8`);
  if (t.shape.length > INPUT_MAX_RANK) throw new InputError(`tensor ${index}: rank ${t.shape.length} is above ${INPUT_MAX_RANK}`);
  for (const d of t.shape) {
    if (!Number.isInteger(d) || d < 0 || d > U32_MAX) throw new InputError(`tensor ${index}: dimension ${d} is not a u32`);
  }
  const elements = elementCount(t.shape);
  if (elements !== t.values.length) {
    throw new InputError(`tensor ${index}: shape [${t.shape.join(", ")}] holds ${elements} values, got ${t.values.length}`);
  }
}

/** The ATI1 bytes of `input` (hash them with `inputHash`, upload them with `RelayClient.uploadBlob`). */
export function encodeInput(input: Input): Uint8Array {
  const { tensors } = input;
  if (tensors.length === 0 || tensors.length > 255) throw new InputError(`${tensors.length} tensors; 1 to 255 are supported`);
  let len = 5;
  tensors.forEach((t, i) => {
    checkTensor(t, i);
    len += 2 + 4 * t.shape.length + t.values.length * SIZES[t.dtype];
  });
  if (len > MAX_INPUT_BYTES) throw new InputError(`encodes to ${len} bytes, above the ${MAX_INPUT_BYTES}-byte limit`);
  const out = new Uint8Array(len);
  const view = new DataView(out.buffer);
  out.set(INPUT_MAGIC, 0);
  out[4] = tensors.length;
  let pos = 5;
  tensors.forEach((t, index) => {
    out[pos++] = TAGS[t.dtype];
    out[pos++] = t.shape.length;
    for (const d of t.shape) {
      view.setUint32(pos, d);
      pos += 4;
    }
    const bad = (i: number, v: unknown): never => {
      throw new InputError(`tensor ${index} element ${i} = ${String(v)} is not a valid ${t.dtype}`);
    };
    for (let i = 0; i < t.values.length; i++) {
      switch (t.dtype) {
        case "f32": {
          const v = t.values[i] as number;
          if (!Number.isFinite(v)) throw new InputError(`f32 element ${i} of tensor ${index} is ${v}: inputs must be finite`);
          view.setFloat32(pos, v);
          break;
        }
        case "i32": {
          const v = t.values[i] as number;
          if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) bad(i, v);
          view.setInt32(pos, v);
          break;
        }
        case "u8": {
          const v = t.values[i] as number;
          if (!Number.isInteger(v) || v < 0 || v > 255) bad(i, v);
          view.setUint8(pos, v);
          break;
        }
        case "i64": {
          const v = t.values[i] as bigint;
          if (typeof v !== "bigint" || v < -(2n ** 63n) || v >= 2n ** 63n) bad(i, v);
          view.setBigInt64(pos, v);
          break;
        }
      }
      pos += SIZES[t.dtype];
    }
  });
  return out;
}

/**
 * Parses ATI1 bytes, rejecting anything {@link encodeInput} would not produce: wrong magic, unknown
 * dtype, rank above 8, shapes that do not match the remaining bytes, non-finite floats, trailing
 * bytes, and inputs above {@link MAX_INPUT_BYTES}.
 */
export function decodeInput(input: Uint8Array | Hex): Input {
  const bytes = typeof input === "string" ? hexToBytes(input) : input;
  if (bytes.length === 0) throw new InputError("empty input: encode the model's input tensors as ATI1 (encodeInput)");
  if (bytes.length > MAX_INPUT_BYTES) throw new InputError(`${bytes.length} bytes, above the ${MAX_INPUT_BYTES}-byte limit`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const need = (n: number): void => {
    if (pos + n > bytes.length) throw new InputError(`truncated: wanted ${n} bytes at offset ${pos}`);
  };
  const u8 = (): number => {
    need(1);
    return bytes[pos++] as number;
  };
  need(4);
  if (!INPUT_MAGIC.every((b, i) => bytes[i] === b)) throw new InputError('not an ATI1 input: missing "ATI1" prefix (encode with encodeInput)');
  pos = 4;
  const count = u8();
  if (count === 0) throw new InputError("no tensors");
  const tensors: InputTensor[] = [];
  for (let t = 0; t < count; t++) {
    const tag = u8();
    const dtype = BY_TAG[tag];
    if (!dtype) throw new InputError(`unknown dtype tag ${tag}: use 1 (f32), 2 (i32), 3 (i64) or 4 (u8)`);
    const rank = u8();
    if (rank > INPUT_MAX_RANK) throw new InputError(`tensor ${t}: rank ${rank} is above ${INPUT_MAX_RANK}`);
    const shape: number[] = [];
    for (let i = 0; i < rank; i++) {
      need(4);
      shape.push(view.getUint32(pos));
      pos += 4;
    }
    const elements = elementCount(shape);
    const size = SIZES[dtype];
    // Checked before allocating: an absurd shape fails here, not in the allocator.
    if (elements > (bytes.length - pos) / size) {
      throw new InputError(`tensor ${t}: shape [${shape.join(", ")}] of ${dtype} needs more bytes than remain (${bytes.length - pos})`);
    }
    if (dtype === "i64") {
      const values: bigint[] = [];
      for (let i = 0; i < elements; i++, pos += 8) values.push(view.getBigInt64(pos));
      tensors.push({ dtype, shape, values });
      continue;
    }
    const values: number[] = [];
    for (let i = 0; i < elements; i++, pos += size) {
      const v = dtype === "f32" ? view.getFloat32(pos) : dtype === "i32" ? view.getInt32(pos) : view.getUint8(pos);
      if (!Number.isFinite(v)) throw new InputError(`tensor ${t}: f32 element ${i} is ${v}: inputs must be finite`);
      values.push(v);
    }
    tensors.push({ dtype, shape, values });
  }
  if (pos !== bytes.length) throw new InputError(`${bytes.length - pos} trailing bytes`);
  return { tensors };
}

/** Bytes read from each end of the file (magika's `block_size`). */
export const MAGIKA_BLOCK_SIZE = 4096;
/** Features taken from the beginning and from the end (`beg_size`, `end_size`). */
export const MAGIKA_SIDE_SIZE = 1024;
/** The padding token: one above any byte value. */
export const MAGIKA_PADDING = 256;

// Python's bytes.strip() whitespace: space, \t, \n, \v, \f, \r.
function isPyWhitespace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}

/**
 * magika 1.0's features for a file: 2048 ints, the first 1024 then the last 1024 values. The same
 * as the Rust sdk's `magika_features` (see its docs for what of magika is reproduced): strip
 * leading whitespace from the first 4096 bytes and trailing whitespace from the last 4096, keep
 * the first 1024 bytes padded after with 256 and the last 1024 padded before with 256.
 */
export function magikaFeatures(file: Uint8Array): Int32Array {
  const n = Math.min(file.length, MAGIKA_BLOCK_SIZE);
  const first = file.subarray(0, n);
  const last = file.subarray(file.length - n);
  let start = 0;
  while (start < first.length && isPyWhitespace(first[start] as number)) start++;
  let end = last.length;
  while (end > 0 && isPyWhitespace(last[end - 1] as number)) end--;
  const beg = first.subarray(start, start + Math.min(first.length - start, MAGIKA_SIDE_SIZE));
  const tail = last.subarray(Math.max(0, end - MAGIKA_SIDE_SIZE), end);
  const out = new Int32Array(2 * MAGIKA_SIDE_SIZE).fill(MAGIKA_PADDING);
  out.set(beg, 0);
  out.set(tail, 2 * MAGIKA_SIDE_SIZE - tail.length);
  return out;
}

/** The magika model's input for a file: one int32 tensor `[1, 2048]` of {@link magikaFeatures}. */
export function magikaInput(file: Uint8Array): Input {
  return { tensors: [{ dtype: "i32", shape: [1, 2 * MAGIKA_SIDE_SIZE], values: magikaFeatures(file) }] };
}

/**
 * The 214 labels of magika's output, in output order: `target_labels_space` of the model's
 * `config.min.json` (pass its text, its bytes or the parsed object).
 */
export function magikaLabels(configJson: string | Uint8Array | object): string[] {
  let config: unknown = configJson;
  try {
    if (typeof configJson === "string") config = JSON.parse(configJson);
    else if (configJson instanceof Uint8Array) config = JSON.parse(new TextDecoder().decode(configJson));
  } catch (e) {
    throw new InputError(`not a magika config.min.json (${String(e)}): pass the file next to model.onnx`);
  }
  const labels = (config as { target_labels_space?: unknown } | null)?.target_labels_space;
  if (!Array.isArray(labels) || !labels.every((l) => typeof l === "string")) {
    throw new InputError("not a magika config.min.json (no target_labels_space): pass the file next to model.onnx");
  }
  return labels as string[];
}

/** The most likely class of a classifier's output. */
export interface TopLabel {
  /** Index into the first output tensor. */
  index: number;
  /** `labels[index]`, or `#index` when `labels` is shorter. */
  label: string;
  /** The value, as a number (the fixed-point value divided by 10^decimals). */
  score: number;
}

/**
 * The highest value of the first output tensor and its label (ties: the lowest index, as the
 * Rust sdk's `top_k`). For magika, `labels` is {@link magikaLabels}.
 */
export function topLabel(output: CanonicalOutput, labels: readonly string[]): TopLabel {
  const values = output.tensors[0]?.values ?? [];
  if (values.length === 0) throw new InputError("the output's first tensor is empty: is this a classifier's output?");
  let index = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[index] as number)) index = i;
  return { index, label: labels[index] ?? `#${index}`, score: (values[index] as number) / 10 ** output.decimals };
}
