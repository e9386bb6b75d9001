//! The public, read-only network routes and the status page built on them.
//!
//! `GET /v1/network` (the active set with stakes and M, read from the registry),
//! `GET /v1/jobs` (recent jobs with their states and attestation tallies),
//! `GET /v1/jobs/{id}/attestations`, `GET /v1/slashings` (confirmed `Slashed` events and the
//! equivocations this relayer caught) and `GET /v1/stats` (counts and throughput) answer from
//! the relayer's database and the chain; `GET /dashboard` is one static page (HTML, CSS and
//! JavaScript embedded in the binary, no build step) that calls only these public routes, so
//! anything it shows, anyone can fetch.
//!
//! Browsers on other origins may call the public routes: [`cors`] answers their preflights.

use super::{Shared, error::ApiFailure, schema};
use crate::store::stats::{EquivocationRecord, SlashRecord, StoredAttestation};
use alloy::primitives::{Address, B256, Bytes, U256};
use attesta_sdk::{bindings::StakingRegistry, relay::JobView};
use axum::{
    Json,
    extract::{Path, RawQuery, State},
    http::{HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use std::{collections::HashMap, time::Duration};
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

/// The page, embedded at build time.
const DASHBOARD_HTML: &str = include_str!("dashboard.html");
/// Most jobs one `GET /v1/jobs` returns.
const MAX_JOBS: u32 = 100;
/// Most slashes and equivocations one `GET /v1/slashings` returns (each).
const MAX_SLASHINGS: u32 = 100;
/// Throughput windows of `GET /v1/stats`: a minute, an hour, a day.
const WINDOWS: [u64; 3] = [60, 3_600, 86_400];
/// Error code when the chain does not answer a read (503).
const CHAIN_UNAVAILABLE: &str = "chain_unavailable";
/// Time limit of the registry reads behind `GET /v1/network`.
const CHAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The routes of this module, with their OpenAPI descriptions.
pub(super) fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(network))
        .routes(routes!(recent_jobs))
        .routes(routes!(job_attestations))
        .routes(routes!(slashings))
        .routes(routes!(stats))
        .routes(routes!(dashboard))
}

/// CORS for browsers on other origins (a dApp served elsewhere): any origin may call the
/// routes with GET, HEAD and POST and a `content-type` header. No credentials are involved:
/// public routes take none and node routes authenticate by signature, not by cookie.
pub(super) fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET, Method::HEAD, Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600))
}

/// An operator of the active set.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NetworkOperator {
    /// The operator's account (owns the stake).
    #[schema(value_type = schema::Addr)]
    operator: Address,
    /// Its signing key.
    #[schema(value_type = schema::Addr)]
    signer: Address,
    /// Bonded stake, token units.
    #[schema(value_type = schema::Uint256)]
    stake: U256,
    /// Stake waiting out the unbonding period.
    #[schema(value_type = schema::Uint256)]
    unbonding: U256,
    /// Whether the operator is jailed.
    jailed: bool,
    /// The node's last heartbeat at this relayer (unix seconds), if it registered here.
    last_heartbeat: Option<u64>,
    /// The node's software version, if it registered here.
    version: Option<String>,
}

/// `GET /v1/network` answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NetworkView {
    /// The deployment's chain.
    chain_id: u64,
    /// The threshold M.
    threshold: u32,
    /// The registry's `activeSetVersion()` when the relayer last read the set.
    active_set_version: u64,
    /// Active operators, by signer ascending.
    operators: Vec<NetworkOperator>,
    /// The next block the watcher reads.
    next_block: Option<u64>,
}

/// Reads each signer's operator and stake from the registry.
async fn operators(shared: &Shared, signers: &[Address]) -> Result<Vec<NetworkOperator>, String> {
    let active = &shared.state.active_set;
    let registry = StakingRegistry::new(active.deployment().staking_registry, active.provider());
    let owners = registry.operatorsOf(signers.to_vec()).call().await.map_err(|e| e.to_string())?;
    let reads = owners.iter().map(|owner| {
        let registry = registry.clone();
        async move { registry.operator(*owner).call().await }
    });
    let records = futures::future::try_join_all(reads).await.map_err(|e| e.to_string())?;
    Ok(signers
        .iter()
        .zip(owners.iter().zip(records))
        .map(|(signer, (owner, record))| NetworkOperator {
            operator: *owner,
            signer: *signer,
            stake: U256::from(record.stake),
            unbonding: U256::from(record.unbonding),
            jailed: record.jailed,
            last_heartbeat: None,
            version: None,
        })
        .collect())
}

/// The active set with stakes and the threshold, from the chain through the relayer.
#[utoipa::path(
    get, path = "/v1/network", tag = "network",
    responses(
        (status = 200, description = "The active set as of the relayer's last refresh, with stakes read now", body = NetworkView),
        (status = 503, description = "The chain does not answer (`chain_unavailable`)", body = schema::ApiError),
    )
)]
pub(crate) async fn network(State(shared): State<Shared>) -> Result<Json<NetworkView>, ApiFailure> {
    let state = &shared.state;
    let snapshot = state.active_set.snapshot();
    let unavailable = |detail: String| {
        tracing::warn!(%detail, "api: cannot read the registry for /v1/network");
        ApiFailure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            CHAIN_UNAVAILABLE,
            "the relayer cannot read the registry from its RPC endpoint right now: retry later",
        )
    };
    let mut operators = tokio::time::timeout(CHAIN_TIMEOUT, operators(&shared, &snapshot.signers))
        .await
        .map_err(|_| unavailable("timed out".into()))?
        .map_err(unavailable)?;
    let nodes: HashMap<Address, _> =
        state.store.nodes().await?.into_iter().map(|n| (n.signer, n)).collect();
    for op in &mut operators {
        if let Some(node) = nodes.get(&op.signer) {
            op.last_heartbeat = Some(node.last_heartbeat);
            op.version = Some(node.version.clone());
        }
    }
    Ok(Json(NetworkView {
        chain_id: state.active_set.deployment().chain_id,
        threshold: snapshot.threshold,
        active_set_version: snapshot.version,
        operators,
        next_block: state.store.watcher_next_block().await,
    }))
}

/// `GET /v1/jobs` answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobList {
    /// Newest first.
    #[schema(value_type = Vec<schema::JobView>)]
    jobs: Vec<JobView>,
}

fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (&str, &str)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// Recent jobs, newest first, with their states and attestation tallies.
#[utoipa::path(
    get, path = "/v1/jobs", tag = "jobs",
    params(
        ("limit" = Option<u32>, Query, description = "How many (default 20, at most 100)"),
        ("before" = Option<String>, Query, description = "Only jobs with a smaller id (decimal or 0x-hex): the next page"),
    ),
    responses(
        (status = 200, description = "Jobs, newest first", body = JobList),
        (status = 400, description = "Bad query", body = schema::ApiError),
    )
)]
pub(crate) async fn recent_jobs(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
) -> Result<Json<JobList>, ApiFailure> {
    let mut limit = 20;
    let mut before = None;
    for (key, value) in query_pairs(query.as_deref()) {
        match key {
            "limit" => {
                limit = value.parse::<u32>().map_err(|_| {
                    ApiFailure::bad_request(format!("limit={value:?} is not a count"))
                })?;
            }
            "before" => before = Some(super::routes::parse_job_id(value)?),
            _ => {}
        }
    }
    let jobs = shared.state.store.recent_jobs(limit.clamp(1, MAX_JOBS), before).await?;
    Ok(Json(JobList { jobs }))
}

/// One attestation a node submitted.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AttestationView {
    /// The node's signing key.
    #[schema(value_type = schema::Addr)]
    signer: Address,
    /// The attested result.
    #[schema(value_type = schema::Hash32)]
    result_hash: B256,
    /// The runtime that produced it.
    #[schema(value_type = schema::Hash32)]
    runtime_id: B256,
    /// 65-byte r‖s‖v EIP-712 signature.
    #[schema(value_type = schema::HexBytes)]
    signature: Bytes,
    /// Unix time the relayer received it.
    received_at: u64,
}

impl From<StoredAttestation> for AttestationView {
    fn from(a: StoredAttestation) -> Self {
        Self {
            signer: a.signer,
            result_hash: a.result_hash,
            runtime_id: a.runtime_id,
            signature: a.signature,
            received_at: a.received_at,
        }
    }
}

/// `GET /v1/jobs/{id}/attestations` answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobAttestations {
    /// The job.
    #[schema(value_type = schema::Uint256)]
    job_id: U256,
    /// By signer.
    attestations: Vec<AttestationView>,
}

/// Every attestation the relayer received for a job: who signed which result.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/attestations", tag = "jobs",
    params(("id" = String, Path, description = "Job id, decimal or 0x-hex")),
    responses(
        (status = 200, description = "The attestations", body = JobAttestations),
        (status = 400, description = "Not a job id", body = schema::ApiError),
        (status = 404, description = "No confirmed job with this id", body = schema::ApiError),
    )
)]
pub(crate) async fn job_attestations(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<JobAttestations>, ApiFailure> {
    let job_id = super::routes::parse_job_id(&id)?;
    let Some(stored) = shared.state.store.job_attestations(job_id).await? else {
        return Err(ApiFailure::not_found(format!(
            "no confirmed job {job_id}: it may not exist or not be confirmed yet"
        )));
    };
    Ok(Json(JobAttestations { job_id, attestations: stored.into_iter().map(Into::into).collect() }))
}

/// A confirmed `Slashed` event.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SlashView {
    /// The operator that lost stake.
    #[schema(value_type = schema::Addr)]
    operator: Address,
    /// Stake taken.
    #[schema(value_type = schema::Uint256)]
    amount: U256,
    /// Who reported the offence.
    #[schema(value_type = schema::Addr)]
    reporter: Address,
    /// The reporter's share.
    #[schema(value_type = schema::Uint256)]
    bounty: U256,
    /// Whether the operator was jailed.
    jailed: bool,
    /// Block of the event.
    block_number: u64,
    /// Its timestamp.
    block_time: u64,
    /// The transaction.
    #[schema(value_type = schema::Hash32)]
    tx_hash: B256,
}

/// Equivocation evidence this relayer caught.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EquivocationView {
    /// The job.
    #[schema(value_type = schema::Uint256)]
    job_id: U256,
    /// The signer that attested two results.
    #[schema(value_type = schema::Addr)]
    signer: Address,
    /// The first result.
    #[schema(value_type = schema::Hash32)]
    result_a: B256,
    /// The second result.
    #[schema(value_type = schema::Hash32)]
    result_b: B256,
    /// Unix time it was recorded.
    created_at: u64,
}

/// `GET /v1/slashings` answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SlashingsView {
    /// Confirmed `Slashed` events, newest first.
    slashes: Vec<SlashView>,
    /// Equivocations caught by this relayer, newest first.
    equivocations: Vec<EquivocationView>,
}

impl From<SlashRecord> for SlashView {
    fn from(s: SlashRecord) -> Self {
        Self {
            operator: s.operator,
            amount: s.amount,
            reporter: s.reporter,
            bounty: s.bounty,
            jailed: s.jailed,
            block_number: s.block_number,
            block_time: s.block_time,
            tx_hash: s.tx_hash,
        }
    }
}

impl From<EquivocationRecord> for EquivocationView {
    fn from(e: EquivocationRecord) -> Self {
        Self {
            job_id: e.job_id,
            signer: e.signer,
            result_a: e.result_a,
            result_b: e.result_b,
            created_at: e.created_at,
        }
    }
}

/// Slashing: confirmed `Slashed` events of the registry and the equivocations caught here.
#[utoipa::path(
    get, path = "/v1/slashings", tag = "network",
    responses((status = 200, description = "Newest first, at most 100 of each", body = SlashingsView))
)]
pub(crate) async fn slashings(
    State(shared): State<Shared>,
) -> Result<Json<SlashingsView>, ApiFailure> {
    let store = &shared.state.store;
    Ok(Json(SlashingsView {
        slashes: store.slash_events(MAX_SLASHINGS).await?.into_iter().map(Into::into).collect(),
        equivocations: store
            .equivocations(MAX_SLASHINGS)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    }))
}

/// Jobs settled in one window.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Window {
    /// Window length.
    seconds: u64,
    /// Jobs settled in the window.
    jobs: u64,
}

/// `GET /v1/stats` answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatsView {
    /// Jobs per status (open, settling, settled, released, challenged, refunded).
    jobs: HashMap<String, u64>,
    /// Attestations received, all jobs.
    attestations: u64,
    /// Jobs settled in the last minute, hour and day of chain time.
    settled: Vec<Window>,
    /// The newest stored block timestamp, where the windows end.
    chain_time: Option<u64>,
}

/// Counts and throughput: jobs per state, attestations, jobs settled per window.
#[utoipa::path(
    get, path = "/v1/stats", tag = "network",
    responses((status = 200, description = "Counts over the relayer's database", body = StatsView))
)]
pub(crate) async fn stats(State(shared): State<Shared>) -> Result<Json<StatsView>, ApiFailure> {
    let stats = shared.state.store.stats(&WINDOWS).await?;
    let mut jobs: HashMap<String, u64> =
        ["open", "settling", "settled", "released", "challenged", "refunded"]
            .into_iter()
            .map(|s| (s.to_owned(), 0))
            .collect();
    jobs.extend(stats.jobs);
    Ok(Json(StatsView {
        jobs,
        attestations: stats.attestations,
        settled: stats
            .settled
            .into_iter()
            .map(|(seconds, jobs)| Window { seconds, jobs })
            .collect(),
        chain_time: stats.chain_time,
    }))
}

/// The read-only network status page (HTML; it calls the public routes above).
#[utoipa::path(
    get, path = "/dashboard", tag = "network",
    responses((status = 200, description = "The status page", content_type = "text/html"))
)]
pub(crate) async fn dashboard() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            // The page loads nothing from elsewhere and talks only to this relayer.
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
                ),
            ),
        ],
        DASHBOARD_HTML,
    )
        .into_response()
}
