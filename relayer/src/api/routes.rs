//! The route handlers. Each carries its OpenAPI description (`#[utoipa::path]`), from which
//! `/openapi.json` is generated.

use super::{
    Shared,
    error::{ApiFailure, attest_failure, codes},
    guard::{ApiJson, Buffered, NodeSigner},
    schema,
};
use alloy::primitives::{B256, U256, keccak256};
use attesta_sdk::relay::{
    AttestationAccepted, AttestationSubmission, BatchProposals, BatchSignatureAccepted,
    BatchSignatureSubmission, BlobStored, Heartbeat, JobResult, JobView, NodeHello, WorkBatch,
};
use axum::{
    Json,
    extract::{Path, RawQuery, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use std::time::Duration;
use tokio::sync::Notify;
use utoipa::ToSchema;

fn parse_hash(text: &str) -> Result<B256, ApiFailure> {
    text.parse()
        .map_err(|_| ApiFailure::bad_request(format!("{text:?} is not a 32-byte 0x-hex hash")))
}

pub(super) fn parse_job_id(text: &str) -> Result<U256, ApiFailure> {
    // Decimal as the escrow's events print it, or 0x-hex as alloy serialises it.
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => U256::from_str_radix(hex, 16),
        None => U256::from_str_radix(text, 10),
    };
    parsed.map_err(|_| {
        ApiFailure::bad_request(format!("{text:?} is not a job id (decimal or 0x-hex)"))
    })
}

/// Stores bytes under their keccak256.
#[utoipa::path(
    post, path = "/v1/blobs", tag = "blobs",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The raw bytes of a model or an input."),
    responses(
        (status = 200, description = "Stored (or already stored) under this hash", body = schema::BlobStored),
        (status = 413, description = "Larger than `max_blob_bytes`", body = schema::ApiError),
        (status = 429, description = "Rate limited", body = schema::ApiError),
    )
)]
pub(crate) async fn put_blob(
    State(shared): State<Shared>,
    Buffered(bytes): Buffered,
) -> Result<Json<BlobStored>, ApiFailure> {
    let hash = keccak256(&bytes);
    let now = (shared.state.clock)();
    let new = shared.state.store.put_blob(hash, &bytes, now).await?;
    if new {
        metrics::counter!("relayer_blobs_stored_total").increment(1);
        metrics::counter!("relayer_blob_bytes_stored_total").increment(bytes.len() as u64);
    }
    Ok(Json(BlobStored { hash, size: bytes.len() as u64 }))
}

/// The bytes stored under a hash, checked against it before they are sent.
#[utoipa::path(
    get, path = "/v1/blobs/{hash}", tag = "blobs",
    params(("hash" = String, Path, description = "keccak256 of the bytes, 0x-hex")),
    responses(
        (status = 200, description = "The bytes", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 400, description = "Not a hash", body = schema::ApiError),
        (status = 404, description = "Not stored", body = schema::ApiError),
        (status = 500, description = "The stored row is corrupt (`corrupt_blob`); it was dropped", body = schema::ApiError),
    )
)]
pub(crate) async fn get_blob(
    State(shared): State<Shared>,
    Path(hash): Path<String>,
) -> Result<Response, ApiFailure> {
    let hash = parse_hash(&hash)?;
    let Some(data) = shared.state.store.blob(hash).await? else {
        return Err(ApiFailure::not_found(format!(
            "no blob {hash}: upload it with POST /v1/blobs"
        )));
    };
    if keccak256(&data) != hash {
        // Never serve bytes that are not what the hash names. Dropping the row lets a fresh
        // upload of the right bytes (which ON CONFLICT DO NOTHING would skip) heal it.
        tracing::error!(%hash, size = data.len(), "api: stored blob does not match its hash; dropping it");
        metrics::counter!("relayer_blob_corrupt_total").increment(1);
        shared.state.store.delete_blob(hash).await?;
        return Err(ApiFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::CORRUPT_BLOB,
            format!("the stored copy of {hash} was corrupt and has been dropped: upload it again"),
        ));
    }
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], data).into_response())
}

/// A job as the relayer has seen it on chain.
#[utoipa::path(
    get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id, decimal or 0x-hex")),
    responses(
        (status = 200, description = "The job", body = schema::JobView),
        (status = 400, description = "Not a job id", body = schema::ApiError),
        (status = 404, description = "No confirmed job with this id", body = schema::ApiError),
    )
)]
pub(crate) async fn get_job(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiFailure> {
    let job_id = parse_job_id(&id)?;
    shared.state.store.job_view(job_id).await?.map(Json).ok_or_else(|| {
        ApiFailure::not_found(format!(
            "no confirmed job {job_id}: it may not exist or not be confirmed yet"
        ))
    })
}

/// A settled job's result.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/result", tag = "jobs",
    params(("id" = String, Path, description = "Job id, decimal or 0x-hex")),
    responses(
        (status = 200, description = "The settled result", body = schema::JobResult),
        (status = 400, description = "Not a job id", body = schema::ApiError),
        (status = 404, description = "Unknown job (`not_found`) or not settled yet (`not_settled`)", body = schema::ApiError),
    )
)]
pub(crate) async fn get_job_result(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<JobResult>, ApiFailure> {
    let job_id = parse_job_id(&id)?;
    let store = &shared.state.store;
    if let Some(result) = store.job_result(job_id).await? {
        return Ok(Json(result));
    }
    if store.job_view(job_id).await?.is_some() {
        return Err(ApiFailure::new(
            StatusCode::NOT_FOUND,
            codes::NOT_SETTLED,
            format!("job {job_id} has no confirmed settlement yet: poll again later"),
        ));
    }
    Err(ApiFailure::not_found(format!("no confirmed job {job_id}")))
}

/// A node introduces itself (runtime, models, version).
#[utoipa::path(
    post, path = "/v1/nodes/register", tag = "nodes",
    request_body = schema::NodeHello,
    security(("node_signature" = [])),
    responses(
        (status = 204, description = "Registered"),
        (status = 400, description = "Malformed JSON", body = schema::ApiError),
        (status = 401, description = "Missing, bad or stale signature", body = schema::ApiError),
        (status = 403, description = "Signer not active", body = schema::ApiError),
        (status = 409, description = "Replayed nonce", body = schema::ApiError),
        (status = 413, description = "Body too large", body = schema::ApiError),
    )
)]
pub(crate) async fn register(
    State(shared): State<Shared>,
    NodeSigner(signer): NodeSigner,
    ApiJson(hello): ApiJson<NodeHello>,
) -> Result<StatusCode, ApiFailure> {
    let now = (shared.state.clock)();
    shared.state.store.register_node(signer, &hello, now).await?;
    tracing::info!(%signer, runtime = %hello.runtime_id, version = %hello.version, "api: node registered");
    Ok(StatusCode::NO_CONTENT)
}

/// Long-polls for open jobs this node has not attested.
#[utoipa::path(
    get, path = "/v1/nodes/work", tag = "nodes",
    params(("wait" = Option<u64>, Query, description = "Seconds to wait for work when there is none (capped by the relayer's `long_poll_max_secs`)")),
    security(("node_signature" = [])),
    responses(
        (status = 200, description = "Work; empty when the wait ran out", body = schema::WorkBatch),
        (status = 400, description = "Bad query", body = schema::ApiError),
        (status = 401, description = "Missing, bad or stale signature", body = schema::ApiError),
        (status = 403, description = "Signer not active", body = schema::ApiError),
        (status = 409, description = "Replayed nonce", body = schema::ApiError),
    )
)]
pub(crate) async fn work(
    State(shared): State<Shared>,
    NodeSigner(signer): NodeSigner,
    RawQuery(query): RawQuery,
) -> Result<Json<WorkBatch>, ApiFailure> {
    let wait = wait_query(query.as_deref(), shared.config.long_poll_max_secs)?;
    let state = &shared.state;
    let jobs = long_poll(&state.work_notify, wait, || async {
        let now = (state.clock)();
        let limit = shared.config.work_batch_limit;
        let max_output = state.active_set.max_output_bytes();
        Ok(state.store.open_work(signer, now, limit, max_output).await?)
    })
    .await?;
    Ok(Json(WorkBatch { jobs }))
}

/// Submits a signed attestation and the output it commits to.
#[utoipa::path(
    post, path = "/v1/nodes/attestations", tag = "nodes",
    request_body = schema::AttestationSubmission,
    security(("node_signature" = [])),
    responses(
        (status = 200, description = "Accepted", body = schema::AttestationAccepted),
        (status = 400, description = "Malformed JSON", body = schema::ApiError),
        (status = 401, description = "Missing, bad or stale signature", body = schema::ApiError),
        (status = 403, description = "Signer not active, or not the attestation's signer", body = schema::ApiError),
        (status = 404, description = "Unknown job", body = schema::ApiError),
        (status = 409, description = "Replayed nonce, or the job is no longer open", body = schema::ApiError),
        (status = 413, description = "Body too large", body = schema::ApiError),
        (status = 422, description = "The attestation does not check out", body = schema::ApiError),
    )
)]
pub(crate) async fn attest(
    State(shared): State<Shared>,
    NodeSigner(signer): NodeSigner,
    ApiJson(submission): ApiJson<AttestationSubmission>,
) -> Result<Json<AttestationAccepted>, ApiFailure> {
    shared.state.aggregator.submit(signer, submission).await.map(Json).map_err(attest_failure)
}

/// Long-polls for batch proposals this node attested every entry of and has not signed.
#[utoipa::path(
    get, path = "/v1/nodes/batches", tag = "nodes",
    params(("wait" = Option<u64>, Query, description = "Seconds to wait for a proposal when there is none (capped by the relayer's `long_poll_max_secs`)")),
    security(("node_signature" = [])),
    responses(
        (status = 200, description = "Proposals; empty when the wait ran out (always empty while batching is off)", body = schema::BatchProposals),
        (status = 400, description = "Bad query", body = schema::ApiError),
        (status = 401, description = "Missing, bad or stale signature", body = schema::ApiError),
        (status = 403, description = "Signer not active", body = schema::ApiError),
        (status = 409, description = "Replayed nonce", body = schema::ApiError),
    )
)]
pub(crate) async fn batches(
    State(shared): State<Shared>,
    NodeSigner(signer): NodeSigner,
    RawQuery(query): RawQuery,
) -> Result<Json<BatchProposals>, ApiFailure> {
    let wait = wait_query(query.as_deref(), shared.config.long_poll_max_secs)?;
    let state = &shared.state;
    let proposals = long_poll(&state.batch_notify, wait, || async {
        if state.batcher.is_none() {
            return Ok(Vec::new());
        }
        Ok(state.store.open_proposals_for(signer, shared.config.work_batch_limit).await?)
    })
    .await?;
    Ok(Json(BatchProposals { proposals }))
}

/// Submits a node's signature over a batch proposal's `BatchAttestation(root, runtimeId)`.
#[utoipa::path(
    post, path = "/v1/nodes/batch-attestations", tag = "nodes",
    request_body = schema::BatchSignatureSubmission,
    security(("node_signature" = [])),
    responses(
        (status = 200, description = "Accepted (or already stored)", body = schema::BatchSignatureAccepted),
        (status = 400, description = "Malformed JSON", body = schema::ApiError),
        (status = 401, description = "Missing, bad or stale request signature", body = schema::ApiError),
        (status = 403, description = "Signer not active (`inactive_signer`), or did not attest every entry (`not_an_attester`)", body = schema::ApiError),
        (status = 404, description = "No such proposal (`unknown_batch`), or batching is off", body = schema::ApiError),
        (status = 409, description = "Replayed nonce, or the proposal takes no more signatures (`batch_not_open`)", body = schema::ApiError),
        (status = 422, description = "The signature does not recover to the signer (`bad_signature`) or names another runtime (`batch_mismatch`)", body = schema::ApiError),
    )
)]
pub(crate) async fn batch_attest(
    State(shared): State<Shared>,
    NodeSigner(signer): NodeSigner,
    ApiJson(submission): ApiJson<BatchSignatureSubmission>,
) -> Result<Json<BatchSignatureAccepted>, ApiFailure> {
    let Some(batcher) = &shared.state.batcher else {
        return Err(ApiFailure::new(
            StatusCode::NOT_FOUND,
            "unknown_batch",
            "this relayer does not batch settlements ([batch] enabled = false)",
        ));
    };
    batcher.submit_signature(signer, submission).await.map(Json).map_err(|e| {
        let status = match e.code() {
            "unknown_batch" => StatusCode::NOT_FOUND,
            "inactive_signer" | "not_an_attester" => StatusCode::FORBIDDEN,
            "batch_not_open" => StatusCode::CONFLICT,
            "bad_signature" | "batch_mismatch" => StatusCode::UNPROCESSABLE_ENTITY,
            code => return ApiFailure::internal(format!("batcher ({code}): {e}")),
        };
        metrics::counter!("relayer_batch_signatures_refused_total", "code" => e.code())
            .increment(1);
        ApiFailure::new(status, e.code(), e.to_string())
    })
}

/// Answers as soon as `query` finds something, or with nothing once `wait` has run out;
/// `notify` wakes it when something may have changed. The notification is registered before
/// each query, so one arriving between the query and the wait is not lost.
async fn long_poll<T, F, Fut>(
    notify: &Notify,
    wait: Duration,
    mut query: F,
) -> Result<Vec<T>, ApiFailure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, ApiFailure>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let found = query().await?;
        if !found.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(found);
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Ok(Vec::new());
        }
    }
}

fn wait_query(query: Option<&str>, max: u64) -> Result<Duration, ApiFailure> {
    let mut wait = 0u64;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        if let Some(value) = pair.strip_prefix("wait=") {
            wait = value.parse().map_err(|_| {
                ApiFailure::bad_request(format!("wait={value:?} is not a number of seconds"))
            })?;
        }
    }
    Ok(Duration::from_secs(wait.min(max)))
}

/// A node reports that it is alive and how busy it is.
#[utoipa::path(
    post, path = "/v1/nodes/heartbeat", tag = "nodes",
    request_body = schema::Heartbeat,
    security(("node_signature" = [])),
    responses(
        (status = 204, description = "Recorded"),
        (status = 400, description = "Malformed JSON", body = schema::ApiError),
        (status = 401, description = "Missing, bad or stale signature", body = schema::ApiError),
        (status = 403, description = "Signer not active", body = schema::ApiError),
        (status = 409, description = "Replayed nonce, or not registered (`not_registered`)", body = schema::ApiError),
    )
)]
pub(crate) async fn heartbeat(
    State(shared): State<Shared>,
    NodeSigner(signer): NodeSigner,
    ApiJson(beat): ApiJson<Heartbeat>,
) -> Result<StatusCode, ApiFailure> {
    let now = (shared.state.clock)();
    if !shared.state.store.node_heartbeat(signer, beat.running, now).await? {
        return Err(ApiFailure::new(
            StatusCode::CONFLICT,
            codes::NOT_REGISTERED,
            format!("{signer} has not registered: POST /v1/nodes/register first"),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /healthz` answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok`, or `degraded` when the database does not answer.
    status: &'static str,
    /// Whether the database answered.
    database: bool,
    /// The next block the watcher will read, if it has started.
    next_block: Option<u64>,
    /// Active signers known to the relayer.
    active_signers: usize,
    /// The threshold M.
    threshold: u32,
}

/// Liveness and readiness: the database answers; the watcher's progress.
#[utoipa::path(
    get, path = "/healthz", tag = "ops",
    responses(
        (status = 200, description = "Healthy", body = Health),
        (status = 503, description = "The database does not answer", body = Health),
    )
)]
pub(crate) async fn healthz(State(shared): State<Shared>) -> (StatusCode, Json<Health>) {
    let state = &shared.state;
    let database = match state.store.ping().await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, "api: health check: database does not answer");
            false
        }
    };
    let next_block = if database { state.store.watcher_next_block().await } else { None };
    let snapshot = state.active_set.snapshot();
    let health = Health {
        status: if database { "ok" } else { "degraded" },
        database,
        next_block,
        active_signers: snapshot.signers.len(),
        threshold: snapshot.threshold,
    };
    let status = if database { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(health))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
pub(crate) async fn metrics_text() -> Response {
    match super::metrics::handle() {
        Some(handle) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render())
                .into_response()
        }
        None => ApiFailure::internal(
            "another metrics recorder is installed in this process; /metrics cannot render it",
        )
        .into_response(),
    }
}

/// This API's OpenAPI 3.1 description.
#[utoipa::path(
    get, path = "/openapi.json", tag = "ops",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json"))
)]
pub(crate) async fn openapi(State(shared): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        shared.openapi_json.get().cloned().unwrap_or_default(),
    )
        .into_response()
}

/// Any path that is not a route.
pub(crate) async fn fallback() -> ApiFailure {
    ApiFailure::not_found("no such route: see /openapi.json")
}
