//! Rust-signed attestations verified by `JobEscrow.settle` on a real chain: every accepted size and
//! every rejection, with the sdk's own quorum check agreeing with the contract each time.

use alloy::{
    primitives::{Address, Bytes, U256, keccak256},
    providers::Provider,
    signers::{Signature, local::PrivateKeySigner},
};
use attesta_sdk::{
    AttestaClient, Attestation, BatchAttestation, Error, domain, input_hash,
    merkle::{BatchTree, leaf_hash, verify},
    model_id, quorum,
    testing::{Devnet, TestOperator, test_runtime_id},
};
use std::collections::HashSet;

const OUTPUT: &[u8] = b"ATO1 test output";

struct Setup {
    devnet: Devnet,
    ops: Vec<TestOperator>,
    client: AttestaClient<alloy::providers::DynProvider>,
    job_id: U256,
}

async fn setup(n: usize) -> Setup {
    let devnet = Devnet::spawn().await;
    let ops = devnet.add_operators(n).await;
    let account = devnet.key(0).address();
    let client = AttestaClient::new(devnet.provider.clone(), devnet.deployment.clone(), account);
    devnet.mint(account, U256::from(10).pow(U256::from(21))).await;
    let deadline = devnet.now().await + 3600;
    let job_id = client
        .create_job(
            model_id(b"model"),
            input_hash(b"input"),
            U256::from(10).pow(U256::from(18)),
            deadline,
        )
        .await
        .unwrap();
    Setup { devnet, ops, client, job_id }
}

fn attestation(job_id: U256) -> Attestation {
    Attestation::new(
        job_id,
        model_id(b"model"),
        input_hash(b"input"),
        keccak256(OUTPUT),
        test_runtime_id(),
    )
}

impl Setup {
    fn signers(&self, m: usize) -> Vec<PrivateKeySigner> {
        self.ops.iter().take(m).map(|op| op.signer.clone()).collect()
    }

    fn sign_all(&self, keys: &[PrivateKeySigner]) -> Vec<(Address, Signature)> {
        let domain = self.devnet.deployment.attestation_domain();
        keys.iter()
            .map(|k| {
                let s = attestation(self.job_id).sign(k, &domain).unwrap();
                (s.signer, s.signature)
            })
            .collect()
    }

    /// Simulates settle with these packed signatures; returns the decoded revert, if any.
    async fn try_settle(&self, signatures: Bytes) -> Result<(), Error> {
        let escrow = self.client.escrow();
        let call = escrow.settle(
            self.job_id,
            test_runtime_id(),
            keccak256(OUTPUT),
            OUTPUT.to_vec().into(),
            signatures,
        );
        match call.from(self.client.account()).send().await {
            Ok(pending) => {
                assert!(pending.get_receipt().await.unwrap().status());
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn active_set(&self) -> HashSet<Address> {
        self.client.registry().activeSigners().call().await.unwrap().into_iter().collect()
    }
}

fn revert_name(result: Result<(), Error>) -> String {
    match result {
        Err(Error::Revert { name, .. }) => name,
        other => panic!("expected a custom-error revert, got {other:?}"),
    }
}

#[tokio::test]
async fn rust_signatures_settle_on_chain_for_every_size() {
    for (n, m) in [(1, 1), (4, 3), (7, 5), (16, 11), (32, 22)] {
        let s = setup(n).await;
        let threshold = s.client.registry().threshold().call().await.unwrap();
        assert_eq!(threshold, U256::from(m), "threshold for N={n}");

        // The sdk judges the set exactly as the contract will: M-1 short, M enough.
        let digest = attestation(s.job_id).digest(&s.devnet.deployment.attestation_domain());
        let active = s.active_set().await;
        let (short, _) = quorum::pack_signatures(s.sign_all(&s.signers(m - 1)).into_iter());
        if m > 1 {
            let signers = quorum::recover_ascending(digest, &short).unwrap();
            assert!(matches!(
                quorum::check_quorum(&signers, &active, m),
                Err(Error::InsufficientSignatures { .. })
            ));
            assert_eq!(revert_name(s.try_settle(short).await), "JobEscrowInsufficientSignatures");
        }
        let (packed, expected) = quorum::pack_signatures(s.sign_all(&s.signers(m)).into_iter());
        let signers = quorum::recover_ascending(digest, &packed).unwrap();
        assert_eq!(signers, expected);
        quorum::check_quorum(&signers, &active, m).unwrap();
        s.try_settle(packed).await.unwrap();

        let settled = s.client.verify_settlement(s.job_id).await.unwrap();
        assert_eq!(settled.settlement.signers, expected, "{m}-of-{n}");
        assert_eq!(settled.threshold, m);
    }
}

#[tokio::test]
async fn every_rejection_matches_between_sdk_and_contract() {
    let s = setup(4).await;
    let deployment = &s.devnet.deployment;
    let good = attestation(s.job_id);
    let keys = s.signers(3);

    // Wrong chain id and wrong verifying contract: valid signatures by active keys, wrong domain.
    for wrong in [
        domain(deployment.chain_id + 1, deployment.job_escrow),
        domain(deployment.chain_id, deployment.slashing),
    ] {
        let sigs = keys.iter().map(|k| {
            let signed = good.sign(k, &wrong).unwrap();
            (signed.signer, signed.signature)
        });
        let (packed, _) = quorum::pack_signatures(sigs);
        // They recover to unrelated addresses: inactive (or out of order) on-chain.
        let name = revert_name(s.try_settle(packed).await);
        assert!(
            name == "JobEscrowInactiveSigner" || name == "SignatureQuorumSignersNotAscending",
            "wrong domain gave {name}"
        );
    }

    let digest = good.digest(&deployment.attestation_domain());
    let sorted = s.sign_all(&keys);
    let (packed, _) = quorum::pack_signatures(sorted.clone());
    let chunks: Vec<Vec<u8>> = packed.chunks(65).map(<[u8]>::to_vec).collect();

    // High s: the malleated twin of a valid signature.
    let mut high_s = chunks.clone();
    let sig = Signature::from_raw(&high_s[0]).unwrap();
    let n = U256::from_str_radix(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141",
        16,
    )
    .unwrap();
    let flipped = Signature::new(sig.r(), n - sig.s(), !sig.v());
    high_s[0] = flipped.as_bytes().to_vec();
    let high_s: Bytes = high_s.concat().into();
    assert!(matches!(quorum::recover_ascending(digest, &high_s), Err(Error::HighS { index: 0 })));
    assert_eq!(revert_name(s.try_settle(high_s).await), "SignatureQuorumInvalidSignature");

    // Duplicate: the first signature twice.
    let dup: Bytes = [chunks[0].clone(), chunks[0].clone(), chunks[1].clone()].concat().into();
    assert!(matches!(
        quorum::recover_ascending(digest, &dup),
        Err(Error::SignersNotAscending { index: 1, .. })
    ));
    assert_eq!(revert_name(s.try_settle(dup).await), "SignatureQuorumSignersNotAscending");

    // Unsorted: the last two swapped.
    let unsorted: Bytes = [chunks[0].clone(), chunks[2].clone(), chunks[1].clone()].concat().into();
    assert!(matches!(
        quorum::recover_ascending(digest, &unsorted),
        Err(Error::SignersNotAscending { index: 2, .. })
    ));
    assert_eq!(revert_name(s.try_settle(unsorted).await), "SignatureQuorumSignersNotAscending");

    // Inactive: a key that was never registered, in place of an operator's.
    let outsider = PrivateKeySigner::random();
    let mut with_outsider = s.sign_all(&keys[..2]);
    let o = good.sign(&outsider, &deployment.attestation_domain()).unwrap();
    with_outsider.push((o.signer, o.signature));
    let (packed_outsider, _) = quorum::pack_signatures(with_outsider);
    let recovered = quorum::recover_ascending(digest, &packed_outsider).unwrap();
    assert!(matches!(
        quorum::check_quorum(&recovered, &s.active_set().await, 3),
        Err(Error::InactiveSigner { signer, .. }) if signer == outsider.address()
    ));
    assert_eq!(revert_name(s.try_settle(packed_outsider).await), "JobEscrowInactiveSigner");

    // Malformed lengths.
    let short: Bytes = chunks[0][..64].to_vec().into();
    assert!(matches!(
        quorum::recover_ascending(digest, &short),
        Err(Error::MalformedSignatures { length: 64 })
    ));
    assert_eq!(revert_name(s.try_settle(short).await), "SignatureQuorumMalformed");

    // After all that, the honest set still settles: nothing above changed state.
    s.try_settle(packed).await.unwrap();
    assert_eq!(s.client.job(s.job_id).await.unwrap().status, attesta_sdk::JobStatus::Settled);
    let _ = s.devnet.provider.get_block_number().await.unwrap();
}

/// A batch built and signed in Rust settles on-chain: the escrow computes the same root from the
/// entries, accepts the 5-of-7 signatures over `BatchAttestation`, settles every job with the
/// signer list, and the `BatchSettled` root is the sdk's. Prints the receipts' gas next to a single
/// `settle` for BENCHMARKS.md.
#[tokio::test]
async fn rust_batch_signatures_settle_every_job_on_chain() {
    let s = setup(7).await;
    let escrow = s.client.escrow();
    let deadline = s.devnet.now().await + 3600;
    let mut jobs = vec![s.job_id];
    for _ in 0..15 {
        let fee = U256::from(10).pow(U256::from(18));
        jobs.push(
            s.client
                .create_job(model_id(b"model"), input_hash(b"input"), fee, deadline)
                .await
                .unwrap(),
        );
    }
    let domain = s.devnet.deployment.attestation_domain();
    let keys = s.signers(5);
    let mut gas = Vec::new();

    // One job alone with `settle`, then batches of 1 and 14 with `settleBatch`.
    let (packed, _) = quorum::pack_signatures(keys.iter().map(|k| {
        let signed = attestation(jobs[0]).sign(k, &domain).unwrap();
        (signed.signer, signed.signature)
    }));
    let call = escrow.settle(
        jobs[0],
        test_runtime_id(),
        keccak256(OUTPUT),
        OUTPUT.to_vec().into(),
        packed,
    );
    let receipt = call.from(s.client.account()).send().await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status());
    gas.push(("settle, 1 job".to_string(), receipt.gas_used));

    let mut batches = Vec::new();
    for batch in [&jobs[1..2], &jobs[2..]] {
        let tree = BatchTree::new(
            batch.iter().map(|id| (*id, keccak256(format!("output of job {id}").as_bytes()))),
        )
        .unwrap();
        let attestation = BatchAttestation::of(&tree, test_runtime_id());
        let (packed, signers) =
            quorum::pack_signatures(keys.iter().map(|k| attestation.sign(k, &domain).unwrap()));
        // Signatures checked off-chain exactly as the escrow will.
        assert_eq!(
            quorum::recover_ascending(attestation.digest(&domain), &packed).unwrap(),
            signers
        );
        let root = escrow
            .settleBatch(test_runtime_id(), tree.batch_entries(), packed.clone())
            .from(s.client.account())
            .call()
            .await
            .unwrap();
        assert_eq!(root, tree.root(), "the escrow's root is the sdk's");
        let receipt = escrow
            .settleBatch(test_runtime_id(), tree.batch_entries(), packed)
            .from(s.client.account())
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status());
        gas.push((format!("settleBatch, {} jobs", batch.len()), receipt.gas_used));
        for (k, e) in tree.entries().iter().enumerate() {
            // A batch-settled job: reported Settled, its bit set, verified against the batch record.
            assert_eq!(
                s.client.job(e.job_id).await.unwrap().status,
                attesta_sdk::JobStatus::Settled
            );
            assert!(s.client.is_batch_settled(e.job_id).await.unwrap());
            assert!(
                s.client
                    .verify_batch_settlement(&tree, e.job_id, e.result_hash, signers.clone())
                    .await
                    .unwrap(),
                "job {} settled with the batch's signers",
                e.job_id
            );
            assert!(
                !s.client
                    .verify_batch_settlement(&tree, e.job_id, e.result_hash, signers[1..].to_vec())
                    .await
                    .unwrap(),
                "not with other signers"
            );
            let proof = tree.proof_at(k).unwrap();
            assert!(verify(&proof, tree.root(), leaf_hash(e.job_id, e.result_hash)));
            let included = escrow
                .verifyBatchInclusion(tree.root(), e.job_id, e.result_hash, proof)
                .call()
                .await
                .unwrap();
            assert!(included);
        }
        batches.push((tree, signers));
    }

    // One job of the big batch is challenged with its proof; after the window the batch is
    // released in one call and the challenged job is skipped (its dispute decides it).
    let (big, big_signers) = &batches[1];
    let challenged = big.entries()[3];
    let bond = s.client.escrow().config().call().await.unwrap().challengeBond;
    s.devnet.mint(s.client.account(), U256::from(bond)).await;
    let receipt =
        s.client.challenge_batched(big, challenged.job_id, challenged.result_hash).await.unwrap();
    gas.push(("challengeBatched, 14-job batch".to_string(), receipt.gas_used));
    assert_eq!(
        s.client.job(challenged.job_id).await.unwrap().status,
        attesta_sdk::JobStatus::Disputed
    );
    let window = s.client.escrow().config().call().await.unwrap().challengeWindow;
    s.devnet.advance(window.to::<u64>()).await;
    let receipt = s.client.release_batch(big, big_signers.clone()).await.unwrap();
    gas.push(("releaseBatch, 14 jobs (one skipped)".to_string(), receipt.gas_used));
    for e in big.entries() {
        let expected = if e.job_id == challenged.job_id {
            attesta_sdk::JobStatus::Disputed
        } else {
            attesta_sdk::JobStatus::Released
        };
        assert_eq!(s.client.job(e.job_id).await.unwrap().status, expected);
    }
    // Releasing it again pays nothing: the escrow refuses.
    assert!(s.client.release_batch(big, big_signers.clone()).await.is_err());

    for (what, used) in gas {
        println!("anvil receipt gasUsed, 5-of-7, {what}: {used}");
    }
}

/// A dApp whose job settled in a batch finds, waits for, verifies and releases it with the same
/// client calls as for a job settled alone: the batch is found from `BatchSettled` and the
/// `settleBatch` calldata, the signatures are re-checked over the batch root, and the output
/// (not on chain) is checked against the attested hash.
#[tokio::test]
async fn a_batch_settled_job_is_found_waited_for_verified_and_released_by_the_client() {
    let s = setup(4).await;
    let deadline = s.devnet.now().await + 3600;
    let fee = U256::from(10).pow(U256::from(18));
    let mut jobs = vec![s.job_id];
    for _ in 0..2 {
        let id = s.client.create_job(model_id(b"model"), input_hash(b"input"), fee, deadline).await;
        jobs.push(id.unwrap());
    }
    let waiting = {
        let client = s.client.clone().with_poll_interval(std::time::Duration::from_millis(50));
        let job = jobs[0];
        tokio::spawn(
            async move { client.wait_settled(job, std::time::Duration::from_secs(60)).await },
        )
    };
    // Over WebSocket with polling too slow to matter: the BatchSettled log itself must answer.
    let subscribed = {
        let ws = alloy::providers::ProviderBuilder::new()
            .connect(&s.devnet.anvil.ws_endpoint())
            .await
            .unwrap()
            .erased();
        let client = AttestaClient::new(ws, s.devnet.deployment.clone(), Address::ZERO)
            .with_poll_interval(std::time::Duration::from_secs(600));
        let job = jobs[1];
        tokio::spawn(
            async move { client.wait_settled(job, std::time::Duration::from_secs(60)).await },
        )
    };
    assert!(matches!(s.client.settlement(jobs[0]).await, Err(Error::NotSettled { .. })));

    // Jobs 0 and 1 settle in one batch signed by 3 of 4 (M = 3); job 2 stays open.
    let tree =
        BatchTree::new([(jobs[0], keccak256(OUTPUT)), (jobs[1], keccak256(b"other"))]).unwrap();
    let domain = s.devnet.deployment.attestation_domain();
    let statement = BatchAttestation::of(&tree, test_runtime_id());
    let (packed, signers) =
        quorum::pack_signatures(s.signers(3).iter().map(|k| statement.sign(k, &domain).unwrap()));
    let escrow = s.client.escrow();
    let receipt = escrow
        .settleBatch(test_runtime_id(), tree.batch_entries(), packed)
        .from(s.client.account())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());

    let waited = waiting.await.unwrap().unwrap();
    let heard = subscribed.await.unwrap().unwrap();
    assert_eq!((heard.job_id, heard.result_hash), (jobs[1], keccak256(b"other")));
    let found = s.client.settlement(jobs[0]).await.unwrap();
    assert_eq!(waited, found);
    assert_eq!(found.batch.as_ref().map(BatchTree::root), Some(tree.root()));
    assert_eq!((found.result_hash, found.signers.clone()), (keccak256(OUTPUT), signers.clone()));
    assert_eq!(found.tx_hash, receipt.transaction_hash);
    assert!(found.output.is_empty(), "batches publish no outputs");
    found.check_output(OUTPUT).unwrap();
    assert!(matches!(found.check_output(b"forged"), Err(Error::OutputMismatch { .. })));

    let verified = s.client.verify_settlement(jobs[1]).await.unwrap();
    assert_eq!((verified.threshold, verified.settlement.result_hash), (3, keccak256(b"other")));
    assert!(matches!(s.client.settlement(jobs[2]).await, Err(Error::NotSettled { .. })));

    // After the window one release pays the whole batch.
    let window = escrow.config().call().await.unwrap().challengeWindow;
    s.devnet.advance(window.to::<u64>() + 1).await;
    s.client.release(jobs[0]).await.unwrap();
    for job in &jobs[..2] {
        assert_eq!(s.client.job(*job).await.unwrap().status, attesta_sdk::JobStatus::Released);
    }
    assert_eq!(s.client.job(jobs[2]).await.unwrap().status, attesta_sdk::JobStatus::Created);
}
