-- Content-addressed bytes (models, inputs): hash = keccak256(data), re-checked on every read.
CREATE TABLE blobs (
    hash        TEXT    PRIMARY KEY,
    size        BIGINT  NOT NULL,
    data        BLOB    NOT NULL,
    created_at  BIGINT  NOT NULL
);

-- Nodes that registered with this relayer (signer = the node's signing key).
CREATE TABLE nodes (
    signer          TEXT    PRIMARY KEY,
    runtime_id      TEXT    NOT NULL,
    -- JSON array of model ids the node serves; [] = any.
    models          TEXT    NOT NULL,
    version         TEXT    NOT NULL,
    registered_at   BIGINT  NOT NULL,
    last_heartbeat  BIGINT  NOT NULL,
    running         BIGINT  NOT NULL DEFAULT 0
);

-- Request nonces seen per signer, kept until the request's timestamp leaves the skew window.
CREATE TABLE request_nonces (
    signer      TEXT    NOT NULL,
    nonce       TEXT    NOT NULL,
    expires_at  BIGINT  NOT NULL,
    PRIMARY KEY (signer, nonce)
);
CREATE INDEX request_nonces_expires_at ON request_nonces (expires_at);
