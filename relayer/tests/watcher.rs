//! The watcher against a real anvil: a range killed before its commit replays once (R1), a
//! reorg inside the window is rolled back and replayed (R3), a deeper one stops it (R4), the
//! switch from backfill to live loses and repeats nothing (R6, polling and WebSocket), and a
//! dead RPC endpoint is retried without skipping a range (R11).

#![allow(clippy::unwrap_used)]

mod core_support;

use alloy::{
    primitives::U256,
    providers::{Provider, ProviderBuilder, ext::AnvilApi},
    rpc::types::anvil::ReorgOptions,
};
use attesta_relayer::{
    Store,
    watcher::{Step, WatchError, Watcher, WatcherConfig},
};
use attesta_sdk::{bindings::JobEscrow, testing::Devnet};
use core_support::{Proxy, anvil_addr, catch_up, create_job, reader, sqlite, watcher_config};
use std::time::Duration;
use tokio::sync::watch;

fn watcher(devnet: &Devnet, store: &Store, config: WatcherConfig) -> Watcher {
    Watcher::new(store.clone(), reader(&devnet.anvil.endpoint()), devnet.deployment.clone(), config)
}

async fn created_events(store: &Store) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events WHERE kind = 'JobCreated'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    n
}

/// The database's jobs are exactly the chain's: same ids, same inputs.
async fn assert_matches_chain(devnet: &Devnet, store: &Store) {
    let escrow = JobEscrow::new(devnet.deployment.job_escrow, &devnet.provider);
    let count = escrow.jobCount().call().await.unwrap().to::<u64>();
    for id in 1..=count {
        let on_chain = escrow.job(U256::from(id)).call().await.unwrap();
        let view = store
            .job_view(U256::from(id))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("job {id} missing"));
        assert_eq!(view.input_hash, on_chain.inputHash, "job {id}");
    }
    assert!(store.job_view(U256::from(count + 1)).await.unwrap().is_none());
    assert_eq!(created_events(store).await, i64::try_from(count).unwrap(), "one event per job");
}

async fn wait_for_job(store: &Store, id: u64) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while store.job_view(U256::from(id)).await.unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("job {id} never appeared"));
}

#[tokio::test]
async fn a_range_killed_before_its_commit_is_replayed_once() {
    let devnet = Devnet::spawn().await;
    create_job(&devnet, b"a").await;
    create_job(&devnet, b"b").await;
    let (_dir, store) = sqlite().await;

    let mut first = watcher(&devnet, &store, watcher_config(0));
    let batch = first.fetch_range().await.unwrap().unwrap();
    {
        let mut tx = store.pool().begin().await.unwrap();
        Store::apply_range(&mut tx, &batch).await.unwrap().unwrap();
        // Killed here: the transaction never commits.
    }
    drop(first);
    assert_eq!(store.event_count().await.unwrap(), 0);
    assert_eq!(store.cursor(devnet.deployment.chain_id).await.unwrap(), None);

    // The restarted watcher replays the range, once.
    let mut restarted = watcher(&devnet, &store, watcher_config(0));
    catch_up(&mut restarted).await;
    assert_matches_chain(&devnet, &store).await;
    let events = store.event_count().await.unwrap();

    // Handling the same logs again changes nothing: the old batch is refused as stale, and a
    // third watcher from the stored cursor finds nothing new.
    assert!(store.commit_range(&batch).await.unwrap().is_none());
    catch_up(&mut watcher(&devnet, &store, watcher_config(0))).await;
    assert_eq!(store.event_count().await.unwrap(), events);
    assert_matches_chain(&devnet, &store).await;
}

#[tokio::test]
async fn a_reorg_inside_the_window_is_rolled_back_and_replayed() {
    let devnet = Devnet::spawn().await;
    let (_dir, store) = sqlite().await;
    let mut w = watcher(&devnet, &store, watcher_config(1));
    create_job(&devnet, b"old").await;
    devnet.provider.anvil_mine(Some(1), None).await.unwrap();
    catch_up(&mut w).await;
    let view = store.job_view(U256::from(1)).await.unwrap().unwrap();
    let created = view.created_block;

    // Replace the job's block and the one after: past the confirmation depth, inside the window.
    let tip = devnet.provider.get_block_number().await.unwrap();
    let depth = tip - created + 1;
    devnet.provider.anvil_reorg(ReorgOptions { depth, tx_block_pairs: vec![] }).await.unwrap();
    create_job(&devnet, b"new").await;
    devnet.provider.anvil_mine(Some(1), None).await.unwrap();

    let steps = catch_up(&mut w).await;
    assert!(
        matches!(steps.first(), Some(Step::RolledBack { fork, .. }) if *fork < created),
        "{steps:?}"
    );
    assert_matches_chain(&devnet, &store).await;
}

#[tokio::test]
async fn a_reorg_deeper_than_the_window_stops_the_watcher() {
    let devnet = Devnet::spawn().await;
    let (_dir, store) = sqlite().await;
    let config = WatcherConfig { reorg_window: 2, ..watcher_config(0) };
    let mut w = watcher(&devnet, &store, config);
    create_job(&devnet, b"a").await;
    devnet.provider.anvil_mine(Some(8), None).await.unwrap();
    catch_up(&mut w).await;
    let cursor = store.cursor(devnet.deployment.chain_id).await.unwrap();

    devnet.provider.anvil_reorg(ReorgOptions { depth: 6, tx_block_pairs: vec![] }).await.unwrap();
    for _ in 0..2 {
        let err = w.step().await.unwrap_err();
        assert!(matches!(err, WatchError::ReorgTooDeep { .. }), "{err}");
        assert!(!err.is_retryable());
    }
    // It never guessed: nothing was rolled back or advanced.
    assert_eq!(store.cursor(devnet.deployment.chain_id).await.unwrap(), cursor);
    assert!(store.job_view(U256::from(1)).await.unwrap().is_some());
    // `run` stops with the same error instead of spinning.
    let (_stop, stopped) = watch::channel(false);
    let err = w.run(stopped).await.unwrap_err();
    assert!(matches!(err, WatchError::ReorgTooDeep { .. }));
}

async fn backfill_then_live(devnet: &Devnet, w: Watcher, store: &Store) {
    for i in 0..3u8 {
        create_job(devnet, &[i]).await;
    }
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(w.run(stopped));
    // Jobs keep arriving while the watcher backfills and switches to following the tip.
    for i in 3..8u8 {
        create_job(devnet, &[i]).await;
    }
    wait_for_job(store, 8).await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert_matches_chain(devnet, store).await;
}

#[tokio::test]
async fn backfill_to_live_by_polling_has_no_gap_or_duplicate() {
    let devnet = Devnet::spawn().await;
    let (_dir, store) = sqlite().await;
    let w = watcher(&devnet, &store, watcher_config(0));
    backfill_then_live(&devnet, w, &store).await;
}

#[tokio::test]
async fn backfill_to_live_by_websocket_has_no_gap_or_duplicate() {
    let devnet = Devnet::spawn().await;
    let (_dir, store) = sqlite().await;
    let ws = ProviderBuilder::new().connect(&devnet.anvil.ws_endpoint()).await.unwrap().erased();
    // A long poll interval: progress must come from the subscription.
    let config = WatcherConfig {
        subscribe: true,
        poll_interval: Duration::from_secs(60),
        ..watcher_config(0)
    };
    let w = Watcher::new(store.clone(), ws, devnet.deployment.clone(), config);
    backfill_then_live(&devnet, w, &store).await;
}

#[tokio::test]
async fn a_dead_rpc_endpoint_is_retried_without_skipping_a_range() {
    let devnet = Devnet::spawn().await;
    let (_dir, store) = sqlite().await;
    let proxy = Proxy::start(anvil_addr(&devnet)).await;
    let config = WatcherConfig { rpc_timeout: Duration::from_secs(1), ..watcher_config(0) };
    let mut w = Watcher::new(store.clone(), reader(&proxy.url), devnet.deployment.clone(), config);
    create_job(&devnet, b"before").await;
    catch_up(&mut w).await;
    let range = w.range();

    proxy.down();
    let err = w.step().await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    // Blocks and jobs keep coming while the relayer cannot see them.
    create_job(&devnet, b"during 1").await;
    devnet.provider.anvil_mine(Some(3), None).await.unwrap();
    create_job(&devnet, b"during 2").await;
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(w.run(stopped));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(store.job_view(U256::from(2)).await.unwrap().is_none());
    proxy.up();
    wait_for_job(&store, 3).await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert_matches_chain(&devnet, &store).await;
    let tip = devnet.provider.get_block_number().await.unwrap();
    assert_eq!(store.cursor(devnet.deployment.chain_id).await.unwrap(), Some(tip + 1));
    assert!(range >= 1);
}

#[tokio::test]
async fn the_binary_follows_the_chain_and_stops_cleanly_on_sigterm() {
    let devnet = Devnet::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let deployment = dir.path().join("deployment.json");
    std::fs::write(&deployment, serde_json::to_string(&devnet.deployment).unwrap()).unwrap();
    let db = dir.path().join("relayer.db");
    let config = dir.path().join("relayer.toml");
    std::fs::write(
        &config,
        "[chain]\nconfirmations = 0\npoll_interval_ms = 50\nstart_block = 0\n[duties]\ninterval_ms = 200\n[api]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    create_job(&devnet, b"a").await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_attesta-relayer"))
        .args(["run", "--config"])
        .arg(&config)
        .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", db.display()))
        .env("ATTESTA_RPC_URL", devnet.anvil.endpoint())
        .env("ATTESTA_DEPLOYMENT", &deployment)
        // anvil's second dev key: a throwaway devnet key, never a real one.
        .env(
            "ATTESTA_RELAYER_KEY",
            "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        )
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    create_job(&devnet, b"b").await;
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", db.display())).await.unwrap();
    wait_for_job(&store, 2).await;
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status =
        tokio::time::timeout(Duration::from_secs(20), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
    assert_matches_chain(&devnet, &store).await;
}
