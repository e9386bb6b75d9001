//! The verification path (libsecp256k1, `quorum::recover_*`) against k256 with the contract's
//! rules applied the way the sdk applied them before the switch: on random valid signatures and
//! on malformed ones (high s, bad v, r = 0, s = 0, r ≥ n, s ≥ n, flipped parity, random bytes),
//! both must accept the same signatures, recover the same address, and reject with the same error.

use alloy::{
    primitives::{Address, B256, U256},
    signers::{Signature, SignerSync, local::PrivateKeySigner},
};
use attesta_sdk::{
    Error,
    quorum::{self, SECP256K1_HALF_N, SECP256K1_N},
};
use proptest::prelude::*;

/// What a path decided about one signature.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Signer(Address),
    HighS,
    Invalid,
}

/// The reference: k256 through alloy, with the rules `quorum` applied before the switch.
fn k256(digest: B256, raw: &[u8; 65]) -> Verdict {
    let v = raw[64];
    if v != 27 && v != 28 {
        return Verdict::Invalid;
    }
    let r = U256::from_be_slice(&raw[..32]);
    let s = U256::from_be_slice(&raw[32..64]);
    if s > SECP256K1_HALF_N {
        return Verdict::HighS;
    }
    match Signature::new(r, s, v == 28).recover_address_from_prehash(&digest) {
        Ok(a) if a != Address::ZERO => Verdict::Signer(a),
        _ => Verdict::Invalid,
    }
}

fn verdict(result: Result<Address, Error>) -> Verdict {
    match result {
        Ok(a) => Verdict::Signer(a),
        Err(Error::HighS { index: 0 }) => Verdict::HighS,
        Err(Error::InvalidSignature { index: 0 }) => Verdict::Invalid,
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

/// Checks both libsecp256k1 entry points against the reference; returns the common verdict.
fn agree(digest: B256, raw: &[u8; 65]) -> Verdict {
    let expected = k256(digest, raw);
    let packed = verdict(quorum::recover_ascending(digest, raw).map(|s| s[0]));
    assert_eq!(packed, expected, "recover_ascending vs k256 on {}", alloy::hex::encode(raw));
    // The `Signature` entry point (attestations, request auth) sees only what alloy parses: v
    // as a parity bit, so only v ∈ {27, 28} reaches it from the wire.
    if raw[64] == 27 || raw[64] == 28 {
        let signature = Signature::from_raw_array(raw).unwrap();
        let typed = verdict(quorum::recover_signature(digest, &signature));
        assert_eq!(typed, expected, "recover_signature vs k256 on {}", alloy::hex::encode(raw));
    }
    expected
}

fn raw(r: U256, s: U256, v: u8) -> [u8; 65] {
    let mut out = [0u8; 65];
    out[..32].copy_from_slice(&r.to_be_bytes::<32>());
    out[32..64].copy_from_slice(&s.to_be_bytes::<32>());
    out[64] = v;
    out
}

fn signed(key: [u8; 32], digest: [u8; 32]) -> Option<(Address, [u8; 65])> {
    let signer = PrivateKeySigner::from_bytes(&key.into()).ok()?;
    let signature = signer.sign_hash_sync(&digest.into()).ok()?;
    Some((signer.address(), signature.as_bytes()))
}

fn u256() -> impl Strategy<Value = U256> {
    any::<[u8; 32]>().prop_map(U256::from_be_bytes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn valid_signatures_recover_their_signer(key in any::<[u8; 32]>(), digest in any::<[u8; 32]>()) {
        let Some((signer, sig)) = signed(key, digest) else { return Ok(()) };
        prop_assert_eq!(agree(digest.into(), &sig), Verdict::Signer(signer));
        // The other parity recovers someone else, or nothing, on both paths alike.
        let mut flipped = sig;
        flipped[64] ^= 27 ^ 28;
        prop_assert_ne!(agree(digest.into(), &flipped), Verdict::Signer(signer));
    }

    #[test]
    fn high_s_is_rejected_not_normalised(key in any::<[u8; 32]>(), digest in any::<[u8; 32]>()) {
        let Some((_, sig)) = signed(key, digest) else { return Ok(()) };
        let r = U256::from_be_slice(&sig[..32]);
        let s = U256::from_be_slice(&sig[32..64]);
        // (r, n - s, !v) is the same signature malleated: valid for ecrecover, refused here.
        let malleated = raw(r, SECP256K1_N - s, if sig[64] == 27 { 28 } else { 27 });
        prop_assert_eq!(agree(digest.into(), &malleated), Verdict::HighS);
    }

    #[test]
    fn bad_v_is_rejected(key in any::<[u8; 32]>(), digest in any::<[u8; 32]>(), v in any::<u8>()) {
        prop_assume!(v != 27 && v != 28);
        let Some((_, mut sig)) = signed(key, digest) else { return Ok(()) };
        sig[64] = v;
        prop_assert_eq!(agree(digest.into(), &sig), Verdict::Invalid);
    }

    #[test]
    fn out_of_range_scalars_are_rejected(
        digest in any::<[u8; 32]>(),
        r in u256(),
        s in u256(),
        over in 0u64..1_000,
        parity in any::<bool>(),
    ) {
        let v = if parity { 28 } else { 27 };
        let low_s = s % SECP256K1_HALF_N + U256::from(1);
        let r_in_range = r % (SECP256K1_N - U256::from(1)) + U256::from(1);
        let d = B256::from(digest);
        prop_assert_eq!(agree(d, &raw(U256::ZERO, low_s, v)), Verdict::Invalid);
        prop_assert_eq!(agree(d, &raw(r_in_range, U256::ZERO, v)), Verdict::Invalid);
        prop_assert_eq!(agree(d, &raw(SECP256K1_N + U256::from(over), low_s, v)), Verdict::Invalid);
        prop_assert_eq!(agree(d, &raw(U256::MAX - U256::from(over), low_s, v)), Verdict::Invalid);
        prop_assert_eq!(agree(d, &raw(r_in_range, SECP256K1_N + U256::from(over), v)), Verdict::HighS);
    }

    #[test]
    fn random_bytes_get_the_same_verdict(digest in any::<[u8; 32]>(), bytes in any::<[u8; 64]>(), v in prop_oneof![Just(27u8), Just(28u8), any::<u8>()]) {
        let mut sig = [0u8; 65];
        sig[..64].copy_from_slice(&bytes);
        sig[64] = v;
        agree(digest.into(), &sig);
        // Random (r, s) with s forced low: about half of all r are x-coordinates of a curve
        // point, so both outcomes (some address, no address) are exercised.
        let r = U256::from_be_slice(&bytes[..32]);
        let s = U256::from_be_slice(&bytes[32..]) % SECP256K1_HALF_N;
        agree(digest.into(), &raw(r, s, if v % 2 == 0 { 28 } else { 27 }));
    }
}

#[test]
fn boundary_scalars_get_the_same_verdict() {
    let (_, sig) = signed([7; 32], [9; 32]).unwrap();
    let digest = B256::from([9; 32]);
    let r = U256::from_be_slice(&sig[..32]);
    let one = U256::from(1);
    for (r, s) in [
        (r, SECP256K1_HALF_N),
        (r, SECP256K1_HALF_N + one),
        (r, SECP256K1_N - one),
        (r, SECP256K1_N),
        (SECP256K1_N - one, one),
        (SECP256K1_N, one),
        (one, one),
        (U256::ZERO, U256::ZERO),
    ] {
        for v in [27, 28] {
            agree(digest, &raw(r, s, v));
        }
    }
    assert_eq!(agree(digest, &raw(r, SECP256K1_HALF_N + one, 27)), Verdict::HighS);
    assert_eq!(agree(digest, &raw(SECP256K1_N, one, 27)), Verdict::Invalid);
}
