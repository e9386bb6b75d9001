//! The API's one error answer: an HTTP status and an [`ApiError`] JSON body with a stable code.

use attesta_sdk::relay::ApiError;
use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use std::borrow::Cow;

/// The stable error codes of the API. Clients match on these, never on messages.
pub mod codes {
    /// The body is not the JSON the route expects (400).
    pub const MALFORMED_JSON: &str = "malformed_json";
    /// A path or query parameter does not parse (400).
    pub const BAD_REQUEST: &str = "bad_request";
    /// A node route was called without the `x-attesta-*` headers (401).
    pub const MISSING_AUTH: &str = "missing_auth";
    /// The request signature is malformed or not over this request by the claimed signer (401).
    pub const BAD_SIGNATURE: &str = "bad_signature";
    /// The request's timestamp is more than 300 s from the relayer's clock (401).
    pub const STALE_TIMESTAMP: &str = "stale_timestamp";
    /// The signer is not in the registry's active set (403).
    pub const INACTIVE_SIGNER: &str = "inactive_signer";
    /// No such blob, job or route (404).
    pub const NOT_FOUND: &str = "not_found";
    /// The job exists but has no settled result yet (404).
    pub const NOT_SETTLED: &str = "not_settled";
    /// A heartbeat from a node that never registered (409).
    pub const NOT_REGISTERED: &str = "not_registered";
    /// This `(signer, nonce)` was already used (409).
    pub const REPLAYED_NONCE: &str = "replayed_nonce";
    /// The body is larger than the route allows (413).
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    /// Too many requests from this client (429).
    pub const RATE_LIMITED: &str = "rate_limited";
    /// A stored blob no longer matches its hash; it was dropped, upload it again (500).
    pub const CORRUPT_BLOB: &str = "corrupt_blob";
    /// Something failed on the relayer's side; details are in its log (500).
    pub const INTERNAL: &str = "internal";
}

/// An error answer: status, stable code and a message that says what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiFailure {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code (see [`codes`]).
    pub code: Cow<'static, str>,
    /// For people.
    pub message: String,
    /// Seconds to wait before retrying (sent as `Retry-After`).
    pub retry_after: Option<u64>,
}

impl ApiFailure {
    /// An error with this status, code and message.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self { status, code: code.into(), message: message.into(), retry_after: None }
    }

    /// 400 `malformed_json`.
    pub fn malformed_json(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            codes::MALFORMED_JSON,
            format!("the body is not valid JSON for this route: {detail}"),
        )
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, message)
    }

    /// 413 `body_too_large`.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::BODY_TOO_LARGE,
            format!("the body is larger than this route's limit of {limit} bytes"),
        )
    }

    /// 500 `internal` with a generic message; the cause goes to the log only.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "api: internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "the relayer failed to answer; retry later, and tell its operator if it persists",
        )
    }
}

impl From<crate::Error> for ApiFailure {
    fn from(error: crate::Error) -> Self {
        Self::internal(error)
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        metrics::counter!("relayer_api_errors_total", "code" => self.code.to_string()).increment(1);
        let retry_after = self.retry_after;
        let body = ApiError { code: self.code.into_owned(), message: self.message };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Maps an aggregator refusal to an answer by its stable code. A code this table does not
/// know is answered 500, so a new refusal is noticed in the logs rather than misreported.
pub(crate) fn attest_failure(error: crate::aggregate::AttestError) -> ApiFailure {
    let code = error.code().to_string();
    let status = match code.as_str() {
        "unknown_job" => StatusCode::NOT_FOUND,
        "inactive_signer" | "signer_mismatch" => StatusCode::FORBIDDEN,
        "job_not_open" | "deadline_passed" | "equivocation" => StatusCode::CONFLICT,
        "bad_signature"
        | "job_mismatch"
        | "output_mismatch"
        | "output_too_large"
        | "runtime_not_allowed" => StatusCode::UNPROCESSABLE_ENTITY,
        _ => return ApiFailure::internal(format!("aggregator ({code}): {error}")),
    };
    ApiFailure::new(status, code, error.to_string())
}
