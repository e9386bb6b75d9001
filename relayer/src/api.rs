//! The HTTP API (axum): blobs, job status and results, authenticated node routes, health,
//! metrics and the OpenAPI description.
//!
//! Owner: api.

use serde::Deserialize;

/// `[api]` section of the relayer's configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {}
