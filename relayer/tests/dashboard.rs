//! The public network routes and the dashboard page over a real TCP socket, on a real anvil
//! devnet with a real SQLite store (and PostgreSQL when ATTESTA_TEST_POSTGRES_URL is set): a job
//! settled by M attestations, an equivocation slashed on chain, and what `/v1/network`,
//! `/v1/jobs`, `/v1/jobs/{id}/attestations`, `/v1/slashings`, `/v1/stats` and `/dashboard`
//! report about them.

#![allow(clippy::unwrap_used)]

mod core_support;

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256, keccak256},
    providers::Provider,
    rpc::types::TransactionRequest,
    signers::Signature,
};
use attesta_relayer::{
    Store,
    aggregate::Aggregator,
    api::{self, ApiConfig, ApiState},
    chain::ActiveSet,
    watcher::Watcher,
};
use attesta_sdk::{
    Attestation,
    bindings::StakingRegistry,
    relay::AttestationSubmission,
    testing::{Devnet, TestOperator, test_runtime_id},
};
use core_support::{catch_up, create_job, model_id, reader, sqlite, watcher_config};
use serde_json::Value;
use std::{sync::Arc, time::Duration};
use tokio::sync::{Notify, oneshot};

const OUTPUT: &[u8] = b"label: rust";

fn attestation(job: U256, input: &[u8], output: &[u8]) -> Attestation {
    Attestation::new(job, model_id(), keccak256(input), keccak256(output), test_runtime_id())
}

async fn submit(
    devnet: &Devnet,
    agg: &Aggregator,
    op: &TestOperator,
    job: U256,
    input: &[u8],
    output: &[u8],
) -> Result<u32, String> {
    let signed = attestation(job, input, output)
        .sign(&op.signer, &devnet.deployment.attestation_domain())
        .unwrap();
    let submission =
        AttestationSubmission { attestation: signed, output: Bytes::copy_from_slice(output) };
    agg.submit(op.signer.address(), submission)
        .await
        .map(|a| a.agreeing)
        .map_err(|e| e.code().to_owned())
}

/// Sends every queued duty from the deployer, as the transaction manager would.
async fn send_outbox(devnet: &Devnet, store: &Store, sent: &mut usize) {
    let rows: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT to_address, calldata FROM outbox ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    for (to, calldata) in &rows[*sent..] {
        let tx = TransactionRequest::default()
            .with_from(devnet.admin())
            .with_to(to.parse::<Address>().unwrap())
            .with_input(calldata.clone());
        let receipt =
            devnet.provider.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
        assert!(receipt.status(), "queued duty reverted");
    }
    *sent = rows.len();
}

async fn get(http: &reqwest::Client, base: &str, path: &str) -> (reqwest::StatusCode, Value) {
    let response = http.get(format!("{base}{path}")).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn u256(v: &Value) -> U256 {
    v.as_str().unwrap().parse().unwrap()
}

async fn network_routes_report_jobs_attestations_and_slashing(postgres: bool) {
    let devnet = Devnet::spawn().await;
    let ops = devnet.add_operators(4).await;
    let (_dir, mut store) = sqlite().await;
    if postgres {
        let Some(pg) = core_support::postgres("dashboard").await else { return };
        store = pg;
    }
    let provider = reader(&devnet.anvil.endpoint());
    let active = ActiveSet::load(provider.clone(), devnet.deployment.clone()).await.unwrap();
    let m = usize::try_from(active.threshold()).unwrap();
    assert_eq!(m, 3);
    let mut watcher =
        Watcher::new(store.clone(), provider, devnet.deployment.clone(), watcher_config(0));
    let agg = Aggregator::new(store.clone(), active.clone());
    let mut sent = 0;

    // Job A settles with M agreeing attestations.
    let settled = create_job(&devnet, b"input-a").await;
    catch_up(&mut watcher).await;
    for op in &ops[..m] {
        submit(&devnet, &agg, op, settled, b"input-a", OUTPUT).await.unwrap();
    }
    send_outbox(&devnet, &store, &mut sent).await;
    catch_up(&mut watcher).await;

    // Job B: the fourth operator's signer attests two results; the evidence is slashed on chain.
    let open = create_job(&devnet, b"input-b").await;
    catch_up(&mut watcher).await;
    let cheat = &ops[3];
    assert_eq!(submit(&devnet, &agg, cheat, open, b"input-b", OUTPUT).await, Ok(1));
    assert_eq!(
        submit(&devnet, &agg, cheat, open, b"input-b", b"another").await,
        Err("equivocation".to_owned())
    );
    send_outbox(&devnet, &store, &mut sent).await;
    catch_up(&mut watcher).await;
    active.refresh().await.unwrap();

    let state = ApiState::new(store.clone(), agg.clone(), active.clone(), Arc::new(Notify::new()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        api::serve_on(listener, ApiConfig::default(), state, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    // /v1/network: the active set with the stakes the registry holds right now.
    let (status, network) = get(&http, &base, "/v1/network").await;
    assert_eq!(status, 200, "{network}");
    assert_eq!(network["chain_id"], devnet.deployment.chain_id);
    assert_eq!(network["threshold"], active.threshold());
    let registry = StakingRegistry::new(devnet.deployment.staking_registry, &devnet.provider);
    let listed = network["operators"].as_array().unwrap();
    assert_eq!(listed.len(), active.snapshot().signers.len());
    assert!(listed.len() >= 3);
    for entry in listed {
        let operator: Address = entry["operator"].as_str().unwrap().parse().unwrap();
        let signer: Address = entry["signer"].as_str().unwrap().parse().unwrap();
        assert!(active.contains(signer));
        assert_eq!(registry.operatorOf(signer).call().await.unwrap(), operator);
        let record = registry.operator(operator).call().await.unwrap();
        assert_eq!(u256(&entry["stake"]), U256::from(record.stake), "stake as on chain");
        assert_eq!(entry["jailed"], record.jailed);
    }

    // /v1/jobs: newest first, with states and attestation tallies; paging with before/limit.
    let (status, jobs) = get(&http, &base, "/v1/jobs").await;
    assert_eq!(status, 200, "{jobs}");
    let jobs = jobs["jobs"].as_array().unwrap();
    assert_eq!(jobs.iter().map(|j| u256(&j["job_id"])).collect::<Vec<_>>(), vec![open, settled]);
    assert_eq!(jobs[0]["status"], "open");
    assert_eq!(jobs[0]["attestations"][0]["signers"], 1, "the contradicting result is not counted");
    assert_eq!(jobs[1]["status"], "settled");
    assert_eq!(jobs[1]["attestations"][0]["signers"], m);
    assert_eq!(jobs[1]["signers"].as_array().unwrap().len(), m);
    let (_, page) = get(&http, &base, "/v1/jobs?limit=1").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1);
    let (_, page) = get(&http, &base, &format!("/v1/jobs?before={open}")).await;
    assert_eq!(u256(&page["jobs"][0]["job_id"]), settled);
    let (status, _) = get(&http, &base, "/v1/jobs?limit=lots").await;
    assert_eq!(status, 400);

    // /v1/jobs/{id}/attestations: who signed what, with signatures that check out.
    let (status, body) = get(&http, &base, &format!("/v1/jobs/{settled}/attestations")).await;
    assert_eq!(status, 200, "{body}");
    let list = body["attestations"].as_array().unwrap();
    assert_eq!(list.len(), m);
    let domain = devnet.deployment.attestation_domain();
    let digest = attestation(settled, b"input-a", OUTPUT).digest(&domain);
    let mut expected: Vec<Address> = ops[..m].iter().map(|o| o.signer.address()).collect();
    expected.sort();
    for (entry, signer) in list.iter().zip(&expected) {
        assert_eq!(entry["signer"].as_str().unwrap().parse::<Address>().unwrap(), *signer);
        assert_eq!(
            entry["result_hash"].as_str().unwrap().parse::<B256>().unwrap(),
            keccak256(OUTPUT)
        );
        let sig: Bytes = entry["signature"].as_str().unwrap().parse().unwrap();
        let sig = Signature::try_from(sig.as_ref()).unwrap();
        assert_eq!(sig.recover_address_from_prehash(&digest).unwrap(), *signer);
    }
    let (status, _) = get(&http, &base, "/v1/jobs/999/attestations").await;
    assert_eq!(status, 404);

    // /v1/slashings: the confirmed Slashed event and the equivocation behind it.
    let (status, slashings) = get(&http, &base, "/v1/slashings").await;
    assert_eq!(status, 200, "{slashings}");
    let slashes = slashings["slashes"].as_array().unwrap();
    assert_eq!(slashes.len(), 1, "{slashings}");
    assert_eq!(
        slashes[0]["operator"].as_str().unwrap().parse::<Address>().unwrap(),
        cheat.account.address()
    );
    assert!(u256(&slashes[0]["amount"]) > U256::ZERO);
    let equivocations = slashings["equivocations"].as_array().unwrap();
    assert_eq!(equivocations.len(), 1);
    assert_eq!(u256(&equivocations[0]["job_id"]), open);
    assert_eq!(
        equivocations[0]["signer"].as_str().unwrap().parse::<Address>().unwrap(),
        cheat.signer.address()
    );

    // /v1/stats: counts per state, attestations, and the settlement inside every window.
    let (status, stats) = get(&http, &base, "/v1/stats").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["jobs"]["settled"], 1);
    assert_eq!(stats["jobs"]["open"], 1);
    assert_eq!(stats["jobs"]["refunded"], 0);
    assert_eq!(stats["attestations"], m + 1);
    for window in stats["settled"].as_array().unwrap() {
        assert_eq!(window["jobs"], 1, "{window}");
    }

    // The page itself, and the routes in the OpenAPI description.
    let page = http.get(format!("{base}/dashboard")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.headers().contains_key("content-security-policy"));
    let html = page.text().await.unwrap();
    assert!(html.contains("Attesta network status") && html.contains("/v1/slashings"));
    let (_, openapi) = get(&http, &base, "/openapi.json").await;
    for path in [
        "/v1/network",
        "/v1/jobs",
        "/v1/jobs/{id}/attestations",
        "/v1/slashings",
        "/v1/stats",
        "/dashboard",
    ] {
        assert!(openapi["paths"].get(path).is_some(), "{path} missing from /openapi.json");
    }

    // A dApp on another origin may upload and read: CORS preflight answered.
    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{base}/v1/blobs"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(15), server).await.unwrap().unwrap();
}

#[tokio::test]
async fn network_routes_report_jobs_attestations_and_slashing_on_sqlite() {
    network_routes_report_jobs_attestations_and_slashing(false).await;
}

#[tokio::test]
async fn network_routes_report_jobs_attestations_and_slashing_on_postgres() {
    network_routes_report_jobs_attestations_and_slashing(true).await;
}
