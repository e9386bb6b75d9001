//! `attesta-node exec`: one job through the real sandbox.

use std::path::{Path, PathBuf};
use std::time::Duration;

use attesta_node::sandbox::{Limits, Policy, Pool, PoolConfig};
use clap::Args;

use super::{CliError, out, out_json, read_file};

#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// The ONNX model file.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// The job input (ATI1 tensor container).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Scratch directory, the only place the job may write [default: a new temporary dir].
    #[arg(long, value_name = "DIR")]
    scratch: Option<PathBuf>,
    /// Where to write the canonical output [default: SCRATCH/output.ato1].
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Wall-clock limit of the job, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    timeout: f64,
    /// Run even if the kernel lacks sandbox features (weaker isolation; loudly logged).
    #[arg(long)]
    allow_degraded_sandbox: bool,
    /// Start the worker only once the job is known, instead of preparing it (namespaces,
    /// seccomp) while the model and input are read and hashed.
    #[arg(long)]
    cold_sandbox: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ExecArgs) -> Result<(), CliError> {
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 86_400.0) {
        return Err(CliError::User(format!(
            "--timeout {} is out of range: give seconds between 0 and 86400",
            args.timeout
        )));
    }
    // One worker prepared ahead of the job: its start-up overlaps reading and hashing the files.
    let pool = if args.cold_sandbox {
        Pool::disabled()
    } else {
        let mut config = PoolConfig::new(1);
        config.allow_degraded = args.allow_degraded_sandbox;
        Pool::new(config).unwrap_or_else(|e| {
            tracing::debug!(error = %e, "no prepared worker; the job starts a cold one");
            Pool::disabled()
        })
    };
    // The worker runs with `/` as its working directory, so every path it gets is absolute.
    let model = absolute("model file", &args.model)?;
    let size = std::fs::metadata(&model).map(|m| m.len()).unwrap_or(0);
    if size > attesta_node::inference::MAX_MODEL_BYTES {
        return Err(CliError::User(format!(
            "the model file {} is {size} bytes, more than the limit of {} bytes: use a smaller model",
            model.display(),
            attesta_node::inference::MAX_MODEL_BYTES
        )));
    }
    let model_bytes = read_file("model file", &model)?;
    let input = read_file("input file", &args.input)?;
    let model_id = attesta_sdk::model_id(&model_bytes);
    drop(model_bytes);
    let input_hash = attesta_sdk::input_hash(&input);
    let scratch = match &args.scratch {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| CliError::File {
                what: "scratch directory",
                path: dir.clone(),
                source,
            })?;
            absolute("scratch directory", dir)?
        }
        None => new_scratch()?,
    };
    let limits = Limits { wall_clock: Duration::from_secs_f64(args.timeout), ..Limits::default() };
    let mut policy = Policy::new(&model, &scratch).with_limits(limits);
    if args.allow_degraded_sandbox {
        tracing::warn!(
            "--allow-degraded-sandbox: jobs run with whatever isolation this kernel offers; \
             do not serve untrusted models or inputs like this"
        );
        policy.allow_degraded = true;
    }
    tracing::info!(model = %model.display(), scratch = %scratch.display(), "running job");
    let job = pool.run_job(&policy, &input)?;
    let result_hash = attesta_sdk::result_hash(&job.canonical);
    let output = args.output.clone().unwrap_or_else(|| scratch.join("output.ato1"));
    std::fs::write(&output, &job.canonical).map_err(|source| CliError::File {
        what: "output file",
        path: output.clone(),
        source,
    })?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    if args.json {
        out_json(&serde_json::json!({
            "modelId": model_id.to_string(),
            "inputHash": input_hash.to_string(),
            "resultHash": result_hash.to_string(),
            "output": output.display().to_string(),
            "outputBytes": job.canonical.len(),
            "pooled": job.pooled,
            "timings": {
                "startMs": ms(job.start),
                "totalMs": ms(job.elapsed),
                "sandboxSetupMs": ms(job.setup),
                "jobMs": ms(job.job),
            },
        }));
    } else {
        out(&format!("modelId     {model_id}"));
        out(&format!("inputHash   {input_hash}"));
        out(&format!("resultHash  {result_hash}"));
        out(&format!("output      {} ({} bytes)", output.display(), job.canonical.len()));
        out(&format!(
            "timings     total {:.2} ms, start {:.2} ms ({}), sandbox setup {:.2} ms, job {:.2} ms",
            ms(job.elapsed),
            ms(job.start),
            if job.pooled { "prepared worker" } else { "cold worker" },
            ms(job.setup),
            ms(job.job)
        ));
    }
    Ok(())
}

fn absolute(what: &'static str, path: &Path) -> Result<PathBuf, CliError> {
    std::fs::canonicalize(path).map_err(|source| CliError::File {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// A fresh private scratch directory under the system temp dir (kept: the output is written there).
fn new_scratch() -> Result<PathBuf, CliError> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = base.join(format!("attesta-exec-{}-{nanos:09}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(|source| CliError::File {
        what: "scratch directory",
        path: dir.clone(),
        source,
    })?;
    std::fs::canonicalize(&dir).map_err(|source| CliError::File {
        what: "scratch directory",
        path: dir,
        source,
    })
}
