//! Batch settlement end to end with real processes: anvil with 1-second blocks, the
//! `attesta-relayer` binary with `[batch] enabled = true`, and four `attesta-node` daemons
//! (M = 3) that check every batch entry on chain through their own `rpc_url` before signing.
//! The relayer is SIGKILLed and restarted while jobs are in flight. From the chain's logs: every
//! job settled exactly once (most of them by `settleBatch`), paid exactly once, only to honest
//! signers, and each operator is owed the sum of its shares. Prints the gas per job of the
//! batches as mined on anvil.

#![allow(clippy::unwrap_used, clippy::print_stderr, missing_docs)]

mod core_support;
mod e2e_support;

use alloy::{
    consensus::Transaction as _,
    primitives::{Address, U256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::{SolCall, SolEvent},
};
use attesta_sdk::{JobStatus, bindings::JobEscrow, relay::RelayClient};
use e2e_support::{Behaviour, NODES, Network};
use std::{collections::BTreeMap, time::Duration};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_settle_in_batches_through_the_real_binaries() {
    let mut net = Network::new().await;
    let rpc = net.devnet.anvil.endpoint();
    net.node_rpc_url = Some(rpc.clone());
    let db = format!("sqlite://{}?mode=rwc", net.dir.path().join("relayer.db").display());
    let mut relayer = net.relayer("relayer", &db, &rpc, 75);
    relayer.append_config(
        "[batch]\nenabled = true\nmax_jobs = 8\nmax_wait_ms = 4000\nsign_timeout_ms = 60000\n\
         tick_ms = 200\n",
    );
    relayer.start().await;
    let relay = RelayClient::new(&relayer.url).unwrap();
    for i in 0..NODES {
        net.start_node(i, &relayer.url.clone(), Behaviour::Honest);
    }
    net.upload_model(&relay).await;

    let mut served = net.jobs(&relay, 6, 1.0).await;
    // A crash while the first jobs are being attested, proposed or signed.
    tokio::time::sleep(net.random_pause()).await;
    relayer.kill().await;
    relayer.start().await;
    served.extend(net.jobs(&relay, 6, 50.0).await);
    net.until_all(&served, |s| s == JobStatus::Settled, "settled").await;

    // The relayer serves each output (not in any log) and shows the batch.
    let mut batched_views = 0;
    for job in &served {
        let view = wait_settled_view(&relay, *job).await;
        batched_views += usize::from(view.batch_root.is_some());
        let result: attesta_sdk::relay::JobResult =
            reqwest::get(format!("{}/v1/jobs/{job}/result", relayer.url))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        assert_eq!(attesta_sdk::result_hash(&result.output), result.result_hash);
        assert_eq!(Some(result.result_hash), view.result_hash);
    }

    net.skip_challenge_window().await;
    net.until_all(&served, |s| s == JobStatus::Released, "released").await;
    relayer.assert_alive();

    // The chain's account: settlements from JobSettled (alone) and BatchSettled (calldata).
    let provider = &net.devnet.provider;
    let escrow = net.devnet.deployment.job_escrow;
    let logs = |topic| {
        let filter = Filter::new().address(escrow).event_signature(topic).from_block(0);
        async move { provider.get_logs(&filter).await.unwrap() }
    };
    let mut settled: BTreeMap<U256, Vec<Vec<Address>>> = BTreeMap::new();
    for log in logs(JobEscrow::JobSettled::SIGNATURE_HASH).await {
        let e = log.log_decode::<JobEscrow::JobSettled>().unwrap().inner.data;
        settled.entry(e.jobId).or_default().push(e.signers);
    }
    let (mut batches, mut batched_jobs, mut batch_gas) = (0usize, 0usize, 0u64);
    for log in logs(JobEscrow::BatchSettled::SIGNATURE_HASH).await {
        let e = log.log_decode::<JobEscrow::BatchSettled>().unwrap().inner.data;
        let hash = log.transaction_hash.unwrap();
        let tx = provider.get_transaction_by_hash(hash).await.unwrap().unwrap();
        let call = JobEscrow::settleBatchCall::abi_decode(tx.input()).unwrap();
        assert_eq!(U256::from(call.entries.len()), e.jobCount);
        for entry in &call.entries {
            settled.entry(entry.jobId).or_default().push(e.signers.clone());
        }
        let receipt = provider.get_transaction_receipt(hash).await.unwrap().unwrap();
        batches += 1;
        batched_jobs += call.entries.len();
        batch_gas += receipt.gas_used;
    }
    let mut released: BTreeMap<U256, Vec<U256>> = BTreeMap::new();
    for log in logs(JobEscrow::PaymentReleased::SIGNATURE_HASH).await {
        let e = log.log_decode::<JobEscrow::PaymentReleased>().unwrap().inner.data;
        released.entry(e.jobId).or_default().push(e.signerShare);
    }
    let honest = net.signer_addresses(&[0, 1, 2, 3]);
    let mut shares: BTreeMap<Address, U256> = BTreeMap::new();
    for job in &served {
        let s = settled.get(job).map_or(0, Vec::len);
        assert_eq!(s, 1, "job {job} settled {s} times");
        let signers = &settled[job][0];
        assert!(signers.len() >= 3 && signers.iter().all(|s| honest.contains(s)), "{signers:?}");
        let r = released.get(job).map_or(0, Vec::len);
        assert_eq!(r, 1, "job {job} paid {r} times");
        for op in &net.operators {
            if signers.contains(&op.signer.address()) {
                *shares.entry(op.account.address()).or_default() += released[job][0];
            }
        }
    }
    assert_eq!(settled.len(), served.len(), "nothing else settled");
    let contract = JobEscrow::new(escrow, provider);
    for op in &net.operators {
        let owed = contract.owed(op.account.address()).call().await.unwrap();
        assert_eq!(owed, shares.get(&op.account.address()).copied().unwrap_or_default());
    }
    assert!(batches >= 1 && batched_jobs >= 4, "{batches} batches of {batched_jobs} jobs");
    assert_eq!(batched_views, batched_jobs, "the job view names the batch of each batched job");
    eprintln!(
        "e2e batch figures: {} jobs, {batches} settleBatch transactions holding {batched_jobs} \
         jobs ({} settled alone), settleBatch gas {batch_gas} total = {} per batched job \
         (anvil receipts, 3-4 signatures each); duplicate settlements 0, duplicate payments 0",
        served.len(),
        served.len() - batched_jobs,
        batch_gas / batched_jobs.max(1) as u64,
    );
    for i in 0..NODES {
        net.stop_node(i).await;
    }
    relayer.kill().await;
}

async fn wait_settled_view(relay: &RelayClient, job: U256) -> attesta_sdk::relay::JobView {
    for _ in 0..600 {
        if let Some(view) = relay.job(job).await.unwrap()
            && view.result_hash.is_some()
        {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {job} never settled in the relayer's view");
}
