//! Canonical output encoding, version 1: what nodes hash into `resultHash` and publish on-chain.
//!
//! Floating-point inference differs in its last bits between CPUs (kernels are chosen by CPU
//! feature), so outputs are rounded to a fixed number of decimals before hashing; honest nodes on
//! different machines then produce identical bytes. Layout (all integers big-endian):
//!
//! ```text
//! "ATO1"            magic and version
//! u8   decimals     values are round(x * 10^decimals), half away from zero
//! u8   tensors      number of output tensors, 1..=255
//! per tensor:
//!   u8  rank        0..=8
//!   u32 dim × rank  shape
//!   i32 × product   values, row-major
//! ```
//!
//! Rounding cannot remove every disagreement: two values a hair apart can straddle a rounding
//! boundary. At the default 4 decimals and the ~1e-6 kernel differences seen with tract, that is
//! rare, and a node that disagrees is simply not part of the M that agree.

use crate::Error;

/// The magic and version prefix.
pub const MAGIC: &[u8; 4] = b"ATO1";
/// The default precision: 4 decimals.
pub const DEFAULT_DECIMALS: u8 = 4;
/// Largest precision accepted: 10^9 keeps every value below 2^31 only for |x| < 2.1.
pub const MAX_DECIMALS: u8 = 9;
/// Largest rank accepted.
pub const MAX_RANK: usize = 8;
/// The largest output any settlement can publish: the escrow's `MAX_OUTPUT_BYTES`, the bound
/// its configurable `maxOutputBytes` (16 KiB by default) can never exceed. A node never signs
/// a longer output, since no escrow would accept it.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// One output tensor in canonical (fixed-point) form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tensor {
    /// Shape, row-major.
    pub shape: Vec<u32>,
    /// `round(x * 10^decimals)` for each element.
    pub values: Vec<i32>,
}

impl Tensor {
    /// The `k` largest values with their flat indices, largest first (ties: lower index first).
    pub fn top_k(&self, k: usize) -> Vec<(usize, i32)> {
        let mut ranked: Vec<(usize, i32)> = self.values.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(k);
        ranked
    }
}

/// A canonical output: fixed-point tensors at one precision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanonicalOutput {
    /// Decimal places kept.
    pub decimals: u8,
    /// The model's outputs, in the model's order.
    pub tensors: Vec<Tensor>,
}

impl CanonicalOutput {
    /// Canonicalises `f32` tensors `(shape, values)` at `decimals` places.
    ///
    /// Fails on NaN or infinity, on values too large for 32-bit fixed point, and on shapes that do
    /// not match the number of values.
    ///
    /// ```
    /// use attesta_sdk::canonical::CanonicalOutput;
    /// let out = CanonicalOutput::from_f32(4, &[(vec![2], vec![0.12344_f32, -0.5])]).unwrap();
    /// assert_eq!(out.tensors[0].values, vec![1234, -5000]);
    /// assert_eq!(CanonicalOutput::decode(&out.encode()).unwrap(), out);
    /// ```
    pub fn from_f32(decimals: u8, outputs: &[(Vec<u32>, Vec<f32>)]) -> Result<Self, Error> {
        if decimals > MAX_DECIMALS {
            return Err(Error::Canonical(format!(
                "{decimals} decimals requested; at most {MAX_DECIMALS} are supported"
            )));
        }
        if outputs.is_empty() || outputs.len() > usize::from(u8::MAX) {
            return Err(Error::Canonical(format!(
                "{} output tensors; 1 to 255 are supported",
                outputs.len()
            )));
        }
        let scale = 10f64.powi(i32::from(decimals));
        let mut tensors = Vec::with_capacity(outputs.len());
        for (t, (shape, values)) in outputs.iter().enumerate() {
            check_shape(shape, values.len())?;
            let mut fixed = Vec::with_capacity(values.len());
            for (i, &x) in values.iter().enumerate() {
                if !x.is_finite() {
                    return Err(Error::Canonical(format!("output {t} element {i} is {x}")));
                }
                // f64 holds every f32 and its product with 10^9 exactly enough for rounding.
                let scaled = (f64::from(x) * scale).round();
                if scaled < f64::from(i32::MIN) || scaled > f64::from(i32::MAX) {
                    return Err(Error::Canonical(format!(
                        "output {t} element {i} = {x} does not fit 32-bit fixed point at {decimals} decimals; use fewer decimals"
                    )));
                }
                fixed.push(scaled as i32);
            }
            tensors.push(Tensor { shape: shape.clone(), values: fixed });
        }
        Ok(Self { decimals, tensors })
    }

    /// The canonical bytes (hash them with [`crate::result_hash`]).
    pub fn encode(&self) -> Vec<u8> {
        let len = 6 + self
            .tensors
            .iter()
            .map(|t| 1 + 4 * t.shape.len() + 4 * t.values.len())
            .sum::<usize>();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(MAGIC);
        out.push(self.decimals);
        out.push(self.tensors.len() as u8); // from_f32/decode bound it to 255
        for t in &self.tensors {
            out.push(t.shape.len() as u8); // bounded to MAX_RANK
            for d in &t.shape {
                out.extend_from_slice(&d.to_be_bytes());
            }
            for v in &t.values {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        out
    }

    /// Parses canonical bytes, rejecting anything [`CanonicalOutput::encode`] would not produce.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = crate::reader::Reader::new(bytes, Error::Canonical);
        if r.take(4)? != MAGIC {
            return Err(Error::Canonical(
                "not canonical output v1: missing \"ATO1\" prefix".into(),
            ));
        }
        let decimals = r.u8()?;
        if decimals > MAX_DECIMALS {
            return Err(Error::Canonical(format!("{decimals} decimals is above {MAX_DECIMALS}")));
        }
        let count = r.u8()?;
        if count == 0 {
            return Err(Error::Canonical("no output tensors".into()));
        }
        let mut tensors = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let rank = usize::from(r.u8()?);
            if rank > MAX_RANK {
                return Err(Error::Canonical(format!("rank {rank} is above {MAX_RANK}")));
            }
            let shape = (0..rank).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
            let elements = element_count(&shape)?;
            if elements > r.remaining() / 4 {
                return Err(Error::Canonical(format!(
                    "shape {shape:?} needs more bytes than remain"
                )));
            }
            let values =
                (0..elements).map(|_| r.u32().map(|v| v as i32)).collect::<Result<_, _>>()?;
            tensors.push(Tensor { shape, values });
        }
        if r.remaining() != 0 {
            return Err(Error::Canonical(format!("{} trailing bytes", r.remaining())));
        }
        Ok(Self { decimals, tensors })
    }
}

fn element_count(shape: &[u32]) -> Result<usize, Error> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d as usize)).ok_or_else(|| {
        Error::Canonical(format!("shape {shape:?} has more elements than this machine can address"))
    })
}

fn check_shape(shape: &[u32], len: usize) -> Result<(), Error> {
    if shape.len() > MAX_RANK {
        return Err(Error::Canonical(format!("rank {} is above {MAX_RANK}", shape.len())));
    }
    let elements = element_count(shape)?;
    if elements != len {
        return Err(Error::Canonical(format!(
            "shape {shape:?} holds {elements} values, got {len}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_away_from_zero() {
        // Exactly representable halves; rounding applies to the exact f32 value (0.35f32 is
        // 0.34999999..., which rounds to 3 at one decimal).
        let out =
            CanonicalOutput::from_f32(1, &[(vec![5], vec![0.25, -0.25, 0.75, 1.0, 0.35])]).unwrap();
        assert_eq!(out.tensors[0].values, vec![3, -3, 8, 10, 3]);
    }

    #[test]
    fn top_k_ranks_by_value_then_index() {
        let t = Tensor { shape: vec![5], values: vec![3, 9, 9, -1, 4] };
        assert_eq!(t.top_k(3), vec![(1, 9), (2, 9), (4, 4)]);
        assert_eq!(t.top_k(10).len(), 5);
    }

    #[test]
    fn tiny_kernel_differences_hash_the_same() {
        let a = CanonicalOutput::from_f32(4, &[(vec![2], vec![0.731_201_3, 0.268_798_7])]).unwrap();
        let b = CanonicalOutput::from_f32(4, &[(vec![2], vec![0.731_201_5, 0.268_798_5])]).unwrap();
        assert_eq!(crate::result_hash(a.encode()), crate::result_hash(b.encode()));
    }

    #[test]
    fn rejects_non_finite_and_overflow() {
        assert!(CanonicalOutput::from_f32(4, &[(vec![1], vec![f32::NAN])]).is_err());
        assert!(CanonicalOutput::from_f32(4, &[(vec![1], vec![f32::INFINITY])]).is_err());
        assert!(CanonicalOutput::from_f32(9, &[(vec![1], vec![3.0])]).is_err());
        assert!(CanonicalOutput::from_f32(4, &[(vec![3], vec![1.0])]).is_err());
    }

    #[test]
    fn decode_rejects_truncation_trailing_bytes_and_absurd_shapes() {
        let bytes = CanonicalOutput::from_f32(4, &[(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0])])
            .unwrap()
            .encode();
        for cut in 0..bytes.len() {
            assert!(
                CanonicalOutput::decode(&bytes[..cut]).is_err(),
                "accepted a {cut}-byte prefix"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(CanonicalOutput::decode(&long).is_err());
        let absurd =
            [b"ATO1".as_slice(), &[4, 1, 2], &u32::MAX.to_be_bytes(), &u32::MAX.to_be_bytes()]
                .concat();
        assert!(CanonicalOutput::decode(&absurd).is_err());
    }
}
