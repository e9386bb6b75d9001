//! What runs before a handler: the body limit (A1), the per-client rate-limit key (A2) and
//! node request authentication (A3, A4).

use super::{
    Shared,
    error::{ApiFailure, codes},
};
use alloy::primitives::Address;
use attesta_sdk::relay::{MAX_CLOCK_SKEW_SECS, RequestAuth};
use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State},
    http::{StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr},
    sync::Arc,
};
use tower_governor::{GovernorError, key_extractor::KeyExtractor};

/// The request body, read in full by [`body_limit`] (so every handler and the signature check
/// see the same bytes, and no extractor applies a limit of its own).
#[derive(Clone, Debug)]
pub(crate) struct Buffered(pub(crate) Bytes);

/// Reads the whole body if it is at most `limit` bytes, else answers 413 without reading on.
///
/// A declared `Content-Length` over the limit is refused before any byte is read; a chunked
/// body (no length) is read until it passes the limit and refused then (A1).
pub(crate) async fn body_limit(State(limit): State<usize>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return ApiFailure::body_too_large(limit).into_response();
    }
    let (mut parts, body) = req.into_parts();
    // Counted here rather than left to an extractor so that chunked bodies, which declare no
    // length, stop being read at the limit too.
    let mut buffer = Vec::with_capacity(declared.map_or(0, |len| len as usize));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                return ApiFailure::bad_request(format!("could not read the body: {error}"))
                    .into_response();
            }
        };
        if buffer.len() + chunk.len() > limit {
            return ApiFailure::body_too_large(limit).into_response();
        }
        buffer.extend_from_slice(&chunk);
    }
    let bytes = Bytes::from(buffer);
    parts.extensions.insert(Buffered(bytes));
    next.run(Request::from_parts(parts, Body::empty())).await
}

impl<S: Send + Sync> FromRequestParts<S> for Buffered {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiFailure> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or_else(|| ApiFailure::internal("route is missing its body limit layer"))
    }
}

/// A JSON body whose rejection is an [`ApiFailure`] (`malformed_json`), read from [`Buffered`].
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiFailure;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiFailure> {
        let (mut parts, _) = req.into_parts();
        let Buffered(bytes) = Buffered::from_request_parts(&mut parts, state).await?;
        serde_json::from_slice(&bytes).map(Self).map_err(ApiFailure::malformed_json)
    }
}

/// The authenticated signer of a node request, set by [`node_auth`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NodeSigner(pub(crate) Address);

impl<S: Send + Sync> FromRequestParts<S> for NodeSigner {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiFailure> {
        parts
            .extensions
            .get::<Self>()
            .copied()
            .ok_or_else(|| ApiFailure::internal("node route is missing its auth layer"))
    }
}

/// Authenticates a node request, in order: headers present and well-formed, timestamp within
/// ±300 s, signature over exactly this method, path and query, and body by the claimed
/// signer, signer active on chain, and `(signer, nonce)` never seen before. The nonce is
/// claimed last so that requests which fail any other check cannot fill the table.
pub(crate) async fn node_auth(State(shared): State<Shared>, req: Request, next: Next) -> Response {
    // Checked on the parts alone: a body is not `Sync`, so a reference to the whole request
    // cannot be held across the database await.
    let (mut parts, body) = req.into_parts();
    match authenticate(&shared, &parts).await {
        Ok(signer) => {
            parts.extensions.insert(NodeSigner(signer));
            next.run(Request::from_parts(parts, body)).await
        }
        Err(failure) => failure.into_response(),
    }
}

async fn authenticate(shared: &Arc<super::Inner>, req: &Parts) -> Result<Address, ApiFailure> {
    let unauthorized = |code: &'static str, message: String| {
        ApiFailure::new(StatusCode::UNAUTHORIZED, code, message)
    };
    let headers = &req.headers;
    let names = [
        attesta_sdk::relay::HEADER_SIGNER,
        attesta_sdk::relay::HEADER_TIMESTAMP,
        attesta_sdk::relay::HEADER_NONCE,
        attesta_sdk::relay::HEADER_SIGNATURE,
    ];
    if let Some(missing) = names.iter().find(|name| !headers.contains_key(**name)) {
        return Err(unauthorized(
            codes::MISSING_AUTH,
            format!("missing header {missing}: node routes take a signed request (RequestAuth)"),
        ));
    }
    let auth = RequestAuth::from_headers(|name| headers.get(name).and_then(|v| v.to_str().ok()))
        .map_err(|e| unauthorized(codes::BAD_SIGNATURE, e.to_string()))?;

    let now = (shared.state.clock)();
    if auth.timestamp.abs_diff(now) > MAX_CLOCK_SKEW_SECS {
        return Err(unauthorized(
            codes::STALE_TIMESTAMP,
            format!(
                "timestamp {} is more than {MAX_CLOCK_SKEW_SECS} s from the relayer's clock {now}: sync the node's clock (NTP) and sign a fresh request",
                auth.timestamp
            ),
        ));
    }
    let path = req.uri.path_and_query().map_or_else(|| req.uri.path(), |pq| pq.as_str());
    let Some(Buffered(body)) = req.extensions.get::<Buffered>() else {
        return Err(ApiFailure::internal("node route is missing its body limit layer"));
    };
    auth.verify(req.method.as_str(), path, body, now)
        .map_err(|e| unauthorized(codes::BAD_SIGNATURE, e.to_string()))?;

    if !shared.state.active_set.contains(auth.signer) {
        return Err(ApiFailure::new(
            StatusCode::FORBIDDEN,
            codes::INACTIVE_SIGNER,
            format!(
                "{} is not an active signer in the staking registry: stake and register the signing key first",
                auth.signer
            ),
        ));
    }
    // A request passes the clock check only while now <= timestamp + skew, so the nonce
    // must be remembered until then and no longer.
    let expires_at = auth.timestamp.saturating_add(MAX_CLOCK_SKEW_SECS);
    if !shared.state.store.claim_request_nonce(auth.signer, auth.nonce, expires_at).await? {
        return Err(ApiFailure::new(
            StatusCode::CONFLICT,
            codes::REPLAYED_NONCE,
            format!(
                "nonce {} was already used by {}: sign every request with a fresh random nonce",
                auth.nonce, auth.signer
            ),
        ));
    }
    Ok(auth.signer)
}

/// The rate-limit key of a request: the peer's IP address, or, when the peer is a configured
/// trusted proxy, the client address that proxy reported in `X-Forwarded-For`. Headers from
/// anyone else are ignored, so a client cannot pick its own bucket (A2). IPv6 clients are
/// keyed by their /64, the unit one subscriber usually controls.
#[derive(Clone, Debug)]
pub(crate) struct ClientKey {
    pub(crate) trusted_proxies: Arc<[IpAddr]>,
}

impl KeyExtractor for ClientKey {
    type Key = IpAddr;

    fn extract<T>(&self, req: &axum::http::Request<T>) -> Result<IpAddr, GovernorError> {
        // Without connection info (a router driven in-process) every request shares one key.
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
        Ok(bucket(client_ip(peer, req.headers(), &self.trusted_proxies)))
    }
}

/// The client's address as seen through trusted proxies: walk `X-Forwarded-For` from the
/// right (each proxy appends the address it saw) past trusted hops; the first untrusted
/// address is the client.
pub(crate) fn client_ip(
    peer: IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[IpAddr],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.contains(&ip.to_canonical());
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip.to_canonical();
                if !is_trusted(&client) {
                    return client;
                }
            }
            // An unparsable hop was written by someone we cannot vouch for: stop at the
            // last address a trusted proxy gave us.
            Err(_) => return client,
        }
    }
    client
}

fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(Ipv6Addr::from(segments))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn xff(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().unwrap());
        headers
    }

    #[test]
    fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let spoof = xff("1.2.3.4");
        assert_eq!(client_ip(peer, &spoof, &[]), peer);
        assert_eq!(client_ip(peer, &spoof, &[proxy]), peer);
        assert_eq!(client_ip(proxy, &spoof, &[proxy]), "1.2.3.4".parse::<IpAddr>().unwrap());
        // A client that prepends a fake hop still lands on the address the proxy saw.
        let chain = xff("6.6.6.6, 5.5.5.5");
        assert_eq!(client_ip(proxy, &chain, &[proxy]), "5.5.5.5".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &[proxy]), proxy);
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(bucket(a), bucket(b));
        assert_ne!(bucket(a), bucket(c));
    }
}
