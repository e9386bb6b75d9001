//! `attesta-node run`: the long-running node, the node's side of the relayer protocol
//! (docs/relayer.md).
//!
//! 1. `POST /v1/nodes/register` with the runtime id and version (retried until the relayer
//!    answers).
//! 2. Long-poll `GET /v1/nodes/work?wait=SECS`. Each new work item (at most
//!    `max_concurrent_jobs` at a time; never a job already running or done in this process; never
//!    one whose deadline passed) becomes a job task.
//! 3. A job fetches its model and input into the content-addressed [`cache`], refusing bytes
//!    that do not hash to their id, runs in the sandbox exactly as `attesta-node exec` does,
//!    signs an [`Attestation`] in the deployment's EIP-712 domain and posts it with the output
//!    to `POST /v1/nodes/attestations`.
//! 4. `POST /v1/nodes/heartbeat` every interval, with the counters logged alongside.
//! 5. With `rpc_url` set, long-poll `GET /v1/nodes/batches` and sign the batch proposals whose
//!    every entry is a job this node ran with that result and that the chain names with the
//!    model and input the node ran ([`batch`]); post the signature to
//!    `POST /v1/nodes/batch-attestations`.
//!
//! Every request is signed ([`attesta_sdk::relay::RequestAuth`]) afresh on each attempt.
//! Unreachable or busy relayers (transport errors, 5xx, 429) are retried with capped
//! exponential backoff and jitter; other 4xx answers are logged with their code and not
//! retried, except `replayed_nonce`, which is signed again. A job's failure is logged and
//! counted, never fatal. On shutdown the daemon stops taking work and gives running jobs
//! `shutdown_grace` to finish.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{B256, U256};
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::Eip712Domain;
use attesta_sdk::relay::{
    AttestationAccepted, AttestationSubmission, Heartbeat, NodeHello, WorkItem,
};
use attesta_sdk::{Attestation, Deployment};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::sandbox::{Policy, Pool, PoolConfig, SandboxError};

pub mod batch;
pub mod cache;
pub mod client;
pub mod config;
#[cfg(feature = "fault-injection")]
mod fault;
pub mod metrics;

pub use cache::{BlobCache, BlobError};
pub use client::{Backoff, RelayClient, RelayError};
pub use config::{ConfigError, LimitsConfig, NodeConfig, Settings};
pub use metrics::Metrics;

use client::unix_now;

/// The first retry waits about this long; later ones double up to `max_backoff`.
const BACKOFF_BASE: Duration = Duration::from_millis(250);

/// Why the daemon stopped with an error (a job's failure is never one of these).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The data directory cannot be used.
    #[error("data_dir {path}: {source}; create it or point data_dir at a writable directory")]
    DataDir {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The relayer refused the registration (for example: the key is not an active signer).
    #[error(
        "the relayer refused to register this node: {0}; check that the signing key is registered \
         and active (`attesta-node operator status`) and that relayer_url is right"
    )]
    Registration(#[source] RelayError),
    /// The HTTP client cannot be built.
    #[error("cannot set up the relayer client: {0}")]
    Client(#[source] RelayError),
    /// The chain endpoint for batch checks cannot be used.
    #[error(
        "rpc_url {url}: {message}; fix rpc_url or leave it out (the node then signs no batches)"
    )]
    Chain {
        /// The endpoint.
        url: String,
        /// What failed.
        message: String,
    },
    /// The metrics endpoint cannot listen.
    #[error("cannot serve metrics on {addr}: {source}; pick a free --metrics-addr")]
    Metrics {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// How one job can fail; logged and counted, never fatal to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The deadline passed before the job could start or deliver.
    #[error("the job's deadline {deadline} has passed")]
    Expired {
        /// Unix time.
        deadline: u64,
    },
    /// A blob could not be provided (including bytes that do not match their hash).
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The sandboxed run failed.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The attestation could not be signed.
    #[error("cannot sign the attestation: {0}")]
    Sign(#[from] attesta_sdk::Error),
    /// The relayer did not take the attestation.
    #[error("attestation not accepted: {0}")]
    Submit(#[source] RelayError),
    /// The scratch directory cannot be made.
    #[error("scratch directory {path}: {source}")]
    Scratch {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Tells the daemon to shut down. Dropping it without calling [`ShutdownTrigger::trigger`] also
/// shuts the daemon down.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl ShutdownTrigger {
    /// Starts the shutdown: no new work; running jobs get the grace period.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

/// The daemon's side of a shutdown signal.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

/// A connected [`ShutdownTrigger`] and [`Shutdown`].
pub fn shutdown_channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl Shutdown {
    /// Whether shutdown has started.
    pub fn is_started(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Resolves once shutdown starts.
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        // An error means the trigger is gone, which counts as a shutdown.
        let _ = rx.wait_for(|started| *started).await;
    }

    /// Sleeps `duration`; true if shutdown started first.
    pub(crate) async fn sleep(&self, duration: Duration) -> bool {
        tokio::select! {
            () = self.wait() => true,
            () = tokio::time::sleep(duration) => false,
        }
    }
}

/// The node daemon: [`Daemon::run`] until shutdown.
#[derive(Debug)]
pub struct Daemon {
    settings: Settings,
    signer: PrivateKeySigner,
    domain: Eip712Domain,
    chain_id: u64,
    metrics: Arc<Metrics>,
}

/// What every job task shares.
#[derive(Debug)]
struct Context {
    settings: Settings,
    signer: PrivateKeySigner,
    domain: Eip712Domain,
    metrics: Arc<Metrics>,
    client: RelayClient,
    cache: BlobCache,
    jobs_dir: PathBuf,
    /// What this node's attestations commit to (see [`crate::runtime::runtime_id_for`]).
    runtime_id: B256,
    /// The results this node signed, for judging batch proposals.
    results: batch::Results,
    /// Workers prepared ahead of their job (size 0: every job starts cold).
    pool: Arc<Pool>,
}

impl Daemon {
    /// A daemon signing with `signer` in `deployment`'s attestation domain.
    pub fn new(settings: Settings, signer: PrivateKeySigner, deployment: &Deployment) -> Self {
        Self {
            settings,
            signer,
            domain: deployment.attestation_domain(),
            chain_id: deployment.chain_id,
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// The daemon's counters (shared; they keep counting while it runs).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Runs until `shutdown` starts and running jobs have finished (or the grace period ran
    /// out). Returns an error only for what the operator must fix: an unusable data dir or
    /// metrics address, or a relayer that refuses the registration.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), DaemonError> {
        let Self { settings, signer, domain, chain_id, metrics } = self;
        let chain = match &settings.rpc_url {
            Some(url) => Some(connect_chain(url, chain_id).await?),
            None => {
                info!(
                    "no rpc_url: this node signs no batch proposals (its jobs settle one by one)"
                );
                None
            }
        };
        let data_dir = prepare_data_dir(&settings.data_dir)?;
        let jobs_dir = data_dir.join("jobs");
        // Scratch dirs of a previous run are leftovers of jobs that will not be resumed.
        let _ = std::fs::remove_dir_all(&jobs_dir);
        create_private_dir(&jobs_dir)
            .map_err(|source| DaemonError::DataDir { path: jobs_dir.clone(), source })?;
        let cache = BlobCache::open(data_dir.join("blobs")).map_err(|e| match e {
            BlobError::Io { path, source } => DaemonError::DataDir { path, source },
            other => DaemonError::DataDir {
                path: data_dir.clone(),
                source: std::io::Error::other(other),
            },
        })?;
        let metrics_task = match settings.metrics_addr {
            Some(addr) => Some(
                metrics::serve(addr, metrics.clone(), shutdown.clone())
                    .await
                    .map_err(|source| DaemonError::Metrics { addr, source })?,
            ),
            None => None,
        };
        if settings.allow_degraded_sandbox {
            warn!(
                "allow_degraded_sandbox: jobs run with whatever isolation this kernel offers; \
                 do not serve untrusted models or inputs like this"
            );
        }
        let backoff = Backoff { base: BACKOFF_BASE, cap: settings.max_backoff };
        let client = RelayClient::new(
            settings.relayer_url.clone(),
            signer.clone(),
            settings.request_timeout,
            backoff,
            metrics.clone(),
        )
        .map_err(DaemonError::Client)?;
        // Opting out only changes anything on a kernel that lacks a feature; then the node
        // attests under the degraded id (runtime::DEGRADED_SUFFIX).
        let degraded =
            settings.allow_degraded_sandbox && !crate::sandbox::probe().missing().is_empty();
        let runtime_id = crate::runtime::runtime_id_for(degraded);
        let hello = NodeHello {
            runtime_id,
            models: Vec::new(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            signs_batches: settings.rpc_url.is_some(),
        };
        info!(
            relayer = %settings.relayer_url,
            signer = %signer.address(),
            runtime_id = %hello.runtime_id,
            max_concurrent_jobs = settings.max_concurrent_jobs,
            "registering with the relayer"
        );
        match client.register(&hello, &shutdown).await {
            Ok(()) => {}
            Err(RelayError::Cancelled) => {
                info!("shutdown before the relayer answered; nothing to finish");
                return Ok(());
            }
            Err(e) => {
                error!(code = e.code().unwrap_or(""), error = %e, "registration refused");
                return Err(DaemonError::Registration(e));
            }
        }
        metrics.registrations.inc();
        info!("registered; waiting for work");

        let pool = Arc::new(sandbox_pool(&settings));
        let ctx = Arc::new(Context {
            pool,
            settings,
            signer,
            domain,
            metrics: metrics.clone(),
            client,
            cache,
            jobs_dir,
            runtime_id,
            results: batch::Results::default(),
        });
        let heartbeat = tokio::spawn(heartbeats(ctx.clone(), shutdown.clone()));
        let batches = chain
            .map(|chain| tokio::spawn(batch::batch_loop(ctx.clone(), chain, shutdown.clone())));
        let mut tasks = poll_loop(&ctx, &shutdown).await;

        let grace = ctx.settings.shutdown_grace;
        if !tasks.is_empty() {
            info!(running = tasks.len(), ?grace, "shutting down: letting running jobs finish");
        }
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            warn!(abandoned = tasks.len(), ?grace, "grace period over: abandoning running jobs");
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        let _ = heartbeat.await;
        if let Some(task) = batches {
            let _ = task.await;
        }
        if let Some(task) = metrics_task {
            let _ = task.await;
        }
        metrics.log();
        info!("stopped");
        Ok(())
    }
}

/// Takes work until shutdown; returns the jobs still running.
async fn poll_loop(ctx: &Arc<Context>, shutdown: &Shutdown) -> JoinSet<()> {
    let semaphore = Arc::new(Semaphore::new(ctx.settings.max_concurrent_jobs));
    let mut tasks = JoinSet::new();
    // Jobs taken by this process (running, done or failed), with their deadline: the relayer
    // hands out every open job this signer has not attested, including ones running here.
    let mut taken: HashMap<U256, u64> = HashMap::new();
    let mut refusals = 0u32;
    let backoff = Backoff { base: BACKOFF_BASE, cap: ctx.settings.max_backoff };
    'poll: loop {
        while let Some(done) = tasks.try_join_next() {
            log_panic(done);
        }
        if shutdown.is_started() {
            break;
        }
        let batch = match ctx.client.work(ctx.settings.poll_wait, shutdown).await {
            Ok(batch) => {
                refusals = 0;
                batch
            }
            Err(RelayError::Cancelled) => break,
            Err(e) => {
                // Not retryable (a 4xx or an unreadable answer): the request itself is not
                // repeated as is, but the daemon keeps asking for work, slowly.
                error!(code = e.code().unwrap_or(""), error = %e, "work request refused");
                refusals = refusals.saturating_add(1);
                if shutdown.sleep(backoff.delay(refusals)).await {
                    break;
                }
                continue;
            }
        };
        let now = unix_now();
        // A day past its deadline a job can no longer come back.
        taken.retain(|_, deadline| deadline.saturating_add(86_400) >= now);
        let (mut new, offered) = (0usize, batch.jobs.len());
        for item in batch.jobs {
            ctx.metrics.work_items.inc();
            if taken.contains_key(&item.job_id) {
                continue;
            }
            new += 1;
            if item.deadline <= now {
                ctx.metrics.jobs_expired.inc();
                info!(job_id = %item.job_id, deadline = item.deadline, "skipping job: deadline passed");
                taken.insert(item.job_id, item.deadline);
                continue;
            }
            let permit = tokio::select! {
                permit = semaphore.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break 'poll,
                },
                () = shutdown.wait() => break 'poll,
            };
            taken.insert(item.job_id, item.deadline);
            let span = info_span!("job", job_id = %item.job_id);
            tasks.spawn(run_job(ctx.clone(), item, permit).instrument(span));
        }
        if new == 0 {
            // Nothing new: either the long poll ran out (ask again soon) or everything offered
            // is running, done or failed here (the relayer keeps offering a job until this
            // signer attests it): wait for a job to end or a while, instead of spinning.
            let pause = if offered == 0 {
                Duration::from_millis(200)
            } else {
                ctx.settings.poll_wait.min(Duration::from_secs(5))
            };
            tokio::select! {
                Some(done) = tasks.join_next(), if !tasks.is_empty() => log_panic(done),
                stop = shutdown.sleep(pause) => if stop { break },
            }
        }
    }
    tasks
}

fn log_panic(result: Result<(), tokio::task::JoinError>) {
    if let Err(e) = result
        && e.is_panic()
    {
        error!(error = %e, "a job task panicked");
    }
}

/// One job from work item to accepted attestation; every ending is logged and counted.
async fn run_job(ctx: Arc<Context>, item: WorkItem, _permit: OwnedSemaphorePermit) {
    let metrics = &ctx.metrics;
    match process(&ctx, &item).await {
        Ok(accepted) => {
            metrics.jobs_attested.inc();
            info!(
                agreeing = accepted.agreeing,
                threshold = accepted.threshold,
                "attestation accepted"
            );
        }
        Err(JobError::Expired { deadline }) => {
            metrics.jobs_expired.inc();
            warn!(deadline, "job skipped: its deadline passed");
        }
        Err(JobError::Blob(e @ BlobError::HashMismatch { .. })) => {
            metrics.blobs_refused.inc();
            error!(error = %e, "refusing the job: a blob does not match its hash");
        }
        Err(JobError::Blob(e)) => {
            metrics.blob_fetch_failures.inc();
            error!(error = %e, "job's blobs unavailable");
        }
        Err(JobError::Sandbox(e)) => {
            metrics.jobs_failed.inc();
            error!(error = %e, kind = sandbox_kind(&e), "job failed in the sandbox");
        }
        Err(JobError::Submit(e)) => {
            metrics.attestations_rejected.inc();
            error!(code = e.code().unwrap_or(""), error = %e, "attestation not accepted");
        }
        Err(e) => {
            metrics.jobs_failed.inc();
            error!(error = %e, "job failed");
        }
    }
}

async fn process(ctx: &Context, item: &WorkItem) -> Result<AttestationAccepted, JobError> {
    let expired = || unix_now() >= item.deadline;
    if expired() {
        return Err(JobError::Expired { deadline: item.deadline });
    }
    ctx.metrics.jobs_started.inc();
    let _running = metrics::RunningGuard::new(&ctx.metrics);
    let (model, model_bytes) = ctx
        .cache
        .get(&ctx.client, item.model_id, crate::inference::MAX_MODEL_BYTES, item.deadline)
        .await?;
    drop(model_bytes);
    let (_, input) = ctx
        .cache
        .get(&ctx.client, item.input_hash, ctx.settings.limits.max_input, item.deadline)
        .await?;
    // Inputs serve one job; models stay cached for the next.
    ctx.cache.evict(item.input_hash).await;
    if expired() {
        return Err(JobError::Expired { deadline: item.deadline });
    }

    let scratch = Scratch::new(&ctx.jobs_dir, item.job_id)?;
    // An output above the escrow's limit could never settle: stop the job instead of signing.
    let mut limits = ctx.settings.limits.clone();
    limits.max_output = limits.max_output.min(u64::from(item.max_output_bytes));
    let mut policy = Policy::new(&model, &scratch.0).with_limits(limits);
    if let Some(worker) = &ctx.settings.worker {
        policy = policy.with_worker(worker);
    }
    policy.allow_degraded = ctx.settings.allow_degraded_sandbox;
    debug!(model = %model.display(), scratch = %scratch.0.display(), "running job");
    let pool = ctx.pool.clone();
    let output = tokio::task::spawn_blocking(move || pool.run_job(&policy, &input))
        .await
        .map_err(|e| SandboxError::Io(std::io::Error::other(e)))??;
    drop(scratch);

    let result_hash = attesta_sdk::result_hash(&output.canonical);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    info!(
        %result_hash,
        pooled = output.pooled,
        start_ms = ms(output.start),
        job_ms = ms(output.job),
        total_ms = ms(output.elapsed),
        "job ran"
    );
    let attestation =
        Attestation::new(item.job_id, item.model_id, item.input_hash, result_hash, ctx.runtime_id);
    #[cfg(feature = "fault-injection")]
    if let Some(fault) = fault::Fault::from_env() {
        return fault.act(ctx, item, attestation, output.canonical).await;
    }
    let signed = attestation.sign(&ctx.signer, &ctx.domain)?;
    // Remembered before submitting: a batch proposal can only hold results this node signed.
    ctx.results.insert(
        item.job_id,
        batch::OwnResult {
            model_id: item.model_id,
            input_hash: item.input_hash,
            result_hash,
            runtime_id: ctx.runtime_id,
        },
    );
    let submission = AttestationSubmission { attestation: signed, output: output.canonical.into() };
    ctx.client.submit(&submission, item.deadline).await.map_err(JobError::Submit)
}

/// The daemon's pool of prepared workers; a pool that cannot start is logged and replaced by
/// none (every job then starts cold and reports its own sandbox error).
fn sandbox_pool(settings: &Settings) -> Pool {
    let mut config = PoolConfig::new(settings.sandbox_pool_size);
    if let Some(worker) = &settings.worker {
        config = config.with_worker(worker);
    }
    config.allow_degraded = settings.allow_degraded_sandbox;
    Pool::new(config).unwrap_or_else(|e| {
        warn!(error = %e, "no prepared sandbox workers: every job starts its worker cold");
        Pool::disabled()
    })
}

/// A job's private scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(jobs_dir: &Path, job_id: U256) -> Result<Self, JobError> {
        let path = jobs_dir.join(format!("{job_id}-{:08x}", rand::random::<u32>()));
        create_private_dir(&path)
            .map_err(|source| JobError::Scratch { path: path.clone(), source })?;
        Ok(Self(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            warn!(path = %self.0.display(), error = %e, "cannot remove a job's scratch directory");
        }
    }
}

fn sandbox_kind(e: &SandboxError) -> &'static str {
    match e {
        SandboxError::Unsupported { .. } => "unsupported",
        SandboxError::InvalidPolicy(_) => "invalid_policy",
        SandboxError::InputTooLarge { .. } => "input_too_large",
        SandboxError::Io(_) => "io",
        SandboxError::Timeout { .. } => "timeout",
        SandboxError::CpuLimit { .. } => "cpu_limit",
        SandboxError::MemoryLimit { .. } => "memory_limit",
        SandboxError::SeccompViolation => "seccomp",
        SandboxError::OutputTooLarge { .. } => "output_too_large",
        SandboxError::Setup { .. } => "setup",
        SandboxError::Job { .. } => "job",
        SandboxError::Signal { .. } => "signal",
        SandboxError::Exit { .. } => "exit",
    }
}

async fn heartbeats(ctx: Arc<Context>, shutdown: Shutdown) {
    loop {
        if shutdown.sleep(ctx.settings.heartbeat_interval).await {
            return;
        }
        let running = u32::try_from(ctx.metrics.running.get()).unwrap_or(u32::MAX);
        match ctx.client.heartbeat(&Heartbeat { running }).await {
            Ok(()) => ctx.metrics.heartbeats.inc(),
            Err(e) => {
                ctx.metrics.heartbeat_failures.inc();
                warn!(code = e.code().unwrap_or(""), error = %e, "heartbeat failed");
            }
        }
        ctx.metrics.log();
    }
}

/// A read-only provider for `url`, checked to serve the deployment's chain.
async fn connect_chain(url: &reqwest::Url, chain_id: u64) -> Result<DynProvider, DaemonError> {
    use alloy::providers::{Provider as _, ProviderBuilder};
    let err = |message: String| DaemonError::Chain { url: url.to_string(), message };
    let provider = ProviderBuilder::new().connect_http(url.clone()).erased();
    let served =
        provider.get_chain_id().await.map_err(|e| err(format!("eth_chainId failed: {e}")))?;
    if served != chain_id {
        return Err(err(format!(
            "it serves chain {served}, but the deployment file is for chain {chain_id}"
        )));
    }
    Ok(provider)
}

/// Creates the data dir if needed and returns its absolute path (the sandbox needs absolute
/// paths).
fn prepare_data_dir(dir: &Path) -> Result<PathBuf, DaemonError> {
    let err = |source| DaemonError::DataDir { path: dir.to_path_buf(), source };
    std::fs::create_dir_all(dir).map_err(err)?;
    std::fs::canonicalize(dir).map_err(err)
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path)
}
