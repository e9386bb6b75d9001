//! Prometheus metrics of the API: one process-wide recorder, per-route request counters and
//! latency histograms.

use axum::{extract::MatchedPath, extract::Request, middleware::Next, response::Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::{sync::OnceLock, time::Instant};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets in seconds: long polls run up to tens of seconds.
const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The process's Prometheus recorder, installed on first use. `None` when another recorder
/// was installed first (the process then exports through that one).
pub(crate) fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .map_err(|e| tracing::warn!(error = %e, "api: metrics buckets rejected"))
                .ok()?;
            builder
                .install_recorder()
                .map_err(|e| tracing::warn!(error = %e, "api: a metrics recorder is already installed; /metrics will be unavailable"))
                .ok()
        })
        .as_ref()
}

/// Counts every answer by route template (not raw path, to bound cardinality), method and
/// status, and records its latency.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("relayer_api_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("relayer_api_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}
