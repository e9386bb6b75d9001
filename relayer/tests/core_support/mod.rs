//! Shared helpers of the core tests (watcher, aggregate, store): databases on both backends,
//! a devnet with a watcher, and an RPC proxy that can be switched off.

#![allow(dead_code, clippy::unwrap_used, clippy::print_stderr, unreachable_pub)]

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    providers::{DynProvider, Provider, ProviderBuilder},
};
use attesta_relayer::{
    Store,
    store::testing::{self, TestStore},
    watcher::{Step, Watcher, WatcherConfig},
};
use attesta_sdk::{AttestaClient, testing::Devnet};
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::net::{TcpListener, TcpStream};

/// A fresh SQLite file store (the returned guard keeps its file alive).
pub async fn sqlite() -> (TestStore, Store) {
    let test = testing::sqlite().await;
    let store = test.store.clone();
    (test, store)
}

/// A store on a fresh PostgreSQL database, when `ATTESTA_TEST_POSTGRES_URL` is set.
pub async fn postgres(test: &str) -> Option<Store> {
    let store = testing::postgres().await.map(|t| t.store);
    if store.is_none() {
        eprintln!("note: {test}: PostgreSQL variant skipped (ATTESTA_TEST_POSTGRES_URL unset)");
    }
    store
}

/// Runs `body` on SQLite and, when available, on PostgreSQL.
pub async fn on_both<F, Fut>(test: &str, body: F)
where
    F: Fn(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (_dir, store) = sqlite().await;
    body(store).await;
    if let Some(store) = postgres(test).await {
        body(store).await;
    }
}

/// Watcher settings for tests: no confirmations unless asked, fast polling.
pub fn watcher_config(confirmations: u64) -> WatcherConfig {
    WatcherConfig {
        confirmations,
        poll_interval: Duration::from_millis(50),
        max_range: 1_000,
        reorg_window: 64,
        start_block: Some(0),
        subscribe: false,
        rpc_timeout: Duration::from_secs(5),
    }
}

/// Steps until the watcher is idle; returns the steps taken.
pub async fn catch_up(watcher: &mut Watcher) -> Vec<Step> {
    let mut steps = Vec::new();
    loop {
        let step = watcher.step().await.unwrap();
        if matches!(step, Step::Idle { .. }) {
            return steps;
        }
        steps.push(step);
        assert!(steps.len() < 1_000, "watcher does not settle");
    }
}

/// The client account tests create jobs from (far from the operator accounts).
pub const CLIENT: usize = 70;

/// Creates a job from the test client with a fee and a deadline an hour out.
pub async fn create_job(devnet: &Devnet, input: &[u8]) -> U256 {
    let client = devnet.key(CLIENT).address();
    let fee = U256::from(10).pow(U256::from(18));
    devnet.mint(client, fee).await;
    let c = AttestaClient::new(devnet.provider.clone(), devnet.deployment.clone(), client);
    let deadline = devnet.now().await + 3_600;
    c.create_job(model_id(), keccak256(input), fee, deadline).await.unwrap()
}

/// The model id test jobs use.
pub fn model_id() -> B256 {
    keccak256(b"test-model")
}

/// A plain HTTP provider for the relayer to read through.
pub fn reader(url: &str) -> DynProvider {
    ProviderBuilder::new().connect_http(url.parse().unwrap()).erased()
}

/// A TCP proxy in front of an RPC endpoint that can be taken down (all connections cut,
/// new ones refused) and brought back.
pub struct Proxy {
    pub url: String,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns2.lock().unwrap().push(task.abort_handle());
            }
        });
        Self { url, up, conns }
    }

    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Anvil's `host:port`.
pub fn anvil_addr(devnet: &Devnet) -> String {
    format!("127.0.0.1:{}", devnet.anvil.port())
}

/// An address no test account uses.
pub fn stranger() -> Address {
    Address::repeat_byte(0x5a)
}
