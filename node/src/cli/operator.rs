//! `attesta-node operator stake|register|activate|unstake|withdraw|status`, through the sdk's
//! `OperatorClient`.

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use attesta_sdk::OperatorClient;
use clap::{Args, Subcommand};

use super::{ChainArgs, CliError, KeystoreArgs, SenderArgs, block_on, out, out_json};

#[derive(Debug, Subcommand)]
pub(crate) enum OperatorCommand {
    /// Stake tokens (approves the registry first if needed).
    Stake {
        /// Amount in the token's base units.
        #[arg(long, value_parser = parse_amount)]
        amount: U256,
        #[command(flatten)]
        account: OperatorAccount,
    },
    /// Bind the keystore's signing key to the operator account (with its proof of possession).
    Register {
        #[command(flatten)]
        account: OperatorAccount,
        #[command(flatten)]
        keystore: KeystoreArgs,
    },
    /// Join the active set once a slot is free or the stake is topped up.
    ///
    /// `stake` and `register` already join it when they can; use this when they could not.
    Activate {
        #[command(flatten)]
        account: OperatorAccount,
    },
    /// Move stake into unbonding.
    Unstake {
        /// Amount in the token's base units.
        #[arg(long, value_parser = parse_amount)]
        amount: U256,
        #[command(flatten)]
        account: OperatorAccount,
    },
    /// Withdraw stake whose unbonding period is over.
    Withdraw {
        #[command(flatten)]
        account: OperatorAccount,
    },
    /// Print the operator's stake, unbonding, signer and state.
    Status {
        /// The operator account to inspect (default: the account key's address).
        #[arg(long)]
        operator: Option<Address>,
        #[command(flatten)]
        account: OperatorAccount,
    },
}

/// The operator account (which owns the stake), separate from the signing key.
#[derive(Debug, Args)]
pub(crate) struct OperatorAccount {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    sender: SenderArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

impl OperatorAccount {
    fn key(&self) -> Result<PrivateKeySigner, CliError> {
        Ok(self.sender.key()?)
    }
}

fn parse_amount(s: &str) -> Result<U256, String> {
    s.parse::<U256>()
        .map_err(|_| format!("{s:?} is not an amount: give an integer in the token's base units"))
}

pub(crate) fn run(cmd: OperatorCommand) -> Result<(), CliError> {
    block_on(run_async(cmd))?
}

async fn run_async(cmd: OperatorCommand) -> Result<(), CliError> {
    match cmd {
        OperatorCommand::Stake { amount, account } => {
            let (client, _) = connect(&account, true).await?;
            let receipt = client.stake(amount).await?;
            report_tx(&account, "stake", receipt.transaction_hash, amount);
        }
        OperatorCommand::Register { account, keystore } => {
            let signing = keystore.load()?;
            let (client, _) = connect(&account, true).await?;
            let receipt = client.register_signer(&signing).await?;
            if account.json {
                out_json(&serde_json::json!({
                    "action": "register",
                    "signer": signing.address().to_string(),
                    "txHash": receipt.transaction_hash.to_string(),
                }));
            } else {
                out(&format!(
                    "registered signer {} in {}",
                    signing.address(),
                    receipt.transaction_hash
                ));
            }
        }
        OperatorCommand::Activate { account } => {
            let (client, address) = connect(&account, true).await?;
            let receipt = client.activate().await?;
            if account.json {
                out_json(&serde_json::json!({
                    "action": "activate",
                    "operator": address.to_string(),
                    "txHash": receipt.transaction_hash.to_string(),
                }));
            } else {
                out(&format!("activated {address} in {}", receipt.transaction_hash));
            }
        }
        OperatorCommand::Unstake { amount, account } => {
            let (client, _) = connect(&account, true).await?;
            let receipt = client.request_unstake(amount).await?;
            report_tx(&account, "unstake", receipt.transaction_hash, amount);
        }
        OperatorCommand::Withdraw { account } => {
            let (client, _) = connect(&account, true).await?;
            let amount = client.withdraw().await?;
            if account.json {
                out_json(
                    &serde_json::json!({ "action": "withdraw", "amount": amount.to_string() }),
                );
            } else {
                out(&format!("withdrew {amount}"));
            }
        }
        OperatorCommand::Status { operator, account } => {
            let (client, address) = match operator {
                Some(address) => connect_as(&account, address, None).await?,
                None => connect(&account, false).await?,
            };
            let s = client.status().await?;
            if account.json {
                out_json(&serde_json::json!({
                    "operator": address.to_string(),
                    "signer": s.signer.to_string(),
                    "stake": s.stake.to_string(),
                    "unbonding": s.unbonding.to_string(),
                    "unbondingEnd": s.unbonding_end,
                    "active": s.active,
                    "jailed": s.jailed,
                }));
            } else {
                out(&format!("operator      {address}"));
                out(&format!("signer        {}", s.signer));
                out(&format!("stake         {}", s.stake));
                out(&format!("unbonding     {}", s.unbonding));
                out(&format!("unbonding end {}", s.unbonding_end));
                out(&format!("active        {}", s.active));
                out(&format!("jailed        {}", s.jailed));
            }
        }
    }
    Ok(())
}

fn report_tx(account: &OperatorAccount, action: &str, tx: alloy::primitives::TxHash, amount: U256) {
    if account.json {
        out_json(&serde_json::json!({
            "action": action,
            "amount": amount.to_string(),
            "txHash": tx.to_string(),
        }));
    } else {
        out(&format!("{action} {amount} in {tx}"));
    }
}

type Client = OperatorClient<alloy::providers::DynProvider>;

/// A client for the account key's address; `sign` attaches the key as the provider's wallet.
async fn connect(account: &OperatorAccount, sign: bool) -> Result<(Client, Address), CliError> {
    let key = account.key()?;
    let address = key.address();
    connect_as(account, address, sign.then_some(key)).await
}

async fn connect_as(
    account: &OperatorAccount,
    address: Address,
    key: Option<PrivateKeySigner>,
) -> Result<(Client, Address), CliError> {
    let deployment = account.chain.load_deployment()?;
    let provider = account.chain.connect(&deployment, key).await?;
    Ok((OperatorClient::new(provider, deployment, address), address))
}
