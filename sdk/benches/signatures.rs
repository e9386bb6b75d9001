//! secp256k1 signing and recovery per second on one core: k256 (alloy's signer and its default
//! recovery) beside the C library libsecp256k1 (the `secp256k1` crate), over the same messages in
//! one criterion run (issue 8).
//!
//! ```sh
//! cargo bench -p attesta-sdk --bench signatures
//! ```
//!
//! Rows: signing a 32-byte digest; recovering the signer's address from a digest and a 65-byte
//! signature (the libsecp256k1 row is `quorum::recover_signature`, the path the relayer and sdk
//! verify with, rule checks and keccak of the key included); and verifying a signed attestation
//! (EIP-712 digest, recovery, signer compared), k256 as the sdk did it before and
//! `SignedAttestation::verify` as it does now.
//!
//! Times are the benchmarking thread's CPU time, not wall time, so the rates are per core even
//! while other work shares the machine. After criterion's own report, the per-sample figures (median, min, max of criterion's 100
//! samples) are written as a Markdown table to `$CARGO_TARGET_DIR/bench-book/signatures.md`
//! (or `target/bench-book/signatures.md`), which `BENCHMARKS.md` splices in.

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs, unsafe_code)]

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    signers::{Signature, SignerSync, local::PrivateKeySigner},
};
use attesta_sdk::{Attestation, SignedAttestation, quorum};
use criterion::{
    Criterion,
    measurement::{Measurement, ValueFormatter, WallTime},
};
use secp256k1::{Message, SECP256K1, SecretKey};
use std::{hint::black_box, path::PathBuf, time::Duration};

/// Criterion measurement of the benchmarking thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`)
/// rather than wall time: "per second per core" even on a machine other work shares.
struct ThreadCpu;

static WALL: WallTime = WallTime;

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Measurement for ThreadCpu {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        thread_cpu()
    }
    fn end(&self, started: Duration) -> Duration {
        thread_cpu().saturating_sub(started)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}

/// Distinct messages (and keys) cycled through, the same for every row.
const MESSAGES: usize = 64;

struct Fixture {
    digests: Vec<B256>,
    k256_keys: Vec<PrivateKeySigner>,
    c_keys: Vec<SecretKey>,
    signatures: Vec<Signature>,
    attestations: Vec<SignedAttestation>,
    domain: alloy::sol_types::Eip712Domain,
}

fn fixture() -> Fixture {
    let domain = attesta_sdk::domain(31_337, Address::repeat_byte(1));
    let k256_keys: Vec<PrivateKeySigner> = (0..MESSAGES)
        .map(|i| PrivateKeySigner::from_bytes(&keccak256((i as u64).to_be_bytes())).unwrap())
        .collect();
    let c_keys =
        k256_keys.iter().map(|k| SecretKey::from_byte_array(k.to_bytes().0).unwrap()).collect();
    let attestations: Vec<SignedAttestation> = (0..MESSAGES)
        .map(|i| {
            Attestation::new(
                U256::from(i),
                keccak256(b"model"),
                keccak256((i as u64).to_be_bytes()),
                keccak256(b"result"),
                keccak256(b"runtime"),
            )
            .sign(&k256_keys[i], &domain)
            .unwrap()
        })
        .collect();
    let digests: Vec<B256> = attestations.iter().map(|a| a.attestation.digest(&domain)).collect();
    let signatures = attestations.iter().map(|a| a.signature).collect();
    Fixture { digests, k256_keys, c_keys, signatures, attestations, domain }
}

/// Runs `f` over the fixture's messages in turn, one per iteration.
fn cycle(b: &mut criterion::Bencher<'_, ThreadCpu>, mut f: impl FnMut(usize)) {
    let mut i = 0;
    b.iter(|| {
        i = (i + 1) % MESSAGES;
        f(i)
    });
}

fn benches(c: &mut Criterion<ThreadCpu>, f: &Fixture) {
    // The C library must agree with k256 on every fixture signature before anything is timed.
    for (digest, signature) in f.digests.iter().zip(&f.signatures) {
        assert_eq!(
            quorum::recover_signature(*digest, signature).unwrap(),
            signature.recover_address_from_prehash(digest).unwrap()
        );
    }

    let mut group = c.benchmark_group("sign");
    group.bench_function("k256", |b| {
        cycle(b, |i| {
            black_box(f.k256_keys[i].sign_hash_sync(black_box(&f.digests[i])).unwrap());
        })
    });
    group.bench_function("libsecp256k1", |b| {
        cycle(b, |i| {
            let message = Message::from_digest(black_box(f.digests[i]).0);
            black_box(SECP256K1.sign_ecdsa_recoverable(message, &f.c_keys[i]));
        })
    });
    group.finish();

    let mut group = c.benchmark_group("recover");
    group.bench_function("k256", |b| {
        cycle(b, |i| {
            black_box(
                f.signatures[i].recover_address_from_prehash(black_box(&f.digests[i])).unwrap(),
            );
        })
    });
    group.bench_function("libsecp256k1", |b| {
        cycle(b, |i| {
            black_box(
                quorum::recover_signature(black_box(f.digests[i]), &f.signatures[i]).unwrap(),
            );
        })
    });
    group.finish();

    let mut group = c.benchmark_group("verify_attestation");
    group.bench_function("k256", |b| {
        cycle(b, |i| {
            // What `SignedAttestation::verify` did before the switch.
            let a = black_box(&f.attestations[i]);
            assert!(a.signature.s() <= quorum::SECP256K1_HALF_N);
            let digest = a.attestation.digest(&f.domain);
            assert_eq!(a.signature.recover_address_from_prehash(&digest).unwrap(), a.signer);
        })
    });
    group.bench_function("libsecp256k1", |b| {
        cycle(b, |i| black_box(&f.attestations[i]).verify(&f.domain).unwrap())
    });
    group.finish();
}

/// Criterion's output directory, where it keeps each benchmark's samples.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target"))
}

/// Per-sample nanoseconds per operation of one benchmark: median, min, max.
fn samples(group: &str, function: &str) -> Option<(f64, f64, f64)> {
    let path = target_dir().join("criterion").join(group).join(function).join("new/sample.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let iters = json["iters"].as_array()?;
    let times = json["times"].as_array()?;
    let mut per_op: Vec<f64> =
        iters.iter().zip(times).filter_map(|(n, t)| Some(t.as_f64()? / n.as_f64()?)).collect();
    per_op.sort_by(f64::total_cmp);
    Some((per_op[per_op.len() / 2], *per_op.first()?, *per_op.last()?))
}

fn rate(ns: f64) -> String {
    let per_s = (1e9 / ns).round() as u64;
    let digits = per_s.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Writes the Markdown table of ops/s (median, and the range over criterion's samples).
fn write_book() {
    let mut table = String::from(
        "| operation | k256: ops/s, one core, median (min–max) | libsecp256k1: ops/s, one core, median (min–max) | libsecp256k1 / k256 (medians) |\n\
         | --- | ---: | ---: | ---: |\n",
    );
    let rows = [
        ("sign", "sign a 32-byte digest"),
        ("recover", "recover the signer's address"),
        ("verify_attestation", "verify a signed attestation (EIP-712 digest + recovery)"),
    ];
    for (group, label) in rows {
        let (Some(k), Some(c)) = (samples(group, "k256"), samples(group, "libsecp256k1")) else {
            println!("signatures: no samples for {group} (filtered out?); table not written");
            return;
        };
        table.push_str(&format!(
            "| {label} | **{}** ({}–{}) | **{}** ({}–{}) | **{:.1}×** |\n",
            rate(k.0),
            rate(k.2),
            rate(k.1),
            rate(c.0),
            rate(c.2),
            rate(c.1),
            k.0 / c.0
        ));
    }
    let dir = target_dir().join("bench-book");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("signatures.md");
    std::fs::write(&path, &table).unwrap();
    println!("\n{table}\nwritten to {}", path.display());
}

fn main() {
    let f = fixture();
    let mut c = Criterion::default().with_measurement(ThreadCpu).configure_from_args();
    benches(&mut c, &f);
    c.final_summary();
    write_book();
}
