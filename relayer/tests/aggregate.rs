//! The aggregator against a real chain: every refusal has its own code, the M-th agreeing
//! attestation queues exactly one settlement the escrow accepts, an equivocation queues one
//! slash the slashing contract accepts, and the duties queue release and refund once due. The
//! last two run on PostgreSQL when ATTESTA_TEST_POSTGRES_URL is set (row locks, BYTEA).

#![allow(clippy::unwrap_used)]

mod core_support;

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256, keccak256},
    providers::Provider,
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use attesta_relayer::{
    Store,
    aggregate::{Aggregator, AttestError},
    chain::ActiveSet,
    duties::{Duties, DutyConfig},
    watcher::Watcher,
};
use attesta_sdk::{
    Attestation,
    bindings::{JobEscrow, Slashing},
    relay::{AttestationSubmission, RelayJobStatus},
    testing::{Devnet, TestOperator, test_runtime_id},
};
use core_support::{catch_up, create_job, model_id, reader, sqlite, watcher_config};
use std::sync::Arc;

const OUTPUT: &[u8] = b"label: rust";

struct Setup {
    devnet: Devnet,
    ops: Vec<TestOperator>,
    store: Store,
    active: ActiveSet,
    watcher: Watcher,
    agg: Aggregator,
    job: U256,
    _db: attesta_relayer::store::testing::TestStore,
}

/// A devnet with `operators`, one confirmed job, and an aggregator over SQLite, or over a
/// fresh PostgreSQL database when `postgres` is set and ATTESTA_TEST_POSTGRES_URL is.
async fn setup(operators: usize, postgres: bool) -> Setup {
    let devnet = Devnet::spawn().await;
    let ops = devnet.add_operators(operators).await;
    let (dir, mut store) = sqlite().await;
    if postgres && let Some(pg) = core_support::postgres("aggregate").await {
        store = pg;
    }
    let provider = reader(&devnet.anvil.endpoint());
    let active = ActiveSet::load(provider.clone(), devnet.deployment.clone()).await.unwrap();
    let job = create_job(&devnet, b"input").await;
    let mut watcher =
        Watcher::new(store.clone(), provider, devnet.deployment.clone(), watcher_config(0));
    catch_up(&mut watcher).await;
    let agg = Aggregator::new(store.clone(), active.clone());
    Setup { devnet, ops, store, active, watcher, agg, job, _db: dir }
}

impl Setup {
    fn attestation(&self, output: &[u8]) -> Attestation {
        Attestation::new(
            self.job,
            model_id(),
            keccak256(b"input"),
            keccak256(output),
            test_runtime_id(),
        )
    }

    fn submission(
        &self,
        key: &PrivateKeySigner,
        a: &Attestation,
        output: &[u8],
    ) -> AttestationSubmission {
        let signed = a.sign(key, &self.devnet.deployment.attestation_domain()).unwrap();
        AttestationSubmission { attestation: signed, output: Bytes::copy_from_slice(output) }
    }

    async fn submit(&self, op: &TestOperator, output: &[u8]) -> Result<u32, AttestError> {
        let s = self.submission(&op.signer, &self.attestation(output), output);
        self.agg.submit(op.signer.address(), s).await.map(|a| a.agreeing)
    }

    async fn outbox(&self) -> Vec<(String, Address, Vec<u8>)> {
        let rows: Vec<(String, String, Vec<u8>)> =
            sqlx::query_as("SELECT key, to_address, calldata FROM outbox ORDER BY id")
                .fetch_all(self.store.pool())
                .await
                .unwrap();
        rows.into_iter().map(|(k, to, data)| (k, to.parse().unwrap(), data)).collect()
    }

    /// Sends queued calldata from the deployer, as the txm would; returns whether it succeeded.
    async fn send(&self, to: Address, calldata: &[u8]) -> bool {
        let tx = TransactionRequest::default()
            .with_from(self.devnet.admin())
            .with_to(to)
            .with_input(calldata.to_vec());
        let receipt =
            self.devnet.provider.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
        receipt.status()
    }

    fn threshold(&self) -> usize {
        usize::try_from(self.active.threshold()).unwrap()
    }
}

#[tokio::test]
async fn every_refusal_has_its_own_code() {
    let s = setup(4, false).await;
    let op = &s.ops[0];
    let code = |r: Result<_, AttestError>| r.unwrap_err().code();
    let good = s.attestation(OUTPUT);

    // The request was signed by someone else.
    let sub = s.submission(&op.signer, &good, OUTPUT);
    assert_eq!(code(s.agg.submit(s.ops[1].signer.address(), sub).await), "signer_mismatch");
    // Signed in another domain (another chain id).
    let mut wrong_domain = s.devnet.deployment.clone();
    wrong_domain.chain_id += 1;
    let signed = good.sign(&op.signer, &wrong_domain.attestation_domain()).unwrap();
    let sub = AttestationSubmission { attestation: signed, output: OUTPUT.to_vec().into() };
    assert_eq!(code(s.agg.submit(op.signer.address(), sub).await), "bad_signature");
    // A key that is not an active signer.
    let outsider = PrivateKeySigner::random();
    let sub = s.submission(&outsider, &good, OUTPUT);
    assert_eq!(code(s.agg.submit(outsider.address(), sub).await), "inactive_signer");
    // A job the chain never confirmed.
    let mut unknown = good.clone();
    unknown.jobId = U256::from(999);
    let sub = s.submission(&op.signer, &unknown, OUTPUT);
    assert_eq!(code(s.agg.submit(op.signer.address(), sub).await), "unknown_job");
    // Another input than the job's.
    let mut other_input = good.clone();
    other_input.inputHash = keccak256(b"other");
    let sub = s.submission(&op.signer, &other_input, OUTPUT);
    assert_eq!(code(s.agg.submit(op.signer.address(), sub).await), "job_mismatch");
    // A runtime the escrow does not allow.
    let mut other_runtime = good.clone();
    other_runtime.runtimeId = B256::repeat_byte(0x42);
    let sub = s.submission(&op.signer, &other_runtime, OUTPUT);
    assert_eq!(code(s.agg.submit(op.signer.address(), sub).await), "runtime_not_allowed");
    // Bytes that do not hash to the attested result.
    let sub = s.submission(&op.signer, &good, b"something else");
    assert_eq!(code(s.agg.submit(op.signer.address(), sub).await), "output_mismatch");
    // An output longer than the escrow's maxOutputBytes (16 KiB by default) could never settle.
    let long = vec![7u8; 16 * 1024 + 1];
    let sub = s.submission(&op.signer, &s.attestation(&long), &long);
    assert_eq!(code(s.agg.submit(op.signer.address(), sub).await), "output_too_large");
    // Past the deadline by the aggregator's clock.
    let late = s.agg.clone().with_clock(Arc::new(|| u64::MAX));
    let sub = s.submission(&op.signer, &good, OUTPUT);
    assert_eq!(code(late.submit(op.signer.address(), sub).await), "deadline_passed");
    // Nothing refused was stored.
    let view = s.store.job_view(s.job).await.unwrap().unwrap();
    assert!(view.attestations.is_empty(), "{view:?}");

    // Once M agree the job is settling: a further signer is told it is not needed.
    let m = s.threshold();
    assert!(m < s.ops.len(), "need a spare operator");
    for op in &s.ops[..m] {
        s.submit(op, OUTPUT).await.unwrap();
    }
    assert_eq!(s.submit(&s.ops[m], OUTPUT).await.unwrap_err().code(), "job_not_open");
}

#[tokio::test]
async fn the_mth_attestation_queues_one_settlement_the_escrow_accepts() {
    let mut s = setup(4, true).await;
    let m = s.threshold();
    for (i, op) in s.ops[..m - 1].iter().enumerate() {
        assert_eq!(s.submit(op, OUTPUT).await.unwrap(), u32::try_from(i + 1).unwrap());
        // Submitting again is idempotent and answers the current tally.
        assert_eq!(s.submit(op, OUTPUT).await.unwrap(), u32::try_from(i + 1).unwrap());
    }
    assert!(s.outbox().await.is_empty(), "no settlement before M");
    assert_eq!(s.submit(&s.ops[m - 1], OUTPUT).await.unwrap(), u32::try_from(m).unwrap());
    assert_eq!(s.submit(&s.ops[m - 1], OUTPUT).await.unwrap(), u32::try_from(m).unwrap());

    let outbox = s.outbox().await;
    assert_eq!(outbox.len(), 1, "exactly one settlement");
    let (key, to, calldata) = &outbox[0];
    assert_eq!(key, &format!("settle:{}", s.job));
    assert_eq!(*to, s.devnet.deployment.job_escrow);
    let call = JobEscrow::settleCall::abi_decode(calldata).unwrap();
    assert_eq!(call.signatures.len(), 65 * m);
    assert_eq!(call.output.as_ref(), OUTPUT);
    let view = s.store.job_view(s.job).await.unwrap().unwrap();
    assert_eq!(view.status, RelayJobStatus::Settling);

    // The queued calldata settles the job on chain, and the watcher sees it.
    assert!(s.send(*to, calldata).await);
    catch_up(&mut s.watcher).await;
    let view = s.store.job_view(s.job).await.unwrap().unwrap();
    assert_eq!(view.status, RelayJobStatus::Settled);
    let result = s.store.job_result(s.job).await.unwrap().unwrap();
    assert_eq!(result.output.as_ref(), OUTPUT);
    assert_eq!(result.signers.len(), m);

    // Duties: nothing before the challenge window ends, one release after, never twice.
    let provider = reader(&s.devnet.anvil.endpoint());
    let expiring = create_job(&s.devnet, b"nobody runs this").await;
    catch_up(&mut s.watcher).await;
    let config = DutyConfig { refund_expired: true, ..DutyConfig::default() };
    let duties = Duties::new(s.store.clone(), provider, s.devnet.deployment.clone(), config);
    assert_eq!(duties.tick().await.unwrap().releases, 0);
    let window = JobEscrow::new(s.devnet.deployment.job_escrow, &s.devnet.provider)
        .config()
        .call()
        .await
        .unwrap()
        .challengeWindow
        .to::<u64>();
    s.devnet.advance(window.max(3_600) + 1).await;
    let report = duties.tick().await.unwrap();
    assert_eq!((report.releases, report.refunds), (1, 1));
    assert_eq!(duties.tick().await.unwrap(), Default::default(), "queued once");
    let outbox = s.outbox().await;
    let release = outbox.iter().find(|o| o.0 == format!("release:{}", s.job)).unwrap();
    let refund = outbox.iter().find(|o| o.0 == format!("refund:{expiring}")).unwrap();
    assert!(s.send(release.1, &release.2).await, "release accepted");
    assert!(s.send(refund.1, &refund.2).await, "refund accepted");
    catch_up(&mut s.watcher).await;
    assert_eq!(s.store.job_view(s.job).await.unwrap().unwrap().status, RelayJobStatus::Released);
    assert_eq!(s.store.job_view(expiring).await.unwrap().unwrap().status, RelayJobStatus::Refunded);
}

#[tokio::test]
async fn an_equivocation_queues_one_slash_the_slashing_contract_accepts() {
    let s = setup(4, true).await;
    let op = &s.ops[0];
    assert_eq!(s.submit(op, OUTPUT).await.unwrap(), 1);
    let err = s.submit(op, b"a different answer").await.unwrap_err();
    assert_eq!(err.code(), "equivocation");
    // Saying it again neither stores nor queues anything new.
    assert_eq!(s.submit(op, b"a different answer").await.unwrap_err().code(), "equivocation");
    assert_eq!(s.store.equivocation_count().await.unwrap(), 1);
    let outbox = s.outbox().await;
    assert_eq!(outbox.len(), 1);
    let (key, to, calldata) = &outbox[0];
    assert_eq!(key, &format!("slash:{}:{:#x}", s.job, op.signer.address()));
    assert_eq!(*to, s.devnet.deployment.slashing);
    Slashing::slashEquivocationCall::abi_decode(calldata).unwrap();
    // The contradicting result was not counted.
    let view = s.store.job_view(s.job).await.unwrap().unwrap();
    assert_eq!(view.attestations.len(), 1);
    assert!(s.send(*to, calldata).await, "the slashing contract accepts the evidence");
}

#[tokio::test]
async fn concurrent_attestations_queue_exactly_one_settlement() {
    let s = setup(4, true).await;
    let m = s.threshold();
    let results = futures::future::join_all(s.ops.iter().map(|op| s.submit(op, OUTPUT))).await;
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    assert!(accepted >= m, "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(r.code(), "job_not_open", "only latecomers after the quorum are refused");
    }
    let settles: Vec<_> =
        s.outbox().await.into_iter().filter(|o| o.0.starts_with("settle:")).collect();
    assert_eq!(settles.len(), 1);
    assert!(s.send(settles[0].1, &settles[0].2).await, "the escrow accepts it");
}
