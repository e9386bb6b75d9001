//! The HTTP API (axum): blobs, job status and results, authenticated node routes, health,
//! metrics and the OpenAPI description. Routes and codes: `docs/relayer.md` ("HTTP API").
//!
//! Every route runs behind, outermost first: request metrics, a per-client rate limit (429,
//! A2), a body limit that also stops chunked bodies (413, A1) and, on node routes, request
//! authentication (401/403/409, A3, A4). [`serve`] adds TLS 1.2+ when configured (A5).

mod dashboard;
mod error;
mod guard;
mod metrics;
mod routes;
mod schema;

pub use error::{ApiFailure, codes};

use crate::{Error, Store, aggregate::Aggregator, chain::ActiveSet};
use axum::{Router, middleware::from_fn, middleware::from_fn_with_state};
use serde::Deserialize;
use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::{Arc, OnceLock},
    time::Duration,
};
use tokio::sync::Notify;
use tower_governor::{GovernorError, GovernorLayer, governor::GovernorConfigBuilder};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, SecurityScheme},
};
use utoipa_axum::{router::OpenApiRouter, routes};

/// The default listen address: loopback, so a fresh relayer is not exposed until its operator
/// chooses to (put it behind TLS or a proxy first).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7545";

/// `[api]` section of the relayer's configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address to listen on (default [`DEFAULT_LISTEN`]).
    pub listen: SocketAddr,
    /// Largest body of JSON routes, in bytes (default 64 KiB).
    pub max_body_bytes: usize,
    /// Largest body of `POST /v1/nodes/attestations`, whose output is hex in JSON (default
    /// 1 MiB: outputs are published in settlement calldata, so they are small).
    pub max_attestation_bytes: usize,
    /// Largest blob upload (`POST /v1/blobs`), in bytes (default 64 MiB).
    pub max_blob_bytes: usize,
    /// Requests a client may send in a burst before it is rate limited (default 60).
    pub rate_limit_burst: u32,
    /// Requests per second a client's allowance refills at (default 20).
    pub rate_limit_per_second: u32,
    /// Proxies whose `X-Forwarded-For` names the client for rate limiting. Empty (default):
    /// clients are keyed by the connection's peer address and the header is ignored.
    pub trusted_proxies: Vec<IpAddr>,
    /// Longest wait a `GET /v1/nodes/work?wait=` may ask for, in seconds (default 30).
    pub long_poll_max_secs: u64,
    /// Most jobs handed out in one `WorkBatch` (default 32).
    pub work_batch_limit: u32,
    /// How long shutdown waits for in-flight requests, in seconds (default 10).
    pub shutdown_grace_secs: u64,
    /// TLS certificate and key; plaintext HTTP when absent.
    pub tls: Option<TlsConfig>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7545)),
            max_body_bytes: 64 << 10,
            max_attestation_bytes: 1 << 20,
            max_blob_bytes: 64 << 20,
            rate_limit_burst: 60,
            rate_limit_per_second: 20,
            trusted_proxies: Vec::new(),
            long_poll_max_secs: 30,
            work_batch_limit: 32,
            shutdown_grace_secs: 10,
            tls: None,
        }
    }
}

impl ApiConfig {
    /// Checks values that would make the API refuse everything.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what: &str| Err(Error::Config(format!("[api] {what}")));
        if self.rate_limit_burst == 0 || self.rate_limit_per_second == 0 {
            return bad("rate_limit_burst and rate_limit_per_second must be at least 1");
        }
        if self.max_body_bytes == 0 || self.max_blob_bytes == 0 || self.max_attestation_bytes == 0 {
            return bad("max_body_bytes, max_attestation_bytes and max_blob_bytes must be > 0");
        }
        if self.work_batch_limit == 0 {
            return bad("work_batch_limit must be at least 1");
        }
        Ok(())
    }
}

/// `[api.tls]`: PEM files of the server certificate chain and its private key. Only TLS 1.3
/// and 1.2 are offered (A5).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, leaf first (PEM).
    pub cert_path: PathBuf,
    /// The leaf's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
}

/// Unix time in seconds; injectable so tests can skew the relayer's clock.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// What the handlers work with.
#[derive(Clone)]
pub struct ApiState {
    /// The database.
    pub store: Store,
    /// Takes attestations.
    pub aggregator: Aggregator,
    /// The registry's active signers (node routes accept only these).
    pub active_set: ActiveSet,
    /// Woken (`notify_waiters`) when new work is confirmed, to end long polls early.
    pub work_notify: Arc<Notify>,
    /// The relayer's clock for request timestamps and stored times.
    pub clock: Clock,
    /// Takes batch signatures; `None` when batching is off (then no proposals are served).
    pub batcher: Option<crate::batch::Batcher>,
    /// Woken (`notify_waiters`) when proposals are formed, to end batch long polls early.
    pub batch_notify: Arc<Notify>,
}

impl ApiState {
    /// State with the system clock.
    pub fn new(
        store: Store,
        aggregator: Aggregator,
        active_set: ActiveSet,
        work_notify: Arc<Notify>,
    ) -> Self {
        let clock: Clock = Arc::new(|| u64::try_from(crate::store::unix_now()).unwrap_or(0));
        Self {
            store,
            aggregator,
            active_set,
            work_notify,
            clock,
            batcher: None,
            batch_notify: Arc::default(),
        }
    }

    /// Serves batch proposals and takes batch signatures through `batcher`.
    pub fn with_batcher(mut self, batcher: Option<crate::batch::Batcher>) -> Self {
        if let Some(b) = &batcher {
            self.batch_notify = b.proposals_notify();
        }
        self.batcher = batcher;
        self
    }

    /// Replaces the clock (tests of clock skew).
    pub fn with_clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("store", &self.store)
            .field("active_set", &self.active_set.snapshot())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) state: ApiState,
    pub(crate) config: ApiConfig,
    pub(crate) openapi_json: OnceLock<String>,
}

pub(crate) type Shared = Arc<Inner>;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Attesta relayer",
        description = "Blobs, job status and results for clients; work and attestations for nodes. Node routes take a signed request: headers x-attesta-signer, x-attesta-timestamp, x-attesta-nonce, x-attesta-signature (EIP-191 over keccak256(\"attesta-request/v1\\n\" METHOD \"\\n\" path?query \"\\n\" keccak256(body) \"\\n\" timestamp \"\\n\" nonce))."
    ),
    modifiers(&NodeSignature)
)]
struct ApiDoc;

struct NodeSignature;

impl Modify for NodeSignature {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "node_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                attesta_sdk::relay::HEADER_SIGNATURE,
                "EIP-191 signature by an active signer over the request (see info.description), with x-attesta-signer, x-attesta-timestamp (±300 s) and a fresh x-attesta-nonce",
            ))),
        );
    }
}

/// The OpenAPI 3.1 description of every route, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes_with_docs(None, &ApiConfig::default()).1
}

fn routes_with_docs(
    shared: Option<&Shared>,
    config: &ApiConfig,
) -> (Router<Shared>, utoipa::openapi::OpenApi) {
    let json = config.max_body_bytes;
    let public = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::get_blob))
        .routes(routes!(routes::get_job))
        .routes(routes!(routes::get_job_result))
        .routes(routes!(routes::healthz))
        .routes(routes!(routes::metrics_text))
        .routes(routes!(routes::openapi))
        .merge(dashboard::routes())
        .route_layer(from_fn_with_state(json, guard::body_limit));
    let upload = OpenApiRouter::new()
        .routes(routes!(routes::put_blob))
        .route_layer(from_fn_with_state(config.max_blob_bytes, guard::body_limit));
    let mut nodes = OpenApiRouter::new()
        .routes(routes!(routes::register))
        .routes(routes!(routes::work))
        .routes(routes!(routes::batches))
        .routes(routes!(routes::batch_attest))
        .routes(routes!(routes::heartbeat));
    let mut attest = OpenApiRouter::new().routes(routes!(routes::attest));
    if let Some(shared) = shared {
        nodes = nodes.route_layer(from_fn_with_state(shared.clone(), guard::node_auth));
        attest = attest.route_layer(from_fn_with_state(shared.clone(), guard::node_auth));
    }
    // Added after auth, so it runs before it: the signature is checked over the buffered body.
    let nodes = nodes.route_layer(from_fn_with_state(json, guard::body_limit));
    let attest =
        attest.route_layer(from_fn_with_state(config.max_attestation_bytes, guard::body_limit));
    public.merge(upload).merge(nodes).merge(attest).split_for_parts()
}

/// The API's router. Serve it with connection info (`into_make_service_with_connect_info::
/// <SocketAddr>()`) so clients are rate limited by address; without it all share one bucket.
pub fn router(state: ApiState, config: &ApiConfig) -> Router {
    // Installed before the first request so early counters are not lost.
    let _ = metrics::handle();
    let shared = Arc::new(Inner { state, config: config.clone(), openapi_json: OnceLock::new() });
    let (routes, doc) = routes_with_docs(Some(&shared), config);
    let json = doc.to_json().unwrap_or_else(|e| {
        tracing::error!(error = %e, "api: cannot render the OpenAPI document");
        "{}".to_owned()
    });
    let _ = shared.openapi_json.set(json);

    let mut governor = GovernorConfigBuilder::default()
        .key_extractor(guard::ClientKey { trusted_proxies: config.trusted_proxies.clone().into() });
    governor
        .period(Duration::from_secs(1) / config.rate_limit_per_second.max(1))
        .burst_size(config.rate_limit_burst.max(1))
        .error_handler(|error| {
            use axum::response::IntoResponse;
            match error {
                GovernorError::TooManyRequests { wait_time, .. } => {
                    let mut failure = ApiFailure::new(
                        axum::http::StatusCode::TOO_MANY_REQUESTS,
                        codes::RATE_LIMITED,
                        format!("too many requests from this client: retry in {wait_time} s"),
                    );
                    failure.retry_after = Some(wait_time.max(1));
                    failure.into_response()
                }
                other => ApiFailure::internal(format!("rate limiter: {other}")).into_response(),
            }
        });
    let limiter = match governor.finish() {
        Some(limiter) => Arc::new(limiter),
        // Unreachable with burst and period clamped above zero; fail closed if it happens.
        None => {
            tracing::error!("api: invalid rate limit; refusing every request");
            return Router::new().fallback(|| async {
                ApiFailure::internal("invalid [api] rate limit configuration")
            });
        }
    };
    // Forget idle clients now and then, for as long as the router lives.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let weak = Arc::downgrade(limiter.limiter());
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(limiter) = weak.upgrade() else { break };
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        });
    }

    routes
        .fallback(routes::fallback)
        .layer(dashboard::cors())
        .layer(GovernorLayer { config: limiter })
        .layer(from_fn(metrics::track))
        .with_state(shared)
}

/// Binds [`ApiConfig::listen`] and serves until `shutdown` resolves, then drains in-flight
/// requests for up to `shutdown_grace_secs`.
pub async fn serve(
    config: ApiConfig,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let listener = std::net::TcpListener::bind(config.listen).map_err(|e| {
        Error::Config(format!(
            "cannot listen on {}: {e}: set [api] listen to a free address",
            config.listen
        ))
    })?;
    serve_on(listener, config, state, shutdown).await
}

/// Like [`serve`], on a listener the caller bound (tests bind port 0; socket activation).
pub async fn serve_on(
    listener: std::net::TcpListener,
    config: ApiConfig,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    config.validate()?;
    let tls = config.tls.as_ref().map(tls_config).transpose()?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::Config(format!("cannot use the API listener: {e}")))?;
    let local = listener.local_addr().ok();
    let app = router(state.clone(), &config).into_make_service_with_connect_info::<SocketAddr>();

    let handle = axum_server::Handle::new();
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let stopper = handle.clone();
    let stop = tokio::spawn(async move {
        shutdown.await;
        tracing::info!("api: shutting down");
        stopper.graceful_shutdown(Some(grace));
    });
    let housekeeping = tokio::spawn(housekeeping(state));

    tracing::info!(address = ?local, tls = tls.is_some(), "api: listening");
    let served = match tls {
        Some(tls) => {
            let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls));
            axum_server::from_tcp_rustls(listener, tls).handle(handle).serve(app).await
        }
        None => axum_server::from_tcp(listener).handle(handle).serve(app).await,
    };
    housekeeping.abort();
    stop.abort();
    served.map_err(|e| Error::Config(format!("API server failed: {e}")))
}

/// Purges request nonces that can no longer be replayed and keeps the metrics recorder's
/// buffers bounded.
async fn housekeeping(state: ApiState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        match state.store.purge_request_nonces((state.clock)()).await {
            Ok(purged) => tracing::debug!(purged, "api: purged expired request nonces"),
            Err(error) => tracing::warn!(%error, "api: purging request nonces failed"),
        }
        if let Some(handle) = metrics::handle() {
            handle.run_upkeep();
        }
    }
}

/// rustls server settings: ring as the crypto provider, TLS 1.3 and 1.2 only (rustls has no
/// older versions at all), HTTP/2 and HTTP/1.1 by ALPN.
fn tls_config(tls: &TlsConfig) -> Result<rustls::ServerConfig, Error> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let cert_path = tls.cert_path.display();
    let certs = CertificateDer::pem_file_iter(&tls.cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            Error::Config(format!(
                "[api.tls] cert_path {cert_path}: {e}: give a PEM certificate chain"
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "[api.tls] cert_path {cert_path} holds no certificate: give a PEM certificate chain"
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_path).map_err(|e| {
        Error::Config(format!(
            "[api.tls] key_path {}: {e}: give the PEM private key of the certificate",
            tls.key_path.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| {
            Error::Config(format!("[api.tls] certificate or key rejected: {e}: check they match"))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, B256, Bytes, U256};
    use attesta_sdk::relay;

    /// The JSON keys of every wire type must be the properties its schema mirror declares.
    #[test]
    fn openapi_schemas_match_the_sdk_wire_types() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let h = B256::repeat_byte(1);
        let a = Address::repeat_byte(2);
        let key = alloy::signers::local::PrivateKeySigner::random();
        let signed = attesta_sdk::Attestation::new(U256::from(1), h, h, h, h)
            .sign(&key, &attesta_sdk::domain(1, a))
            .unwrap();
        let samples = [
            ("BlobStored", serde_json::to_value(relay::BlobStored { hash: h, size: 1 })),
            (
                "JobView",
                serde_json::to_value(relay::JobView {
                    job_id: U256::from(1),
                    client: a,
                    model_id: h,
                    input_hash: h,
                    fee: U256::from(1),
                    deadline: 1,
                    status: relay::RelayJobStatus::Open,
                    created_block: 1,
                    attestations: vec![],
                    result_hash: Some(h),
                    signers: vec![a],
                    settle_tx: None,
                    batch_root: Some(h),
                }),
            ),
            (
                "ResultTally",
                serde_json::to_value(relay::ResultTally { result_hash: h, signers: 1 }),
            ),
            (
                "JobResult",
                serde_json::to_value(relay::JobResult {
                    job_id: U256::from(1),
                    result_hash: h,
                    output: Bytes::from_static(b"x"),
                    signers: vec![a],
                }),
            ),
            (
                "NodeHello",
                serde_json::to_value(relay::NodeHello {
                    runtime_id: h,
                    models: vec![h],
                    version: "1".into(),
                    signs_batches: true,
                }),
            ),
            (
                "WorkItem",
                serde_json::to_value(relay::WorkItem {
                    job_id: U256::from(1),
                    model_id: h,
                    input_hash: h,
                    deadline: 1,
                    max_output_bytes: 16_384,
                }),
            ),
            ("WorkBatch", serde_json::to_value(relay::WorkBatch::default())),
            ("SignedAttestation", serde_json::to_value(&signed)),
            ("Attestation", serde_json::to_value(&signed.attestation)),
            ("Signature", serde_json::to_value(signed.signature)),
            (
                "AttestationSubmission",
                serde_json::to_value(relay::AttestationSubmission {
                    attestation: signed.clone(),
                    output: Bytes::from_static(b"x"),
                }),
            ),
            (
                "AttestationAccepted",
                serde_json::to_value(relay::AttestationAccepted { agreeing: 1, threshold: 1 }),
            ),
            ("Heartbeat", serde_json::to_value(relay::Heartbeat { running: 1 })),
            (
                "BatchProposals",
                serde_json::to_value(relay::BatchProposals {
                    proposals: vec![relay::BatchProposal {
                        root: h,
                        runtime_id: h,
                        entries: vec![relay::BatchEntryView {
                            job_id: U256::from(1),
                            result_hash: h,
                        }],
                    }],
                }),
            ),
            (
                "BatchProposal",
                serde_json::to_value(relay::BatchProposal {
                    root: h,
                    runtime_id: h,
                    entries: vec![],
                }),
            ),
            (
                "BatchEntryView",
                serde_json::to_value(relay::BatchEntryView {
                    job_id: U256::from(1),
                    result_hash: h,
                }),
            ),
            (
                "BatchSignatureSubmission",
                serde_json::to_value(relay::BatchSignatureSubmission {
                    root: h,
                    runtime_id: h,
                    signature: Bytes::from_static(b"x"),
                }),
            ),
            (
                "BatchSignatureAccepted",
                serde_json::to_value(relay::BatchSignatureAccepted { signers: 1, threshold: 1 }),
            ),
            (
                "ApiError",
                serde_json::to_value(relay::ApiError { code: "x".into(), message: "y".into() }),
            ),
        ];
        for (name, sample) in samples {
            let sample = sample.unwrap();
            let mut wire: Vec<&String> = sample.as_object().unwrap().keys().collect();
            let schema = &schemas[name];
            assert!(schema.is_object(), "{name} is not in components.schemas");
            let mut declared: Vec<&String> =
                schema["properties"].as_object().unwrap().keys().collect();
            wire.sort();
            declared.sort();
            assert_eq!(wire, declared, "{name}: sdk JSON keys vs OpenAPI properties");
        }
        let status = serde_json::to_value(relay::RelayJobStatus::Settling).unwrap();
        assert!(
            schemas["RelayJobStatus"]["enum"].as_array().unwrap().contains(&status),
            "RelayJobStatus spelling"
        );
    }

    #[test]
    fn default_config_is_valid_and_parses_from_toml() {
        ApiConfig::default().validate().unwrap();
        let parsed: ApiConfig = toml::from_str(
            "listen = \"0.0.0.0:9000\"\ntrusted_proxies = [\"10.0.0.1\"]\n[tls]\ncert_path = \"c.pem\"\nkey_path = \"k.pem\"\n",
        )
        .unwrap();
        assert_eq!(parsed.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(parsed.max_body_bytes, ApiConfig::default().max_body_bytes);
        assert!(toml::from_str::<ApiConfig>("listn = \"x\"").is_err(), "unknown keys refused");
    }
}
