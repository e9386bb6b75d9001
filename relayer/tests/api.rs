//! The relayer's HTTP API over a real TCP socket: a real SQLite store, the active set read
//! from a real anvil devnet, requests from reqwest (and raw sockets where reqwest would not
//! misbehave enough). Covers RELIABILITY A1–A5 and prints figure 8.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::too_many_arguments,
    missing_docs,
    unreachable_pub
)]

use alloy::{
    primitives::{B256, keccak256},
    providers::Provider,
    signers::local::PrivateKeySigner,
};
use attesta_relayer::{
    aggregate::Aggregator,
    api::{self, ApiConfig, ApiState, TlsConfig},
    chain::ActiveSet,
    store::testing::{self, TestStore},
};
use attesta_sdk::{
    relay::{ApiError, BlobStored, Heartbeat, NodeHello, RequestAuth, WorkBatch},
    testing::{Devnet, TestOperator},
};
use reqwest::{Method, StatusCode};
use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::{Notify, oneshot},
};

/// A running API server and what it needs.
struct Api {
    devnet: Devnet,
    operators: Vec<TestOperator>,
    store: TestStore,
    state: ApiState,
    http: reqwest::Client,
    servers: Vec<(SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
}

impl Api {
    async fn start(config: ApiConfig) -> Self {
        let devnet = Devnet::spawn().await;
        let operators = devnet.add_operators(2).await;
        let active =
            ActiveSet::load(devnet.provider.clone(), devnet.deployment.clone()).await.unwrap();
        assert!(active.contains(operators[0].signer.address()));
        let store = testing::sqlite().await;
        let aggregator = Aggregator::new(store.store.clone(), active.clone());
        let state = ApiState::new(store.store.clone(), aggregator, active, Arc::new(Notify::new()));
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut api = Self { devnet, operators, store, state, http, servers: vec![] };
        api.serve(config).await;
        api
    }

    /// Starts one more server on the same state; returns its address.
    async fn serve(&mut self, config: ApiConfig) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let state = self.state.clone();
        let task = tokio::spawn(async move {
            api::serve_on(listener, config, state, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        self.servers.push((addr, stop, task));
        addr
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.servers[0].0)
    }

    fn node(&self) -> &PrivateKeySigner {
        &self.operators[0].signer
    }

    async fn now(&self) -> u64 {
        // The relayer's clock is the system clock; anvil's starts there too.
        (self.state.clock)()
    }

    /// Sends a node request signed over `signed_body`, carrying `sent_body`.
    async fn send_signed(
        &self,
        key: &PrivateKeySigner,
        method: Method,
        path: &str,
        signed_body: &[u8],
        sent_body: &[u8],
        timestamp: u64,
        nonce: B256,
    ) -> reqwest::Response {
        let auth =
            RequestAuth::sign_with_nonce(key, method.as_str(), path, signed_body, timestamp, nonce)
                .unwrap();
        let mut request = self.http.request(method, self.url(path)).body(sent_body.to_vec());
        for (name, value) in auth.headers() {
            request = request.header(name, value);
        }
        request.send().await.unwrap()
    }

    async fn signed(
        &self,
        key: &PrivateKeySigner,
        method: Method,
        path: &str,
        body: &[u8],
    ) -> reqwest::Response {
        let now = self.now().await;
        self.send_signed(key, method, path, body, body, now, B256::random()).await
    }

    async fn stop(self) {
        for (_, stop, task) in self.servers {
            let _ = stop.send(());
            tokio::time::timeout(Duration::from_secs(15), task).await.unwrap().unwrap();
        }
    }
}

async fn error_of(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let error: ApiError = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("error body is not ApiError JSON ({e}): {text}"));
    (status, error.code)
}

fn hello() -> Vec<u8> {
    serde_json::to_vec(&NodeHello {
        runtime_id: attesta_sdk::testing::test_runtime_id(),
        models: vec![],
        version: "test".into(),
        signs_batches: false,
    })
    .unwrap()
}

/// Sends a raw HTTP/1.1 request with a chunked body of `total` bytes (in 64 KiB chunks,
/// stopping early if the server hangs up) and returns the answer's status and body.
async fn chunked(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    total: usize,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 64 << 10];
    let mut sent = 0;
    while sent < total {
        let n = chunk.len().min(total - sent);
        let frame = [format!("{n:x}\r\n").as_bytes(), &chunk[..n], b"\r\n"].concat();
        if stream.write_all(&frame).await.is_err() {
            break; // The server answered and closed: that is the point.
        }
        sent += n;
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

/// Declares a huge `Content-Length` and sends no body: refused from the headers alone.
async fn declared_length(addr: SocketAddr, path: &str, length: u64) -> u16 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("the server answers before the body arrives")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn small_config() -> ApiConfig {
    ApiConfig {
        max_body_bytes: 1024,
        max_attestation_bytes: 4096,
        max_blob_bytes: 256 << 10,
        rate_limit_burst: 10_000,
        rate_limit_per_second: 10_000,
        long_poll_max_secs: 1,
        shutdown_grace_secs: 1,
        ..ApiConfig::default()
    }
}

#[tokio::test]
async fn node_requests_need_a_fresh_signature_by_an_active_signer() {
    let api = Api::start(small_config()).await;
    let node = api.node().clone();
    let now = api.now().await;
    let body = hello();

    // Happy path: register, then heartbeat.
    let r = api.signed(&node, Method::POST, "/v1/nodes/register", &body).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "{:?}", r.text().await);
    let beat = serde_json::to_vec(&Heartbeat { running: 3 }).unwrap();
    let r = api.signed(&node, Method::POST, "/v1/nodes/heartbeat", &beat).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, _, heartbeat, running) =
        api.store.store.node(node.address()).await.unwrap().expect("registered");
    assert_eq!(running, 3);
    assert!(heartbeat.abs_diff(now) < 60);

    // Heartbeat before registering: a different (active) signer.
    let other = api.operators[1].signer.clone();
    let r = api.signed(&other, Method::POST, "/v1/nodes/heartbeat", &beat).await;
    assert_eq!(error_of(r).await, (StatusCode::CONFLICT, "not_registered".into()));

    // No headers at all.
    let r = api.http.post(api.url("/v1/nodes/register")).body(body.clone()).send().await.unwrap();
    assert_eq!(error_of(r).await, (StatusCode::UNAUTHORIZED, "missing_auth".into()));

    // A garbled signature header.
    let auth = RequestAuth::sign(&node, "POST", "/v1/nodes/register", &body, now).unwrap();
    let mut request = api.http.post(api.url("/v1/nodes/register")).body(body.clone());
    for (name, value) in auth.headers() {
        let value = if name == "x-attesta-signature" { "0x1234".to_owned() } else { value };
        request = request.header(name, value);
    }
    let r = request.send().await.unwrap();
    assert_eq!(error_of(r).await, (StatusCode::UNAUTHORIZED, "bad_signature".into()));

    // A4: every single-byte change of the signed body is refused.
    for index in [0, body.len() / 2, body.len() - 1] {
        let mut tampered = body.clone();
        tampered[index] ^= 0x01;
        let r = api
            .send_signed(
                &node,
                Method::POST,
                "/v1/nodes/register",
                &body,
                &tampered,
                now,
                B256::random(),
            )
            .await;
        assert_eq!(
            error_of(r).await,
            (StatusCode::UNAUTHORIZED, "bad_signature".into()),
            "byte {index}"
        );
    }
    // Signed for another path or query, sent to this one.
    let auth = RequestAuth::sign(&node, "GET", "/v1/nodes/work?wait=0", b"", now).unwrap();
    let mut request = api.http.get(api.url("/v1/nodes/work?wait=1"));
    for (name, value) in auth.headers() {
        request = request.header(name, value);
    }
    let r = request.send().await.unwrap();
    assert_eq!(error_of(r).await, (StatusCode::UNAUTHORIZED, "bad_signature".into()));
    // Claims to be an active signer, signed by someone else.
    let impostor = PrivateKeySigner::random();
    let mut auth = RequestAuth::sign(&impostor, "POST", "/v1/nodes/register", &body, now).unwrap();
    auth.signer = node.address();
    let mut request = api.http.post(api.url("/v1/nodes/register")).body(body.clone());
    for (name, value) in auth.headers() {
        request = request.header(name, value);
    }
    let r = request.send().await.unwrap();
    assert_eq!(error_of(r).await, (StatusCode::UNAUTHORIZED, "bad_signature".into()));

    // A3: timestamps outside ±300 s are refused; just inside is accepted.
    // 305, not 301: the relayer reads its clock a moment after the test, possibly a second later.
    for skew in [-305i64, 305, -3600, 3600] {
        let ts = now.checked_add_signed(skew).unwrap();
        let r = api
            .send_signed(
                &node,
                Method::POST,
                "/v1/nodes/register",
                &body,
                &body,
                ts,
                B256::random(),
            )
            .await;
        assert_eq!(
            error_of(r).await,
            (StatusCode::UNAUTHORIZED, "stale_timestamp".into()),
            "skew {skew}"
        );
    }
    let r = api
        .send_signed(
            &node,
            Method::POST,
            "/v1/nodes/register",
            &body,
            &body,
            now - 290,
            B256::random(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // A3: a replayed nonce is refused, also on another route with a fresh signature.
    let nonce = B256::random();
    let r =
        api.send_signed(&node, Method::POST, "/v1/nodes/register", &body, &body, now, nonce).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r =
        api.send_signed(&node, Method::POST, "/v1/nodes/register", &body, &body, now, nonce).await;
    assert_eq!(error_of(r).await, (StatusCode::CONFLICT, "replayed_nonce".into()));
    let r =
        api.send_signed(&node, Method::POST, "/v1/nodes/heartbeat", &beat, &beat, now, nonce).await;
    assert_eq!(error_of(r).await, (StatusCode::CONFLICT, "replayed_nonce".into()));
    // The same nonce from another signer is that signer's own nonce.
    let r =
        api.send_signed(&other, Method::POST, "/v1/nodes/register", &body, &body, now, nonce).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // A signer that is not active on chain.
    let stranger = PrivateKeySigner::random();
    let r = api.signed(&stranger, Method::POST, "/v1/nodes/register", &body).await;
    assert_eq!(error_of(r).await, (StatusCode::FORBIDDEN, "inactive_signer".into()));
    // ... also one the devnet funded but never staked.
    let unstaked = api.devnet.key(70);
    let r = api.signed(&unstaked, Method::POST, "/v1/nodes/heartbeat", &beat).await;
    assert_eq!(error_of(r).await, (StatusCode::FORBIDDEN, "inactive_signer".into()));

    // Malformed JSON on every JSON node route, correctly signed.
    for path in ["/v1/nodes/register", "/v1/nodes/heartbeat", "/v1/nodes/attestations"] {
        for garbage in [&b"{"[..], b"[]", b"{\"running\":-1}", b"", b"\xff\xfe"] {
            let r = api.signed(&node, Method::POST, path, garbage).await;
            assert_eq!(
                error_of(r).await,
                (StatusCode::BAD_REQUEST, "malformed_json".into()),
                "{path}"
            );
        }
    }

    // Long poll: no work, so it waits — at most long_poll_max_secs (1 s) whatever is asked.
    let started = Instant::now();
    let r = api.signed(&node, Method::GET, "/v1/nodes/work?wait=600", b"").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<WorkBatch>().await.unwrap(), WorkBatch::default());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(5), "{waited:?}");
    let r = api.signed(&node, Method::GET, "/v1/nodes/work?wait=soon", b"").await;
    assert_eq!(error_of(r).await, (StatusCode::BAD_REQUEST, "bad_request".into()));
    // A wake-up with nothing new does not end the wait early with an error.
    let notify = api.state.work_notify.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        notify.notify_waiters();
    });
    let r = api.signed(&node, Method::GET, "/v1/nodes/work?wait=1", b"").await;
    assert_eq!(r.status(), StatusCode::OK);

    // Expired nonces are purged; fresh ones stay.
    let purged = api.store.store.purge_request_nonces(now + 10_000).await.unwrap();
    assert!(purged > 0);
    api.stop().await;
}

#[tokio::test]
async fn relayer_clock_is_the_reference_for_request_timestamps() {
    let mut api = Api::start(small_config()).await;
    // A relayer whose clock runs an hour ahead refuses a node that signs with the true time.
    let ahead = api
        .state
        .clone()
        .with_clock(|| u64::try_from(attesta_relayer::store::unix_now()).unwrap() + 3600);
    let original = std::mem::replace(&mut api.state, ahead);
    let skewed = api.serve(small_config()).await;
    api.state = original;
    let node = api.node().clone();
    let now = api.now().await;
    let body = hello();
    let auth = RequestAuth::sign(&node, "POST", "/v1/nodes/register", &body, now).unwrap();
    let mut request =
        api.http.post(format!("http://{skewed}/v1/nodes/register")).body(body.clone());
    for (name, value) in auth.headers() {
        request = request.header(name, value);
    }
    let r = request.send().await.unwrap();
    assert_eq!(error_of(r).await, (StatusCode::UNAUTHORIZED, "stale_timestamp".into()));
    // The same request to the relayer with the right clock passes.
    let r = api
        .send_signed(&node, Method::POST, "/v1/nodes/register", &body, &body, now, auth.nonce)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // With a stopped clock the window is exact: 300 s either way passes, 301 s does not.
    let fixed = now + 7;
    let frozen = api.state.clone().with_clock(move || fixed);
    let original = std::mem::replace(&mut api.state, frozen);
    let exact = api.serve(small_config()).await;
    api.state = original;
    for (skew, passes) in [(-300i64, true), (300, true), (-301, false), (301, false)] {
        let ts = fixed.checked_add_signed(skew).unwrap();
        let auth = RequestAuth::sign(&node, "POST", "/v1/nodes/register", &body, ts).unwrap();
        let mut request =
            api.http.post(format!("http://{exact}/v1/nodes/register")).body(body.clone());
        for (name, value) in auth.headers() {
            request = request.header(name, value);
        }
        let r = request.send().await.unwrap();
        if passes {
            assert_eq!(r.status(), StatusCode::NO_CONTENT, "skew {skew}");
        } else {
            let expected = (StatusCode::UNAUTHORIZED, "stale_timestamp".to_owned());
            assert_eq!(error_of(r).await, expected, "skew {skew}");
        }
    }
    api.stop().await;
}

#[tokio::test]
async fn replayed_and_oversized_requests_are_all_refused() {
    let api = Api::start(small_config()).await;
    let addr = api.servers[0].0;
    let node = api.node().clone();
    let config = small_config();
    let body = hello();
    let beat = serde_json::to_vec(&Heartbeat { running: 0 }).unwrap();
    let r = api.signed(&node, Method::POST, "/v1/nodes/register", &body).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // Replays: each node route, a first request then several copies of it.
    let (mut replays, mut replays_refused) = (0, 0);
    let routes: [(Method, &str, &[u8]); 4] = [
        (Method::POST, "/v1/nodes/register", &body),
        (Method::POST, "/v1/nodes/heartbeat", &beat),
        (Method::GET, "/v1/nodes/work?wait=0", b""),
        (Method::POST, "/v1/nodes/attestations", b"{}"),
    ];
    for (method, path, payload) in &routes {
        let now = api.now().await;
        let nonce = B256::random();
        let first =
            api.send_signed(&node, method.clone(), path, payload, payload, now, nonce).await;
        assert_ne!(first.status(), StatusCode::CONFLICT, "{path}: first use is not a replay");
        for _ in 0..25 {
            let r =
                api.send_signed(&node, method.clone(), path, payload, payload, now, nonce).await;
            replays += 1;
            if error_of(r).await == (StatusCode::CONFLICT, "replayed_nonce".into()) {
                replays_refused += 1;
            }
        }
    }
    // Concurrent copies of one request: exactly one passes.
    let now = api.now().await;
    let nonce = B256::random();
    let copies = futures::future::join_all((0..20).map(|_| {
        api.send_signed(&node, Method::POST, "/v1/nodes/heartbeat", &beat, &beat, now, nonce)
    }))
    .await;
    let passed = copies.iter().filter(|r| r.status() == StatusCode::NO_CONTENT).count();
    assert_eq!(passed, 1, "one of 20 concurrent copies passes");
    replays += 19;
    replays_refused += copies.iter().filter(|r| r.status() == StatusCode::CONFLICT).count();

    // Oversized: every route, with a declared length, a chunked body, and a huge declared length.
    let (mut oversized, mut oversized_refused) = (0, 0);
    let limits = [
        ("/v1/blobs", config.max_blob_bytes, false),
        ("/v1/nodes/register", config.max_body_bytes, true),
        ("/v1/nodes/heartbeat", config.max_body_bytes, true),
        ("/v1/nodes/attestations", config.max_attestation_bytes, true),
    ];
    for (path, limit, signed) in limits {
        let big = vec![b' '; limit + 1];
        // Declared length, signed where the route wants a signature (so only size can fail).
        let r = if signed {
            api.signed(&node, Method::POST, path, &big).await
        } else {
            api.http.post(api.url(path)).body(big.clone()).send().await.unwrap()
        };
        oversized += 1;
        if error_of(r).await == (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large".into()) {
            oversized_refused += 1;
        }
        // Chunked: no length to check up front; twice the limit.
        let headers = if signed {
            RequestAuth::sign(&node, "POST", path, &vec![b'x'; 2 * limit], api.now().await)
                .unwrap()
                .headers()
                .into_iter()
                .collect::<Vec<_>>()
        } else {
            vec![]
        };
        let (status, answer) = chunked(addr, path, &headers, 2 * limit).await;
        oversized += 1;
        if status == 413 && answer.contains("body_too_large") {
            oversized_refused += 1;
        } else {
            println!("chunked {path}: {status} {answer}");
        }
        // A 10 GiB declared length is refused before any of it is sent.
        oversized += 1;
        if declared_length(addr, path, 10 << 30).await == 413 {
            oversized_refused += 1;
        }
    }
    // GET routes carry the JSON limit too.
    let r = api.http.get(api.url("/healthz")).body(vec![0u8; 2048]).send().await.unwrap();
    oversized += 1;
    if error_of(r).await.0 == StatusCode::PAYLOAD_TOO_LARGE {
        oversized_refused += 1;
    }
    // Just under the limit is fine: the limit is the limit, not a guess.
    let r = api
        .http
        .post(api.url("/v1/blobs"))
        .body(vec![7u8; config.max_blob_bytes])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, answer) = chunked(addr, "/v1/blobs", &[], config.max_blob_bytes).await;
    assert_eq!(status, 200, "{answer}");

    println!(
        "figure 8: replayed requests refused {replays_refused}/{replays}; oversized requests refused {oversized_refused}/{oversized}"
    );
    assert_eq!(replays_refused, replays);
    assert_eq!(oversized_refused, oversized);
    api.stop().await;
}

#[tokio::test]
async fn blobs_round_trip_by_hash_and_corrupt_rows_are_never_served() {
    let api = Api::start(small_config()).await;
    let data = b"model bytes \x00\x01\x02".to_vec();
    let r = api.http.post(api.url("/v1/blobs")).body(data.clone()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let stored: BlobStored = r.json().await.unwrap();
    assert_eq!(stored, BlobStored { hash: keccak256(&data), size: data.len() as u64 });
    // A second upload of the same bytes is the same answer (content addressing).
    let r = api.http.post(api.url("/v1/blobs")).body(data.clone()).send().await.unwrap();
    assert_eq!(r.json::<BlobStored>().await.unwrap(), stored);
    let r = api.http.get(api.url(&format!("/v1/blobs/{}", stored.hash))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.bytes().await.unwrap().to_vec(), data);

    // Flip one stored byte behind the API's back.
    let mut corrupt = data.clone();
    corrupt[0] ^= 0xff;
    sqlx::query("UPDATE blobs SET data = $1 WHERE hash = $2")
        .bind(corrupt)
        .bind(stored.hash.to_string())
        .execute(api.store.store.pool())
        .await
        .unwrap();
    let r = api.http.get(api.url(&format!("/v1/blobs/{}", stored.hash))).send().await.unwrap();
    assert_eq!(error_of(r).await, (StatusCode::INTERNAL_SERVER_ERROR, "corrupt_blob".into()));
    // It was dropped, so a fresh upload heals it.
    let r = api.http.get(api.url(&format!("/v1/blobs/{}", stored.hash))).send().await.unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::NOT_FOUND);
    let r = api.http.post(api.url("/v1/blobs")).body(data.clone()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = api.http.get(api.url(&format!("/v1/blobs/{}", stored.hash))).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), data);

    // Unknown and malformed ids.
    for (path, status, code) in [
        (format!("/v1/blobs/{}", B256::repeat_byte(9)), StatusCode::NOT_FOUND, "not_found"),
        ("/v1/blobs/0x1234".into(), StatusCode::BAD_REQUEST, "bad_request"),
        ("/v1/jobs/123456".into(), StatusCode::NOT_FOUND, "not_found"),
        ("/v1/jobs/0x1e240".into(), StatusCode::NOT_FOUND, "not_found"),
        ("/v1/jobs/123456/result".into(), StatusCode::NOT_FOUND, "not_found"),
        ("/v1/jobs/twelve".into(), StatusCode::BAD_REQUEST, "bad_request"),
        ("/v1/jobs/twelve/result".into(), StatusCode::BAD_REQUEST, "bad_request"),
        ("/v1/nowhere".into(), StatusCode::NOT_FOUND, "not_found"),
    ] {
        let r = api.http.get(api.url(&path)).send().await.unwrap();
        assert_eq!(error_of(r).await, (status, code.to_owned()), "{path}");
    }

    // Health, metrics and the OpenAPI description.
    let r = api.http.get(api.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let health: serde_json::Value = r.json().await.unwrap();
    assert_eq!(health["database"], true);
    assert_eq!(health["active_signers"], 2);
    let metrics = api.http.get(api.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|line| line.starts_with("relayer_api_requests_total{")
            && line.contains("route=\"/v1/blobs/{hash}\"")
            && line.contains("status=\"500\"")),
        "{metrics}"
    );
    assert!(metrics.contains("relayer_blob_corrupt_total 1"), "{metrics}");
    assert!(metrics.contains("relayer_api_request_duration_seconds_bucket"), "{metrics}");

    let doc: serde_json::Value =
        api.http.get(api.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let expected = [
        ("post", "/v1/blobs"),
        ("get", "/v1/blobs/{hash}"),
        ("get", "/v1/jobs/{id}"),
        ("get", "/v1/jobs/{id}/result"),
        ("post", "/v1/nodes/register"),
        ("get", "/v1/nodes/work"),
        ("post", "/v1/nodes/attestations"),
        ("post", "/v1/nodes/heartbeat"),
        ("get", "/v1/nodes/batches"),
        ("post", "/v1/nodes/batch-attestations"),
        ("get", "/healthz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
        // The read-only network routes and the page built on them (tests/dashboard.rs).
        ("get", "/v1/jobs"),
        ("get", "/v1/jobs/{id}/attestations"),
        ("get", "/v1/network"),
        ("get", "/v1/slashings"),
        ("get", "/v1/stats"),
        ("get", "/dashboard"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    let listed: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(listed, expected.len(), "no undocumented extras: {:?}", paths.keys());
    for (method, path) in expected {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from openapi.json"
        );
        // Each documented route is served (no 404 from the fallback).
        let r = api
            .http
            .request(method.to_uppercase().parse().unwrap(), api.url(path))
            .send()
            .await
            .unwrap();
        assert_ne!(r.status(), StatusCode::NOT_FOUND, "{method} {path} is not routed");
    }
    for name in ["JobView", "WorkBatch", "AttestationSubmission", "ApiError", "NodeHello"] {
        assert!(doc["components"]["schemas"][name].is_object(), "schema {name}");
    }
    assert!(doc["components"]["securitySchemes"]["node_signature"].is_object());
    api.stop().await;
}

#[tokio::test]
async fn clients_are_rate_limited_by_address_not_by_headers_they_send() {
    let limited = ApiConfig { rate_limit_burst: 5, rate_limit_per_second: 1, ..small_config() };
    let mut api = Api::start(limited.clone()).await;
    let direct = api.servers[0].0;
    let proxied = api
        .serve(ApiConfig { trusted_proxies: vec!["127.0.0.1".parse().unwrap()], ..limited })
        .await;
    let from = |ip: [u8; 4]| {
        reqwest::Client::builder()
            .no_proxy()
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .unwrap()
    };
    let (a, b) = (from([127, 0, 0, 1]), from([127, 0, 0, 2]));

    let mut statuses = vec![];
    for _ in 0..12 {
        statuses.push(a.get(format!("http://{direct}/healthz")).send().await.unwrap());
    }
    let ok = statuses.iter().filter(|r| r.status() == StatusCode::OK).count();
    assert!((5..=6).contains(&ok), "burst of 5 (plus at most one refill): {ok}");
    let last = statuses.pop().unwrap();
    assert!(last.headers().contains_key("retry-after"));
    assert_eq!(error_of(last).await, (StatusCode::TOO_MANY_REQUESTS, "rate_limited".into()));
    // Unauthenticated node routes and unknown paths count against the same allowance.
    let r = a.post(format!("http://{direct}/v1/nodes/register")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = a.get(format!("http://{direct}/nowhere")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // A forged X-Forwarded-For from an untrusted peer does not buy a new allowance.
    let r = a
        .get(format!("http://{direct}/healthz"))
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another client is not affected.
    let r = b.get(format!("http://{direct}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Behind a trusted proxy (127.0.0.1 here), clients are told apart by X-Forwarded-For.
    let via = |client: &'static str| {
        a.get(format!("http://{proxied}/healthz")).header("x-forwarded-for", client).send()
    };
    let mut one = vec![];
    for _ in 0..8 {
        one.push(via("198.51.100.1").await.unwrap().status());
    }
    assert!(one.contains(&StatusCode::TOO_MANY_REQUESTS), "{one:?}");
    assert_eq!(via("198.51.100.2").await.unwrap().status(), StatusCode::OK);
    api.stop().await;
}

#[tokio::test]
async fn tls_port_speaks_tls_1_2_and_1_3_only() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let api =
        Api::start(ApiConfig { tls: Some(TlsConfig { cert_path, key_path }), ..small_config() })
            .await;
    let addr = api.servers[0].0;
    let root = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
    let client = |version: reqwest::tls::Version| {
        reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([root.clone()])
            .resolve("localhost", addr)
            .tls_version_min(version)
            .tls_version_max(version)
            .build()
            .unwrap()
    };
    for version in [reqwest::tls::Version::TLS_1_2, reqwest::tls::Version::TLS_1_3] {
        let r = client(version)
            .get(format!("https://localhost:{}/healthz", addr.port()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{version:?}: {e:?}"));
        assert_eq!(r.status(), StatusCode::OK, "{version:?}");
    }

    // Plaintext HTTP to the TLS port gets no HTTP answer.
    let plain = api.http.get(format!("http://{addr}/healthz")).send().await;
    assert!(plain.is_err(), "plaintext answered: {:?}", plain.map(|r| r.status()));
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(!answer.starts_with(b"HTTP/"), "plaintext got an HTTP answer");

    // A TLS 1.1 ClientHello (no supported_versions extension) gets an alert, not a ServerHello.
    let mut hello = vec![0x03, 0x02]; // client_version TLS 1.1
    hello.extend_from_slice(&[0x42; 32]); // random
    hello.push(0); // session id
    hello.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // two TLS 1.1-era suites
    hello.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0x00, (hello.len() >> 8) as u8, hello.len() as u8];
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x02, (handshake.len() >> 8) as u8, handshake.len() as u8];
    record.extend_from_slice(&handshake);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&record).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert_ne!(answer.first(), Some(&0x16), "server negotiated with a TLS 1.1 client");
    if let Some(first) = answer.first() {
        assert_eq!(*first, 0x15, "expected an alert record, got {answer:02x?}");
    }
    let _ = api.devnet.provider.get_block_number().await.unwrap();
    api.stop().await;
}
