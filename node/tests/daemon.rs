//! `attesta-node run` against a small relayer stand-in that implements the node routes of
//! docs/relayer.md faithfully: it verifies every request's `RequestAuth` (signature, clock skew,
//! replayed nonces), serves blobs, offers each open job until this signer has attested it, and
//! records what the node sends. Jobs run in the real sandbox with the tiny test model.
//!
//! The end-to-end test against the real relayer lives with the relayer.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use attesta_node::daemon::{Daemon, NodeConfig, Settings, shutdown_channel};
use attesta_node::keys::{self, Password};
use attesta_sdk::Deployment;
use attesta_sdk::input::{Input, Tensor, Values};
use attesta_sdk::relay::{
    ApiError, AttestationAccepted, AttestationSubmission, Heartbeat, NodeHello, RequestAuth,
    WorkBatch, WorkItem,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

const NODE_BIN: &str = env!("CARGO_BIN_EXE_attesta-node");

fn tiny_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/tiny.onnx")
}

fn tiny_input(values: [f32; 4]) -> Vec<u8> {
    Input::new(vec![Tensor::new(vec![1, 4], Values::F32(values.to_vec())).unwrap()])
        .unwrap()
        .encode()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn deployment() -> Deployment {
    // Signing needs no chain: only the chain id and escrow address (the EIP-712 domain).
    Deployment {
        chain_id: 31337,
        block_number: 1,
        admin: Address::repeat_byte(1),
        token: Address::repeat_byte(2),
        staking_registry: Address::repeat_byte(3),
        job_escrow: Address::repeat_byte(4),
        slashing: Address::repeat_byte(5),
    }
}

// ---------------------------------------------------------------------------------------------
// The relayer stand-in.

/// What the stand-in serves and what it saw.
#[derive(Default)]
struct Relay {
    /// Bytes served per hash (a test may serve wrong bytes on purpose).
    blobs: HashMap<B256, Vec<u8>>,
    /// Open jobs.
    jobs: Vec<WorkItem>,
    /// Answer the next attestation of this job with this error.
    reject_attestation: HashMap<U256, (StatusCode, &'static str)>,
    /// Answer this many node requests with 503 first.
    unavailable: usize,

    registered: Vec<(Address, NodeHello)>,
    heartbeats: Vec<(Address, Heartbeat)>,
    /// Accepted attestations.
    attestations: Vec<(Address, AttestationSubmission)>,
    /// Attestation posts per job, accepted or not.
    attestation_posts: HashMap<U256, usize>,
    blob_gets: HashMap<B256, usize>,
    work_polls: usize,
    requests: usize,
    auth_failures: Vec<String>,
    nonces: HashSet<(Address, B256)>,
}

type Shared = Arc<Mutex<Relay>>;

fn api_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, axum::Json(ApiError { code: code.into(), message: message.into() })).into_response()
}

/// Every route in one handler, so each request passes the same auth check first.
async fn handle(
    State(relay): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path_and_query = uri.path_and_query().map_or(uri.path(), |p| p.as_str()).to_string();
    let auth = RequestAuth::from_headers(|name| headers.get(name).and_then(|v| v.to_str().ok()))
        .and_then(|auth| {
            auth.verify(method.as_str(), &path_and_query, &body, now()).map(|()| auth)
        });
    let signer = {
        let mut r = relay.lock().unwrap();
        r.requests += 1;
        let auth = match auth {
            Ok(auth) => auth,
            Err(e) => {
                r.auth_failures.push(format!("{method} {path_and_query}: {e}"));
                return api_error(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string());
            }
        };
        if !r.nonces.insert((auth.signer, auth.nonce)) {
            return api_error(StatusCode::UNAUTHORIZED, "replayed_nonce", "nonce seen before");
        }
        if r.unavailable > 0 {
            r.unavailable -= 1;
            return api_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "starting up");
        }
        auth.signer
    };
    let path = uri.path();
    match (method, path) {
        (Method::POST, "/v1/nodes/register") => {
            let hello: NodeHello = serde_json::from_slice(&body).unwrap();
            relay.lock().unwrap().registered.push((signer, hello));
            axum::Json(serde_json::json!({})).into_response()
        }
        (Method::POST, "/v1/nodes/heartbeat") => {
            let beat: Heartbeat = serde_json::from_slice(&body).unwrap();
            relay.lock().unwrap().heartbeats.push((signer, beat));
            axum::Json(serde_json::json!({})).into_response()
        }
        (Method::GET, "/v1/nodes/work") => {
            let wait: u64 = uri
                .query()
                .and_then(|q| q.strip_prefix("wait="))
                .and_then(|w| w.parse().ok())
                .unwrap_or(0);
            let until = Instant::now() + Duration::from_secs(wait.min(5));
            relay.lock().unwrap().work_polls += 1;
            loop {
                let jobs: Vec<WorkItem> = {
                    let r = relay.lock().unwrap();
                    let attested: HashSet<U256> = r
                        .attestations
                        .iter()
                        .filter(|(s, _)| *s == signer)
                        .map(|(_, a)| a.attestation.attestation.jobId)
                        .collect();
                    r.jobs.iter().filter(|j| !attested.contains(&j.job_id)).cloned().collect()
                };
                if !jobs.is_empty() || Instant::now() >= until {
                    return axum::Json(WorkBatch { jobs }).into_response();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        (Method::POST, "/v1/nodes/attestations") => {
            let submission: AttestationSubmission = serde_json::from_slice(&body).unwrap();
            let job_id = submission.attestation.attestation.jobId;
            let mut r = relay.lock().unwrap();
            *r.attestation_posts.entry(job_id).or_default() += 1;
            if let Some((status, code)) = r.reject_attestation.remove(&job_id) {
                return api_error(status, code, "rejected by the test");
            }
            if submission.attestation.signer != signer {
                return api_error(
                    StatusCode::FORBIDDEN,
                    "signer_mismatch",
                    "not the request's signer",
                );
            }
            r.attestations.push((signer, submission));
            axum::Json(AttestationAccepted { agreeing: 1, threshold: 1 }).into_response()
        }
        (Method::GET, p) if p.starts_with("/v1/blobs/") => {
            let hash: B256 = p["/v1/blobs/".len()..].parse().unwrap();
            let mut r = relay.lock().unwrap();
            *r.blob_gets.entry(hash).or_default() += 1;
            match r.blobs.get(&hash) {
                Some(bytes) => bytes.clone().into_response(),
                None => api_error(StatusCode::NOT_FOUND, "not_found", "no such blob"),
            }
        }
        _ => api_error(StatusCode::NOT_FOUND, "not_found", "no such route"),
    }
}

async fn serve(listener: tokio::net::TcpListener, relay: Shared) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new().fallback(handle).with_state(relay);
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    })
}

async fn start_relay(relay: Shared) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    serve(listener, relay).await;
    url
}

/// Polls `check` on the stand-in's state until it holds.
async fn until(relay: &Shared, what: &str, secs: u64, check: impl Fn(&Relay) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check(&relay.lock().unwrap()) {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn job(id: u64, model: &[u8], input: &[u8]) -> WorkItem {
    WorkItem {
        job_id: U256::from(id),
        model_id: attesta_sdk::model_id(model),
        input_hash: attesta_sdk::input_hash(input),
        deadline: now() + 3600,
        max_output_bytes: 16 * 1024,
    }
}

fn settings(url: &str, data_dir: &Path) -> Settings {
    let config = NodeConfig::parse(&format!(
        "relayer_url = \"{url}\"\ndata_dir = \"{}\"\npoll_wait_secs = 1\n\
         heartbeat_interval_secs = 1\nmax_backoff_secs = 1\nmax_concurrent_jobs = 2\n",
        data_dir.display()
    ))
    .unwrap();
    let mut settings = config.settings().unwrap();
    // In-process daemons run the worker from the real binary, not from this test executable.
    settings.worker = Some(NODE_BIN.into());
    settings
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_attests_a_job_like_exec_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let model = std::fs::read(tiny_model()).unwrap();
    let input = tiny_input([0.3, -1.2, 2.5, 0.7]);
    let work = job(7, &model, &input);
    let relay = Shared::default();
    {
        let mut r = relay.lock().unwrap();
        r.blobs.insert(work.model_id, model.clone());
        r.blobs.insert(work.input_hash, input.clone());
        r.jobs.push(work.clone());
    }
    let url = start_relay(relay.clone()).await;

    let keystore = dir.path().join("keystore");
    let key = keys::create(&keystore, &Password::new("correct horse")).unwrap();
    std::fs::write(dir.path().join("password"), "correct horse\n").unwrap();
    let deployment_file = dir.path().join("31337.json");
    std::fs::write(&deployment_file, serde_json::to_string(&deployment()).unwrap()).unwrap();
    let metrics_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    // Relative paths in the file are relative to it.
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "relayer_url = \"{url}\"\ndeployment = \"31337.json\"\ndata_dir = \"data\"\n\
             keystore = \"keystore\"\npassword_file = \"password\"\npoll_wait_secs = 1\n\
             heartbeat_interval_secs = 1\nmetrics_addr = \"{metrics_addr}\"\n"
        ),
    )
    .unwrap();
    let log = dir.path().join("node.log");
    let mut child = Command::new(NODE_BIN)
        .args(["run", "--config"])
        .arg(&config)
        .env_remove("ATTESTA_KEYSTORE_PASSWORD")
        .env_remove("ATTESTA_KEYSTORE")
        .env_remove("ATTESTA_DEPLOYMENT")
        .env_remove("ATTESTA_RELAYER_URL")
        .env_remove("ATTESTA_DATA_DIR")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        until(&relay, "an attestation and a heartbeat", 60, |r| {
            !r.attestations.is_empty() && !r.heartbeats.is_empty()
        })
        .await
    })
    .await;
    if waited.is_err() {
        let _ = child.kill();
        panic!("{}", std::fs::read_to_string(&log).unwrap());
    }

    // What `attesta-node exec` computes for the same model and input.
    let input_file = dir.path().join("input.ati1");
    std::fs::write(&input_file, &input).unwrap();
    let exec = Command::new(NODE_BIN)
        .args(["exec", "--json", "--model"])
        .arg(tiny_model())
        .arg("--input")
        .arg(&input_file)
        .arg("--scratch")
        .arg(dir.path().join("exec-scratch"))
        .output()
        .unwrap();
    assert!(exec.status.success(), "{}", String::from_utf8_lossy(&exec.stderr));
    let exec: serde_json::Value = serde_json::from_slice(&exec.stdout).unwrap();
    let exec_result: B256 = exec["resultHash"].as_str().unwrap().parse().unwrap();

    let metrics =
        reqwest::get(format!("http://{metrics_addr}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("node_jobs_attested_total 1"), "{metrics}");

    {
        let r = relay.lock().unwrap();
        assert_eq!(r.auth_failures, Vec::<String>::new());
        let (signer, hello) = &r.registered[0];
        assert_eq!(*signer, key.address());
        assert_eq!(hello.runtime_id, attesta_node::runtime::runtime_id());
        assert_eq!(hello.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(r.heartbeats[0].0, key.address());

        assert_eq!(r.attestations.len(), 1);
        let (signer, submission) = &r.attestations[0];
        let signed = &submission.attestation;
        assert_eq!(*signer, key.address());
        assert_eq!(signed.signer, key.address());
        // The signature recovers to the node's key in the deployment's domain, and only there.
        signed.verify(&deployment().attestation_domain()).unwrap();
        let other = Deployment { job_escrow: Address::repeat_byte(9), ..deployment() };
        assert!(signed.verify(&other.attestation_domain()).is_err());
        let a = &signed.attestation;
        assert_eq!(a.jobId, work.job_id);
        assert_eq!(a.modelId, keccak256(&model));
        assert_eq!(a.inputHash, keccak256(&input));
        assert_eq!(a.runtimeId, attesta_node::runtime::runtime_id());
        assert_eq!(a.resultHash, keccak256(&submission.output));
        assert_eq!(a.resultHash, exec_result);
        assert_eq!(
            submission.output.as_ref(),
            attesta_node::inference::run_canonical(&tiny_model(), &input).unwrap()
        );
        assert_eq!(r.blob_gets[&work.model_id], 1);
    }

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no exit 20 s after SIGTERM: {}", std::fs::read_to_string(&log).unwrap());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{status:?}: {log}");
    assert!(log.contains("stopped"), "{log}");
    // Scratch directories are gone; the model stays cached under its hash.
    let data = dir.path().join("data");
    assert_eq!(std::fs::read_dir(data.join("jobs")).unwrap().count(), 0);
    assert_eq!(std::fs::read(data.join("blobs").join(work.model_id.to_string())).unwrap(), model);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_blobs_and_failing_jobs_are_refused_without_stopping_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let model = std::fs::read(tiny_model()).unwrap();
    let good = tiny_input([0.3, -1.2, 2.5, 0.7]);
    let other = tiny_input([1.0, 2.0, 3.0, 4.0]);
    let tampered_input = tiny_input([9.0, 9.0, 9.0, 9.0]);
    let malformed = b"not an ATI1 input".to_vec();
    let fake_model = b"a model the relayer does not really have".to_vec();

    let bad_input = job(1, &model, &tampered_input); // served with other bytes
    let failing = job(2, &model, &malformed); // runs, fails in the sandbox
    let attested = job(3, &model, &good); // first post answered replayed_nonce
    let refused = job(4, &model, &other); // post answered 409
    let bad_model = job(5, &fake_model, &good); // model served with other bytes
    let expired = WorkItem { deadline: now() - 10, ..job(6, &model, &tiny_input([5.0; 4])) };
    let relay = Shared::default();
    {
        let mut r = relay.lock().unwrap();
        r.blobs.insert(attesta_sdk::model_id(&model), model.clone());
        r.blobs.insert(bad_input.input_hash, good.clone());
        r.blobs.insert(failing.input_hash, malformed.clone());
        r.blobs.insert(attested.input_hash, good.clone());
        r.blobs.insert(refused.input_hash, other.clone());
        r.blobs.insert(bad_model.model_id, model.clone());
        r.jobs = vec![
            bad_input.clone(),
            failing.clone(),
            attested.clone(),
            refused.clone(),
            bad_model.clone(),
            expired.clone(),
        ];
        r.reject_attestation.insert(attested.job_id, (StatusCode::UNAUTHORIZED, "replayed_nonce"));
        r.reject_attestation.insert(refused.job_id, (StatusCode::CONFLICT, "job_not_open"));
    }
    let url = start_relay(relay.clone()).await;
    let data = dir.path().join("data");
    let daemon = Daemon::new(settings(&url, &data), PrivateKeySigner::random(), &deployment());
    let metrics = daemon.metrics();
    let (trigger, shutdown) = shutdown_channel();
    let running = tokio::spawn(daemon.run(shutdown));

    until(&relay, "the good job attested", 60, |r| !r.attestations.is_empty()).await;
    let m = metrics.clone();
    let settled = tokio::time::timeout(Duration::from_secs(60), async move {
        while m.blobs_refused.get() < 2
            || m.jobs_failed.get() < 1
            || m.attestations_rejected.get() < 1
            || m.jobs_expired.get() < 1
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(settled.is_ok(), "{}", metrics.render());
    // The relayer keeps offering the jobs this node did not attest: a few more polls must not
    // run, fetch or post any of them again.
    let polls = relay.lock().unwrap().work_polls;
    until(&relay, "more work polls", 30, |r| r.work_polls >= polls + 3).await;
    trigger.trigger();
    tokio::time::timeout(Duration::from_secs(30), running).await.unwrap().unwrap().unwrap();

    let r = relay.lock().unwrap();
    assert_eq!(r.auth_failures, Vec::<String>::new());
    assert_eq!(r.attestations.len(), 1);
    assert_eq!(r.attestations[0].1.attestation.attestation.jobId, attested.job_id);
    // Replayed nonce: signed again and accepted; 409: posted once, not retried.
    assert_eq!(r.attestation_posts.get(&attested.job_id), Some(&2));
    assert_eq!(r.attestation_posts.get(&refused.job_id), Some(&1));
    for job in [&bad_input, &failing, &bad_model, &expired] {
        assert_eq!(r.attestation_posts.get(&job.job_id), None, "job {}", job.job_id);
    }
    // Wrong bytes are fetched once, refused, and never stored under the hash they claim.
    assert_eq!(r.blob_gets[&bad_input.input_hash], 1);
    assert_eq!(r.blob_gets[&bad_model.model_id], 1);
    assert!(!data.join("blobs").join(bad_input.input_hash.to_string()).exists());
    assert!(!data.join("blobs").join(bad_model.model_id.to_string()).exists());
    // The expired job was not even fetched.
    assert_eq!(r.blob_gets.get(&expired.input_hash), None);
    // The model is cached: fetched once for the four jobs that used it.
    assert_eq!(r.blob_gets[&attested.model_id], 1);
    assert_eq!(metrics.jobs_attested.get(), 1);
    assert_eq!(metrics.blobs_refused.get(), 2);
    assert_eq!(metrics.jobs_failed.get(), 1);
    assert_eq!(metrics.attestations_rejected.get(), 1);
    assert_eq!(metrics.running.get(), 0);
    assert_eq!(std::fs::read_dir(data.join("jobs")).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayer_that_is_down_at_start_is_retried_until_it_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let model = std::fs::read(tiny_model()).unwrap();
    let input = tiny_input([0.3, -1.2, 2.5, 0.7]);
    let work = job(11, &model, &input);
    // A free port with nothing listening yet.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("http://{addr}");
    let key = PrivateKeySigner::random();
    let daemon = Daemon::new(settings(&url, &dir.path().join("data")), key.clone(), &deployment());
    let metrics = daemon.metrics();
    let (trigger, shutdown) = shutdown_channel();
    let running = tokio::spawn(daemon.run(shutdown));

    let m = metrics.clone();
    tokio::time::timeout(Duration::from_secs(20), async move {
        while m.retries.get() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(metrics.registrations.get(), 0);

    // The relayer comes up, and answers 503 to its first two requests while it starts.
    let relay = Shared::default();
    {
        let mut r = relay.lock().unwrap();
        r.blobs.insert(work.model_id, model);
        r.blobs.insert(work.input_hash, input);
        r.jobs.push(work.clone());
        r.unavailable = 2;
    }
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    serve(listener, relay.clone()).await;
    until(&relay, "the attestation", 60, |r| !r.attestations.is_empty()).await;
    trigger.trigger();
    tokio::time::timeout(Duration::from_secs(30), running).await.unwrap().unwrap().unwrap();

    let r = relay.lock().unwrap();
    assert_eq!(r.auth_failures, Vec::<String>::new());
    assert_eq!(r.registered.len(), 1);
    assert_eq!(r.registered[0].0, key.address());
    assert_eq!(r.attestations[0].1.attestation.attestation.jobId, work.job_id);
    assert!(metrics.retries.get() >= 4, "{}", metrics.render());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_registration_stops_the_daemon_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    // A relayer to which this key is not an active signer.
    let app = axum::Router::new().fallback(|| async {
        api_error(StatusCode::FORBIDDEN, "unknown_signer", "not an active signer")
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let daemon = Daemon::new(
        settings(&url, &dir.path().join("data")),
        PrivateKeySigner::random(),
        &deployment(),
    );
    let metrics = daemon.metrics();
    let (_trigger, shutdown) = shutdown_channel();
    let err = tokio::time::timeout(Duration::from_secs(10), daemon.run(shutdown))
        .await
        .unwrap()
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("unknown_signer") && message.contains("operator"), "{message}");
    // 4xx is not retried.
    assert_eq!(metrics.retries.get(), 0);
}
