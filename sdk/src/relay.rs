//! The relayer's HTTP wire format, shared by the relayer (server) and the node (client).
//!
//! Node routes are authenticated by the node's signing key: the node signs
//! [`request_digest`] (method, path, body hash, timestamp, nonce) as an EIP-191 personal
//! message, so the signature can be confused with neither a transaction nor an attestation.
//! The relayer accepts a request only if the timestamp is within [`MAX_CLOCK_SKEW_SECS`] of its
//! clock, the `(signer, nonce)` pair is new, and the signer is an active signer on chain.

use crate::Error;
use alloy::{
    primitives::{Address, B256, Bytes, U256, eip191_hash_message, keccak256},
    signers::{Signature, SignerSync, local::PrivateKeySigner},
};
use serde::{Deserialize, Serialize};

/// Header carrying the signer's address (0x-hex).
pub const HEADER_SIGNER: &str = "x-attesta-signer";
/// Header carrying the request's unix time in seconds.
pub const HEADER_TIMESTAMP: &str = "x-attesta-timestamp";
/// Header carrying a fresh random nonce (0x-hex, 16 bytes).
pub const HEADER_NONCE: &str = "x-attesta-nonce";
/// Header carrying the 65-byte EIP-191 signature (0x-hex).
pub const HEADER_SIGNATURE: &str = "x-attesta-signature";
/// How far a request's timestamp may be from the relayer's clock.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;
/// Domain separator of request signatures; bump the version when the layout changes.
pub const REQUEST_DOMAIN: &str = "attesta-request/v1";

/// The digest a node signs for one request.
///
/// `keccak256("attesta-request/v1\n" || METHOD || "\n" || path_and_query || "\n" ||
/// keccak256(body) || "\n" || timestamp || "\n" || nonce)`, where the body hash and nonce are
/// lowercase 0x-hex and the timestamp is decimal. The method is upper case.
pub fn request_digest(
    method: &str,
    path_and_query: &str,
    body: &[u8],
    timestamp: u64,
    nonce: B256,
) -> B256 {
    let message = format!(
        "{REQUEST_DOMAIN}\n{}\n{path_and_query}\n{}\n{timestamp}\n{nonce}",
        method.to_ascii_uppercase(),
        keccak256(body),
    );
    keccak256(message.as_bytes())
}

/// The four authentication headers of one signed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestAuth {
    /// The signing key's address.
    pub signer: Address,
    /// Unix time in seconds.
    pub timestamp: u64,
    /// A fresh random value; the relayer rejects a nonce it has seen from this signer.
    pub nonce: B256,
    /// EIP-191 signature over [`request_digest`].
    pub signature: Signature,
}

impl RequestAuth {
    /// Signs a request with a fresh random nonce.
    pub fn sign(
        signer: &PrivateKeySigner,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        timestamp: u64,
    ) -> Result<Self, Error> {
        Self::sign_with_nonce(signer, method, path_and_query, body, timestamp, B256::random())
    }

    /// Signs a request with a given nonce (tests and replays use this).
    pub fn sign_with_nonce(
        signer: &PrivateKeySigner,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        timestamp: u64,
        nonce: B256,
    ) -> Result<Self, Error> {
        let digest = request_digest(method, path_and_query, body, timestamp, nonce);
        let signature = signer.sign_message_sync(digest.as_slice())?;
        Ok(Self { signer: signer.address(), timestamp, nonce, signature })
    }

    /// The headers to send, as (name, value) pairs.
    pub fn headers(&self) -> [(&'static str, String); 4] {
        [
            (HEADER_SIGNER, self.signer.to_string()),
            (HEADER_TIMESTAMP, self.timestamp.to_string()),
            (HEADER_NONCE, self.nonce.to_string()),
            (HEADER_SIGNATURE, Bytes::from(self.signature.as_bytes()).to_string()),
        ]
    }

    /// Parses the four headers; `get` looks a header up by (lowercase) name.
    pub fn from_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, Error> {
        let header = |name: &'static str| {
            get(name).ok_or_else(|| Error::RequestAuth(format!("missing header {name}")))
        };
        let bad = |name: &'static str| Error::RequestAuth(format!("malformed header {name}"));
        let signer = header(HEADER_SIGNER)?.parse().map_err(|_| bad(HEADER_SIGNER))?;
        let timestamp = header(HEADER_TIMESTAMP)?.parse().map_err(|_| bad(HEADER_TIMESTAMP))?;
        let nonce = header(HEADER_NONCE)?.parse().map_err(|_| bad(HEADER_NONCE))?;
        let signature: Bytes =
            header(HEADER_SIGNATURE)?.parse().map_err(|_| bad(HEADER_SIGNATURE))?;
        let signature =
            Signature::try_from(signature.as_ref()).map_err(|_| bad(HEADER_SIGNATURE))?;
        Ok(Self { signer, timestamp, nonce, signature })
    }

    /// Checks the signature over this request and the clock skew against `now`.
    ///
    /// Replay (a nonce seen before) and signer membership are the relayer's to check: they
    /// need its database and the chain.
    pub fn verify(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now: u64,
    ) -> Result<(), Error> {
        if self.timestamp.abs_diff(now) > MAX_CLOCK_SKEW_SECS {
            return Err(Error::RequestAuth(format!(
                "timestamp {} is more than {MAX_CLOCK_SKEW_SECS} s from the relayer's clock {now}: sync the node's clock (NTP)",
                self.timestamp
            )));
        }
        let digest = request_digest(method, path_and_query, body, self.timestamp, self.nonce);
        // EIP-191 personal message over the digest, recovered by libsecp256k1 with the same
        // rules as attestations (low s, r and s in range).
        let recovered =
            crate::quorum::recover_signature(eip191_hash_message(digest), &self.signature)
                .map_err(|e| match e {
                    Error::HighS { .. } => {
                        Error::RequestAuth("high-s signature: sign with alloy's signer".into())
                    }
                    _ => Error::RequestAuth("signature does not recover".into()),
                })?;
        if recovered != self.signer {
            return Err(Error::RequestAuth(format!(
                "signature is by {recovered}, not by the claimed signer {}",
                self.signer
            )));
        }
        Ok(())
    }
}

/// `POST /v1/blobs` answer: the content hash under which the bytes are stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobStored {
    /// keccak256 of the bytes (a `modelId` or an `inputHash`).
    pub hash: B256,
    /// Length in bytes.
    pub size: u64,
}

/// A job's lifecycle as the relayer has seen it on chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayJobStatus {
    /// Created and confirmed; waiting for attestations.
    Open,
    /// M attestations agree; a settlement is queued or in flight.
    Settling,
    /// `JobSettled` is confirmed; in the challenge window.
    Settled,
    /// Payment released to the signers.
    Released,
    /// Challenged; waiting for the arbiter.
    Challenged,
    /// The fee went back to the client.
    Refunded,
}

/// `GET /v1/jobs/{id}` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    /// The escrow's job id.
    pub job_id: U256,
    /// Who escrowed the fee.
    pub client: Address,
    /// keccak256 of the model file.
    pub model_id: B256,
    /// keccak256 of the input bytes.
    pub input_hash: B256,
    /// The escrowed fee in token units.
    pub fee: U256,
    /// Unix time after which an unsettled job can be refunded.
    pub deadline: u64,
    /// Lifecycle state.
    pub status: RelayJobStatus,
    /// Block of the `JobCreated` event.
    pub created_block: u64,
    /// Valid attestations received, per distinct result hash.
    pub attestations: Vec<ResultTally>,
    /// The settled result, once `JobSettled` is confirmed.
    pub result_hash: Option<B256>,
    /// The settling signers, once settled.
    pub signers: Vec<Address>,
    /// The settlement transaction, once mined.
    pub settle_tx: Option<B256>,
    /// The Merkle root of the batch that settled the job, when it was settled by
    /// `settleBatch` (then `settle_tx` is that batch's transaction and the output is not in any
    /// log: `GET /v1/jobs/{id}/result` serves it, checked against `result_hash`).
    #[serde(default)]
    pub batch_root: Option<B256>,
}

/// How many signers attested one result hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultTally {
    /// The attested result hash.
    pub result_hash: B256,
    /// Distinct signers that attested it.
    pub signers: u32,
}

/// `GET /v1/jobs/{id}/result` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobResult {
    /// The escrow's job id.
    pub job_id: U256,
    /// keccak256(output).
    pub result_hash: B256,
    /// The canonical output bytes (DESIGN: Node), as published in `JobSettled`.
    pub output: Bytes,
    /// The settling signers, ascending.
    pub signers: Vec<Address>,
}

/// `POST /v1/nodes/register` body: what a node tells the relayer about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeHello {
    /// The node's runtime id (engine, canonicalisation, sandbox policy).
    pub runtime_id: B256,
    /// Models the node can serve; empty means any model the relayer holds.
    pub models: Vec<B256>,
    /// The node's software version, for operators' dashboards.
    pub version: String,
    /// The node signs batch proposals: it checks every entry against its own results and the
    /// chain (it has an RPC endpoint). The relayer offers batches only to such nodes; jobs
    /// attested by fewer than M of them settle alone at once. Absent (older nodes) means no.
    #[serde(default)]
    pub signs_batches: bool,
}

/// One unit of work handed to a node by `GET /v1/nodes/work`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    /// The escrow's job id.
    pub job_id: U256,
    /// keccak256 of the model file; fetch it from `GET /v1/blobs/{model_id}`.
    pub model_id: B256,
    /// keccak256 of the input; fetch it from `GET /v1/blobs/{input_hash}`.
    pub input_hash: B256,
    /// Unix time after which the job can no longer be settled.
    pub deadline: u64,
    /// The escrow's current `maxOutputBytes`: a longer output cannot settle, so a node stops
    /// the job rather than sign it.
    pub max_output_bytes: u32,
}

/// `GET /v1/nodes/work?wait=SECS` answer: jobs this node has not attested yet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkBatch {
    /// Open jobs, oldest first; empty after the long-poll wait ran out.
    pub jobs: Vec<WorkItem>,
}

/// `POST /v1/nodes/attestations` body: a signed attestation and the output it commits to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationSubmission {
    /// The signed attestation; its signer must be the request's signer.
    pub attestation: crate::SignedAttestation,
    /// The canonical output bytes; keccak256 must equal the attested result hash.
    pub output: Bytes,
}

/// `POST /v1/nodes/attestations` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationAccepted {
    /// Distinct signers now agreeing on this result hash.
    pub agreeing: u32,
    /// Signers needed (the registry's threshold M).
    pub threshold: u32,
}

/// `POST /v1/nodes/heartbeat` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Jobs the node is running right now.
    pub running: u32,
}

/// One `(jobId, resultHash)` entry of a batch proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchEntryView {
    /// The escrow's job id.
    pub job_id: U256,
    /// The result hash M signers attested for it.
    pub result_hash: B256,
}

/// A batch the relayer asks a node to sign: a `BatchAttestation(root, runtime_id)` over the
/// [`crate::merkle::BatchTree`] of `entries`.
///
/// A node must not trust `root`: it rebuilds the tree from `entries`, and signs only if every
/// entry is a job it ran itself with exactly that result (see `docs/protocol.md`, 4b).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchProposal {
    /// The Merkle root of `entries`.
    pub root: B256,
    /// The runtime every entry's result was attested under.
    pub runtime_id: B256,
    /// The entries, in the escrow's order (ascending leaf).
    pub entries: Vec<BatchEntryView>,
}

/// `GET /v1/nodes/batches?wait=SECS` answer: proposals this node attested every entry of and
/// has not signed yet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchProposals {
    /// Open proposals, oldest first; empty after the long-poll wait ran out.
    pub proposals: Vec<BatchProposal>,
}

/// `POST /v1/nodes/batch-attestations` body: a node's signature over a proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSignatureSubmission {
    /// The proposal's root.
    pub root: B256,
    /// The proposal's runtime id.
    pub runtime_id: B256,
    /// 65-byte EIP-712 signature over `BatchAttestation(root, runtimeId)` in the escrow's domain;
    /// it must recover to the request's signer.
    pub signature: Bytes,
}

/// `POST /v1/nodes/batch-attestations` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSignatureAccepted {
    /// Distinct active signers that signed this root so far.
    pub signers: u32,
    /// Signers needed (the registry's threshold M).
    pub threshold: u32,
}

/// Every error answer of the API: a stable machine code and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable code, e.g. `bad_signature`, `replayed_nonce`, `not_found`, `body_too_large`.
    pub code: String,
    /// What went wrong and what to do.
    pub message: String,
}

/// A client of a relayer's public routes (blobs and job views); node routes are the node's.
#[derive(Clone, Debug)]
pub struct RelayClient {
    http: reqwest::Client,
    base: String,
}

impl RelayClient {
    /// A client of the relayer at `base_url` (e.g. `http://127.0.0.1:7545`).
    pub fn new(base_url: &str) -> Result<Self, Error> {
        let base = base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Usage(format!(
                "relayer URL {base_url:?} is not http(s): pass e.g. --relayer http://127.0.0.1:7545"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .map_err(|e| Error::Relay(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self { http, base })
    }

    /// Uploads bytes (a model or an input); returns their content hash. Idempotent.
    pub async fn upload_blob(&self, bytes: Vec<u8>) -> Result<BlobStored, Error> {
        let expected = keccak256(&bytes);
        let response = self
            .http
            .post(format!("{}/v1/blobs", self.base))
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let stored: BlobStored = Self::json(response).await?;
        if stored.hash != expected {
            return Err(Error::Relay(format!(
                "the relayer stored the upload as {} but its keccak256 is {expected}: use another relayer",
                stored.hash
            )));
        }
        Ok(stored)
    }

    /// Whether the relayer holds the blob `hash`.
    pub async fn has_blob(&self, hash: B256) -> Result<bool, Error> {
        let response = self
            .http
            .head(format!("{}/v1/blobs/{hash}", self.base))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        match response.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            status => Err(Error::Relay(format!("HEAD /v1/blobs/{hash} answered {status}"))),
        }
    }

    /// The relayer's view of a job, or `None` if it has not seen the job (yet).
    pub async fn job(&self, job_id: U256) -> Result<Option<JobView>, Error> {
        self.get_optional(&format!("/v1/jobs/{job_id}")).await
    }

    /// `GET /v1/jobs/{id}/result`: the output the relayer holds for a settled job (`None` until
    /// it settles). The relayer is not trusted for it: check the bytes against the attested
    /// result hash (`Settlement::check_output`), which a batch-settled job needs, as batches
    /// publish no outputs on chain.
    pub async fn job_result(&self, job_id: U256) -> Result<Option<JobResult>, Error> {
        self.get_optional(&format!("/v1/jobs/{job_id}/result")).await
    }

    /// `GET path` as JSON; `None` on 404.
    async fn get_optional<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<T>, Error> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if response.status().as_u16() == 404 {
            return Ok(None);
        }
        Self::json(response).await.map(Some)
    }

    fn unreachable(&self, e: reqwest::Error) -> Error {
        Error::Relay(format!(
            "cannot reach the relayer at {} ({e}): start it or pass the right --relayer URL",
            self.base
        ))
    }

    async fn json<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T, Error> {
        let status = response.status();
        let body = response.bytes().await.map_err(|e| Error::Relay(e.to_string()))?;
        if !status.is_success() {
            let detail = serde_json::from_slice::<ApiError>(&body)
                .map(|e| format!("{}: {}", e.code, e.message))
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            return Err(Error::Relay(format!("the relayer answered {status}: {detail}")));
        }
        serde_json::from_slice(&body)
            .map_err(|e| Error::Relay(format!("unexpected answer from the relayer: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(body: &[u8]) -> (PrivateKeySigner, RequestAuth) {
        let key = PrivateKeySigner::random();
        let auth = RequestAuth::sign(&key, "post", "/v1/nodes/heartbeat", body, 1_000).unwrap();
        (key, auth)
    }

    #[test]
    fn a_signed_request_verifies_after_a_header_round_trip() {
        let (key, auth) = signed(b"{}");
        let headers = auth.headers();
        let parsed = RequestAuth::from_headers(|name| {
            headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
        })
        .unwrap();
        assert_eq!(parsed, auth);
        assert_eq!(parsed.signer, key.address());
        parsed.verify("POST", "/v1/nodes/heartbeat", b"{}", 1_000 + MAX_CLOCK_SKEW_SECS).unwrap();
    }

    #[test]
    fn any_changed_field_or_skew_is_rejected() {
        let (_, auth) = signed(b"{}");
        assert!(auth.verify("POST", "/v1/nodes/heartbeat", b"{ }", 1_000).is_err());
        assert!(auth.verify("GET", "/v1/nodes/heartbeat", b"{}", 1_000).is_err());
        assert!(auth.verify("POST", "/v1/nodes/work", b"{}", 1_000).is_err());
        assert!(auth.verify("POST", "/v1/nodes/heartbeat", b"{}", 1_301).is_err());
        let mut other_nonce = auth.clone();
        other_nonce.nonce = B256::repeat_byte(7);
        assert!(other_nonce.verify("POST", "/v1/nodes/heartbeat", b"{}", 1_000).is_err());
        let mut other_signer = auth;
        other_signer.signer = Address::repeat_byte(1);
        assert!(other_signer.verify("POST", "/v1/nodes/heartbeat", b"{}", 1_000).is_err());
    }

    #[test]
    fn missing_or_malformed_headers_are_errors() {
        assert!(RequestAuth::from_headers(|_| None).is_err());
        assert!(RequestAuth::from_headers(|_| Some("zz")).is_err());
    }
}
