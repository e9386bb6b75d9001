//! `attesta-node attest`: sign an attestation for a finished job.

use std::path::PathBuf;

use alloy::primitives::{Address, U256};
use attesta_sdk::{AttestaClient, Attestation, JobStatus};
use clap::Args;

use super::{ChainArgs, CliError, KeystoreArgs, block_on, out, out_json, read_file};

#[derive(Debug, Args)]
pub(crate) struct AttestArgs {
    /// The escrow's job id.
    #[arg(long)]
    job_id: U256,
    /// The model file the job ran.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// The job's input file.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// The canonical output (what `exec` wrote).
    #[arg(long, value_name = "FILE")]
    result: PathBuf,
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    keystore: KeystoreArgs,
    /// Skip checking the job on chain (no --rpc-url needed). The attestation is then only as
    /// good as the files given.
    #[arg(long)]
    offline: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: AttestArgs) -> Result<(), CliError> {
    let deployment = args.chain.load_deployment()?;
    let model_id = attesta_sdk::model_id(read_file("model file", &args.model)?);
    let input_hash = attesta_sdk::input_hash(read_file("input file", &args.input)?);
    let result = read_file("result file", &args.result)?;
    attesta_sdk::canonical::CanonicalOutput::decode(&result).map_err(|e| {
        CliError::User(format!(
            "the result file {} is not a canonical (ATO1) output ({e}): pass the file `attesta-node exec` wrote",
            args.result.display()
        ))
    })?;
    let result_hash = attesta_sdk::result_hash(&result);

    if args.offline {
        tracing::warn!(job_id = %args.job_id, "--offline: not checking the job on chain");
    } else {
        let job = block_on(async {
            let provider = args.chain.connect(&deployment, None).await?;
            let client = AttestaClient::new(provider, deployment.clone(), Address::ZERO);
            Ok::<_, CliError>(client.job(args.job_id).await?)
        })??;
        if job.status == JobStatus::None {
            return Err(CliError::User(format!(
                "job {} does not exist on chain {}: check --job-id and --deployment",
                args.job_id, deployment.chain_id
            )));
        }
        if job.model_id != model_id || job.input_hash != input_hash {
            return Err(CliError::User(format!(
                "refusing to attest: job {} is for model {} and input {}, but the files hash to model {} and input {}; pass the job's own model and input",
                args.job_id, job.model_id, job.input_hash, model_id, input_hash
            )));
        }
    }

    let signer = args.keystore.load()?;
    let runtime_id = attesta_node::runtime::runtime_id();
    let attestation = Attestation::new(args.job_id, model_id, input_hash, result_hash, runtime_id);
    let domain = deployment.attestation_domain();
    let signed = attestation.sign(&signer, &domain)?;
    let digest = attestation.digest(&domain);
    let signature = alloy::hex::encode_prefixed(signed.signature_bytes());
    if args.json {
        out_json(&serde_json::json!({
            "jobId": args.job_id.to_string(),
            "modelId": model_id.to_string(),
            "inputHash": input_hash.to_string(),
            "resultHash": result_hash.to_string(),
            "runtimeId": runtime_id.to_string(),
            "signer": signer.address().to_string(),
            "digest": digest.to_string(),
            "signature": signature,
        }));
    } else {
        out(&format!("jobId       {}", args.job_id));
        out(&format!("modelId     {model_id}"));
        out(&format!("inputHash   {input_hash}"));
        out(&format!("resultHash  {result_hash}"));
        out(&format!("runtimeId   {runtime_id}"));
        out(&format!("signer      {}", signer.address()));
        out(&format!("digest      {digest}"));
        out(&format!("signature   {signature}"));
    }
    Ok(())
}
