//! The `attesta-node` binary as an operator runs it: keystore, runtime id, operator commands on
//! a real anvil chain, `exec` through the real sandbox, and `attest` checked against the
//! JobEscrow contract's own digest.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use alloy::primitives::{Address, B256, Signature, U256};
use alloy::signers::local::PrivateKeySigner;
use attesta_sdk::bindings::{JobEscrow, StakingRegistry};
use attesta_sdk::canonical::CanonicalOutput;
use attesta_sdk::input::{Input, Tensor, Values};
use attesta_sdk::testing::Devnet;
use attesta_sdk::{AttestaClient, Attestation, SignedAttestation};
use serde_json::Value;
use tempfile::TempDir;

const PASSWORD: &str = "correct horse battery staple";

fn node(args: &[&str]) -> Output {
    node_env(args, &[])
}

fn node_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_attesta-node"));
    cmd.args(args)
        .env_remove("ATTESTA_KEYSTORE_PASSWORD")
        .env_remove("ATTESTA_RPC_URL")
        .env_remove("ATTESTA_DEPLOYMENT")
        .env_remove("ATTESTA_KEYSTORE")
        .env("RUST_LOG", "debug");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "failed: {}\n{}", stdout(&o), stderr(&o));
    stdout(&o)
}

fn json(o: Output) -> Value {
    serde_json::from_str(&ok(o)).unwrap()
}

/// Exit code 1 with a one-line `error:` message (no panic, no backtrace) containing `needle`.
fn user_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stdout: {}\nstderr: {err}", stdout(o));
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{err}");
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(needle), "expected {needle:?} in {line:?}");
    assert_eq!(err.lines().filter(|l| l.starts_with("error")).count(), 1, "{err}");
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

struct Keystore {
    dir: TempDir,
    address: Address,
}

impl Keystore {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).unwrap();
        let out = ok(node(&[
            "keys",
            "new",
            "--keystore",
            p(&dir.path().join("ks")),
            "--password-file",
            p(&dir.path().join("password")),
        ]));
        let address = out.trim().parse().unwrap();
        Self { dir, address }
    }

    fn ks(&self) -> PathBuf {
        self.dir.path().join("ks")
    }

    fn password_file(&self) -> PathBuf {
        self.dir.path().join("password")
    }

    /// The keystore's key, decrypted here (not by the CLI) to check nothing leaks it.
    fn secret_hex(&self) -> String {
        let key = PrivateKeySigner::decrypt_keystore(self.ks().join("signing-key.json"), PASSWORD)
            .unwrap();
        assert_eq!(key.address(), self.address);
        alloy::hex::encode(key.to_bytes())
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--keystore".into(),
            p(&self.ks()).into(),
            "--password-file".into(),
            p(&self.password_file()).into(),
        ]
    }
}

fn with<'a>(base: &'a [&'a str], extra: &'a [String]) -> Vec<&'a str> {
    base.iter().copied().chain(extra.iter().map(String::as_str)).collect()
}

#[test]
fn keys_new_show_round_trip_and_never_leak_the_key() {
    let ks = Keystore::new();
    let secret = ks.secret_hex();
    let file = std::fs::read_to_string(ks.ks().join("signing-key.json")).unwrap();
    assert!(!file.to_lowercase().contains(&secret), "keystore holds the key in clear");
    assert!(file.contains("\"crypto\"") && file.contains("scrypt"), "{file}");

    // show with the password file, then with the environment variable.
    let show = node(&with(&["keys", "show", "-vv"], &ks.args()));
    let (out, err) = (stdout(&show), stderr(&show));
    assert_eq!(ok(show).trim().parse::<Address>().unwrap(), ks.address);
    for text in [&out, &err] {
        assert!(!text.to_lowercase().contains(&secret));
        assert!(!text.contains(PASSWORD));
    }
    let env = node_env(
        &["keys", "show", "--json", "--keystore", p(&ks.ks())],
        &[("ATTESTA_KEYSTORE_PASSWORD", PASSWORD)],
    );
    let v = json(env);
    assert_eq!(v["address"].as_str().unwrap().parse::<Address>().unwrap(), ks.address);

    // The password file wins over the environment.
    let both =
        node_env(&with(&["keys", "show"], &ks.args()), &[("ATTESTA_KEYSTORE_PASSWORD", "wrong")]);
    assert_eq!(ok(both).trim().parse::<Address>().unwrap(), ks.address);

    // A wrong password is a clear user error, and does not echo the password either.
    let wrong = node_env(
        &["keys", "show", "--keystore", p(&ks.ks())],
        &[("ATTESTA_KEYSTORE_PASSWORD", "not the password")],
    );
    user_error(&wrong, "wrong password");
    assert!(!stderr(&wrong).contains("not the password"));

    // keys new never overwrites a key.
    let again = node(&with(&["keys", "new"], &ks.args()));
    user_error(&again, "already exists");
    assert_eq!(ks.secret_hex(), secret);
}

#[test]
fn keys_without_a_password_or_keystore_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    // No password file, no env, stdin not a terminal: no prompt possible.
    let out = Command::new(env!("CARGO_BIN_EXE_attesta-node"))
        .args(["keys", "new", "--keystore", p(&dir.path().join("ks"))])
        .env_remove("ATTESTA_KEYSTORE_PASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    user_error(&out, "--password-file");
    assert!(!dir.path().join("ks/signing-key.json").exists());
    let missing = node_env(
        &["keys", "show", "--keystore", p(&dir.path().join("none"))],
        &[("ATTESTA_KEYSTORE_PASSWORD", PASSWORD)],
    );
    user_error(&missing, "keys new");
    let no_file = node(&[
        "keys",
        "new",
        "--keystore",
        p(&dir.path().join("ks")),
        "--password-file",
        p(&dir.path().join("absent")),
    ]);
    user_error(&no_file, "password file");
}

#[test]
fn usage_errors_exit_2_and_runtime_id_matches_the_library() {
    assert_eq!(node(&["no-such-command"]).status.code(), Some(2));
    assert_eq!(node(&["operator", "stake"]).status.code(), Some(2));
    assert_eq!(node(&["operator", "stake", "--amount", "lots"]).status.code(), Some(2));
    assert_eq!(node(&["operator", "activate"]).status.code(), Some(2));
    let id = ok(node(&["runtime-id"]));
    assert_eq!(id.trim().parse::<B256>().unwrap(), attesta_node::runtime::runtime_id());
    let v = json(node(&["runtime-id", "--json"]));
    assert_eq!(v["descriptor"], attesta_node::runtime::runtime_descriptor());
}

#[test]
fn bad_chain_inputs_are_one_line_errors() {
    let ks = Keystore::new();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("account.key");
    std::fs::write(&key, alloy::hex::encode(PrivateKeySigner::random().to_bytes())).unwrap();
    let malformed = dir.path().join("bad.json");
    std::fs::write(&malformed, "{ not json").unwrap();
    let good = dir.path().join("deployment.json");
    let deployment = attesta_sdk::Deployment {
        chain_id: 31337,
        block_number: 0,
        admin: Address::ZERO,
        token: Address::ZERO,
        staking_registry: Address::ZERO,
        job_escrow: Address::ZERO,
        slashing: Address::ZERO,
    };
    std::fs::write(&good, serde_json::to_string(&deployment).unwrap()).unwrap();
    let status = |deployment: &Path, rpc: &str| {
        node(&[
            "operator",
            "status",
            "--deployment",
            p(deployment),
            "--rpc-url",
            rpc,
            "--private-key-file",
            p(&key),
        ])
    };
    user_error(&status(&dir.path().join("absent.json"), "http://127.0.0.1:1"), "deploy");
    user_error(&status(&malformed, "http://127.0.0.1:1"), "not a deployment file");
    user_error(&status(&good, "http://127.0.0.1:1"), "cannot reach the RPC endpoint");
    user_error(&status(&good, "not a url"), "not a URL");
    let bad_key = dir.path().join("bad.key");
    std::fs::write(&bad_key, "zz").unwrap();
    let o = node(&[
        "operator",
        "stake",
        "--amount",
        "1",
        "--deployment",
        p(&good),
        "--rpc-url",
        "http://127.0.0.1:1",
        "--private-key-file",
        p(&bad_key),
    ]);
    user_error(&o, "64 hex digits");
    // attest: missing files and a dead RPC.
    let canon = dir.path().join("out.ato1");
    std::fs::write(&canon, canonical()).unwrap();
    let model = dir.path().join("model.onnx");
    std::fs::write(&model, b"model bytes").unwrap();
    let attest = |input: &Path, extra: &[&str]| {
        let mut args = vec![
            "attest",
            "--job-id",
            "1",
            "--model",
            p(&model),
            "--input",
            p(input),
            "--result",
            p(&canon),
            "--deployment",
            p(&good),
        ];
        args.extend_from_slice(extra);
        node(&with(&args, &ks.args()))
    };
    user_error(&attest(&dir.path().join("absent.bin"), &["--offline"]), "input file");
    user_error(&attest(&model, &[]), "--rpc-url");
    user_error(&attest(&model, &["--rpc-url", "http://127.0.0.1:1"]), "cannot reach");
    let o = node(&["exec", "--model", p(&dir.path().join("absent.onnx")), "--input", p(&model)]);
    user_error(&o, "model file");
}

fn canonical() -> Vec<u8> {
    CanonicalOutput::from_f32(4, &[(vec![2], vec![0.25, -1.5])]).unwrap().encode()
}

fn write_deployment(devnet: &Devnet, dir: &Path) -> PathBuf {
    let path = dir.join("deployment.json");
    std::fs::write(&path, serde_json::to_string_pretty(&devnet.deployment).unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_lifecycle_on_anvil() {
    let devnet = Devnet::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let deployment = write_deployment(&devnet, dir.path());
    let rpc = devnet.anvil.endpoint();
    let account = devnet.key(1);
    let key_file = dir.path().join("account.key");
    std::fs::write(&key_file, format!("0x{}\n", alloy::hex::encode(account.to_bytes()))).unwrap();
    let registry = StakingRegistry::new(devnet.deployment.staking_registry, &devnet.provider);
    let min_stake = registry.minStake().call().await.unwrap();
    let period = registry.unbondingPeriod().call().await.unwrap();
    devnet.mint(account.address(), min_stake * U256::from(2)).await;
    let ks = Keystore::new();
    let chain = [
        "--deployment".to_string(),
        p(&deployment).to_string(),
        "--rpc-url".to_string(),
        rpc.clone(),
        "--private-key-file".to_string(),
        p(&key_file).to_string(),
    ];
    let run = |base: &[&str], extra: &[String]| {
        let args: Vec<&str> = base
            .iter()
            .copied()
            .chain(chain.iter().map(String::as_str))
            .chain(extra.iter().map(String::as_str))
            .collect();
        tokio::task::block_in_place(|| node(&args))
    };
    let status = || json(run(&["operator", "status", "--json"], &[]));

    let s = status();
    assert_eq!(s["stake"], "0");
    assert_eq!(s["operator"].as_str().unwrap().parse::<Address>().unwrap(), account.address());

    let amount = (min_stake * U256::from(2)).to_string();
    ok(run(&["operator", "stake", "--amount", &amount], &[]));
    let s = status();
    assert_eq!(s["stake"], amount);
    assert_eq!(s["signer"].as_str().unwrap().parse::<Address>().unwrap(), Address::ZERO);
    assert_eq!(s["active"], false);
    // Staked but no signing key yet: activate is refused with what to do.
    user_error(&run(&["operator", "activate"], &[]), "register a signing key first");

    ok(run(&["operator", "register"], &ks.args()));
    let s = status();
    assert_eq!(s["signer"].as_str().unwrap().parse::<Address>().unwrap(), ks.address);
    assert_eq!(s["active"], true);
    assert_eq!(s["jailed"], false);
    // The chain agrees, read without the CLI.
    let op = registry.operator(account.address()).call().await.unwrap();
    assert_eq!(op.signer, ks.address);
    assert!(registry.isActiveSigner(ks.address).call().await.unwrap());

    // Registering joined the active set already; activating again is a one-line user error.
    user_error(&run(&["operator", "activate"], &[]), "already active");
    // The operator steps out (the registry's own call; the CLI has no deactivate), then rejoins
    // through the CLI.
    registry
        .deactivate()
        .from(account.address())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(status()["active"], false);
    assert!(!registry.isActiveSigner(ks.address).call().await.unwrap());
    let a = json(run(&["operator", "activate", "--json"], &[]));
    assert_eq!(a["action"], "activate");
    assert_eq!(a["operator"].as_str().unwrap().parse::<Address>().unwrap(), account.address());
    assert!(a["txHash"].as_str().unwrap().parse::<B256>().is_ok(), "{a}");
    assert_eq!(status()["active"], true);
    assert!(registry.isActiveSigner(ks.address).call().await.unwrap());

    // Human-readable status names the same signer.
    let text = ok(run(&["operator", "status"], &[]));
    assert!(text.contains(&ks.address.to_string()), "{text}");

    ok(run(&["operator", "unstake", "--amount", &min_stake.to_string()], &[]));
    let s = status();
    assert_eq!(s["stake"], min_stake.to_string());
    assert_eq!(s["unbonding"], min_stake.to_string());

    // Too early: the contract's revert comes back as a one-line user error.
    user_error(&run(&["operator", "withdraw"], &[]), "withdrawable");

    devnet.advance(period.to::<u64>() + 1).await;
    let w = json(run(&["operator", "withdraw", "--json"], &[]));
    assert_eq!(w["amount"], min_stake.to_string());
    assert_eq!(status()["unbonding"], "0");

    // An RPC on another chain than the deployment's is refused.
    let other = dir.path().join("other.json");
    let mut d = devnet.deployment.clone();
    d.chain_id += 1;
    std::fs::write(&other, serde_json::to_string(&d).unwrap()).unwrap();
    let o = tokio::task::block_in_place(|| {
        node(&[
            "operator",
            "status",
            "--deployment",
            p(&other),
            "--rpc-url",
            &rpc,
            "--private-key-file",
            p(&key_file),
        ])
    });
    user_error(&o, "serves chain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attest_signs_what_the_escrow_verifies_and_refuses_other_jobs() {
    let devnet = Devnet::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let deployment = write_deployment(&devnet, dir.path());
    let rpc = devnet.anvil.endpoint();
    let model = dir.path().join("model.onnx");
    std::fs::write(&model, b"an onnx model, as far as hashing goes").unwrap();
    let input = dir.path().join("input.bin");
    std::fs::write(&input, b"job input").unwrap();
    let result = dir.path().join("output.ato1");
    std::fs::write(&result, canonical()).unwrap();

    let client_key = devnet.key(3);
    let fee = U256::from(10).pow(U256::from(16));
    devnet.mint(client_key.address(), fee * U256::from(2)).await;
    let client = AttestaClient::new(
        devnet.provider.clone(),
        devnet.deployment.clone(),
        client_key.address(),
    );
    let deadline = devnet.now().await + 3600;
    let model_id = attesta_sdk::model_id(std::fs::read(&model).unwrap());
    let input_hash = attesta_sdk::input_hash(std::fs::read(&input).unwrap());
    let job_id = client.create_job(model_id, input_hash, fee, deadline).await.unwrap();
    let ks = Keystore::new();

    let attest = |job: &str, input: &Path, extra: &[&str]| {
        let mut args = vec![
            "attest",
            "--json",
            "--job-id",
            job,
            "--model",
            p(&model),
            "--input",
            p(input),
            "--result",
            p(&result),
            "--deployment",
            p(&deployment),
        ];
        args.extend_from_slice(extra);
        tokio::task::block_in_place(|| node(&with(&args, &ks.args())))
    };
    let v = json(attest(&job_id.to_string(), &input, &["--rpc-url", &rpc]));
    let digest: B256 = v["digest"].as_str().unwrap().parse().unwrap();
    let sig_bytes = alloy::hex::decode(v["signature"].as_str().unwrap()).unwrap();
    let signature = Signature::from_raw(&sig_bytes).unwrap();
    let attestation = Attestation::new(
        job_id,
        model_id,
        input_hash,
        attesta_sdk::result_hash(canonical()),
        attesta_node::runtime::runtime_id(),
    );
    assert_eq!(v["runtimeId"].as_str().unwrap().parse::<B256>().unwrap(), attestation.runtimeId);
    let domain = devnet.deployment.attestation_domain();
    assert_eq!(attestation.digest(&domain), digest);
    SignedAttestation { attestation: attestation.clone(), signer: ks.address, signature }
        .verify(&domain)
        .unwrap();
    assert_eq!(signature.recover_address_from_prehash(&digest).unwrap(), ks.address);
    // The contract computes the same digest.
    let escrow = JobEscrow::new(devnet.deployment.job_escrow, &devnet.provider);
    let onchain = escrow.hashAttestation(attestation.into()).call().await.unwrap();
    assert_eq!(onchain, digest);
    let offline = attest(&job_id.to_string(), &input, &["--offline"]);
    let secret = ks.secret_hex();
    assert!(!stderr(&offline).contains(&secret) && !stdout(&offline).contains(&secret));
    assert!(!stderr(&offline).contains(PASSWORD));
    assert_eq!(json(offline)["signature"], v["signature"]);

    // A different input than the job's: refused, nothing signed.
    let other = dir.path().join("other.bin");
    std::fs::write(&other, b"someone else's input").unwrap();
    let refused = attest(&job_id.to_string(), &other, &["--rpc-url", &rpc]);
    user_error(&refused, "refusing to attest");
    assert!(stdout(&refused).is_empty());
    // A job that does not exist.
    user_error(&attest("999", &input, &["--rpc-url", &rpc]), "does not exist");
    // A result that is not canonical output.
    std::fs::write(&result, b"raw floats").unwrap();
    user_error(&attest(&job_id.to_string(), &input, &["--rpc-url", &rpc]), "canonical");
}

#[test]
fn exec_runs_a_job_in_the_sandbox() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/tiny.onnx");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.ati1");
    let bytes =
        Input::new(vec![Tensor::new(vec![1, 4], Values::F32(vec![0.3, -1.2, 2.5, 0.7])).unwrap()])
            .unwrap()
            .encode();
    std::fs::write(&input, &bytes).unwrap();
    let scratch = dir.path().join("scratch");
    let v = json(node(&[
        "exec",
        "--json",
        "--model",
        p(&model),
        "--input",
        p(&input),
        "--scratch",
        p(&scratch),
    ]));
    let expected = attesta_node::inference::run_canonical(&model, &bytes).unwrap();
    let output = PathBuf::from(v["output"].as_str().unwrap());
    assert_eq!(std::fs::read(&output).unwrap(), expected);
    assert_eq!(
        v["resultHash"].as_str().unwrap().parse::<B256>().unwrap(),
        attesta_sdk::result_hash(&expected)
    );
    assert_eq!(
        v["modelId"].as_str().unwrap().parse::<B256>().unwrap(),
        attesta_sdk::model_id(std::fs::read(&model).unwrap())
    );
    assert_eq!(
        v["inputHash"].as_str().unwrap().parse::<B256>().unwrap(),
        attesta_sdk::input_hash(&bytes)
    );
    assert!(v["timings"]["totalMs"].as_f64().unwrap() > 0.0);
    // By default the job ran on a worker prepared while the files were read; --cold-sandbox
    // starts it afterwards. Same result either way.
    assert_eq!(v["pooled"], true);
    let cold = json(node(&[
        "exec",
        "--json",
        "--cold-sandbox",
        "--model",
        p(&model),
        "--input",
        p(&input),
        "--scratch",
        p(&scratch),
    ]));
    assert_eq!(cold["pooled"], false);
    assert_eq!(cold["resultHash"], v["resultHash"]);
    assert!(cold["timings"]["startMs"].as_f64().unwrap() > 0.0);

    // A malformed input is the job's error, reported in one line.
    std::fs::write(&input, b"not an input").unwrap();
    let o = node(&["exec", "--model", p(&model), "--input", p(&input), "--scratch", p(&scratch)]);
    user_error(&o, "job");
    // An absurd timeout is refused before anything runs.
    let o = node(&["exec", "--model", p(&model), "--input", p(&input), "--timeout", "-1"]);
    assert_ne!(o.status.code(), Some(0));
}
