//! The whole pipeline with real processes: anvil with 1-second blocks, the `attesta-relayer`
//! binary and four `attesta-node` daemons (M = 3), each in its own process with its own keystore,
//! under faults. Every run ends with the same checks, read from the chain's logs: every job
//! settled once and was paid once, only to honest signers, and the unserved job was refunded.
//!
//! - `faults_on_sqlite`: one relayer over a WebSocket that a proxy cuts (R12). While jobs are in
//!   flight the relayer is SIGKILLed at random points and restarted (R1, R2), the RPC endpoint
//!   goes away and comes back (R11), and the chain reorgs by one block, inside the two-block
//!   confirmation depth (R3). Node 3 is offline, then returns a wrong result, then equivocates
//!   and is slashed.
//! - `two_relayers_on_postgres`: two relayer processes with different keys share one PostgreSQL
//!   database; nodes 0 and 1 talk to one, nodes 2 and 3 to the other, and the first is SIGKILLed
//!   at random points.
//!
//! Needs the node built with the test-only `fault-injection` feature (the test command builds
//! with `--all-features`). `ATTESTA_E2E_SEED` replays a run's random kill points;
//! `ATTESTA_E2E_KEEP=1` keeps the processes' logs.

#![allow(clippy::unwrap_used, clippy::print_stderr, missing_docs)]

mod core_support;
mod e2e_support;

use alloy::{
    primitives::{Address, B256, U256},
    providers::{Provider, ext::AnvilApi},
    rpc::types::{Filter, anvil::ReorgOptions},
    sol_types::SolEvent,
};
use attesta_relayer::store::testing;
use attesta_sdk::{
    JobStatus,
    bindings::{JobEscrow, Slashing, StakingRegistry},
    relay::RelayClient,
    testing::Devnet,
};
use core_support::{Proxy, anvil_addr};
use e2e_support::{Behaviour, NODES, Network, wait};
use rand::Rng;
use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

/// What the chain says happened, from its logs.
struct Ledger {
    settled: BTreeMap<U256, Vec<Vec<Address>>>,
    released: BTreeMap<U256, Vec<(U256, U256)>>,
    refunded: BTreeMap<U256, usize>,
    slashed: BTreeMap<Address, Vec<U256>>,
    /// Slashing's offences: (offence id, kind, operator).
    offences: Vec<(B256, u8, Address)>,
}

impl Ledger {
    async fn read(devnet: &Devnet) -> Self {
        let escrow = devnet.deployment.job_escrow;
        let logs = |address: Address, topic: B256| {
            let filter = Filter::new().address(address).event_signature(topic).from_block(0);
            let provider = devnet.provider.clone();
            async move { provider.get_logs(&filter).await.unwrap() }
        };
        let mut ledger = Self {
            settled: BTreeMap::new(),
            released: BTreeMap::new(),
            refunded: BTreeMap::new(),
            slashed: BTreeMap::new(),
            offences: Vec::new(),
        };
        for log in logs(escrow, JobEscrow::JobSettled::SIGNATURE_HASH).await {
            let e = log.log_decode::<JobEscrow::JobSettled>().unwrap().inner.data;
            ledger.settled.entry(e.jobId).or_default().push(e.signers);
        }
        for log in logs(escrow, JobEscrow::PaymentReleased::SIGNATURE_HASH).await {
            let e = log.log_decode::<JobEscrow::PaymentReleased>().unwrap().inner.data;
            ledger.released.entry(e.jobId).or_default().push((e.signerShare, e.protocolFee));
        }
        for log in logs(escrow, JobEscrow::JobRefunded::SIGNATURE_HASH).await {
            let e = log.log_decode::<JobEscrow::JobRefunded>().unwrap().inner.data;
            *ledger.refunded.entry(e.jobId).or_default() += 1;
        }
        let registry = devnet.deployment.staking_registry;
        for log in logs(registry, StakingRegistry::Slashed::SIGNATURE_HASH).await {
            let e = log.log_decode::<StakingRegistry::Slashed>().unwrap().inner.data;
            ledger.slashed.entry(e.operator).or_default().push(e.amount);
        }
        for log in logs(devnet.deployment.slashing, Slashing::OffenceSlashed::SIGNATURE_HASH).await
        {
            let e = log.log_decode::<Slashing::OffenceSlashed>().unwrap().inner.data;
            ledger.offences.push((e.offence, e.kind, e.operator));
        }
        ledger
    }

    /// No job lost, none settled or paid twice, none paid to anyone outside `honest`, the
    /// refund only for `unserved`, and every operator's credit the sum of its shares.
    async fn check(&self, net: &Network, served: &[U256], unserved: &[U256], honest: &[usize]) {
        let honest_signers = net.signer_addresses(honest);
        let mut shares: BTreeMap<Address, U256> = BTreeMap::new();
        for job in served {
            let settlements = self.settled.get(job).map_or(0, Vec::len);
            assert_eq!(settlements, 1, "job {job} settled {settlements} times");
            let signers = &self.settled[job][0];
            for signer in signers {
                assert!(
                    honest_signers.contains(signer),
                    "job {job} settled with {signer}, not an honest node"
                );
            }
            let releases = self.released.get(job).map_or(0, Vec::len);
            assert_eq!(releases, 1, "job {job} paid {releases} times");
            let (share, _) = self.released[job][0];
            for (i, op) in net.operators.iter().enumerate() {
                if signers.contains(&op.signer.address()) {
                    *shares.entry(op.account.address()).or_default() += share;
                    assert!(honest.contains(&i));
                }
            }
            assert!(!self.refunded.contains_key(job), "job {job} was settled and refunded");
        }
        for job in unserved {
            assert!(!self.settled.contains_key(job), "unserved job {job} settled");
            assert_eq!(self.refunded.get(job), Some(&1), "unserved job {job} refunded once");
        }
        assert_eq!(self.refunded.len(), unserved.len(), "refunds: {:?}", self.refunded);
        let escrow = JobEscrow::new(net.devnet.deployment.job_escrow, &net.devnet.provider);
        for op in &net.operators {
            let owed = escrow.owed(op.account.address()).call().await.unwrap();
            let expected = shares.get(&op.account.address()).copied().unwrap_or_default();
            assert_eq!(owed, expected, "operator {} is owed its shares", op.account.address());
        }
    }
}

/// Figures of a run (RELIABILITY figures 1, 2 and 4).
#[derive(Debug, Default)]
struct Figures {
    kills: usize,
    reorgs: usize,
    rpc_outages: usize,
    recoveries: Vec<Duration>,
}

impl Figures {
    fn report(&self, run: &str, jobs: usize) {
        let mut r = self.recoveries.clone();
        r.sort();
        let p = |q: f64| r.get(((r.len() as f64 - 1.0) * q).round() as usize).copied();
        eprintln!(
            "e2e figures [{run}]: {jobs} jobs, {} SIGKILLs, {} depth-1 reorgs, {} RPC outages; \
             duplicate settlements 0, duplicate payments 0, lost jobs 0, wrong payees 0; \
             restart-to-API p50 {:?} p99 {:?} max {:?}",
            self.kills,
            self.reorgs,
            self.rpc_outages,
            p(0.5).unwrap_or_default(),
            p(0.99).unwrap_or_default(),
            r.last().copied().unwrap_or_default(),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_on_sqlite() {
    let mut net = Network::new().await;
    let proxy = Proxy::start(anvil_addr(&net.devnet)).await;
    // The relayer subscribes to heads through the proxy: cutting it drops the WebSocket (R12).
    let ws = proxy.url.replacen("http://", "ws://", 1);
    let db = format!("sqlite://{}?mode=rwc", net.dir.path().join("relayer.db").display());
    let mut relayer = net.relayer("relayer", &db, &ws, 75);
    relayer.start().await;
    let relay = RelayClient::new(&relayer.url).unwrap();
    for i in 0..3 {
        net.start_node(i, &relayer.url.clone(), Behaviour::Honest);
    }
    net.upload_model(&relay).await;
    let mut figures = Figures::default();

    // Phase 1, node 3 offline: jobs arrive in waves and each wave meets a fault at a random
    // point of its way through the relayer.
    let unserved = net.job(&relay, b"not an ATI1 input: no node can run it".to_vec(), 120).await;
    let mut served = Vec::new();
    for round in 0..4u8 {
        let wave = net.jobs(&relay, 2, f32::from(round) * 10.0 + 1.0).await;
        served.extend(&wave);
        if round == 2 {
            // A reorg shallower than the two-block confirmation depth (R3), timed to remove the
            // block that just settled a job: the relayer must notice and settle it again.
            wait("a settlement to reorg away", || async {
                net.status(wave[0]).await == JobStatus::Settled
            })
            .await;
            net.devnet
                .provider
                .anvil_reorg(ReorgOptions { depth: 1, tx_block_pairs: vec![] })
                .await
                .unwrap();
            figures.reorgs += 1;
        }
        tokio::time::sleep(net.random_pause()).await;
        relayer.kill().await;
        figures.kills += 1;
        tokio::time::sleep(Duration::from_millis(net.rng.gen_range(0..500))).await;
        relayer.start().await;
        if round == 1 {
            // The RPC endpoint goes away for a few blocks (R11, and R12 for the socket).
            proxy.down();
            tokio::time::sleep(Duration::from_secs(3)).await;
            proxy.up();
            figures.rpc_outages += 1;
        }
        relayer.assert_alive();
    }
    net.until_all(&served, |s| s == JobStatus::Settled, "settled").await;

    // Phase 2, node 3 returns wrong results. Node 2 waits until they are recorded, so they are
    // in the tally when the job settles: they are never counted and never paid.
    net.stop_node(2).await;
    net.start_node(3, &relayer.url.clone(), Behaviour::WrongResult);
    let wrong = net.jobs(&relay, 3, 100.0).await;
    for job in &wrong {
        wait("node 3's wrong result recorded", || async {
            let view = relay.job(*job).await.ok().flatten();
            view.is_some_and(|v| v.attestations.len() == 2)
        })
        .await;
    }
    net.start_node(2, &relayer.url.clone(), Behaviour::Honest);
    net.until_all(&wrong, |s| s == JobStatus::Settled, "settled").await;
    served.extend(&wrong);

    // Phase 3, node 3 equivocates (a wrong result, then the real one): the contradiction is
    // evidence, and it is slashed and jailed before node 2 returns and the jobs settle.
    net.stop_node(3).await;
    net.stop_node(2).await;
    net.start_node(3, &relayer.url.clone(), Behaviour::Equivocate);
    let equivocated = net.jobs(&relay, 3, 200.0).await;
    let registry =
        StakingRegistry::new(net.devnet.deployment.staking_registry, &net.devnet.provider);
    let operator3 = net.operators[3].account.address();
    wait("node 3 slashed and jailed", || async {
        let op = registry.operator(operator3).call().await.unwrap();
        op.jailed && !op.active
    })
    .await;
    net.start_node(2, &relayer.url.clone(), Behaviour::Honest);
    net.until_all(&equivocated, |s| s == JobStatus::Settled, "settled").await;
    served.extend(&equivocated);

    // Release every settled job and refund the unserved one (the relayer's duties).
    net.skip_challenge_window().await;
    net.until_all(&served, |s| s == JobStatus::Released, "released").await;
    net.until_all(&[unserved], |s| s == JobStatus::Refunded, "refunded").await;
    relayer.assert_alive();

    let ledger = Ledger::read(&net.devnet).await;
    ledger.check(&net, &served, &[unserved], &[0, 1, 2]).await;
    // Each equivocated job is its own offence (once node 3 is jailed the relayer refuses its
    // attestations, so fewer may be proven); none is slashed twice, nobody else at all.
    let offences = &ledger.offences;
    assert!((1..=equivocated.len()).contains(&offences.len()), "{offences:?}");
    let distinct: BTreeSet<B256> = offences.iter().map(|o| o.0).collect();
    assert_eq!(distinct.len(), offences.len(), "an offence slashed twice: {offences:?}");
    assert!(offences.iter().all(|o| o.1 == 1 && o.2 == operator3), "{offences:?}");
    assert_eq!(ledger.slashed[&operator3].len(), offences.len());
    assert!(ledger.slashed.keys().all(|op| *op == operator3), "{:?}", ledger.slashed);

    figures.recoveries = relayer.recoveries.split_off(1);
    figures.report("sqlite, ws", served.len() + 1);
    for i in 0..NODES {
        net.stop_node(i).await;
    }
    relayer.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relayers_on_postgres() {
    let Some(pg) = testing::postgres().await else {
        eprintln!("note: two_relayers_on_postgres skipped (ATTESTA_TEST_POSTGRES_URL unset)");
        return;
    };
    let mut net = Network::new().await;
    let rpc = net.devnet.anvil.endpoint();
    let mut a = net.relayer("relayer-a", &pg.url, &rpc, 75);
    let mut b = net.relayer("relayer-b", &pg.url, &rpc, 76);
    a.start().await;
    b.start().await;
    for i in 0..NODES {
        let url = if i < 2 { a.url.clone() } else { b.url.clone() };
        net.start_node(i, &url, Behaviour::Honest);
    }
    let via_a = RelayClient::new(&a.url).unwrap();
    let via_b = RelayClient::new(&b.url).unwrap();
    net.upload_model(&via_a).await;
    let mut figures = Figures::default();

    // Jobs enter through both relayers in waves; relayer A dies at a random point of each
    // wave's way through the pipeline, B carries on.
    let unserved = net.job(&via_b, b"no node can run this".to_vec(), 120).await;
    let mut served = Vec::new();
    for round in 0..3u8 {
        let salt = f32::from(round) * 10.0 + 1.0;
        served.extend(net.jobs(if round % 2 == 0 { &via_a } else { &via_b }, 3, salt).await);
        tokio::time::sleep(net.random_pause()).await;
        a.kill().await;
        figures.kills += 1;
        tokio::time::sleep(Duration::from_millis(net.rng.gen_range(0..800))).await;
        a.start().await;
        b.assert_alive();
    }
    net.until_all(&served, |s| s == JobStatus::Settled, "settled").await;
    net.skip_challenge_window().await;
    net.until_all(&served, |s| s == JobStatus::Released, "released").await;
    net.until_all(&[unserved], |s| s == JobStatus::Refunded, "refunded").await;
    a.assert_alive();
    b.assert_alive();

    let ledger = Ledger::read(&net.devnet).await;
    ledger.check(&net, &served, &[unserved], &[0, 1, 2, 3]).await;
    assert!(ledger.slashed.is_empty(), "nobody cheated: {:?}", ledger.slashed);

    figures.recoveries = a.recoveries.split_off(1);
    figures.report("postgres, two relayers", served.len() + 1);
    for i in 0..NODES {
        net.stop_node(i).await;
    }
    a.kill().await;
    b.kill().await;
}
