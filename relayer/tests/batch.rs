//! Batch settlement in the relayer against a real chain, on SQLite and PostgreSQL: jobs at
//! quorum wait for the batcher, a proposal is offered only to signers of every entry, M batch
//! signatures queue one `settleBatch` the escrow accepts, the watcher moves every job to
//! settled from the `BatchSettled` log (output still served), and one `releaseBatch` pays them.
//! A batch holding a job settled elsewhere is dropped (a no-op, not retried) and its open jobs
//! are proposed again; a proposal nobody signs falls back to single settlements.

#![allow(clippy::unwrap_used, clippy::print_stderr, missing_docs)]

mod core_support;

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256, keccak256},
    providers::Provider,
    rpc::types::TransactionRequest,
    sol_types::SolCall,
};
use attesta_relayer::{
    Store,
    aggregate::Aggregator,
    batch::{BatchConfig, Batcher, batch_key},
    chain::ActiveSet,
    duties::{Duties, DutyConfig},
    store::outbox::OutboxStatus,
    txm::{TxConfig, TxManager},
    watcher::Watcher,
};
use attesta_sdk::{
    Attestation, BatchAttestation,
    bindings::{JobEscrow, TestToken},
    merkle::BatchTree,
    relay::{AttestationSubmission, BatchSignatureSubmission, NodeHello, RelayJobStatus},
    testing::{Devnet, TestOperator, test_runtime_id},
};
use core_support::{catch_up, create_job, model_id, reader, watcher_config};

struct Setup {
    devnet: Devnet,
    ops: Vec<TestOperator>,
    store: Store,
    watcher: Watcher,
    agg: Aggregator,
    batcher: Batcher,
    jobs: Vec<U256>,
    _db: attesta_relayer::store::testing::TestStore,
}

fn output(job: U256) -> Vec<u8> {
    format!("output of job {job}").into_bytes()
}

fn input(i: usize) -> Vec<u8> {
    format!("input {i}").into_bytes()
}

/// A devnet with 4 operators (M = 3), `jobs` confirmed jobs and a batching aggregator.
async fn setup(jobs: usize, postgres: bool) -> Option<Setup> {
    let db = if postgres {
        attesta_relayer::store::testing::postgres().await?
    } else {
        attesta_relayer::store::testing::sqlite().await
    };
    let store = db.store.clone();
    let devnet = Devnet::spawn().await;
    let ops = devnet.add_operators(4).await;
    let provider = reader(&devnet.anvil.endpoint());
    let active = ActiveSet::load(provider.clone(), devnet.deployment.clone()).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..jobs {
        ids.push(create_job(&devnet, &input(i)).await);
    }
    let mut watcher =
        Watcher::new(store.clone(), provider, devnet.deployment.clone(), watcher_config(0));
    catch_up(&mut watcher).await;
    for op in &ops {
        let hello = NodeHello {
            runtime_id: test_runtime_id(),
            models: vec![],
            version: "test".into(),
            signs_batches: true,
        };
        store.register_node(op.signer.address(), &hello, 1).await.unwrap();
    }
    let agg = Aggregator::new(store.clone(), active.clone()).with_batching(true);
    let config = BatchConfig { enabled: true, max_jobs: 8, ..BatchConfig::default() };
    let batcher = Batcher::new(store.clone(), active, agg.clone(), config).unwrap();
    Some(Setup { devnet, ops, store, watcher, agg, batcher, jobs: ids, _db: db })
}

impl Setup {
    async fn attest(&self, op: &TestOperator, index: usize) {
        let job = self.jobs[index];
        let out = output(job);
        let a = Attestation::new(
            job,
            model_id(),
            keccak256(input(index)),
            keccak256(&out),
            test_runtime_id(),
        );
        let signed = a.sign(&op.signer, &self.devnet.deployment.attestation_domain()).unwrap();
        let submission = AttestationSubmission { attestation: signed, output: Bytes::from(out) };
        self.agg.submit(op.signer.address(), submission).await.unwrap();
    }

    async fn sign_batch(&self, op: &TestOperator, root: B256) -> Result<u32, String> {
        let statement = BatchAttestation { root, runtimeId: test_runtime_id() };
        let (_, sig) =
            statement.sign(&op.signer, &self.devnet.deployment.attestation_domain()).unwrap();
        let submission = BatchSignatureSubmission {
            root,
            runtime_id: test_runtime_id(),
            signature: Bytes::from(sig.as_bytes().to_vec()),
        };
        self.batcher
            .submit_signature(op.signer.address(), submission)
            .await
            .map(|a| a.signers)
            .map_err(|e| e.code().to_owned())
    }

    async fn outbox(&self) -> Vec<(String, Address, Vec<u8>, String)> {
        let rows: Vec<(String, String, Vec<u8>, String)> =
            sqlx::query_as("SELECT key, to_address, calldata, status FROM outbox ORDER BY id")
                .fetch_all(self.store.pool())
                .await
                .unwrap();
        rows.into_iter().map(|(k, to, data, st)| (k, to.parse().unwrap(), data, st)).collect()
    }

    async fn send(&self, to: Address, calldata: &[u8]) -> (bool, u64) {
        let tx = TransactionRequest::default()
            .with_from(self.devnet.admin())
            .with_to(to)
            .with_input(calldata.to_vec());
        let receipt =
            self.devnet.provider.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
        (receipt.status(), receipt.gas_used)
    }

    async fn status(&self, job: U256) -> RelayJobStatus {
        self.store.job_view(job).await.unwrap().unwrap().status
    }
}

fn later() -> i64 {
    attesta_relayer::store::outbox::unix_now_ms() + 31_000
}

async fn batch_settles_and_releases(postgres: bool) {
    let Some(mut s) = setup(5, postgres).await else { return };
    // Jobs 0..4 get three agreeing attestations (nodes 0-2); job 4 only from nodes 0, 1 and 3.
    for i in 0..4 {
        for op in &s.ops[..3] {
            s.attest(op, i).await;
        }
    }
    for op in [&s.ops[0], &s.ops[1], &s.ops[3]] {
        s.attest(op, 4).await;
    }
    assert!(s.outbox().await.is_empty(), "batching: nothing is settled alone at quorum");
    assert_eq!(s.status(s.jobs[0]).await, RelayJobStatus::Settling);
    // Not due yet: the batch is neither full nor old.
    let report = s.batcher.tick().await.unwrap();
    assert_eq!(report.proposed, 0, "{report:?}");

    let report = s.batcher.tick_at(later()).await.unwrap();
    // Jobs 0..4 share signers 0, 1, 2 → one batch of 4; job 4's signers {0, 1, 3} share only
    // two with that batch, so it forms a batch of one, which settles alone.
    assert_eq!((report.proposed, report.proposed_jobs, report.single), (1, 4, 1), "{report:?}");
    let for_node = |i: usize| s.store.open_proposals_for(s.ops[i].signer.address(), 10);
    let offered = for_node(0).await.unwrap();
    assert_eq!(offered.len(), 1);
    let proposal = &offered[0];
    assert_eq!(proposal.entries.len(), 4);
    assert!(for_node(3).await.unwrap().is_empty(), "node 3 attested none of them");

    // Refusals: a non-attester, a signature over another root, an unknown root.
    assert_eq!(s.sign_batch(&s.ops[3], proposal.root).await.unwrap_err(), "not_an_attester");
    let mut bogus = BatchSignatureSubmission {
        root: proposal.root,
        runtime_id: test_runtime_id(),
        signature: Bytes::from(vec![1u8; 65]),
    };
    let err = s.batcher.submit_signature(s.ops[0].signer.address(), bogus.clone()).await;
    assert_eq!(err.unwrap_err().code(), "bad_signature");
    bogus.root = B256::repeat_byte(9);
    assert_eq!(s.sign_batch(&s.ops[0], bogus.root).await.unwrap_err(), "unknown_batch");

    assert_eq!(s.sign_batch(&s.ops[0], proposal.root).await.unwrap(), 1);
    assert_eq!(s.sign_batch(&s.ops[0], proposal.root).await.unwrap(), 1, "idempotent");
    assert_eq!(s.sign_batch(&s.ops[1], proposal.root).await.unwrap(), 2);
    assert!(!s.outbox().await.iter().any(|o| o.0.starts_with("batch:")), "not before M");
    assert_eq!(s.sign_batch(&s.ops[2], proposal.root).await.unwrap(), 3);
    assert!(for_node(0).await.unwrap().is_empty(), "a queued proposal is not offered");

    let outbox = s.outbox().await;
    let batch = outbox.iter().find(|o| o.0 == batch_key(proposal.root)).unwrap();
    let single = outbox.iter().find(|o| o.0 == format!("settle:{}", s.jobs[4])).unwrap();
    assert_eq!(outbox.len(), 2, "{:?}", outbox.iter().map(|o| &o.0).collect::<Vec<_>>());
    let call = JobEscrow::settleBatchCall::abi_decode(&batch.2).unwrap();
    assert_eq!((call.entries.len(), call.signatures.len()), (4, 3 * 65));
    let (ok, gas) = s.send(batch.1, &batch.2).await;
    assert!(ok, "the escrow accepts the batch");
    assert!(s.send(single.1, &single.2).await.0, "and the single settlement");
    eprintln!("settleBatch of 4 jobs, 3 of 4 signers: {gas} gas, {} per job", gas / 4);

    catch_up(&mut s.watcher).await;
    for (i, job) in s.jobs.iter().enumerate() {
        let view = s.store.job_view(*job).await.unwrap().unwrap();
        assert_eq!(view.status, RelayJobStatus::Settled, "job {i}");
        assert_eq!(view.batch_root, (i < 4).then_some(proposal.root), "job {i}");
        let result = s.store.job_result(*job).await.unwrap().unwrap();
        assert_eq!(result.output.as_ref(), output(*job).as_slice(), "the output is still served");
        assert_eq!(result.signers.len(), 3);
    }

    // After the window: one releaseBatch for the batch, one release for the single job.
    let provider = reader(&s.devnet.anvil.endpoint());
    let duties =
        Duties::new(s.store.clone(), provider, s.devnet.deployment.clone(), DutyConfig::default());
    assert_eq!(duties.tick().await.unwrap().releases, 0);
    s.devnet.advance(3_600).await;
    assert_eq!(duties.tick().await.unwrap().releases, 5);
    assert_eq!(duties.tick().await.unwrap().releases, 0, "queued once");
    let outbox = s.outbox().await;
    let release = outbox.iter().find(|o| o.0 == format!("release-batch:{}", proposal.root));
    let release = release.unwrap();
    assert_eq!(JobEscrow::releaseBatchCall::abi_decode(&release.2).unwrap().entries.len(), 4);
    assert!(s.send(release.1, &release.2).await.0, "releaseBatch accepted");
    let single = outbox.iter().find(|o| o.0 == format!("release:{}", s.jobs[4])).unwrap();
    assert!(s.send(single.1, &single.2).await.0);
    catch_up(&mut s.watcher).await;
    for job in &s.jobs {
        assert_eq!(s.status(*job).await, RelayJobStatus::Released);
    }
    // The batcher sees its batch confirmed only through the txm; nothing else is queued.
    assert_eq!(s.batcher.tick_at(later()).await.unwrap().proposed, 0);
}

#[tokio::test]
async fn a_batch_settles_every_job_once_and_releases_them_together_on_sqlite() {
    batch_settles_and_releases(false).await;
}

#[tokio::test]
async fn a_batch_settles_every_job_once_and_releases_them_together_on_postgres() {
    batch_settles_and_releases(true).await;
}

#[tokio::test]
async fn a_batch_with_a_job_settled_elsewhere_is_dropped_and_the_rest_proposed_again() {
    let mut s = setup(3, false).await.unwrap();
    for i in 0..3 {
        for op in &s.ops[..3] {
            s.attest(op, i).await;
        }
    }
    s.batcher.tick_at(later()).await.unwrap();
    let root = s.store.open_proposals_for(s.ops[0].signer.address(), 10).await.unwrap()[0].root;
    // Someone else settles job 0 alone before our batch goes out.
    let domain = s.devnet.deployment.attestation_domain();
    let job = s.jobs[0];
    let a = Attestation::new(
        job,
        model_id(),
        keccak256(input(0)),
        keccak256(output(job)),
        test_runtime_id(),
    );
    let sigs = attesta_sdk::quorum::pack_signatures(s.ops[..3].iter().map(|op| {
        let signed = a.sign(&op.signer, &domain).unwrap();
        (signed.signer, signed.signature)
    }))
    .0;
    let settle = JobEscrow::settleCall {
        jobId: job,
        runtimeId: test_runtime_id(),
        resultHash: keccak256(output(job)),
        output: Bytes::from(output(job)),
        signatures: sigs,
    };
    assert!(s.send(s.devnet.deployment.job_escrow, &settle.abi_encode()).await.0);
    for op in &s.ops[..3] {
        s.sign_batch(op, root).await.unwrap();
    }
    // The real transaction manager finds the batch cannot settle: a no-op, no nonce spent.
    let provider = reader(&s.devnet.anvil.endpoint());
    let chain_id = s.devnet.provider.get_chain_id().await.unwrap();
    let txm = TxManager::new(
        s.store.clone(),
        provider,
        s.devnet.key(79),
        chain_id,
        TxConfig { confirmations: 1, ..TxConfig::default() },
    )
    .unwrap();
    let report = txm.tick().await.unwrap();
    assert_eq!((report.noop, report.sent), (1, 0), "{report:?}");
    assert_eq!(
        txm.outbox_status(&batch_key(root)).await.unwrap().unwrap().status,
        OutboxStatus::Noop
    );
    // The batcher drops it; the two open jobs form a new batch, job 0 is left alone.
    let report = s.batcher.tick_at(later()).await.unwrap();
    assert_eq!((report.dropped, report.proposed, report.proposed_jobs), (1, 1, 2), "{report:?}");
    let again = s.store.open_proposals_for(s.ops[0].signer.address(), 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].root, root);
    assert!(again[0].entries.iter().all(|e| e.job_id != job));
    for op in &s.ops[..3] {
        s.sign_batch(op, again[0].root).await.unwrap();
    }
    let report = txm.tick().await.unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    for _ in 0..3 {
        txm.tick().await.unwrap();
    }
    assert_eq!(
        txm.outbox_status(&batch_key(again[0].root)).await.unwrap().unwrap().status,
        OutboxStatus::Confirmed
    );
    catch_up(&mut s.watcher).await;
    for job in &s.jobs {
        assert_eq!(s.status(*job).await, RelayJobStatus::Settled);
    }
    assert_eq!(s.batcher.tick_at(later()).await.unwrap().settled, 1);
}

#[tokio::test]
async fn a_proposal_nobody_signs_falls_back_to_single_settlements() {
    let s = setup(2, false).await.unwrap();
    for i in 0..2 {
        for op in &s.ops[..3] {
            s.attest(op, i).await;
        }
    }
    let now = attesta_relayer::store::outbox::unix_now_ms();
    let formed = s.batcher.tick_at(now + 31_000).await.unwrap();
    assert_eq!(formed.proposed, 1);
    let root = s.store.open_proposals_for(s.ops[0].signer.address(), 10).await.unwrap()[0].root;
    s.sign_batch(&s.ops[0], root).await.unwrap();
    let report = s.batcher.tick_at(now + 31_000 + 60_000).await.unwrap();
    assert_eq!((report.dropped, report.single), (1, 2), "{report:?}");
    assert_eq!(s.sign_batch(&s.ops[1], root).await.unwrap_err(), "batch_not_open");
    let outbox = s.outbox().await;
    let keys: Vec<&str> = outbox.iter().map(|o| o.0.as_str()).collect();
    assert_eq!(keys, [format!("settle:{}", s.jobs[0]), format!("settle:{}", s.jobs[1])]);
    for o in &outbox {
        assert!(s.send(o.1, &o.2).await.0, "each settles alone");
    }
    // Nothing is proposed or settled again.
    let report = s.batcher.tick_at(now + 200_000).await.unwrap();
    assert_eq!(report, Default::default());
}

/// One job of a settled batch is challenged on chain (with its Merkle proof): the duties still
/// queue one `releaseBatch` of the whole batch, the escrow pays the three others and skips the
/// challenged one, which stays disputed for the arbiter.
#[tokio::test]
async fn a_batch_with_a_challenged_job_is_released_in_one_call_without_it() {
    let Some(mut s) = setup(4, false).await else { return };
    for i in 0..4 {
        for op in &s.ops[..3] {
            s.attest(op, i).await;
        }
    }
    assert_eq!(s.batcher.tick_at(later()).await.unwrap().proposed_jobs, 4);
    let root = s.store.open_proposals_for(s.ops[0].signer.address(), 10).await.unwrap()[0].root;
    for op in &s.ops[..3] {
        s.sign_batch(op, root).await.unwrap();
    }
    let outbox = s.outbox().await;
    let batch = outbox.iter().find(|o| o.0 == batch_key(root)).unwrap();
    assert!(s.send(batch.1, &batch.2).await.0, "the escrow accepts the batch");
    let call = JobEscrow::settleBatchCall::abi_decode(&batch.2).unwrap();
    let tree = BatchTree::new(call.entries.iter().map(|e| (e.jobId, e.resultHash))).unwrap();
    assert_eq!(tree.root(), root);

    // The admin challenges the second entry's job, posting the bond.
    let challenged = tree.entries()[1];
    let escrow = s.devnet.deployment.job_escrow;
    let bond = U256::from(10).pow(U256::from(21));
    s.devnet.mint(s.devnet.admin(), bond).await;
    let approve = TestToken::approveCall { spender: escrow, value: bond }.abi_encode();
    assert!(s.send(s.devnet.deployment.token, &approve).await.0);
    let proof = tree.proof(challenged.job_id, challenged.result_hash).unwrap();
    let challenge = JobEscrow::challengeBatchedCall {
        jobId: challenged.job_id,
        root,
        resultHash: challenged.result_hash,
        proof,
    }
    .abi_encode();
    assert!(s.send(escrow, &challenge).await.0, "challengeBatched accepted");
    catch_up(&mut s.watcher).await;
    assert_eq!(s.status(challenged.job_id).await, RelayJobStatus::Challenged);

    let provider = reader(&s.devnet.anvil.endpoint());
    let duties =
        Duties::new(s.store.clone(), provider, s.devnet.deployment.clone(), DutyConfig::default());
    s.devnet.advance(3_600).await;
    assert_eq!(duties.tick().await.unwrap().releases, 3, "the three jobs still settled");
    let outbox = s.outbox().await;
    let release = outbox.iter().find(|o| o.0 == format!("release-batch:{root}")).unwrap();
    let entries = JobEscrow::releaseBatchCall::abi_decode(&release.2).unwrap().entries;
    assert_eq!(entries, tree.batch_entries(), "the whole batch, in settleBatch order");
    assert!(!outbox.iter().any(|o| o.0.starts_with("release:")), "no per-job release");
    assert!(s.send(release.1, &release.2).await.0, "releaseBatch accepted");
    catch_up(&mut s.watcher).await;
    for e in tree.entries() {
        let expected = if e.job_id == challenged.job_id {
            RelayJobStatus::Challenged
        } else {
            RelayJobStatus::Released
        };
        assert_eq!(s.status(e.job_id).await, expected, "job {}", e.job_id);
    }
}

/// Batching never waits on nodes that cannot sign a batch: a job attested by fewer than M nodes
/// that registered as signing batches is queued alone at quorum, without waiting for the batcher,
/// `max_wait_ms` or a signing round; jobs whose M attesters all sign batches are still batched.
#[tokio::test]
async fn jobs_whose_signers_do_not_sign_batches_settle_alone_at_once() {
    let s = setup(4, false).await.unwrap();
    // Node 2 re-registers without batch signing (e.g. no rpc_url): jobs 0 and 1, attested by
    // nodes 0-2, have two batch signers, one short of M = 3.
    let hello = NodeHello {
        runtime_id: test_runtime_id(),
        models: vec![],
        version: "test".into(),
        signs_batches: false,
    };
    s.store.register_node(s.ops[2].signer.address(), &hello, 2).await.unwrap();
    for i in 0..2 {
        for op in &s.ops[..3] {
            s.attest(op, i).await;
        }
    }
    // Jobs 2 and 3 are attested by nodes 0, 1 and 3, which all sign batches.
    for i in 2..4 {
        for op in [&s.ops[0], &s.ops[1], &s.ops[3]] {
            s.attest(op, i).await;
        }
    }
    // Queued at quorum by the aggregator itself, before any batcher tick.
    let keys: Vec<String> = s.outbox().await.into_iter().map(|o| o.0).collect();
    assert_eq!(keys, [format!("settle:{}", s.jobs[0]), format!("settle:{}", s.jobs[1])]);
    let report = s.batcher.tick().await.unwrap();
    assert_eq!((report.single, report.proposed), (0, 0), "{report:?}");

    // The others wait for their batch as before and are offered to their attesters only.
    let report = s.batcher.tick_at(later()).await.unwrap();
    assert_eq!((report.proposed, report.proposed_jobs, report.single), (1, 2, 0), "{report:?}");
    assert_eq!(s.store.open_proposals_for(s.ops[3].signer.address(), 10).await.unwrap().len(), 1);
    assert!(s.store.open_proposals_for(s.ops[2].signer.address(), 10).await.unwrap().is_empty());
}
