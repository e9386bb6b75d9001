//! Integration tests of the sdk against a real anvil chain with the real contracts deployed by the
//! repo's deploy script. Nothing the chain can answer is mocked.

// Helpers outside #[test] functions unwrap too: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::type_complexity)]

mod attestation;
mod client;
mod input_vectors;
mod operator;
mod recover;
mod vectors;
