//! `attesta`: the client command line (`attesta --help`).
//!
//! Human output by default, one JSON object per command with `--json`. Exit codes: 0 success,
//! 1 an error whose message says what to do, 2 bad usage.

use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider},
};
use attesta_sdk::{
    AttestaClient, Deployment, Error, JobStatus,
    canonical::CanonicalOutput,
    cli::{AccountArgs, ChainArgs, out, out_json, report_error},
    input,
    relay::RelayClient,
};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

/// Attesta client: pay staked nodes to run a model, and get a result M of N of them signed.
#[derive(Debug, Parser)]
#[command(name = "attesta", version, about, propagate_version = true)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Submit jobs, follow them, fetch verified results, refund and claim.
    #[command(subcommand)]
    Job(JobCommand),
    /// Make models available to the network's nodes.
    #[command(subcommand)]
    Models(ModelsCommand),
}

#[derive(Debug, Subcommand)]
enum JobCommand {
    /// Upload an input, escrow the fee and create the job (optionally wait for its result).
    Submit(Box<SubmitArgs>),
    /// Print a job's on-chain state (and the relayer's view with --relayer).
    Status {
        /// The job id.
        id: U256,
        #[command(flatten)]
        chain: ChainArgs,
        /// Also show the relayer's view (attestations so far).
        #[arg(long, value_name = "URL", env = "ATTESTA_RELAYER_URL")]
        relayer: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Fetch a settled job's result and verify its signatures against the chain yourself.
    Result(Box<ResultArgs>),
    /// Return the fee of a job nobody settled by its deadline to its client (anyone may call).
    Refund {
        /// The job id.
        id: U256,
        #[command(flatten)]
        chain: ChainArgs,
        #[command(flatten)]
        account: AccountArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Withdraw everything the escrow owes the account (refunds, payouts, bonds).
    Claim {
        #[command(flatten)]
        chain: ChainArgs,
        #[command(flatten)]
        account: AccountArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// Upload an ONNX model to a relayer; prints its model id (keccak256 of the file).
    Upload {
        /// The .onnx file.
        file: PathBuf,
        /// The relayer to upload to.
        #[arg(long, value_name = "URL", env = "ATTESTA_RELAYER_URL")]
        relayer: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// How `--input` becomes the job's input bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Encode {
    /// The file already is an ATI1 tensor input; send it as is.
    Raw,
    /// Any file: build the magika demo model's input from its first and last 1024 bytes.
    Magika,
}

#[derive(Debug, Args)]
struct SubmitArgs {
    /// The model id (keccak256 of the model file; see `attesta models upload`).
    #[arg(long, value_name = "ID")]
    model: B256,
    /// The input file.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// How to turn the file into the model's input.
    #[arg(long, value_enum, default_value = "raw")]
    encode: Encode,
    /// Fee in token base units [default: the escrow's minimum fee].
    #[arg(long)]
    fee: Option<U256>,
    /// Seconds from now until the job must be settled, else it can be refunded.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    deadline: u64,
    /// Wait for the settlement and print the verified result.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    timeout: u64,
    /// The relayer that hands the input to nodes.
    #[arg(long, value_name = "URL", env = "ATTESTA_RELAYER_URL")]
    relayer: String,
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    account: AccountArgs,
    #[command(flatten)]
    show: ShowArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ResultArgs {
    /// The job id.
    id: U256,
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    show: ShowArgs,
    /// Where to fetch the output of a job settled in a batch (batches publish no outputs on
    /// chain); the bytes are checked against the attested result hash.
    #[arg(long, value_name = "URL", env = "ATTESTA_RELAYER_URL")]
    relayer: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// How to present an output.
#[derive(Debug, Args)]
struct ShowArgs {
    /// Name the top scores with the labels of a magika config.min.json.
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// How many top scores to show per output tensor.
    #[arg(long, value_name = "K", default_value_t = 3)]
    top: usize,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    attesta_sdk::cli::init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            report_error(&format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report_error(&e);
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), Error> {
    match command {
        Command::Models(ModelsCommand::Upload { file, relayer, json }) => {
            let bytes = read(&file, "model file")?;
            let stored = RelayClient::new(&relayer)?.upload_blob(bytes).await?;
            if json {
                out_json(&json!({ "modelId": stored.hash, "size": stored.size }));
            } else {
                out(&format!("model id {} ({} bytes)", stored.hash, stored.size));
            }
            Ok(())
        }
        Command::Job(JobCommand::Submit(args)) => submit(*args).await,
        Command::Job(JobCommand::Status { id, chain, relayer, json }) => {
            let (client, _) = connect(&chain, None).await?;
            let job = client.job(id).await?;
            if job.status == JobStatus::None {
                return Err(Error::Usage(format!("there is no job {id} on this deployment")));
            }
            let view = match relayer {
                Some(url) => RelayClient::new(&url)?.job(id).await?,
                None => None,
            };
            if json {
                out_json(&json!({
                    "jobId": id.to_string(),
                    "status": job.status.to_string(),
                    "client": job.client,
                    "fee": job.fee.to_string(),
                    "deadline": job.deadline,
                    "modelId": job.model_id,
                    "inputHash": job.input_hash,
                    "relayer": view,
                }));
            } else {
                out(&format!(
                    "job {id}: {} (fee {}, deadline {}, model {}, input {})",
                    job.status, job.fee, job.deadline, job.model_id, job.input_hash
                ));
                if let Some(view) = view {
                    for tally in &view.attestations {
                        out(&format!(
                            "  {} signer(s) attested result {}",
                            tally.signers, tally.result_hash
                        ));
                    }
                }
            }
            Ok(())
        }
        Command::Job(JobCommand::Result(args)) => {
            let (client, _) = connect(&args.chain, None).await?;
            let relay = args.relayer.as_deref().map(RelayClient::new).transpose()?;
            show_result(&client, relay.as_ref(), args.id, &args.show, args.json).await
        }
        Command::Job(JobCommand::Refund { id, chain, account, json }) => {
            let key = account.key()?;
            let (client, _) = connect(&chain, Some(key)).await?;
            let job = client.job(id).await?;
            let receipt = client.refund(id).await?;
            report_tx(json, "refund", receipt.transaction_hash, job.fee, job.client);
            Ok(())
        }
        Command::Job(JobCommand::Claim { chain, account, json }) => {
            let key = account.key()?;
            let (client, _) = connect(&chain, Some(key)).await?;
            let owed = client.owed().await?;
            if owed.is_zero() {
                return Err(Error::Usage(format!(
                    "the escrow owes {} nothing: payouts are credited when a settled job is released",
                    client.account()
                )));
            }
            let amount = client.claim().await?;
            if json {
                out_json(&json!({ "action": "claim", "amount": amount.to_string() }));
            } else {
                out(&format!("claimed {amount} to {}", client.account()));
            }
            Ok(())
        }
    }
}

async fn submit(args: SubmitArgs) -> Result<(), Error> {
    let file = read(&args.input, "input file")?;
    let input = match args.encode {
        Encode::Raw => {
            // Refuse an input no node can decode before any money moves.
            input::Input::decode(&file)?;
            file
        }
        Encode::Magika => input::magika_input(&file).encode(),
    };
    let relay = RelayClient::new(&args.relayer)?;
    if !relay.has_blob(args.model).await? {
        return Err(Error::Usage(format!(
            "the relayer has no model {}: upload it with `attesta models upload FILE`",
            args.model
        )));
    }
    let key = args.account.key()?;
    let (client, provider) = connect(&args.chain, Some(key)).await?;
    let config = client.escrow().config().call().await?;
    let fee = args.fee.unwrap_or(U256::from(config.minFee));
    if fee < U256::from(config.minFee) {
        return Err(Error::Usage(format!(
            "fee {fee} is below the escrow's minimum: pass --fee {} or more",
            config.minFee
        )));
    }
    let (min, max) = (config.minJobDuration.to::<u64>(), config.maxJobDuration.to::<u64>());
    if !(min..=max).contains(&args.deadline) {
        return Err(Error::Usage(format!(
            "--deadline {} s is outside the escrow's [{min}, {max}] s: pick a value in that range",
            args.deadline
        )));
    }
    let balance = client.token().balanceOf(client.account()).call().await?;
    if balance < fee {
        return Err(Error::Usage(format!(
            "{} holds {balance} tokens, less than the fee {fee}: fund the account first",
            client.account()
        )));
    }
    let stored = relay.upload_blob(input).await?;
    let now =
        provider.get_block(alloy::eips::BlockId::latest()).await?.map_or(0, |b| b.header.timestamp);
    let job_id = client.create_job(args.model, stored.hash, fee, now + args.deadline).await?;
    if args.json && !args.wait {
        out_json(
            &json!({ "jobId": job_id.to_string(), "inputHash": stored.hash, "fee": fee.to_string() }),
        );
    } else if !args.json {
        out(&format!(
            "job {job_id} created: model {}, input {}, fee {fee}",
            args.model, stored.hash
        ));
    }
    if args.wait {
        client.wait_settled(job_id, Duration::from_secs(args.timeout)).await?;
        show_result(&client, Some(&relay), job_id, &args.show, args.json).await?;
    }
    Ok(())
}

/// Verifies a settlement from the chain alone and prints it. A batch-settled job's output is
/// fetched from `relay` and checked against the attested result hash.
async fn show_result(
    client: &AttestaClient<DynProvider>,
    relay: Option<&RelayClient>,
    job_id: U256,
    show: &ShowArgs,
    json: bool,
) -> Result<(), Error> {
    let verified = client.verify_settlement(job_id).await?;
    let settlement = &verified.settlement;
    let bytes = match (&settlement.batch, relay) {
        (None, _) => settlement.output.clone(),
        (Some(_), None) => {
            return Err(Error::Usage(format!(
                "job {job_id} settled in a batch, which publishes no outputs on chain: pass \
                 --relayer URL to fetch it (checked against the attested result hash)"
            )));
        }
        (Some(_), Some(relay)) => {
            let result = relay.job_result(job_id).await?.ok_or_else(|| {
                Error::Usage(format!("the relayer has no result for job {job_id}: try another"))
            })?;
            settlement.check_output(&result.output)?;
            result.output
        }
    };
    let output = CanonicalOutput::decode(&bytes)?;
    let labels = match &show.labels {
        Some(path) => Some(input::magika_labels(&read(path, "labels file")?)?),
        None => None,
    };
    let scale = 10f64.powi(i32::from(output.decimals));
    let tops: Vec<Vec<(usize, Option<&str>, f64)>> = output
        .tensors
        .iter()
        .map(|t| {
            t.top_k(show.top)
                .into_iter()
                .map(|(i, v)| {
                    let label = labels.as_ref().and_then(|l| l.get(i)).map(String::as_str);
                    (i, label, f64::from(v) / scale)
                })
                .collect()
        })
        .collect();
    if json {
        out_json(&json!({
            "jobId": job_id.to_string(),
            "resultHash": settlement.result_hash,
            "runtimeId": settlement.runtime_id,
            "signers": settlement.signers,
            "threshold": verified.threshold,
            "output": bytes,
            "top": tops.iter().map(|t| t.iter().map(|(i, l, v)| json!({"index": i, "label": l, "score": v})).collect::<Vec<_>>()).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    out(&format!(
        "job {job_id}: result {} signed by {} of threshold {} (verified against the chain)",
        settlement.result_hash,
        settlement.signers.len(),
        verified.threshold
    ));
    for (n, top) in tops.iter().enumerate() {
        let shown: Vec<String> = top
            .iter()
            .map(|(i, label, v)| match label {
                Some(label) => format!("{label} {v:.4}"),
                None => format!("[{i}] {v:.4}"),
            })
            .collect();
        out(&format!("  output {n}: {}", shown.join(", ")));
    }
    Ok(())
}

fn report_tx(json: bool, action: &str, tx: B256, amount: U256, to: Address) {
    if json {
        out_json(
            &json!({ "action": action, "txHash": tx, "amount": amount.to_string(), "to": to }),
        );
    } else {
        out(&format!("{action}: {amount} sent to {to} in {tx}"));
    }
}

async fn connect(
    chain: &ChainArgs,
    key: Option<alloy::signers::local::PrivateKeySigner>,
) -> Result<(AttestaClient<DynProvider>, DynProvider), Error> {
    let deployment: Deployment = chain.load_deployment()?;
    let account = key.as_ref().map_or(Address::ZERO, |k| k.address());
    let provider = chain.connect(&deployment, key).await?;
    Ok((AttestaClient::new(provider.clone(), deployment, account), provider))
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| {
        Error::Usage(format!("{what} {}: {e}; check the path and its permissions", path.display()))
    })
}
