//! `attesta-node keys new|show`.

use attesta_node::keys;
use clap::Subcommand;

use super::{CliError, KeystoreArgs, out, out_json};

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a new signing key in an encrypted keystore (refuses to overwrite one).
    New {
        #[command(flatten)]
        keystore: KeystoreArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print the signing key's address (never the key).
    Show {
        #[command(flatten)]
        keystore: KeystoreArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(cmd: KeysCommand) -> Result<(), CliError> {
    let (keystore, json, created) = match cmd {
        KeysCommand::New { keystore, json } => {
            let dir = keystore.dir();
            if keys::key_path(&dir).exists() {
                return Err(keys::KeyError::Exists { path: keys::key_path(&dir) }.into());
            }
            let password = keys::read_password(keystore.password_file.as_deref(), true)?;
            let signer = keys::create(&dir, &password)?;
            (keystore, json, Some(signer))
        }
        KeysCommand::Show { keystore, json } => (keystore, json, None),
    };
    let signer = match created {
        Some(signer) => signer,
        None => keystore.load()?,
    };
    let path = keys::key_path(&keystore.dir());
    if json {
        out_json(&serde_json::json!({
            "address": signer.address().to_string(),
            "keystore": path.display().to_string(),
        }));
    } else {
        out(&signer.address().to_string());
    }
    Ok(())
}
