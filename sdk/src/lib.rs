#![doc = include_str!("../README.md")]

pub mod attestation;
pub mod bindings;
pub mod canonical;
#[cfg(feature = "cli")]
pub mod cli;
pub mod client;
pub mod deployment;
mod error;
mod hash;
pub mod input;
#[cfg(feature = "cli")]
pub mod keys;
pub mod merkle;
pub mod operator;
pub mod quorum;
mod reader;
pub mod relay;
mod revert;
#[cfg(feature = "test-utils")]
pub mod testing;

pub use attestation::{Attestation, BatchAttestation, SignedAttestation, domain};
pub use client::{AttestaClient, JobInfo, JobStatus, Settlement, VerifiedSettlement};
pub use deployment::Deployment;
pub use error::Error;
pub use hash::{input_hash, model_id, result_hash};
pub use operator::{OperatorClient, OperatorStatus};
