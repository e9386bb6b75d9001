//! The transaction manager against a real anvil: sent once, crash and send-error safe, fee
//! bumps under a spike, replacements matched, nonce resync, no-ops, reorgs (R2, R7–R10, R13).

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use alloy::{
    consensus::Transaction as _,
    network::TransactionBuilder as _,
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ProviderBuilder, ext::AnvilApi},
    rpc::{client::ClientBuilder, types::TransactionRequest},
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
    transports::{TransportError, TransportErrorKind, TransportFut},
};
use attesta_relayer::{
    Store,
    store::{
        outbox::{OutboxEntry, OutboxStatus},
        testing::{self, TestStore},
    },
    txm::{TxConfig, TxManager, enqueue},
};
use attesta_sdk::{AttestaClient, bindings::JobEscrow, input_hash, model_id, testing::Devnet};
use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

const GWEI: u128 = 1_000_000_000;
/// A plain address the transfer duties pay zero wei to: always succeeds, 21 000 gas.
const SINK: Address = Address::repeat_byte(0xee);

fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(10).pow(U256::from(18))
}

fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("attesta_relayer=debug")
        .with_test_writer()
        .try_init();
}

/// A fresh SQLite store (kept alive by the returned value).
async fn sqlite() -> TestStore {
    logs();
    testing::sqlite().await
}

/// A fresh PostgreSQL database when ATTESTA_TEST_POSTGRES_URL is set (see `tools/pg`).
async fn postgres() -> Option<TestStore> {
    logs();
    let db = testing::postgres().await;
    if db.is_none() {
        println!("note: ATTESTA_TEST_POSTGRES_URL unset; skipping the PostgreSQL variant");
    }
    db
}

/// Fast settings for tests: one confirmation unless a test says otherwise.
fn config() -> TxConfig {
    TxConfig { confirmations: 1, poll_interval_ms: 50, ..TxConfig::default() }
}

fn plain_provider(devnet: &Devnet) -> DynProvider {
    ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_http(devnet.anvil.endpoint_url())
        .erased()
}

/// The relayer's key: a funded test account nobody else in these tests sends from.
fn relayer_key(devnet: &Devnet) -> PrivateKeySigner {
    devnet.key(79)
}

async fn manager_with(
    devnet: &Devnet,
    store: &Store,
    provider: DynProvider,
    config: TxConfig,
) -> TxManager {
    let chain_id = devnet.provider.get_chain_id().await.unwrap();
    TxManager::new(store.clone(), provider, relayer_key(devnet), chain_id, config).unwrap()
}

async fn manager(devnet: &Devnet, store: &Store, config: TxConfig) -> TxManager {
    manager_with(devnet, store, plain_provider(devnet), config).await
}

async fn duty(store: &Store, key: &str, to: Address, calldata: &[u8]) {
    let mut conn = store.pool().acquire().await.unwrap();
    assert!(enqueue(&mut conn, key, to, calldata).await.unwrap());
}

async fn status(store: &Store, key: &str) -> OutboxEntry {
    store.outbox_status(key).await.unwrap().unwrap()
}

async fn account_nonce(devnet: &Devnet) -> u64 {
    devnet.provider.get_transaction_count(relayer_key(devnet).address()).await.unwrap()
}

async fn mine(devnet: &Devnet, blocks: u64) {
    devnet.provider.anvil_mine(Some(blocks), None).await.unwrap();
}

/// A job created by a client (account 70), with its deadline already passed: refundable.
async fn expired_job(devnet: &Devnet) -> U256 {
    let client = AttestaClient::new(
        devnet.provider.clone(),
        devnet.deployment.clone(),
        devnet.key(70).address(),
    );
    devnet.mint(client.account(), ether(10)).await;
    let deadline = devnet.now().await + 3600;
    let id = client.create_job(model_id(b"m"), input_hash(b"i"), ether(1), deadline).await.unwrap();
    devnet.advance(3601).await;
    id
}

fn refund_call(job_id: U256) -> Vec<u8> {
    JobEscrow::refundCall { jobId: job_id }.abi_encode()
}

async fn job_status(devnet: &Devnet, job_id: U256) -> attesta_sdk::JobStatus {
    AttestaClient::new(devnet.provider.clone(), devnet.deployment.clone(), Address::ZERO)
        .job(job_id)
        .await
        .unwrap()
        .status
}

/// Ticks (mining a block after each) until `key` is final.
async fn until_final(devnet: &Devnet, txm: &TxManager, store: &Store, key: &str) -> OutboxEntry {
    for _ in 0..40 {
        txm.tick().await.unwrap();
        let entry = status(store, key).await;
        if entry.status.is_final() {
            return entry;
        }
        mine(devnet, 1).await;
    }
    panic!("{key} never became final: {:?}", status(store, key).await);
}

async fn refund_is_sent_once_and_confirmed(db: TestStore) {
    let devnet = Devnet::spawn().await;
    let store = db.store;
    let job = expired_job(&devnet).await;
    let txm = manager(&devnet, &store, config()).await;
    let wake = txm.notifier();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(txm.run(async move {
        stopped.await.ok();
    }));

    duty(&store, "refund:1", devnet.deployment.job_escrow, &refund_call(job)).await;
    // The same trigger handled twice queues nothing new.
    let mut conn = store.pool().acquire().await.unwrap();
    assert!(!enqueue(&mut conn, "refund:1", devnet.deployment.job_escrow, b"x").await.unwrap());
    drop(conn);
    wake.notify_one();

    let entry = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let entry = status(&store, "refund:1").await;
            if entry.status.is_final() {
                break entry;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the refund is confirmed within 20 s");
    stop.send(()).unwrap();
    task.await.unwrap();

    assert_eq!(entry.status, OutboxStatus::Confirmed, "{entry:?}");
    assert_eq!(entry.nonce, Some(0));
    assert_eq!(job_status(&devnet, job).await, attesta_sdk::JobStatus::Refunded);
    assert_eq!(account_nonce(&devnet).await, 1, "exactly one transaction sent");
    assert_eq!(store.outbox_attempts(entry.id).await.unwrap().len(), 1);
    assert_eq!(store.next_nonce(relayer_key(&devnet).address()).await.unwrap(), Some(1));
}

#[tokio::test]
async fn queued_refund_is_sent_once_and_confirmed_on_sqlite() {
    refund_is_sent_once_and_confirmed(sqlite().await).await;
}

#[tokio::test]
async fn queued_refund_is_sent_once_and_confirmed_on_postgres() {
    if let Some(db) = postgres().await {
        refund_is_sent_once_and_confirmed(db).await;
    }
}

/// R2: the manager dies right after broadcasting. The restarted one finds the stored
/// transactions, sends nothing new for them and leaves no nonce gap.
async fn restart_after_broadcast(db: TestStore) {
    let devnet = Devnet::spawn().await;
    let store = db.store.clone();
    devnet.provider.anvil_set_auto_mine(false).await.unwrap();
    for i in 0..3 {
        duty(&store, &format!("pay:{i}"), SINK, &[]).await;
    }
    let first = manager(&devnet, &store, config()).await;
    assert_eq!(first.tick().await.unwrap().sent, 3);
    drop(first);

    let second = manager(&devnet, &store, config()).await;
    for i in 0..3 {
        let entry = until_final(&devnet, &second, &store, &format!("pay:{i}")).await;
        assert_eq!(entry.status, OutboxStatus::Confirmed);
        assert_eq!(entry.nonce, Some(i));
        assert_eq!(store.outbox_attempts(entry.id).await.unwrap().len(), 1, "never re-signed");
    }
    for _ in 0..3 {
        assert_eq!(second.tick().await.unwrap().sent, 0);
        mine(&devnet, 1).await;
    }
    assert_eq!(account_nonce(&devnet).await, 3, "three duties, three transactions");
}

#[tokio::test]
async fn restart_after_broadcast_sends_nothing_twice_and_skips_no_nonce_on_sqlite() {
    restart_after_broadcast(sqlite().await).await;
}

#[tokio::test]
async fn restart_after_broadcast_sends_nothing_twice_and_skips_no_nonce_on_postgres() {
    if let Some(db) = postgres().await {
        restart_after_broadcast(db).await;
    }
}

/// Fails `eth_sendRawTransaction` on every other call: before it reaches the node (a refused
/// connection), or after the node took it (a lost response).
#[derive(Clone)]
struct FlakySend<S> {
    inner: S,
    sends: Arc<AtomicUsize>,
}

impl<S> tower::Layer<S> for FlakySend<()> {
    type Service = FlakySend<S>;
    fn layer(&self, inner: S) -> FlakySend<S> {
        FlakySend { inner, sends: Arc::clone(&self.sends) }
    }
}

// Generic over the request packet type, which alloy does not re-export without its `json-rpc`
// feature: the method is found in the serialised request instead.
impl<S, Req, Resp> tower::Service<Req> for FlakySend<S>
where
    S: tower::Service<
            Req,
            Response = Resp,
            Error = TransportError,
            Future = TransportFut<'static, Resp>,
        >,
    Resp: Send + 'static,
    Req: serde::Serialize,
{
    type Response = Resp;
    type Error = TransportError;
    type Future = TransportFut<'static, Resp>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let json = serde_json::to_string(&request).unwrap_or_default();
        if !json.contains("\"eth_sendRawTransaction\"") {
            return self.inner.call(request);
        }
        // A fixed pseudo-random pattern (splitmix64): a regular one would alias with the
        // manager's rebroadcast order and always fail the same transaction.
        let n = self.sends.fetch_add(1, Ordering::SeqCst) as u64;
        let mut z = n.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        match (z ^ (z >> 31)) % 4 {
            0 => Box::pin(async {
                Err(TransportErrorKind::custom_str("injected: connection refused"))
            }),
            2 => {
                let sent = self.inner.call(request);
                Box::pin(async move {
                    let _ = sent.await;
                    Err(TransportErrorKind::custom_str("injected: response lost"))
                })
            }
            _ => self.inner.call(request),
        }
    }
}

/// R9, figure 3: half the broadcasts fail (before or after reaching the node); every duty is
/// still sent exactly once and the account's nonces have no gap.
#[tokio::test]
async fn send_errors_skip_no_nonce() {
    const DUTIES: u64 = 20;
    let devnet = Devnet::spawn().await;
    let db = sqlite().await;
    let store = db.store.clone();
    let sends = Arc::new(AtomicUsize::new(0));
    let client = ClientBuilder::default()
        .layer(FlakySend { inner: (), sends: Arc::clone(&sends) })
        .http(devnet.anvil.endpoint_url());
    let provider = ProviderBuilder::new().disable_recommended_fillers().connect_client(client);
    let txm = manager_with(&devnet, &store, provider.erased(), config()).await;
    for i in 0..DUTIES {
        duty(&store, &format!("pay:{i}"), SINK, &[]).await;
    }
    let mut errors = 0;
    for _ in 0..20 {
        errors += txm.tick().await.unwrap().send_errors;
        mine(&devnet, 1).await;
    }
    let mut nonces = Vec::new();
    for i in 0..DUTIES {
        let entry = status(&store, &format!("pay:{i}")).await;
        assert_eq!(entry.status, OutboxStatus::Confirmed, "{entry:?}");
        nonces.push(entry.nonce.unwrap());
    }
    nonces.sort_unstable();
    let account = account_nonce(&devnet).await;
    let gaps = account - DUTIES;
    println!(
        "figure 3: {DUTIES} duties, {} broadcasts, {errors} injected send errors, nonce gaps {gaps}",
        sends.load(Ordering::SeqCst)
    );
    assert!(errors >= 5, "errors were injected");
    assert_eq!(nonces, (0..DUTIES).collect::<Vec<_>>(), "nonces 0..N, each once");
    assert_eq!(gaps, 0);
}

/// R7 + R8: a spike leaves the transaction stuck; it is bumped above the replacement minimum
/// but never above max_fee_gwei, and when the ORIGINAL transaction mines after all, the duty
/// is matched through its hash and nothing is sent again.
#[tokio::test]
async fn stuck_transaction_is_bumped_capped_and_the_original_still_matches() {
    let devnet = Devnet::spawn().await;
    let db = sqlite().await;
    let store = db.store.clone();
    let cap_gwei = 30;
    let txm = manager(&devnet, &store, TxConfig { max_fee_gwei: cap_gwei, ..config() }).await;
    devnet.provider.anvil_set_auto_mine(false).await.unwrap();
    duty(&store, "pay:0", SINK, &[]).await;
    assert_eq!(txm.tick().await.unwrap().sent, 1);
    let entry = status(&store, "pay:0").await;
    let original = store.outbox_attempts(entry.id).await.unwrap()[0].clone();

    // The base fee jumps far above what the transaction pays and the cap.
    devnet.provider.anvil_set_next_block_base_fee_per_gas(200 * GWEI).await.unwrap();
    mine(&devnet, 3).await;
    assert_eq!(txm.tick().await.unwrap().bumped, 1, "bumped after bump_after_blocks");
    let attempts = store.outbox_attempts(entry.id).await.unwrap();
    let bump = attempts.last().unwrap().clone();
    assert_eq!(attempts.len(), 2);
    assert_eq!(bump.nonce, original.nonce);
    assert!(bump.max_fee * 8 >= original.max_fee * 9, "max fee +12.5 %: {attempts:?}");
    assert!(bump.priority_fee * 8 >= original.priority_fee * 9, "tip +12.5 %: {attempts:?}");
    assert_eq!(bump.max_fee, u128::from(cap_gwei) * GWEI, "capped at max_fee_gwei");

    // At the cap, no replacement the node would accept is possible: no further bumps.
    mine(&devnet, 3).await;
    assert_eq!(txm.tick().await.unwrap().bumped, 0);
    assert_eq!(store.outbox_attempts(entry.id).await.unwrap().len(), 2);

    // The original transaction mines after all (another node still had it).
    devnet.provider.anvil_drop_transaction(bump.tx_hash).await.unwrap();
    let base = (original.max_fee - original.priority_fee).max(1);
    devnet.provider.anvil_set_next_block_base_fee_per_gas(base).await.unwrap();
    let _ = devnet.provider.send_raw_transaction(&original.raw).await.unwrap();
    mine(&devnet, 1).await;
    let entry = until_final(&devnet, &txm, &store, "pay:0").await;
    assert_eq!(entry.status, OutboxStatus::Confirmed);
    assert_eq!(entry.mined_hash, Some(original.tx_hash), "matched through the earlier hash");
    for _ in 0..3 {
        assert_eq!(txm.tick().await.unwrap().sent, 0);
        mine(&devnet, 1).await;
    }
    assert_eq!(account_nonce(&devnet).await, 1, "sent once");
}

/// R10: another process spends the relayer's nonce. The manager notices once that is buried,
/// resyncs from the chain and sends the duty with the next nonce, without bumping the dead one.
async fn nonce_resync(db: TestStore) {
    let devnet = Devnet::spawn().await;
    let store = db.store.clone();
    let txm = manager(&devnet, &store, TxConfig { confirmations: 2, ..config() }).await;
    devnet.provider.anvil_set_auto_mine(false).await.unwrap();
    duty(&store, "pay:0", SINK, &[]).await;
    txm.tick().await.unwrap();
    let ours = store.outbox_attempts(status(&store, "pay:0").await.id).await.unwrap()[0].clone();
    assert_eq!(ours.nonce, 0);

    // Someone else with the same key: nonce 0, higher tip, replaces ours in the pool.
    let key = relayer_key(&devnet).address();
    devnet.provider.anvil_drop_transaction(ours.tx_hash).await.unwrap();
    let other = TransactionRequest::default()
        .with_from(key)
        .with_to(key)
        .with_nonce(0)
        .with_gas_limit(21_000)
        .with_max_fee_per_gas(ours.max_fee * 2)
        .with_max_priority_fee_per_gas(ours.priority_fee * 2);
    let _ = devnet.provider.send_transaction(other).await.unwrap();
    mine(&devnet, 1).await;
    // Only one block deep: not yet trusted, the duty keeps its nonce.
    assert_eq!(txm.tick().await.unwrap().resynced, 0);
    mine(&devnet, 1).await;
    let report = txm.tick().await.unwrap();
    assert_eq!((report.resynced, report.sent), (1, 1), "{report:?}");

    let entry = until_final(&devnet, &txm, &store, "pay:0").await;
    assert_eq!(entry.status, OutboxStatus::Confirmed);
    assert_eq!(entry.nonce, Some(1));
    let attempts = store.outbox_attempts(entry.id).await.unwrap();
    assert_eq!(attempts.iter().filter(|a| a.nonce == 0).count(), 1, "the dead nonce never bumped");
    assert_eq!(account_nonce(&devnet).await, 2);
    assert_eq!(store.next_nonce(key).await.unwrap(), Some(2));
}

#[tokio::test]
async fn nonce_used_by_another_process_is_resynced_on_sqlite() {
    nonce_resync(sqlite().await).await;
}

#[tokio::test]
async fn nonce_used_by_another_process_is_resynced_on_postgres() {
    if let Some(db) = postgres().await {
        nonce_resync(db).await;
    }
}

/// R13: a refund someone else already made is not sent: `noop` with the decoded reason, and
/// no nonce is consumed.
#[tokio::test]
async fn duty_done_by_someone_else_is_a_noop_without_a_nonce() {
    let devnet = Devnet::spawn().await;
    let db = sqlite().await;
    let store = db.store.clone();
    let job = expired_job(&devnet).await;
    AttestaClient::new(
        devnet.provider.clone(),
        devnet.deployment.clone(),
        devnet.key(72).address(),
    )
    .refund(job)
    .await
    .unwrap();
    let txm = manager(&devnet, &store, config()).await;
    duty(&store, "refund:1", devnet.deployment.job_escrow, &refund_call(job)).await;
    duty(&store, "pay:after", SINK, &[]).await;

    let report = txm.tick().await.unwrap();
    assert_eq!((report.noop, report.sent), (1, 1), "{report:?}");
    let entry = status(&store, "refund:1").await;
    assert_eq!(entry.status, OutboxStatus::Noop);
    assert_eq!(entry.nonce, None);
    let reason = entry.reason.unwrap();
    assert!(reason.contains("JobEscrowWrongStatus") && reason.contains("Refunded"), "{reason}");
    // The next duty got nonce 0: the no-op took none.
    assert_eq!(until_final(&devnet, &txm, &store, "pay:after").await.nonce, Some(0));
    assert_eq!(account_nonce(&devnet).await, 1);
}

/// R13 while pending: our refund is stuck behind a fee spike when another relayer's refund
/// mines. The bump re-runs the call, sees the job refunded, and spends the nonce on a
/// zero-value transfer to self instead of a reverting refund.
#[tokio::test]
async fn pending_duty_overtaken_by_another_relayer_frees_its_nonce_with_a_transfer() {
    let devnet = Devnet::spawn().await;
    let db = sqlite().await;
    let store = db.store.clone();
    let job = expired_job(&devnet).await;
    let txm = manager(&devnet, &store, config()).await;
    duty(&store, "refund:1", devnet.deployment.job_escrow, &refund_call(job)).await;
    devnet.provider.anvil_set_auto_mine(false).await.unwrap();
    txm.tick().await.unwrap();
    let ours = store.outbox_attempts(status(&store, "refund:1").await.id).await.unwrap()[0].clone();

    // Another relayer refunds with a fee that clears a spike ours does not.
    let spike = ours.max_fee * 4;
    let other = TransactionRequest::default()
        .with_from(devnet.key(72).address())
        .with_to(devnet.deployment.job_escrow)
        .with_input(refund_call(job))
        .with_gas_limit(200_000)
        .with_max_fee_per_gas(spike * 3)
        .with_max_priority_fee_per_gas(GWEI);
    let _ = devnet.provider.send_transaction(other).await.unwrap();
    devnet.provider.anvil_set_next_block_base_fee_per_gas(spike).await.unwrap();
    mine(&devnet, 1).await;
    assert_eq!(job_status(&devnet, job).await, attesta_sdk::JobStatus::Refunded);
    mine(&devnet, 2).await;

    let entry = until_final(&devnet, &txm, &store, "refund:1").await;
    assert_eq!(entry.status, OutboxStatus::Noop, "{entry:?}");
    assert!(entry.reason.as_deref().unwrap().contains("JobEscrowWrongStatus"), "{entry:?}");
    let attempts = store.outbox_attempts(entry.id).await.unwrap();
    let last = attempts.last().unwrap();
    assert!(last.is_noop, "{attempts:?}");
    assert_eq!(entry.mined_hash, Some(last.tx_hash), "the transfer used the nonce");
    let mined = devnet.provider.get_transaction_by_hash(last.tx_hash).await.unwrap().unwrap();
    assert_eq!(mined.inner.to(), Some(relayer_key(&devnet).address()));
    assert_eq!(account_nonce(&devnet).await, 1);
}

/// R3 for receipts: a reorg removes the block holding our transaction; the duty waits again,
/// the stored transaction is broadcast again, and it is confirmed once, deep enough.
#[tokio::test]
async fn receipt_removed_by_a_reorg_is_rebroadcast_and_confirmed_once() {
    let devnet = Devnet::spawn().await;
    let db = sqlite().await;
    let store = db.store.clone();
    let txm = manager(&devnet, &store, TxConfig { confirmations: 3, ..config() }).await;
    let snapshot: U256 = devnet.provider.raw_request("evm_snapshot".into(), ()).await.unwrap();
    duty(&store, "pay:0", SINK, &[]).await;
    txm.tick().await.unwrap(); // sent; automine puts it in a block
    // Anvil mines asynchronously after eth_sendRawTransaction returns: wait for the block
    // so the next tick sees the receipt rather than racing the miner.
    let sent = store.outbox_attempts(status(&store, "pay:0").await.id).await.unwrap()[0].tx_hash;
    for _ in 0..200 {
        if devnet.provider.get_transaction_receipt(sent).await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    txm.tick().await.unwrap(); // receipt seen, 1 of 3 confirmations
    let seen = status(&store, "pay:0").await;
    assert_eq!(seen.status, OutboxStatus::Pending);
    assert!(seen.mined_block.is_some());

    let reverted: bool =
        devnet.provider.raw_request("evm_revert".into(), (snapshot,)).await.unwrap();
    assert!(reverted);
    assert_eq!(account_nonce(&devnet).await, 0, "the reorg removed our transaction");
    mine(&devnet, 2).await;

    let entry = until_final(&devnet, &txm, &store, "pay:0").await;
    assert_eq!(entry.status, OutboxStatus::Confirmed);
    assert_eq!(store.outbox_attempts(entry.id).await.unwrap().len(), 1, "same transaction");
    let receipt =
        devnet.provider.get_transaction_receipt(entry.mined_hash.unwrap()).await.unwrap().unwrap();
    assert_eq!(Some(receipt.block_number.unwrap()), entry.mined_block);
    assert_eq!(account_nonce(&devnet).await, 1);
}

/// Figure 3 (fee spike): duties sent just before the base fee jumps 50-fold, blocks every
/// 200 ms, the manager running on its own. Reports blocks and seconds to inclusion (p95) and
/// the bumps it took; every duty is included and nothing is sent twice.
#[tokio::test]
async fn fee_spike_inclusion_figures() {
    const DUTIES: u64 = 20;
    let devnet = Devnet::spawn().await;
    let db = sqlite().await;
    let store = db.store.clone();
    let txm = manager(&devnet, &store, config()).await;
    devnet.provider.anvil_set_auto_mine(false).await.unwrap();
    for i in 0..DUTIES {
        duty(&store, &format!("pay:{i}"), SINK, &[]).await;
    }
    txm.tick().await.unwrap();
    let base = devnet.provider.get_block_by_number(Default::default()).await.unwrap().unwrap();
    let base_fee = u128::from(base.header.base_fee_per_gas.unwrap()).max(GWEI);
    devnet.provider.anvil_set_next_block_base_fee_per_gas(base_fee * 50).await.unwrap();

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(txm.run(async move {
        stopped.await.ok();
    }));
    let miner = devnet.provider.clone();
    let blocks = tokio::spawn(async move {
        loop {
            miner.anvil_mine(Some(1), None).await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let done = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let mut all = true;
            for i in 0..DUTIES {
                all &= status(&store, &format!("pay:{i}")).await.status.is_final();
            }
            if all {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    blocks.abort();
    stop.send(()).unwrap();
    task.await.unwrap();
    done.expect("every duty included within 60 s");

    let (mut secs, mut block_counts, mut bumps) = (Vec::new(), Vec::new(), 0);
    for i in 0..DUTIES {
        let entry = status(&store, &format!("pay:{i}")).await;
        assert_eq!(entry.status, OutboxStatus::Confirmed);
        let attempts = store.outbox_attempts(entry.id).await.unwrap();
        bumps += attempts.len() - 1;
        secs.push((entry.included_ms.unwrap() - entry.first_sent_ms.unwrap()) as f64 / 1000.0);
        block_counts.push(entry.mined_block.unwrap() - attempts[0].sent_block);
    }
    let p95 = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[(v.len() * 95).div_ceil(100) - 1]
    };
    let mut block_f: Vec<f64> = block_counts.iter().map(|&b| b as f64).collect();
    println!(
        "figure 3: fee spike x50, {DUTIES} duties, blocks every 200 ms: time to inclusion p95 {:.2} s, \
         {} blocks p95; bumps {bumps} ({:.2} per duty)",
        p95(&mut secs),
        p95(&mut block_f),
        bumps as f64 / DUTIES as f64
    );
    assert!(bumps >= 1, "the spike forced bumps");
    assert_eq!(account_nonce(&devnet).await, DUTIES, "nothing sent twice");
}
