//! The daemon's counters: logged with every heartbeat and, with `--metrics-addr`, served in the
//! Prometheus text format at `/metrics`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonic counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Subtracts one (gauges only).
    fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Everything the daemon counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Successful registrations with the relayer.
    pub registrations: Counter,
    /// Work items received (including ones skipped).
    pub work_items: Counter,
    /// Jobs started (blobs fetched, sandbox run started or about to).
    pub jobs_started: Counter,
    /// Jobs whose attestation the relayer accepted.
    pub jobs_attested: Counter,
    /// Jobs that failed in the sandbox (typed [`crate::sandbox::SandboxError`]).
    pub jobs_failed: Counter,
    /// Jobs skipped because their deadline had passed.
    pub jobs_expired: Counter,
    /// Blobs refused because their bytes did not hash to their id.
    pub blobs_refused: Counter,
    /// Blobs that could not be fetched (after retries).
    pub blob_fetch_failures: Counter,
    /// Attestations the relayer refused (4xx) or that could not be delivered before the deadline.
    pub attestations_rejected: Counter,
    /// Requests retried after an unreachable or busy relayer.
    pub retries: Counter,
    /// Heartbeats the relayer accepted.
    pub heartbeats: Counter,
    /// Heartbeats that failed.
    pub heartbeat_failures: Counter,
    /// Jobs running now (a gauge).
    pub running: Counter,
    /// Batch proposals signed and accepted by the relayer.
    pub batches_signed: Counter,
    /// Batch proposals refused (an entry not run here, another result, a chain mismatch) or
    /// whose signature the relayer did not take.
    pub batches_refused: Counter,
}

/// Marks a job as running until dropped.
pub(crate) struct RunningGuard<'a>(&'a Metrics);

impl<'a> RunningGuard<'a> {
    pub(crate) fn new(metrics: &'a Metrics) -> Self {
        metrics.running.inc();
        Self(metrics)
    }
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.running.dec();
    }
}

impl Metrics {
    fn all(&self) -> [(&'static str, &'static str, &'static str, u64); 15] {
        [
            (
                "node_registrations_total",
                "counter",
                "Registrations accepted by the relayer.",
                self.registrations.get(),
            ),
            (
                "node_work_items_total",
                "counter",
                "Work items received from the relayer.",
                self.work_items.get(),
            ),
            ("node_jobs_started_total", "counter", "Jobs started.", self.jobs_started.get()),
            (
                "node_jobs_attested_total",
                "counter",
                "Jobs whose attestation the relayer accepted.",
                self.jobs_attested.get(),
            ),
            (
                "node_jobs_failed_total",
                "counter",
                "Jobs that failed in the sandbox.",
                self.jobs_failed.get(),
            ),
            (
                "node_jobs_expired_total",
                "counter",
                "Jobs skipped because their deadline passed.",
                self.jobs_expired.get(),
            ),
            (
                "node_blobs_refused_total",
                "counter",
                "Blobs refused because their bytes did not match their hash.",
                self.blobs_refused.get(),
            ),
            (
                "node_blob_fetch_failures_total",
                "counter",
                "Blobs that could not be fetched.",
                self.blob_fetch_failures.get(),
            ),
            (
                "node_attestations_rejected_total",
                "counter",
                "Attestations refused by the relayer or not delivered in time.",
                self.attestations_rejected.get(),
            ),
            (
                "node_relayer_retries_total",
                "counter",
                "Relayer requests retried after an unreachable or busy relayer.",
                self.retries.get(),
            ),
            ("node_heartbeats_total", "counter", "Heartbeats accepted.", self.heartbeats.get()),
            (
                "node_heartbeat_failures_total",
                "counter",
                "Heartbeats that failed.",
                self.heartbeat_failures.get(),
            ),
            ("node_jobs_running", "gauge", "Jobs running now.", self.running.get()),
            (
                "node_batches_signed_total",
                "counter",
                "Batch proposals signed and accepted by the relayer.",
                self.batches_signed.get(),
            ),
            (
                "node_batches_refused_total",
                "counter",
                "Batch proposals refused (not run here, another result, chain mismatch) or not accepted.",
                self.batches_refused.get(),
            ),
        ]
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, kind, help, value) in self.all() {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"));
        }
        out
    }

    /// Logs every counter at info level.
    pub fn log(&self) {
        tracing::info!(
            running = self.running.get(),
            started = self.jobs_started.get(),
            attested = self.jobs_attested.get(),
            failed = self.jobs_failed.get(),
            expired = self.jobs_expired.get(),
            blobs_refused = self.blobs_refused.get(),
            rejected = self.attestations_rejected.get(),
            retries = self.retries.get(),
            batches_signed = self.batches_signed.get(),
            batches_refused = self.batches_refused.get(),
            "node counters"
        );
    }
}

/// Serves `GET /metrics` on `addr` until `shutdown` resolves. Binds before returning, so a
/// taken port is an error at start, not a log line later.
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: std::sync::Arc<Metrics>,
    shutdown: super::Shutdown,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use axum::{Router, routing::get};
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving Prometheus metrics at /metrics");
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    metrics.render(),
                )
            }
        }),
    );
    Ok(tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.wait().await })
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "metrics endpoint stopped");
        }
    }))
}
