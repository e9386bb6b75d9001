//! OpenAPI schemas of the wire types in `attesta_sdk::relay`.
//!
//! The wire types live in the sdk, which does not depend on utoipa; these mirrors describe
//! them for `/openapi.json` only and are never built. A unit test serialises each sdk type
//! and checks its JSON keys against the mirror's properties, so the two cannot drift apart.
#![allow(dead_code)]

use utoipa::ToSchema;

/// A 32-byte hash, 0x-hex.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^0x[0-9a-fA-F]{64}$", example = "0x00000000000000000000000000000000000000000000000000000000000000ff")]
pub(crate) struct Hash32(String);

/// A 20-byte address, 0x-hex (EIP-55 checksummed on output).
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^0x[0-9a-fA-F]{40}$")]
pub(crate) struct Addr(String);

/// A uint256, 0x-hex as alloy serialises it.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^0x[0-9a-fA-F]{1,64}$", example = "0x2a")]
pub(crate) struct Uint256(String);

/// Bytes, 0x-hex.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^0x([0-9a-fA-F]{2})*$")]
pub(crate) struct HexBytes(String);

/// `POST /v1/blobs` answer: the content hash under which the bytes are stored.
#[derive(ToSchema)]
#[schema(as = BlobStored)]
pub(crate) struct BlobStored {
    /// keccak256 of the bytes.
    hash: Hash32,
    /// Length in bytes.
    size: u64,
}

/// A job's lifecycle as the relayer has seen it on chain.
#[derive(ToSchema)]
#[schema(as = RelayJobStatus)]
#[schema(rename_all = "snake_case")]
pub(crate) enum RelayJobStatus {
    /// Created and confirmed; waiting for attestations.
    Open,
    /// M attestations agree; settlement queued or in flight.
    Settling,
    /// `JobSettled` confirmed; in the challenge window.
    Settled,
    /// Paid to the signers.
    Released,
    /// Challenged; waiting for the arbiter.
    Challenged,
    /// Fee returned to the client.
    Refunded,
}

/// How many signers attested one result hash.
#[derive(ToSchema)]
#[schema(as = ResultTally)]
pub(crate) struct ResultTally {
    /// The attested result hash.
    result_hash: Hash32,
    /// Distinct signers that attested it.
    signers: u32,
}

/// `GET /v1/jobs/{id}` answer.
#[derive(ToSchema)]
#[schema(as = JobView)]
pub(crate) struct JobView {
    /// The escrow's job id.
    job_id: Uint256,
    /// Who escrowed the fee.
    client: Addr,
    /// keccak256 of the model file.
    model_id: Hash32,
    /// keccak256 of the input bytes.
    input_hash: Hash32,
    /// The escrowed fee in token units.
    fee: Uint256,
    /// Unix time after which an unsettled job can be refunded.
    deadline: u64,
    /// Lifecycle state.
    status: RelayJobStatus,
    /// Block of the `JobCreated` event.
    created_block: u64,
    /// Valid attestations received, per result hash.
    attestations: Vec<ResultTally>,
    /// The settled result hash.
    result_hash: Option<Hash32>,
    /// The settling signers.
    signers: Vec<Addr>,
    /// The settlement transaction.
    settle_tx: Option<Hash32>,
    /// Merkle root of the batch that settled the job, when `settleBatch` did.
    batch_root: Option<Hash32>,
}

/// `GET /v1/jobs/{id}/result` answer.
#[derive(ToSchema)]
#[schema(as = JobResult)]
pub(crate) struct JobResult {
    /// The escrow's job id.
    job_id: Uint256,
    /// keccak256(output).
    result_hash: Hash32,
    /// The canonical output bytes.
    output: HexBytes,
    /// The settling signers, ascending.
    signers: Vec<Addr>,
}

/// `POST /v1/nodes/register` body.
#[derive(ToSchema)]
#[schema(as = NodeHello)]
pub(crate) struct NodeHello {
    /// The node's runtime id.
    runtime_id: Hash32,
    /// Models the node serves; empty means any.
    models: Vec<Hash32>,
    /// The node's software version.
    version: String,
    /// The node signs batch proposals (it checks each entry on chain); absent means no.
    signs_batches: Option<bool>,
}

/// One unit of work.
#[derive(ToSchema)]
#[schema(as = WorkItem)]
pub(crate) struct WorkItem {
    /// The escrow's job id.
    job_id: Uint256,
    /// keccak256 of the model file (`GET /v1/blobs/{hash}`).
    model_id: Hash32,
    /// keccak256 of the input (`GET /v1/blobs/{hash}`).
    input_hash: Hash32,
    /// Unix time after which the job can no longer be settled.
    deadline: u64,
    /// The escrow's current `maxOutputBytes`; a longer output cannot settle.
    max_output_bytes: u32,
}

/// `GET /v1/nodes/work` answer.
#[derive(ToSchema)]
#[schema(as = WorkBatch)]
pub(crate) struct WorkBatch {
    /// Open jobs this node has not attested, oldest first.
    jobs: Vec<WorkItem>,
}

/// The EIP-712 attestation a node signs.
#[derive(ToSchema)]
#[schema(as = Attestation)]
#[allow(non_snake_case)]
pub(crate) struct Attestation {
    /// The escrow's job id.
    jobId: Uint256,
    /// keccak256 of the model file.
    modelId: Hash32,
    /// keccak256 of the input.
    inputHash: Hash32,
    /// keccak256 of the canonical output.
    resultHash: Hash32,
    /// The runtime that produced it.
    runtimeId: Hash32,
}

/// A secp256k1 signature as alloy serialises it.
#[derive(ToSchema)]
#[schema(as = Signature)]
#[allow(non_snake_case)]
pub(crate) struct Signature {
    /// r, 0x-hex.
    r: Uint256,
    /// s, 0x-hex.
    s: Uint256,
    /// "0x0" or "0x1".
    yParity: String,
    /// Same as yParity (legacy field).
    v: Option<String>,
}

/// An attestation with its signer and signature.
#[derive(ToSchema)]
#[schema(as = SignedAttestation)]
pub(crate) struct SignedAttestation {
    /// What was signed.
    attestation: Attestation,
    /// Who signed it; must be the request's signer.
    signer: Addr,
    /// The signature.
    signature: Signature,
}

/// `POST /v1/nodes/attestations` body.
#[derive(ToSchema)]
#[schema(as = AttestationSubmission)]
pub(crate) struct AttestationSubmission {
    /// The signed attestation.
    attestation: SignedAttestation,
    /// The canonical output; keccak256 must equal the attested result hash.
    output: HexBytes,
}

/// `POST /v1/nodes/attestations` answer.
#[derive(ToSchema)]
#[schema(as = AttestationAccepted)]
pub(crate) struct AttestationAccepted {
    /// Distinct signers now agreeing on this result hash.
    agreeing: u32,
    /// Signers needed (M).
    threshold: u32,
}

/// `POST /v1/nodes/heartbeat` body.
#[derive(ToSchema)]
#[schema(as = Heartbeat)]
pub(crate) struct Heartbeat {
    /// Jobs the node is running now.
    running: u32,
}

/// Every error answer.
#[derive(ToSchema)]
#[schema(as = ApiError)]
pub(crate) struct ApiError {
    /// Stable code: malformed_json, bad_request, missing_auth, bad_signature,
    /// stale_timestamp, inactive_signer, not_found, not_settled, not_registered,
    /// replayed_nonce, body_too_large, rate_limited, corrupt_blob, internal, or an
    /// attestation refusal of the aggregator.
    code: String,
    /// What went wrong and what to do.
    message: String,
}

/// One `(jobId, resultHash)` entry of a batch proposal.
#[derive(ToSchema)]
#[schema(as = BatchEntryView)]
pub(crate) struct BatchEntryView {
    /// The escrow's job id.
    job_id: Uint256,
    /// The result hash M signers attested for it.
    result_hash: Hash32,
}

/// A batch to sign: `BatchAttestation(root, runtimeId)` over the StandardMerkleTree of
/// `entries`. Rebuild the root from the entries; sign only results you computed yourself.
#[derive(ToSchema)]
#[schema(as = BatchProposal)]
pub(crate) struct BatchProposal {
    /// Merkle root of the entries.
    root: Hash32,
    /// Runtime every entry was attested under.
    runtime_id: Hash32,
    /// Entries in the escrow's order (ascending leaf).
    entries: Vec<BatchEntryView>,
}

/// `GET /v1/nodes/batches` answer.
#[derive(ToSchema)]
#[schema(as = BatchProposals)]
pub(crate) struct BatchProposals {
    /// Proposals to sign, oldest first.
    proposals: Vec<BatchProposal>,
}

/// `POST /v1/nodes/batch-attestations` body.
#[derive(ToSchema)]
#[schema(as = BatchSignatureSubmission)]
pub(crate) struct BatchSignatureSubmission {
    /// The proposal's root.
    root: Hash32,
    /// The proposal's runtime id.
    runtime_id: Hash32,
    /// 65-byte EIP-712 signature over BatchAttestation(root, runtimeId).
    signature: HexBytes,
}

/// `POST /v1/nodes/batch-attestations` answer.
#[derive(ToSchema)]
#[schema(as = BatchSignatureAccepted)]
pub(crate) struct BatchSignatureAccepted {
    /// Distinct active signers of this root so far.
    signers: u32,
    /// Signers needed (M).
    threshold: u32,
}
