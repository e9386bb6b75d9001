//! Every `OperatorClient` call against a real chain.

use alloy::{primitives::U256, signers::local::PrivateKeySigner};
use attesta_sdk::{Error, OperatorClient, operator::signer_proof_digest, testing::Devnet};

#[tokio::test]
async fn stake_register_unstake_withdraw() {
    let devnet = Devnet::spawn().await;
    let account = devnet.key(60).address();
    let key = devnet.key(61);
    let client = OperatorClient::new(devnet.provider.clone(), devnet.deployment.clone(), account);
    let registry = attesta_sdk::bindings::StakingRegistry::new(
        devnet.deployment.staking_registry,
        &devnet.provider,
    );
    let min = registry.minStake().call().await.unwrap();

    // The locally computed proof digest is the contract's.
    let local = signer_proof_digest(
        devnet.deployment.chain_id,
        devnet.deployment.staking_registry,
        account,
        key.address(),
    );
    assert_eq!(local, registry.signerProofDigest(account, key.address()).call().await.unwrap());

    devnet.mint(account, min * U256::from(2)).await;
    client.stake(min).await.unwrap();
    let status = client.status().await.unwrap();
    assert_eq!((status.stake, status.active), (min, false), "no key yet, so not active");
    client.register_signer(&key).await.unwrap();
    let status = client.status().await.unwrap();
    assert!(status.active);
    assert_eq!(status.signer, key.address());
    assert!(registry.isActiveSigner(key.address()).call().await.unwrap());

    // Leaving the active set keeps the stake bonded; activating rejoins.
    client.deactivate().await.unwrap();
    let status = client.status().await.unwrap();
    assert_eq!((status.stake, status.active), (min, false));
    assert!(!registry.isActiveSigner(key.address()).call().await.unwrap());
    let err = client.deactivate().await.unwrap_err();
    assert!(
        matches!(&err, Error::Revert { name, .. } if name == "StakingRegistryNotActive"),
        "{err}"
    );
    client.activate().await.unwrap();
    assert!(client.status().await.unwrap().active);

    // The key is bound for good: nobody else can register it.
    let other = OperatorClient::new(
        devnet.provider.clone(),
        devnet.deployment.clone(),
        devnet.key(62).address(),
    );
    let err = other.register_signer(&key).await.unwrap_err();
    assert!(
        matches!(&err, Error::Revert { name, .. } if name == "StakingRegistrySignerAlreadyBound"),
        "{err}"
    );

    // Rotation retires the old key.
    let rotated = PrivateKeySigner::random();
    client.register_signer(&rotated).await.unwrap();
    assert!(!registry.isActiveSigner(key.address()).call().await.unwrap());
    assert!(registry.isActiveSigner(rotated.address()).call().await.unwrap());

    // Unstake below the minimum: out of the active set, withdrawable only after unbonding.
    client.request_unstake(min).await.unwrap();
    let status = client.status().await.unwrap();
    assert_eq!((status.stake, status.unbonding, status.active), (U256::ZERO, min, false));
    let err = client.withdraw().await.unwrap_err();
    assert!(
        matches!(&err, Error::Revert { name, hint, .. } if name == "StakingRegistryNotWithdrawable" && hint.contains("nothing withdrawable until") && hint.contains("wait")),
        "{err}"
    );
    let period = registry.unbondingPeriod().call().await.unwrap().to::<u64>();
    devnet.advance(period).await;
    assert_eq!(client.withdraw().await.unwrap(), min);
    assert_eq!(client.status().await.unwrap().unbonding, U256::ZERO);
    // Nothing left unbonding: the hint says to request an unstake first.
    let err = client.withdraw().await.unwrap_err();
    assert!(
        matches!(&err, Error::Revert { hint, .. } if hint.contains("request unstake first")),
        "{err}"
    );

    // Re-activation is refused with a reason while below the minimum stake.
    let err = client.activate().await.unwrap_err();
    assert!(
        matches!(&err, Error::Revert { hint, .. } if hint.contains("stake at least the minimum")),
        "{err}"
    );
}
