//! Shared test vectors (`sdk/testdata/vectors.json`) that every implementation must reproduce byte
//! for byte: EIP-712 attestation digests and signatures, signer-key proofs, packed quorums and
//! canonical outputs. The Solidity suite (test/unit/Vectors.t.sol) checks the contract against the
//! same file. Regenerate after an intentional change with `ATTESTA_UPDATE_VECTORS=1 cargo test -p
//! attesta-sdk --test it vectors`.

use alloy::{
    primitives::{Address, B256, U256, address, keccak256},
    signers::local::PrivateKeySigner,
    sol_types::SolStruct,
};
use attesta_sdk::{
    Attestation, canonical::CanonicalOutput, domain, operator::signer_proof_digest, quorum,
    result_hash,
};
use serde_json::{Value, json};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/vectors.json");

fn key(i: u32) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&keccak256(format!("attesta-vector-key-{i}"))).unwrap()
}

fn vectors() -> Value {
    let escrow = address!("9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0");
    let cases: [(u64, Address, u64, &str); 4] = [
        (31337, escrow, 1, "label: rust"),
        (1, escrow, 42, "label: pdf"),
        (11155111, address!("00000000000000000000000000000000000A77E5"), u64::MAX, ""),
        (31337, escrow, 7, "same job, another result"),
    ];
    let attestations: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, (chain_id, contract, job_id, output))| {
            let d = domain(*chain_id, *contract);
            let a = Attestation::new(
                U256::from(*job_id),
                keccak256(format!("model-{i}")),
                keccak256(format!("input-{i}")),
                result_hash(output.as_bytes()),
                keccak256("attesta/runtime/v1"),
            );
            let signer = key(i as u32);
            let signed = a.sign(&signer, &d).unwrap();
            json!({
                "chainId": chain_id,
                "verifyingContract": contract,
                "attestation": {
                    "jobId": a.jobId.to_string(),
                    "modelId": a.modelId,
                    "inputHash": a.inputHash,
                    "resultHash": a.resultHash,
                    "runtimeId": a.runtimeId,
                },
                "output": alloy::primitives::hex::encode_prefixed(output.as_bytes()),
                "typeHash": a.eip712_type_hash(),
                "structHash": a.eip712_hash_struct(),
                "domainSeparator": d.separator(),
                "digest": a.digest(&d),
                "privateKey": B256::from_slice(&signer.to_bytes()[..]),
                "signer": signer.address(),
                "signature": alloy::primitives::hex::encode_prefixed(signed.signature_bytes()),
            })
        })
        .collect();

    let proof_operator = key(100).address();
    let proof_signer = key(101).address();
    let registry = address!("e7f1725E7734CE288F8367e1Bb143E90bb3F0512");
    let signer_proofs = json!([{
        "chainId": 31337,
        "registry": registry,
        "operator": proof_operator,
        "signer": proof_signer,
        "digest": signer_proof_digest(31337, registry, proof_operator, proof_signer),
    }]);

    // Five keys sign one attestation; the packed form is sorted by signer address.
    let d = domain(31337, escrow);
    let a = Attestation::new(
        U256::from(9),
        keccak256("m"),
        keccak256("i"),
        keccak256("r"),
        keccak256("rt"),
    );
    let keys: Vec<_> = (200..205).map(key).collect();
    let (packed, signers) = quorum::pack_signatures(keys.iter().map(|k| {
        let s = a.sign(k, &d).unwrap();
        (s.signer, s.signature)
    }));
    let quorum = json!({
        "digest": a.digest(&d),
        "privateKeys": keys.iter().map(|k| B256::from_slice(&k.to_bytes()[..])).collect::<Vec<_>>(),
        "packed": packed,
        "signers": signers,
    });

    let outputs: [(u8, Vec<(Vec<u32>, Vec<f32>)>); 3] = [
        (4, vec![(vec![1, 3], vec![0.731_201_3, 0.268_798_7, -0.000_05])]),
        (2, vec![(vec![], vec![12.345]), (vec![2], vec![-1.0, 0.005])]),
        (6, vec![(vec![2, 2], vec![1e-7, -1e-7, 0.5, 1000.0])]),
    ];
    let canonical: Vec<Value> = outputs
        .iter()
        .map(|(decimals, tensors)| {
            let out = CanonicalOutput::from_f32(*decimals, tensors).unwrap();
            let bytes = out.encode();
            json!({
                "decimals": decimals,
                "tensors": tensors.iter().map(|(s, v)| json!({"shape": s, "values": v})).collect::<Vec<_>>(),
                "encoded": alloy::primitives::hex::encode_prefixed(&bytes),
                "resultHash": result_hash(&bytes),
            })
        })
        .collect();

    json!({
        "description": "Attesta shared test vectors: every implementation must reproduce each field byte for byte.",
        "version": 1,
        "attestations": attestations,
        "signerProofs": signer_proofs,
        "quorum": quorum,
        "canonical": canonical,
    })
}

#[test]
fn shared_vectors_are_reproduced() {
    let fresh = serde_json::to_string_pretty(&vectors()).unwrap() + "\n";
    if std::env::var_os("ATTESTA_UPDATE_VECTORS").is_some() {
        std::fs::write(PATH, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(PATH).expect("sdk/testdata/vectors.json is missing");
    assert_eq!(committed, fresh, "vectors changed: if intended, regenerate (see module docs)");
}

#[test]
fn vectors_verify_independently() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    for case in v["attestations"].as_array().unwrap() {
        let digest: B256 = serde_json::from_value(case["digest"].clone()).unwrap();
        let sig = alloy::primitives::hex::decode(case["signature"].as_str().unwrap()).unwrap();
        let signer: Address = serde_json::from_value(case["signer"].clone()).unwrap();
        assert_eq!(quorum::recover_ascending(digest, &sig).unwrap(), vec![signer]);
    }
    let q = &v["quorum"];
    let digest: B256 = serde_json::from_value(q["digest"].clone()).unwrap();
    let packed = alloy::primitives::hex::decode(q["packed"].as_str().unwrap()).unwrap();
    let signers: Vec<Address> = serde_json::from_value(q["signers"].clone()).unwrap();
    assert_eq!(quorum::recover_ascending(digest, &packed).unwrap(), signers);
    for case in v["canonical"].as_array().unwrap() {
        let bytes = alloy::primitives::hex::decode(case["encoded"].as_str().unwrap()).unwrap();
        CanonicalOutput::decode(&bytes).unwrap();
    }
}
