//! One job through the whole protocol with the sdk, on a throwaway local chain:
//! four operators stake, a client escrows a fee, three nodes sign the result, the escrow verifies the
//! 3-of-4 quorum, the client re-verifies it from chain data alone, and the signers are paid.
//!
//! Run with `cargo run -p attesta-sdk --example end_to_end` (needs `npm ci` for anvil and forge).

#![allow(clippy::print_stdout)]

use alloy::primitives::{U256, keccak256};
use attesta_sdk::{
    AttestaClient, Attestation, input_hash, model_id, quorum, result_hash,
    testing::{Devnet, test_runtime_id},
};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let devnet = Devnet::spawn().await;
    println!("anvil at {} with Attesta deployed:", devnet.anvil.endpoint());
    println!(
        "  JobEscrow {}  StakingRegistry {}",
        devnet.deployment.job_escrow, devnet.deployment.staking_registry
    );

    let operators = devnet.add_operators(4).await;
    let client_account = devnet.key(70).address();
    devnet.mint(client_account, U256::from(10).pow(U256::from(19))).await;
    let client =
        AttestaClient::new(devnet.provider.clone(), devnet.deployment.clone(), client_account);
    let threshold = client.registry().threshold().call().await?;
    println!("4 operators staked; threshold M = {threshold}");

    let (model, input, output) =
        (b"model.onnx".as_slice(), b"fn main() {}".as_slice(), b"label: rust".as_slice());
    let fee = U256::from(10).pow(U256::from(18));
    let deadline = devnet.now().await + 3600;
    let job_id = client.create_job(model_id(model), input_hash(input), fee, deadline).await?;
    println!("job {job_id} created with a fee of 1 token");

    // Three nodes sign the same result; the relayer packs their signatures sorted by signer.
    let attestation = Attestation::new(
        job_id,
        model_id(model),
        input_hash(input),
        result_hash(output),
        test_runtime_id(),
    );
    let domain = devnet.deployment.attestation_domain();
    let signed = operators[..3]
        .iter()
        .map(|op| attestation.sign(&op.signer, &domain))
        .collect::<Result<Vec<_>, _>>()?;
    let (signatures, signers) =
        quorum::pack_signatures(signed.iter().map(|s| (s.signer, s.signature)));
    client
        .escrow()
        .settle(job_id, test_runtime_id(), keccak256(output), output.to_vec().into(), signatures)
        .from(client_account)
        .send()
        .await?
        .get_receipt()
        .await?;
    let settled = client.wait_settled(job_id, Duration::from_secs(10)).await?;
    println!(
        "settled by {} signers: {:?}",
        signers.len(),
        String::from_utf8_lossy(&settled.output)
    );

    let verified = client.verify_settlement(job_id).await?;
    println!(
        "re-verified from chain data: {} signatures >= M = {}",
        verified.settlement.signers.len(),
        verified.threshold
    );

    let window = client.escrow().config().call().await?.challengeWindow.to::<u64>();
    devnet.advance(window).await;
    client.release(job_id).await?;
    for op in &operators[..3] {
        let paid = AttestaClient::new(
            devnet.provider.clone(),
            devnet.deployment.clone(),
            op.account.address(),
        )
        .claim()
        .await?;
        println!("operator {} claimed {paid}", op.account.address());
    }
    Ok(())
}
