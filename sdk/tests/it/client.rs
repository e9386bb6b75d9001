//! Every `AttestaClient` call against a real chain.

use alloy::{
    primitives::{Address, U256, keccak256},
    providers::Provider as _,
    providers::{DynProvider, ProviderBuilder},
};
use attesta_sdk::{
    AttestaClient, Attestation, Error, JobStatus, input_hash, model_id, quorum,
    testing::{Devnet, TestOperator, test_runtime_id},
};
use std::time::Duration;

const OUTPUT: &[u8] = b"ATO1 label: rust";

fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(10).pow(U256::from(18))
}

async fn client_for(devnet: &Devnet, index: usize) -> AttestaClient<DynProvider> {
    let account = devnet.key(index).address();
    devnet.mint(account, ether(100)).await;
    AttestaClient::new(devnet.provider.clone(), devnet.deployment.clone(), account)
        .with_poll_interval(Duration::from_millis(50))
}

/// Signs OUTPUT for `job_id` with the given operators and settles it through the escrow.
async fn settle(client: &AttestaClient<DynProvider>, ops: &[TestOperator], job_id: U256) {
    let domain = client.deployment().attestation_domain();
    let a = Attestation::new(
        job_id,
        model_id(b"m"),
        input_hash(b"i"),
        keccak256(OUTPUT),
        test_runtime_id(),
    );
    let (packed, _) = quorum::pack_signatures(ops.iter().map(|op| {
        let s = a.sign(&op.signer, &domain).unwrap();
        (s.signer, s.signature)
    }));
    client
        .escrow()
        .settle(job_id, test_runtime_id(), keccak256(OUTPUT), OUTPUT.to_vec().into(), packed)
        .from(client.account())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
}

#[tokio::test]
async fn create_job_approves_escrows_and_reports_status() {
    let devnet = Devnet::spawn().await;
    let client = client_for(&devnet, 70).await;
    let before = client.token().balanceOf(client.account()).call().await.unwrap();
    let deadline = devnet.now().await + 3600;

    let job_id =
        client.create_job(model_id(b"m"), input_hash(b"i"), ether(1), deadline).await.unwrap();
    assert_eq!(job_id, U256::from(1));
    let second =
        client.create_job(model_id(b"m"), input_hash(b"i"), ether(1), deadline).await.unwrap();
    assert_eq!(second, U256::from(2), "ids increase");

    let job = client.job(job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Created);
    assert_eq!(job.client, client.account());
    assert_eq!(job.fee, ether(1));
    assert_eq!(job.deadline, deadline);
    assert_eq!(job.model_id, model_id(b"m"));
    let after = client.token().balanceOf(client.account()).call().await.unwrap();
    assert_eq!(before - after, ether(2), "both fees were pulled");
    assert_eq!(client.job(U256::from(99)).await.unwrap().status, JobStatus::None);
}

#[tokio::test]
async fn bad_requests_fail_with_decoded_errors_and_change_nothing() {
    let devnet = Devnet::spawn().await;
    let client = client_for(&devnet, 70).await;
    let now = devnet.now().await;

    let err = client
        .create_job(model_id(b"m"), input_hash(b"i"), U256::from(1), now + 3600)
        .await
        .unwrap_err();
    match &err {
        Error::Revert { contract: "JobEscrow", name, hint } => {
            assert_eq!(name, "JobEscrowFeeOutOfRange");
            assert!(hint.contains("raise --fee to at least"), "{hint}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!err.is_retryable());

    let err = client.create_job(model_id(b"m"), input_hash(b"i"), ether(1), now).await.unwrap_err();
    assert!(
        matches!(&err, Error::Revert { name, .. } if name == "JobEscrowDeadlineOutOfRange"),
        "{err}"
    );

    // An account without tokens: the token's own custom error, decoded.
    let poor = AttestaClient::new(
        devnet.provider.clone(),
        devnet.deployment.clone(),
        devnet.key(71).address(),
    );
    let err =
        poor.create_job(model_id(b"m"), input_hash(b"i"), ether(1), now + 3600).await.unwrap_err();
    assert!(
        matches!(&err, Error::Revert { name, .. } if name == "ERC20InsufficientBalance"),
        "{err}"
    );

    assert_eq!(client.escrow().jobCount().call().await.unwrap(), U256::ZERO, "no job was created");
    assert!(matches!(client.settlement(U256::from(1)).await, Err(Error::NotSettled { .. })));
    assert!(
        matches!(client.claim().await, Err(Error::Revert { name, .. }) if name == "JobEscrowNothingToClaim")
    );
}

#[tokio::test]
async fn wait_settled_polls_over_http_and_subscribes_over_websocket() {
    let devnet = Devnet::spawn().await;
    let ops = devnet.add_operators(1).await;
    let client = client_for(&devnet, 70).await;
    let deadline = devnet.now().await + 3600;

    // HTTP: no subscriptions, so the client polls.
    let job_id =
        client.create_job(model_id(b"m"), input_hash(b"i"), ether(1), deadline).await.unwrap();
    let timeout = client.wait_settled(job_id, Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(timeout, Error::Timeout { .. }) && timeout.is_retryable());
    let waiter = tokio::spawn({
        let client = client.clone();
        async move { client.wait_settled(job_id, Duration::from_secs(20)).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    settle(&client, &ops, job_id).await;
    let settled = waiter.await.unwrap().unwrap();
    assert_eq!(settled.output.as_ref(), OUTPUT);
    assert_eq!(settled.signers, vec![ops[0].signer.address()]);

    // WebSocket: the same wait through a log subscription.
    let ws = ProviderBuilder::new().connect(&devnet.anvil.ws_endpoint()).await.unwrap().erased();
    let ws_client = AttestaClient::new(ws, devnet.deployment.clone(), Address::ZERO);
    let job_id =
        client.create_job(model_id(b"m"), input_hash(b"i"), ether(1), deadline).await.unwrap();
    let waiter =
        tokio::spawn(async move { ws_client.wait_settled(job_id, Duration::from_secs(20)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    settle(&client, &ops, job_id).await;
    assert_eq!(waiter.await.unwrap().unwrap().job_id, job_id);
}

#[tokio::test]
async fn verify_release_claim_and_refund_move_exact_amounts() {
    let devnet = Devnet::spawn().await;
    let ops = devnet.add_operators(4).await; // M = 3
    let client = client_for(&devnet, 70).await;
    let deadline = devnet.now().await + 3600;
    let job_id =
        client.create_job(model_id(b"m"), input_hash(b"i"), ether(1), deadline).await.unwrap();
    let unserved =
        client.create_job(model_id(b"m"), input_hash(b"i"), ether(1), deadline).await.unwrap();

    settle(&client, &ops[..3], job_id).await;
    let verified = client.verify_settlement(job_id).await.unwrap();
    assert_eq!(verified.threshold, 3);
    assert_eq!(verified.settlement.result_hash, keccak256(OUTPUT));
    assert!(matches!(client.verify_settlement(unserved).await, Err(Error::NotSettled { .. })));

    // Release waits out the challenge window.
    let early = client.release(job_id).await.unwrap_err();
    assert!(
        matches!(&early, Error::Revert { name, .. } if name == "JobEscrowChallengeWindowOpen"),
        "{early}"
    );
    let window = client.escrow().config().call().await.unwrap().challengeWindow.to::<u64>();
    devnet.advance(window).await;
    client.release(job_id).await.unwrap();
    assert_eq!(client.job(job_id).await.unwrap().status, JobStatus::Released);

    // 5% protocol fee; the rest split three ways, dust to the treasury.
    let share = (ether(1) - ether(1) * U256::from(500) / U256::from(10_000)) / U256::from(3);
    for op in &ops[..3] {
        let operator = AttestaClient::new(
            devnet.provider.clone(),
            devnet.deployment.clone(),
            op.account.address(),
        );
        assert_eq!(operator.claim().await.unwrap(), share);
    }
    let idle = AttestaClient::new(
        devnet.provider.clone(),
        devnet.deployment.clone(),
        ops[3].account.address(),
    );
    assert_eq!(idle.owed().await.unwrap(), U256::ZERO, "the non-signer is not paid");

    // The unserved job is refunded once its deadline passed, to its client, once.
    let balance = client.token().balanceOf(client.account()).call().await.unwrap();
    let early = client.refund(unserved).await.unwrap_err();
    assert!(
        matches!(&early, Error::Revert { name, .. } if name == "JobEscrowDeadlineNotReached"),
        "{early}"
    );
    devnet.advance(3600).await;
    let stranger = AttestaClient::new(
        devnet.provider.clone(),
        devnet.deployment.clone(),
        devnet.key(72).address(),
    );
    stranger.refund(unserved).await.unwrap();
    assert_eq!(
        client.token().balanceOf(client.account()).call().await.unwrap(),
        balance + ether(1)
    );
    assert!(
        matches!(stranger.refund(unserved).await, Err(Error::Revert { name, .. }) if name == "JobEscrowWrongStatus")
    );
}

#[tokio::test]
async fn an_overturned_result_no_longer_verifies() {
    let devnet = Devnet::spawn().await;
    let ops = devnet.add_operators(1).await;
    let client = client_for(&devnet, 71).await;
    let deadline = devnet.now().await + 3600;
    let job_id =
        client.create_job(model_id(b"m"), input_hash(b"i"), ether(1), deadline).await.unwrap();
    settle(&client, &ops, job_id).await;
    let settled = client.verify_settlement(job_id).await.unwrap().settlement;

    // The client challenges with the bond; the arbiter (the devnet's admin) overturns.
    let escrow = client.escrow();
    let bond = U256::from(escrow.config().call().await.unwrap().challengeBond);
    client
        .token()
        .approve(devnet.deployment.job_escrow, bond)
        .from(client.account())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    escrow
        .challenge(job_id)
        .from(client.account())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    escrow
        .resolveDispute(job_id, false, settled.result_hash, settled.signers.clone())
        .from(devnet.admin())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(client.job(job_id).await.unwrap().status, JobStatus::Overturned);
    // JobSettled is still in the log, but the result must not verify any more.
    assert!(client.settlement(job_id).await.is_ok());
    let err = client.verify_settlement(job_id).await.unwrap_err();
    assert!(matches!(err, Error::Unverifiable { .. }), "{err}");
}
