//! The sandbox with real models: the sandboxed worker gives the same canonical output as
//! in-process inference, and every failure of a real job ends in a typed error. The hostile
//! cases are in `tests/escape.rs` (feature `escape-tests`).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use attesta_node::inference;
use attesta_node::sandbox::{
    Limits, MIN_LANDLOCK_ABI, Policy, Pool, PoolConfig, SandboxError, probe, run_job,
};
use attesta_sdk::input::{Input, Tensor, Values, magika_input};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

/// The demo model; tools/fetch-models installs it from its PyPI wheel when missing.
fn magika() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let model = repo.join("models/magika-1.0.3/model.onnx");
    if !model.exists() {
        let status = std::process::Command::new("python3")
            .arg(repo.join("tools/fetch-models"))
            .status()
            .unwrap();
        assert!(status.success(), "tools/fetch-models failed");
    }
    model
}

fn tiny_input() -> Vec<u8> {
    Input::new(vec![Tensor::new(vec![1, 4], Values::F32(vec![0.3, -1.2, 2.5, 0.7])).unwrap()])
        .unwrap()
        .encode()
}

fn policy(model: &Path, scratch: &tempfile::TempDir) -> Policy {
    Policy::new(model, scratch.path()).with_worker(env!("CARGO_BIN_EXE_attesta-node"))
}

#[test]
fn probe_finds_every_feature_on_this_machine() {
    let report = probe();
    assert_eq!(report.missing(), Vec::<String>::new(), "{report:?}");
    assert!(report.landlock_abi >= MIN_LANDLOCK_ABI as i32);
}

#[test]
fn tiny_model_in_the_sandbox_matches_in_process_inference() {
    let scratch = tempfile::tempdir().unwrap();
    let model = testdata("tiny.onnx");
    let expected = inference::run_canonical(&model, &tiny_input()).unwrap();
    let out = run_job(&policy(&model, &scratch), &tiny_input()).unwrap();
    assert_eq!(out.canonical, expected);
    // The oldest supported Landlock ABI runs it too.
    let mut oldest = policy(&model, &scratch);
    oldest.max_landlock_abi = Some(MIN_LANDLOCK_ABI);
    assert_eq!(run_job(&oldest, &tiny_input()).unwrap().canonical, expected);
}

#[test]
fn prepared_workers_give_the_same_output_as_cold_ones() {
    let model = testdata("tiny.onnx");
    let expected = inference::run_canonical(&model, &tiny_input()).unwrap();
    let pool =
        Pool::new(PoolConfig::new(1).with_worker(env!("CARGO_BIN_EXE_attesta-node"))).unwrap();
    for abi in [Some(MIN_LANDLOCK_ABI), None, None] {
        let scratch = tempfile::tempdir().unwrap();
        let mut policy = policy(&model, &scratch);
        policy.max_landlock_abi = abi;
        let out = pool.run_job(&policy, &tiny_input()).unwrap();
        assert_eq!(out.canonical, expected);
        assert!(out.pooled);
        // The worker measured its start on the node's clock: after the hand-over, before the end.
        assert!(out.start > std::time::Duration::ZERO && out.start < out.elapsed, "{out:?}");
    }
    let stats = pool.stats();
    assert_eq!((stats.pooled, stats.cold), (3, 0), "{stats:?}");
    let cold = run_job(&policy(&model, &tempfile::tempdir().unwrap()), &tiny_input()).unwrap();
    assert!(!cold.pooled && cold.start > std::time::Duration::ZERO && cold.start < cold.elapsed);
}

#[test]
fn demo_model_in_the_sandbox_matches_in_process_inference() {
    let scratch = tempfile::tempdir().unwrap();
    let model = magika();
    let file = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let input = magika_input(&file).encode();
    let expected = inference::run_canonical(&model, &input).unwrap();
    let out = run_job(&policy(&model, &scratch), &input).unwrap();
    assert_eq!(out.canonical, expected);
    // Twice in a row: same bytes.
    assert_eq!(run_job(&policy(&model, &scratch), &input).unwrap().canonical, expected);
}

#[test]
fn malformed_model_and_input_are_job_errors() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(
        &garbage,
        (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    let result = run_job(&policy(&garbage, &scratch), &tiny_input());
    assert!(
        matches!(&result, Err(SandboxError::Job { message }) if !message.is_empty()),
        "{result:?}"
    );

    let result = run_job(&policy(&testdata("tiny.onnx"), &scratch), b"not an ATI1 input");
    assert!(matches!(&result, Err(SandboxError::Job { .. })), "{result:?}");

    // A model that references an external data file outside the sandbox is refused, not read.
    let result = run_job(&policy(&testdata("external.onnx"), &scratch), &tiny_input());
    assert!(matches!(&result, Err(SandboxError::Job { .. })), "{result:?}");
}

#[test]
fn bad_policies_are_refused_before_spawning() {
    let scratch = tempfile::tempdir().unwrap();
    let missing = scratch.path().join("missing.onnx");
    let result = run_job(&policy(&missing, &scratch), b"");
    assert!(matches!(result, Err(SandboxError::InvalidPolicy(_))), "{result:?}");
    let relative = Policy::new("tiny.onnx", scratch.path());
    assert!(matches!(run_job(&relative, b""), Err(SandboxError::InvalidPolicy(_))));
    let small = policy(&testdata("tiny.onnx"), &scratch)
        .with_limits(Limits { max_input: 4, ..Limits::default() });
    assert!(matches!(run_job(&small, &tiny_input()), Err(SandboxError::InputTooLarge { .. })));
    let worker = policy(&testdata("tiny.onnx"), &scratch).with_worker("/nonexistent/attesta-node");
    assert!(matches!(run_job(&worker, &tiny_input()), Err(SandboxError::Io(_))));
}

#[test]
fn a_worker_started_without_configuration_reports_a_setup_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_attesta-node"))
        .arg("__worker")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"kind\":\"setup\""), "{stderr}");
}

#[test]
fn too_little_memory_for_the_model_is_a_memory_error() {
    let scratch = tempfile::tempdir().unwrap();
    let model = magika();
    let input = magika_input(b"hello").encode();
    let tight = policy(&model, &scratch)
        .with_limits(Limits { address_space: 24 << 20, ..Limits::default() });
    let result = run_job(&tight, &input);
    assert!(
        matches!(result, Err(SandboxError::MemoryLimit { .. }) | Err(SandboxError::Job { .. })),
        "{result:?}"
    );
}

#[test]
fn a_kernel_without_a_feature_is_reported_missing() {
    let complete = probe();
    for broken in [
        attesta_node::sandbox::ProbeReport { user_namespaces: false, ..complete.clone() },
        attesta_node::sandbox::ProbeReport { landlock_abi: 0, ..complete.clone() },
        attesta_node::sandbox::ProbeReport { seccomp: false, ..complete.clone() },
    ] {
        assert_eq!(broken.missing().len(), 1, "{broken:?}");
    }
    // A cap below the kernel's ABI wins; a cap above it does not.
    assert_eq!(complete.landlock(Some(MIN_LANDLOCK_ABI)), MIN_LANDLOCK_ABI);
    assert_eq!(complete.landlock(None) as i32, complete.landlock_abi.min(10));
}
