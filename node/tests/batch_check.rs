//! The node's batch check against a real chain (anvil): a proposal is signed only when every
//! entry is a job this node ran with that result and the chain's job under that id has the
//! model and input the node ran. A relayer that mislabels a job (tells the node job 1 is the
//! bytes of another job) is caught by the on-chain read, not trusted.

#![allow(clippy::unwrap_used, missing_docs)]

use alloy::primitives::{B256, U256, keccak256};
use attesta_node::daemon::batch::{BatchRefusal, OwnResult, Results, check};
use attesta_sdk::{
    AttestaClient, BatchAttestation,
    merkle::BatchTree,
    quorum,
    relay::{BatchEntryView, BatchProposal},
    testing::{Devnet, test_runtime_id},
};

fn proposal(entries: &[(U256, B256)]) -> BatchProposal {
    let tree = BatchTree::new(entries.iter().copied()).unwrap();
    BatchProposal {
        root: tree.root(),
        runtime_id: test_runtime_id(),
        entries: tree
            .entries()
            .iter()
            .map(|e| BatchEntryView { job_id: e.job_id, result_hash: e.result_hash })
            .collect(),
    }
}

#[tokio::test]
async fn only_own_results_of_jobs_the_chain_confirms_are_signed() {
    let devnet = Devnet::spawn().await;
    let client_key = devnet.key(70);
    let fee = U256::from(10).pow(U256::from(18));
    devnet.mint(client_key.address(), fee * U256::from(4)).await;
    let client = AttestaClient::new(
        devnet.provider.clone(),
        devnet.deployment.clone(),
        client_key.address(),
    );
    let deadline = devnet.now().await + 3_600;
    let model = keccak256(b"model");
    let (in_a, in_b) = (keccak256(b"input a"), keccak256(b"input b"));
    let job_a = client.create_job(model, in_a, fee, deadline).await.unwrap();
    let job_b = client.create_job(model, in_b, fee, deadline).await.unwrap();
    let (out_a, out_b) = (keccak256(b"output a"), keccak256(b"output b"));
    let own = |input, result| OwnResult {
        model_id: model,
        input_hash: input,
        result_hash: result,
        runtime_id: test_runtime_id(),
    };
    let results = Results::default();
    results.insert(job_a, own(in_a, out_a));
    let escrow = devnet.deployment.job_escrow;
    let chain = devnet.provider.clone();
    let runtime = test_runtime_id();

    // Both entries run here with these results: signed.
    results.insert(job_b, own(in_b, out_b));
    let good = proposal(&[(job_a, out_a), (job_b, out_b)]);
    check(&good, runtime, &results, &chain, escrow).await.unwrap();

    // Another result than the node computed.
    let other = proposal(&[(job_a, out_a), (job_b, keccak256(b"forged"))]);
    let err = check(&other, runtime, &results, &chain, escrow).await.unwrap_err();
    assert!(matches!(err, BatchRefusal::ResultMismatch { .. }), "{err}");

    // A job the node never ran.
    let unknown = proposal(&[(job_a, out_a), (U256::from(99), out_b)]);
    let err = check(&unknown, runtime, &results, &chain, escrow).await.unwrap_err();
    assert!(matches!(err, BatchRefusal::NotRun(_)), "{err}");

    // A root that is not the entries' root.
    let mut tampered = good.clone();
    tampered.root = B256::repeat_byte(7);
    let err = check(&tampered, runtime, &results, &chain, escrow).await.unwrap_err();
    assert!(matches!(err, BatchRefusal::Root { .. }), "{err}");

    // Another runtime.
    let err = check(&good, B256::repeat_byte(1), &results, &chain, escrow).await.unwrap_err();
    assert!(matches!(err, BatchRefusal::Runtime { .. }), "{err}");

    // A relayer that mislabelled job B: the node ran input A's bytes under B's id. Its own
    // record agrees with the proposal, but the chain says job B is another input.
    let fooled = Results::default();
    fooled.insert(job_a, own(in_a, out_a));
    fooled.insert(job_b, own(in_a, out_a));
    let mislabelled = proposal(&[(job_a, out_a), (job_b, out_a)]);
    let err = check(&mislabelled, runtime, &fooled, &chain, escrow).await.unwrap_err();
    assert!(matches!(err, BatchRefusal::ChainMismatch(id) if id == job_b), "{err}");

    // Once the batch settles on chain its jobs are settled through the escrow's bitmap, their own
    // words untouched: the escrow reports them Settled, so the same proposal is no longer signed.
    let ops = devnet.add_operators(1).await;
    let tree = BatchTree::new([(job_a, out_a), (job_b, out_b)]).unwrap();
    let statement = BatchAttestation::of(&tree, runtime);
    let (packed, _) = quorum::pack_signatures([statement
        .sign(&ops[0].signer, &devnet.deployment.attestation_domain())
        .unwrap()]);
    let receipt = client
        .escrow()
        .settleBatch(runtime, tree.batch_entries(), packed)
        .from(client_key.address())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    assert!(client.is_batch_settled(job_a).await.unwrap());
    let err = check(&good, runtime, &results, &chain, escrow).await.unwrap_err();
    assert!(matches!(err, BatchRefusal::NotCreated { status: 2, .. }), "{err}");
}
