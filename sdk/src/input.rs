//! Job input encoding, version 1 (ATI1): the tensors a client uploads and `inputHash` commits to.
//!
//! A small self-describing container, strict in both directions: [`Input::decode`] accepts
//! exactly the bytes [`Input::encode`] produces, so one set of tensors has one encoding and one
//! `inputHash`. Layout (all integers and values big-endian, as in [`crate::canonical`]):
//!
//! ```text
//! "ATI1"            magic and version
//! u8   tensors      number of input tensors, 1..=255, in the model's input order
//! per tensor:
//!   u8  dtype       1 = f32, 2 = i32, 3 = i64, 4 = u8
//!   u8  rank        0..=8
//!   u32 dim × rank  shape
//!   value × product row-major, big-endian (f32 as its IEEE 754 bits; NaN and ±inf rejected)
//! ```
//!
//! Limits: the whole input is at most [`MAX_INPUT_BYTES`]; shape products are computed with
//! overflow checks and must match the bytes that follow exactly, so an absurd shape is rejected
//! before anything is allocated for it.
//!
//! [`magika_input`] builds the input of the demo model (magika 1.0, see `docs/models.md`) from
//! the bytes of any file.

use crate::Error;

/// The magic and version prefix.
pub const MAGIC: &[u8; 4] = b"ATI1";
/// Largest rank accepted.
pub const MAX_RANK: usize = 8;
/// Largest encoded input accepted: 64 MiB.
pub const MAX_INPUT_BYTES: usize = 64 << 20;

/// Element type of an input tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE 754 single precision (finite values only).
    F32,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned byte.
    U8,
}

impl DType {
    /// The tag byte in the encoding.
    pub const fn tag(self) -> u8 {
        match self {
            Self::F32 => 1,
            Self::I32 => 2,
            Self::I64 => 3,
            Self::U8 => 4,
        }
    }

    /// The type for a tag byte.
    pub fn from_tag(tag: u8) -> Result<Self, Error> {
        Ok(match tag {
            1 => Self::F32,
            2 => Self::I32,
            3 => Self::I64,
            4 => Self::U8,
            _ => {
                return Err(Error::Input(format!(
                    "unknown dtype tag {tag}: use 1 (f32), 2 (i32), 3 (i64) or 4 (u8)"
                )));
            }
        })
    }

    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            Self::F32 | Self::I32 => 4,
            Self::I64 => 8,
            Self::U8 => 1,
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::I32 => "i32",
            Self::I64 => "i64",
            Self::U8 => "u8",
        })
    }
}

/// The values of one tensor, row-major.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// `f32` values.
    F32(Vec<f32>),
    /// `i32` values.
    I32(Vec<i32>),
    /// `i64` values.
    I64(Vec<i64>),
    /// `u8` values.
    U8(Vec<u8>),
}

impl Values {
    /// Their element type.
    pub fn dtype(&self) -> DType {
        match self {
            Self::F32(_) => DType::F32,
            Self::I32(_) => DType::I32,
            Self::I64(_) => DType::I64,
            Self::U8(_) => DType::U8,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Self::F32(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::U8(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One input tensor: a shape and values that fill it exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<u32>,
    values: Values,
}

impl Tensor {
    /// A tensor of `shape` holding `values`; fails if the rank is above [`MAX_RANK`], the shape
    /// does not hold exactly `values.len()` elements, or an `f32` value is NaN or infinite.
    pub fn new(shape: Vec<u32>, values: Values) -> Result<Self, Error> {
        if shape.len() > MAX_RANK {
            return Err(Error::Input(format!("rank {} is above {MAX_RANK}", shape.len())));
        }
        let elements = element_count(&shape)?;
        if elements != values.len() {
            return Err(Error::Input(format!(
                "shape {shape:?} holds {elements} values, got {}",
                values.len()
            )));
        }
        if let Values::F32(v) = &values
            && let Some(i) = v.iter().position(|x| !x.is_finite())
        {
            return Err(Error::Input(format!(
                "f32 element {i} is {}: inputs must be finite",
                v[i]
            )));
        }
        Ok(Self { shape, values })
    }

    /// The shape.
    pub fn shape(&self) -> &[u32] {
        &self.shape
    }

    /// The values.
    pub fn values(&self) -> &Values {
        &self.values
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.values.dtype()
    }

    fn encoded_len(&self) -> usize {
        2 + 4 * self.shape.len() + self.values.len() * self.dtype().size()
    }
}

/// A job input: the model's input tensors, in the model's input order.
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    tensors: Vec<Tensor>,
}

impl Input {
    /// An input of 1 to 255 tensors whose encoding fits [`MAX_INPUT_BYTES`].
    ///
    /// ```
    /// use attesta_sdk::input::{Input, Tensor, Values};
    /// let x = Tensor::new(vec![1, 2], Values::F32(vec![0.5, -1.0])).unwrap();
    /// let input = Input::new(vec![x]).unwrap();
    /// let bytes = input.encode();
    /// assert_eq!(&bytes[..4], b"ATI1");
    /// assert_eq!(Input::decode(&bytes).unwrap(), input);
    /// ```
    pub fn new(tensors: Vec<Tensor>) -> Result<Self, Error> {
        if tensors.is_empty() || tensors.len() > usize::from(u8::MAX) {
            return Err(Error::Input(format!("{} tensors; 1 to 255 are supported", tensors.len())));
        }
        let input = Self { tensors };
        let len = input.encoded_len();
        if len > MAX_INPUT_BYTES {
            return Err(Error::Input(format!(
                "encodes to {len} bytes, above the {MAX_INPUT_BYTES}-byte limit"
            )));
        }
        Ok(input)
    }

    /// The tensors, in order.
    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    fn encoded_len(&self) -> usize {
        5 + self.tensors.iter().map(Tensor::encoded_len).sum::<usize>()
    }

    /// The ATI1 bytes (hash them with [`crate::input_hash`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(MAGIC);
        out.push(self.tensors.len() as u8); // `new` bounds it to 255
        for t in &self.tensors {
            out.push(t.dtype().tag());
            out.push(t.shape.len() as u8); // bounded to MAX_RANK
            for d in &t.shape {
                out.extend_from_slice(&d.to_be_bytes());
            }
            match &t.values {
                Values::F32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
                Values::I32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
                Values::I64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
                Values::U8(v) => out.extend_from_slice(v),
            }
        }
        out
    }

    /// Parses ATI1 bytes, rejecting anything [`Input::encode`] would not produce: wrong magic,
    /// unknown dtype, rank above 8, shapes that overflow or do not match the remaining bytes,
    /// non-finite floats, trailing bytes, and inputs above [`MAX_INPUT_BYTES`].
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.is_empty() {
            return Err(Error::Input(
                "empty input: encode the model's input tensors as ATI1 (attesta_sdk::input)".into(),
            ));
        }
        if bytes.len() > MAX_INPUT_BYTES {
            return Err(Error::Input(format!(
                "{} bytes, above the {MAX_INPUT_BYTES}-byte limit",
                bytes.len()
            )));
        }
        let mut r = crate::reader::Reader::new(bytes, Error::Input);
        if r.take(4)? != MAGIC {
            return Err(Error::Input(
                "not an ATI1 input: missing \"ATI1\" prefix (encode with attesta_sdk::input)"
                    .into(),
            ));
        }
        let count = r.u8()?;
        if count == 0 {
            return Err(Error::Input("no tensors".into()));
        }
        let mut tensors = Vec::with_capacity(usize::from(count));
        for t in 0..count {
            let dtype = DType::from_tag(r.u8()?)?;
            let rank = usize::from(r.u8()?);
            if rank > MAX_RANK {
                return Err(Error::Input(format!("tensor {t}: rank {rank} is above {MAX_RANK}")));
            }
            let shape = (0..rank).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
            let elements = element_count(&shape)?;
            // Checked before allocating: an absurd shape fails here, not in the allocator.
            if elements > r.remaining() / dtype.size() {
                return Err(Error::Input(format!(
                    "tensor {t}: shape {shape:?} of {dtype} needs more bytes than remain ({})",
                    r.remaining()
                )));
            }
            let raw = r.take(elements * dtype.size())?;
            let values = match dtype {
                DType::F32 => Values::F32(
                    raw.chunks_exact(4)
                        .map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                ),
                DType::I32 => Values::I32(
                    raw.chunks_exact(4)
                        .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                ),
                DType::I64 => Values::I64(
                    raw.chunks_exact(8)
                        .map(|c| {
                            i64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
                        })
                        .collect(),
                ),
                DType::U8 => Values::U8(raw.to_vec()),
            };
            let tensor = Tensor::new(shape, values)
                .map_err(|e| Error::Input(format!("tensor {t}: {}", strip(&e))))?;
            tensors.push(tensor);
        }
        if r.remaining() != 0 {
            return Err(Error::Input(format!("{} trailing bytes", r.remaining())));
        }
        Ok(Self { tensors })
    }
}

fn strip(e: &Error) -> String {
    match e {
        Error::Input(s) => s.clone(),
        other => other.to_string(),
    }
}

fn element_count(shape: &[u32]) -> Result<usize, Error> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d as usize)).ok_or_else(|| {
        Error::Input(format!("shape {shape:?} has more elements than this machine can address"))
    })
}

/// Bytes read from each end of the file (magika's `block_size`).
pub const MAGIKA_BLOCK_SIZE: usize = 4096;
/// Features taken from the beginning (`beg_size`) and from the end (`end_size`).
pub const MAGIKA_SIDE_SIZE: usize = 1024;
/// The padding token (`padding_token`): one above any byte value.
pub const MAGIKA_PADDING: i32 = 256;

/// Python's `bytes.strip()` whitespace: space, \t, \n, \v (0x0b), \f, \r. Rust's
/// `u8::is_ascii_whitespace` omits \v, so it is spelled out.
fn is_py_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// magika 1.0's features for a file: 2048 ints, the first 1024 then the last 1024 values.
///
/// Reproduces `Magika._extract_features_from_seekable` of magika 1.0.3 (model standard_v3_3,
/// `beg_size = end_size = 1024`, `mid_size = 0`, `block_size = 4096`, `padding_token = 256`):
/// read at most 4096 bytes from the start and at most 4096 from the end (both are the whole
/// file when it is shorter); strip leading whitespace from the first block and trailing
/// whitespace from the last (Python's `lstrip()`/`rstrip()`, ASCII whitespace including \v);
/// keep the first 1024 bytes of the first block, padded after with 256, and the last 1024 bytes
/// of the last block, padded before with 256.
///
/// Not reproduced: magika's shortcuts that skip the model (empty files, files under 8 bytes,
/// or fewer than 8 bytes left after stripping, answered "empty"/"txt"/"unknown" without
/// inference) and its per-label confidence thresholds; the model still runs on such inputs.
///
/// ```
/// let f = attesta_sdk::input::magika_features(b"  fn main() {}\n");
/// assert_eq!(f.len(), 2048);
/// assert_eq!(f[0], i32::from(b'f'));
/// assert_eq!(f[2047], i32::from(b'}'));
/// ```
pub fn magika_features(file: &[u8]) -> Vec<i32> {
    let n = file.len().min(MAGIKA_BLOCK_SIZE);
    let first = &file[..n];
    let last = &file[file.len() - n..];
    let start = first.iter().position(|&b| !is_py_whitespace(b)).unwrap_or(first.len());
    let beg = &first[start..];
    let end = last.iter().rposition(|&b| !is_py_whitespace(b)).map_or(0, |i| i + 1);
    let end = &last[..end];

    let mut out = Vec::with_capacity(2 * MAGIKA_SIDE_SIZE);
    let beg = &beg[..beg.len().min(MAGIKA_SIDE_SIZE)];
    out.extend(beg.iter().map(|&b| i32::from(b)));
    out.resize(MAGIKA_SIDE_SIZE, MAGIKA_PADDING);
    let end = &end[end.len().saturating_sub(MAGIKA_SIDE_SIZE)..];
    out.resize(2 * MAGIKA_SIDE_SIZE - end.len(), MAGIKA_PADDING);
    out.extend(end.iter().map(|&b| i32::from(b)));
    out
}

/// The magika model's input for a file: one int32 tensor `[1, 2048]` of [`magika_features`].
pub fn magika_input(file: &[u8]) -> Input {
    let features = magika_features(file);
    Input {
        tensors: vec![Tensor {
            shape: vec![1, (2 * MAGIKA_SIDE_SIZE) as u32],
            values: Values::I32(features),
        }],
    }
}

/// The 214 labels of magika's output, in output order: `target_labels_space` of the model's
/// `config.min.json`.
pub fn magika_labels(config_json: &[u8]) -> Result<Vec<String>, Error> {
    #[derive(serde::Deserialize)]
    struct Config {
        target_labels_space: Vec<String>,
    }
    serde_json::from_slice::<Config>(config_json).map(|c| c.target_labels_space).map_err(|e| {
        Error::Input(format!(
            "not a magika config.min.json ({e}): pass the file next to model.onnx"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Input {
        Input::new(vec![
            Tensor::new(vec![2, 2], Values::F32(vec![1.0, -2.5, 0.0, 3.25])).unwrap(),
            Tensor::new(vec![3], Values::I64(vec![i64::MIN, 0, i64::MAX])).unwrap(),
            Tensor::new(vec![], Values::I32(vec![-7])).unwrap(),
            Tensor::new(vec![2, 0], Values::U8(vec![])).unwrap(),
        ])
        .unwrap()
    }

    #[test]
    fn round_trips_every_dtype() {
        let input = sample();
        assert_eq!(Input::decode(&input.encode()).unwrap(), input);
    }

    #[test]
    fn layout_is_big_endian_as_documented() {
        let input = Input::new(vec![Tensor::new(vec![1], Values::I32(vec![0x0102_0304])).unwrap()])
            .unwrap();
        assert_eq!(input.encode(), b"ATI1\x01\x02\x01\x00\x00\x00\x01\x01\x02\x03\x04".to_vec());
    }

    #[test]
    fn decode_rejects_every_truncation_and_trailing_bytes() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert!(Input::decode(&bytes[..cut]).is_err(), "accepted a {cut}-byte prefix");
        }
        let mut long = bytes;
        long.push(0);
        assert!(Input::decode(&long).is_err());
    }

    #[test]
    fn decode_rejects_absurd_shapes_without_allocating() {
        let huge = [b"ATI1".as_slice(), &[1, 1, 3], &[0xff; 12]].concat();
        assert!(matches!(Input::decode(&huge), Err(Error::Input(m)) if m.contains("more")));
        let rank9 = [b"ATI1".as_slice(), &[1, 1, 9], &[0; 36]].concat();
        assert!(Input::decode(&rank9).is_err());
    }

    #[test]
    fn rejects_bad_tags_nan_and_empty() {
        assert!(Input::decode(b"").is_err());
        assert!(Input::decode(b"ATI1\x00").is_err());
        assert!(Input::decode(b"ATI1\x01\x05\x00").is_err());
        let nan = [b"ATI1".as_slice(), &[1, 1, 0], &f32::NAN.to_be_bytes()].concat();
        assert!(Input::decode(&nan).is_err());
        assert!(Tensor::new(vec![1], Values::F32(vec![f32::INFINITY])).is_err());
        assert!(Tensor::new(vec![2], Values::F32(vec![1.0])).is_err());
        assert!(Input::new(vec![]).is_err());
    }

    #[test]
    fn magika_features_strip_and_pad_like_python() {
        // \v and \f are whitespace to Python's bytes.strip(); the start is only lstripped and
        // the end only rstripped, as magika does.
        let f = magika_features(b"\x0b\x0c \tab\n\r\x0b");
        assert_eq!(&f[..5], &[97, 98, 10, 13, 11]);
        assert!(f[5..2042].iter().all(|&v| v == 256));
        assert_eq!(&f[2042..], &[11, 12, 32, 9, 97, 98]);
        let empty = magika_features(b"   ");
        assert!(empty.iter().all(|&v| v == 256));
        // Long file: first 1024 bytes of the start, last 1024 of the end.
        let file: Vec<u8> = (0..10_000u32).map(|i| (i % 200) as u8 + 33).collect();
        let f = magika_features(&file);
        assert_eq!(f[0], 33);
        assert_eq!(f[1023], i32::from(file[1023]));
        assert_eq!(f[1024], i32::from(file[10_000 - 1024]));
        assert_eq!(f[2047], i32::from(file[9_999]));
    }

    #[test]
    fn magika_input_encodes() {
        let input = magika_input(b"%PDF-1.4 hello");
        let bytes = input.encode();
        assert_eq!(bytes.len(), 5 + 2 + 8 + 2048 * 4);
        assert_eq!(Input::decode(&bytes).unwrap(), input);
    }
}
