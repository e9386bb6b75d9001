//! The sandbox escape suite ([`suite`], RELIABILITY.md S1–S11) against cold workers: every job
//! starts its own worker (`run_job`). `tests/escape_pooled.rs` runs the same suite against
//! prepared workers of a pool. Run with
//! `cargo nextest run -p attesta-node --features escape-tests --test escape`.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use attesta_node::sandbox::{JobOutput, Policy, SandboxError};

/// Every job on a cold worker.
fn run_job(policy: &Policy, input: &[u8]) -> Result<JobOutput, SandboxError> {
    let output = attesta_node::sandbox::run_job(policy, input);
    if let Ok(output) = &output {
        assert!(!output.pooled);
    }
    output
}

#[path = "escape/suite.rs"]
mod suite;
