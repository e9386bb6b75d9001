//! M-of-N signature sets, exactly as `SignatureQuorum.recoverAscending` and
//! `StakingRegistry.checkSigners` judge them on-chain: 65-byte (r, s, v) signatures packed back to
//! back, v in {27, 28}, s in the lower half of the curve order, signers strictly ascending by
//! address (which rejects duplicates in one pass), at least the threshold M, all active.

use crate::Error;
use alloy::primitives::{Address, B256, Bytes, U256, uint};
use alloy::signers::Signature;
use secp256k1::{
    Message, SECP256K1,
    ecdsa::{RecoverableSignature, RecoveryId},
};
use std::collections::HashSet;

/// Length of one packed signature.
pub const SIGNATURE_LENGTH: usize = 65;

/// Half the secp256k1 group order: a valid `s` is at most this (EIP-2).
pub const SECP256K1_HALF_N: U256 =
    uint!(0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0_U256);

/// The secp256k1 group order n: `r` and `s` must be below it.
pub const SECP256K1_N: U256 =
    uint!(0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141_U256);

/// Recovers the address that signed the 32-byte `digest` with `(r, s, y_parity)`, accepting
/// exactly what OpenZeppelin's `ECDSA.tryRecover` (the contracts' check) accepts: s at most
/// n/2 (a high s is rejected, not normalised), r and s nonzero and below n, a point that
/// recovers, and a recovered address other than zero.
///
/// Recovery runs in the C library libsecp256k1 (through the `secp256k1` crate), several times
/// faster than k256 on the relayer's verification path; signing stays with alloy's k256 signer.
/// `index` is the signature's position, used in the error.
pub fn recover_prehash(
    digest: B256,
    r: U256,
    s: U256,
    y_parity: bool,
    index: usize,
) -> Result<Address, Error> {
    if s > SECP256K1_HALF_N {
        return Err(Error::HighS { index });
    }
    // libsecp256k1 rejects r or s ≥ n when parsing and r or s = 0 when recovering; checked
    // here too so the rule does not rest on the library's parser.
    if r.is_zero() || s.is_zero() || r >= SECP256K1_N {
        return Err(Error::InvalidSignature { index });
    }
    let mut compact = [0u8; 64];
    compact[..32].copy_from_slice(&r.to_be_bytes::<32>());
    compact[32..].copy_from_slice(&s.to_be_bytes::<32>());
    let recovery_id = if y_parity { RecoveryId::One } else { RecoveryId::Zero };
    let signature = RecoverableSignature::from_compact(&compact, recovery_id)
        .map_err(|_| Error::InvalidSignature { index })?;
    let key = SECP256K1
        .recover_ecdsa(Message::from_digest(digest.0), &signature)
        .map_err(|_| Error::InvalidSignature { index })?;
    let signer = Address::from_raw_public_key(&key.serialize_uncompressed()[1..]);
    if signer == Address::ZERO {
        return Err(Error::InvalidSignature { index });
    }
    Ok(signer)
}

/// Recovers the signer of `digest` from an alloy [`Signature`] with the contract's rules
/// ([`recover_prehash`]).
pub fn recover_signature(digest: B256, signature: &Signature) -> Result<Address, Error> {
    recover_prehash(digest, signature.r(), signature.s(), signature.v(), 0)
}

/// Recovers every signer of `digest` from packed signatures, with the contract's rules.
///
/// Returns the signers in the given order; fails on the first signature the contract would reject.
pub fn recover_ascending(digest: B256, signatures: &[u8]) -> Result<Vec<Address>, Error> {
    if signatures.is_empty() || !signatures.len().is_multiple_of(SIGNATURE_LENGTH) {
        return Err(Error::MalformedSignatures { length: signatures.len() });
    }
    let mut previous = Address::ZERO;
    let mut signers = Vec::with_capacity(signatures.len() / SIGNATURE_LENGTH);
    for (index, raw) in signatures.chunks_exact(SIGNATURE_LENGTH).enumerate() {
        let v = raw[64];
        if v != 27 && v != 28 {
            return Err(Error::InvalidSignature { index });
        }
        let r = U256::from_be_slice(&raw[..32]);
        let s = U256::from_be_slice(&raw[32..64]);
        let signer = recover_prehash(digest, r, s, v == 28, index)?;
        if signer <= previous {
            return Err(Error::SignersNotAscending { index, signer, previous });
        }
        signers.push(signer);
        previous = signer;
    }
    Ok(signers)
}

/// Checks a recovered signer list against the active set and the threshold, as `settle` does.
pub fn check_quorum(
    signers: &[Address],
    active: &HashSet<Address>,
    threshold: usize,
) -> Result<(), Error> {
    if let Some((index, signer)) = signers.iter().enumerate().find(|(_, s)| !active.contains(*s)) {
        return Err(Error::InactiveSigner { index, signer: *signer });
    }
    if signers.len() < threshold {
        return Err(Error::InsufficientSignatures { count: signers.len(), threshold });
    }
    Ok(())
}

/// Packs `(signer, signature)` pairs the way `settle` wants them: sorted ascending by signer,
/// one per signer. Returns the packed bytes and the signer list in the same order.
pub fn pack_signatures(
    signatures: impl IntoIterator<Item = (Address, Signature)>,
) -> (Bytes, Vec<Address>) {
    let mut pairs: Vec<_> = signatures.into_iter().collect();
    pairs.sort_by_key(|(signer, _)| *signer);
    pairs.dedup_by_key(|(signer, _)| *signer);
    let mut packed = Vec::with_capacity(pairs.len() * SIGNATURE_LENGTH);
    for (_, signature) in &pairs {
        packed.extend_from_slice(&signature.as_bytes());
    }
    (packed.into(), pairs.into_iter().map(|(signer, _)| signer).collect())
}

/// The threshold M for N active signers: `max(floor, ceil(N * bps / 10000))`, as the registry
/// computes it.
pub fn threshold(active: usize, threshold_bps: u16, floor: u8) -> usize {
    let ceil = (active * usize::from(threshold_bps)).div_ceil(10_000);
    ceil.max(usize::from(floor))
}
