//! The node's client of the relayer: every request signed with [`RequestAuth`], retried with
//! capped exponential backoff and jitter while the relayer is unreachable or answers 5xx/429.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::primitives::B256;
use alloy::signers::local::PrivateKeySigner;
use attesta_sdk::relay::{
    ApiError, AttestationAccepted, AttestationSubmission, BatchProposals, BatchSignatureAccepted,
    BatchSignatureSubmission, Heartbeat, NodeHello, RequestAuth, WorkBatch,
};
use rand::Rng;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use tracing::warn;

use super::{Metrics, Shutdown};

/// The `code` of an [`ApiError`] that means the nonce was seen before: sign again with a fresh
/// one.
pub const REPLAYED_NONCE: &str = "replayed_nonce";

/// How many times a request rejected as a replay is signed again before giving up.
const MAX_RESIGN: u32 = 3;

/// Why a request to the relayer failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The relayer could not be reached or did not answer in time.
    #[error("cannot reach the relayer ({0}): check relayer_url and the network")]
    Transport(#[source] reqwest::Error),
    /// The relayer answered 5xx or 429; trying again later can help.
    #[error("the relayer is unavailable ({status}): {code}: {message}")]
    Unavailable {
        /// HTTP status.
        status: StatusCode,
        /// API error code (empty when the body was not an `ApiError`).
        code: String,
        /// API error message.
        message: String,
        /// `Retry-After` the relayer asked for.
        retry_after: Option<Duration>,
    },
    /// The relayer refused the request (4xx); sending it again will not help.
    #[error("the relayer refused the request ({status}): {code}: {message}")]
    Rejected {
        /// HTTP status.
        status: StatusCode,
        /// API error code, e.g. `bad_signature`, `replayed_nonce`, `not_found`.
        code: String,
        /// API error message.
        message: String,
    },
    /// The relayer's answer is not what the API documents.
    #[error(
        "the relayer's answer cannot be read ({0}): check that relayer_url is an Attesta relayer of a compatible version"
    )]
    Decode(String),
    /// The body was larger than the limit.
    #[error("the relayer sent more than {limit} bytes for {what}")]
    TooLarge {
        /// What was fetched.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// The request could not be signed.
    #[error("cannot sign the request: {0}")]
    Sign(#[from] attesta_sdk::Error),
    /// Shutdown started while waiting to retry.
    #[error("shutting down")]
    Cancelled,
    /// Retried until the deadline without success; the last error is kept.
    #[error("gave up at the deadline; last error: {0}")]
    GaveUp(Box<RelayError>),
}

impl RelayError {
    /// Whether sending the same request later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transport(_) | Self::Unavailable { .. })
    }

    /// The API error code, if the relayer sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Unavailable { code, .. } | Self::Rejected { code, .. } => Some(code),
            Self::GaveUp(inner) => inner.code(),
            _ => None,
        }
    }
}

/// Capped exponential backoff with jitter: attempt `n` waits a random time in
/// `[d/2, d]` where `d = min(base * 2^n, cap)` (so concurrent nodes do not retry in lockstep,
/// and no wait is shorter than half its step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// First step.
    pub base: Duration,
    /// Largest step.
    pub cap: Duration,
}

impl Backoff {
    /// The wait before retry number `attempt` (0-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let step = self.base.saturating_mul(1u32 << attempt.min(20)).min(self.cap);
        let half = step / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::thread_rng().gen_range(0..=nanos))
    }
}

/// When a retry loop stops.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Until {
    /// Until shutdown starts.
    Shutdown,
    /// Until this unix time (a job's deadline); shutdown does not interrupt it, the daemon's
    /// grace period does.
    Deadline(u64),
}

/// A signed-request client of one relayer.
#[derive(Clone, Debug)]
pub struct RelayClient {
    http: reqwest::Client,
    base: Url,
    signer: PrivateKeySigner,
    backoff: Backoff,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

/// One request, rebuilt and signed again on every attempt (fresh timestamp and nonce).
struct Call<'a> {
    method: Method,
    path_and_query: String,
    body: &'a [u8],
    timeout: Duration,
}

impl RelayClient {
    /// A client of the relayer at `base`, signing as `signer`.
    pub fn new(
        base: Url,
        signer: PrivateKeySigner,
        timeout: Duration,
        backoff: Backoff,
        metrics: Arc<Metrics>,
    ) -> Result<Self, RelayError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("attesta-node/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(RelayError::Transport)?;
        Ok(Self { http, base, signer, backoff, timeout, metrics })
    }

    /// The signing key's address.
    pub fn signer(&self) -> alloy::primitives::Address {
        self.signer.address()
    }

    /// `POST /v1/nodes/register`.
    pub(crate) async fn register(
        &self,
        hello: &NodeHello,
        shutdown: &Shutdown,
    ) -> Result<(), RelayError> {
        let body = json(hello)?;
        self.retrying(
            Method::POST,
            "/v1/nodes/register",
            &body,
            self.timeout,
            Until::Shutdown,
            Some(shutdown),
        )
        .await
        .map(drop)
    }

    /// `GET /v1/nodes/work?wait=SECS`, retried until shutdown.
    pub(crate) async fn work(
        &self,
        wait: Duration,
        shutdown: &Shutdown,
    ) -> Result<WorkBatch, RelayError> {
        let path = format!("/v1/nodes/work?wait={}", wait.as_secs());
        // The relayer holds the request up to `wait`; allow for that on top of the timeout.
        let bytes = self
            .retrying(Method::GET, &path, b"", wait + self.timeout, Until::Shutdown, Some(shutdown))
            .await?;
        decode(&bytes)
    }

    /// `POST /v1/nodes/attestations`, retried until the job's deadline.
    pub(crate) async fn submit(
        &self,
        submission: &AttestationSubmission,
        deadline: u64,
    ) -> Result<AttestationAccepted, RelayError> {
        let body = json(submission)?;
        let bytes = self
            .retrying(
                Method::POST,
                "/v1/nodes/attestations",
                &body,
                self.timeout,
                Until::Deadline(deadline),
                None,
            )
            .await?;
        decode(&bytes)
    }

    /// `GET /v1/nodes/batches?wait=SECS`, retried until shutdown.
    pub(crate) async fn batches(
        &self,
        wait: Duration,
        shutdown: &Shutdown,
    ) -> Result<BatchProposals, RelayError> {
        let path = format!("/v1/nodes/batches?wait={}", wait.as_secs());
        let bytes = self
            .retrying(Method::GET, &path, b"", wait + self.timeout, Until::Shutdown, Some(shutdown))
            .await?;
        decode(&bytes)
    }

    /// `POST /v1/nodes/batch-attestations`, retried for up to ten minutes (a proposal that
    /// waits longer is dropped by the relayer anyway).
    pub(crate) async fn submit_batch(
        &self,
        submission: &BatchSignatureSubmission,
    ) -> Result<BatchSignatureAccepted, RelayError> {
        let body = json(submission)?;
        let bytes = self
            .retrying(
                Method::POST,
                "/v1/nodes/batch-attestations",
                &body,
                self.timeout,
                Until::Deadline(unix_now() + 600),
                None,
            )
            .await?;
        decode(&bytes)
    }

    /// `POST /v1/nodes/heartbeat`, one attempt (the next heartbeat is the retry).
    pub(crate) async fn heartbeat(&self, beat: &Heartbeat) -> Result<(), RelayError> {
        let body = json(beat)?;
        let call = Call {
            method: Method::POST,
            path_and_query: "/v1/nodes/heartbeat".into(),
            body: &body,
            timeout: self.timeout,
        };
        self.once(&call, u64::MAX).await.map(drop)
    }

    /// `GET /v1/blobs/{hash}`, at most `limit` bytes, retried until `deadline`. The caller checks
    /// the hash.
    pub(crate) async fn blob(
        &self,
        hash: B256,
        limit: u64,
        deadline: u64,
    ) -> Result<Vec<u8>, RelayError> {
        // Large models take a while: allow a generous time per attempt.
        let timeout = self.timeout.max(Duration::from_secs(300));
        self.retrying_with_limit(
            Method::GET,
            &format!("/v1/blobs/{hash}"),
            b"",
            timeout,
            Until::Deadline(deadline),
            None,
            limit,
        )
        .await
    }

    async fn retrying(
        &self,
        method: Method,
        path_and_query: &str,
        body: &[u8],
        timeout: Duration,
        until: Until,
        shutdown: Option<&Shutdown>,
    ) -> Result<Vec<u8>, RelayError> {
        // API answers are small; 16 MiB bounds a confused or hostile endpoint.
        self.retrying_with_limit(method, path_and_query, body, timeout, until, shutdown, 16 << 20)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn retrying_with_limit(
        &self,
        method: Method,
        path_and_query: &str,
        body: &[u8],
        timeout: Duration,
        until: Until,
        shutdown: Option<&Shutdown>,
        limit: u64,
    ) -> Result<Vec<u8>, RelayError> {
        let call = Call { method, path_and_query: path_and_query.to_string(), body, timeout };
        let (mut attempt, mut resigned) = (0u32, 0u32);
        loop {
            if shutdown.is_some_and(Shutdown::is_started) {
                return Err(RelayError::Cancelled);
            }
            let error = match self.once(&call, limit).await {
                Ok(bytes) => return Ok(bytes),
                Err(e) => e,
            };
            // A replay verdict on a fresh random nonce means a proxy or the client sent it twice:
            // sign again with a new nonce at once.
            if error.code() == Some(REPLAYED_NONCE) && resigned < MAX_RESIGN {
                resigned += 1;
                warn!(path = %call.path_and_query, "relayer saw this nonce already; signing again");
                continue;
            }
            if !error.is_retryable() {
                return Err(error);
            }
            let mut wait = self.backoff.delay(attempt);
            if let RelayError::Unavailable { retry_after: Some(after), .. } = &error {
                wait = wait.max((*after).min(self.backoff.cap));
            }
            if let Until::Deadline(deadline) = until
                && unix_now().saturating_add(wait.as_secs()) >= deadline
            {
                return Err(RelayError::GaveUp(Box::new(error)));
            }
            attempt = attempt.saturating_add(1);
            self.metrics.retries.inc();
            warn!(
                method = %call.method,
                path = %call.path_and_query,
                attempt,
                wait_ms = wait.as_millis() as u64,
                error = %error,
                "relayer request failed; retrying"
            );
            match shutdown {
                Some(s) => {
                    if s.sleep(wait).await {
                        return Err(RelayError::Cancelled);
                    }
                }
                None => tokio::time::sleep(wait).await,
            }
        }
    }

    /// One signed attempt.
    async fn once(&self, call: &Call<'_>, limit: u64) -> Result<Vec<u8>, RelayError> {
        let url = self
            .base
            .join(&call.path_and_query)
            .map_err(|e| RelayError::Decode(format!("bad path {}: {e}", call.path_and_query)))?;
        let auth = RequestAuth::sign(
            &self.signer,
            call.method.as_str(),
            &call.path_and_query,
            call.body,
            unix_now(),
        )?;
        let mut request = self.http.request(call.method.clone(), url).timeout(call.timeout);
        for (name, value) in auth.headers() {
            request = request.header(name, value);
        }
        if !call.body.is_empty() {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(call.body.to_vec());
        }
        let mut response = request.send().await.map_err(RelayError::Transport)?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = read_capped(&mut response, 64 << 10, &call.path_and_query).await?;
            let (code, message) = match serde_json::from_slice::<ApiError>(&body) {
                Ok(e) => (e.code, e.message),
                Err(_) => {
                    (String::new(), String::from_utf8_lossy(&body).chars().take(200).collect())
                }
            };
            return Err(if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                RelayError::Unavailable { status, code, message, retry_after }
            } else {
                RelayError::Rejected { status, code, message }
            });
        }
        read_capped(&mut response, limit, &call.path_and_query).await
    }
}

/// Reads a body, failing once it passes `limit` bytes (also without a Content-Length).
async fn read_capped(
    response: &mut reqwest::Response,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>, RelayError> {
    let too_large = || RelayError::TooLarge { what: what.to_string(), limit };
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(RelayError::Transport)? {
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn json(value: &impl serde::Serialize) -> Result<Vec<u8>, RelayError> {
    serde_json::to_vec(value).map_err(|e| RelayError::Decode(e.to_string()))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RelayError> {
    serde_json::from_slice(bytes).map_err(|e| RelayError::Decode(e.to_string()))
}

/// Seconds since the unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_stays_under_the_cap() {
        let b = Backoff { base: Duration::from_millis(100), cap: Duration::from_secs(2) };
        for attempt in 0..40 {
            let step = (Duration::from_millis(100) * 2u32.pow(attempt.min(10))).min(b.cap);
            let d = b.delay(attempt);
            assert!(d >= step / 2 && d <= step, "attempt {attempt}: {d:?} vs step {step:?}");
        }
        // Jitter: a run of delays at the cap is not all the same.
        let delays: std::collections::HashSet<_> = (0..20).map(|_| b.delay(30)).collect();
        assert!(delays.len() > 1);
    }

    #[test]
    fn only_unreachable_or_busy_relayers_are_retried() {
        let rejected = RelayError::Rejected {
            status: StatusCode::UNAUTHORIZED,
            code: "bad_signature".into(),
            message: String::new(),
        };
        assert!(!rejected.is_retryable());
        let busy = RelayError::Unavailable {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited".into(),
            message: String::new(),
            retry_after: None,
        };
        assert!(busy.is_retryable());
        assert!(!RelayError::Decode("x".into()).is_retryable());
    }
}
