//! The transaction manager: one nonce manager per key, EIP-1559 fee bumping, and a persisted
//! outbox so a crash between send and receipt neither loses nor duplicates a transaction.
//!
//! Owner: txm.

use serde::Deserialize;

/// `[tx]` section of the relayer's configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TxConfig {}
