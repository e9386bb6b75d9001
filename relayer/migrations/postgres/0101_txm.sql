-- Transaction manager state (R2, R7–R10, R13).
-- Which key sends a duty (one nonce manager per key); set when the duty gets its nonce.
ALTER TABLE outbox ADD COLUMN from_address TEXT;
-- Unix seconds before which a queued duty is not tried again ("not yet" reverts, RPC errors).
ALTER TABLE outbox ADD COLUMN not_before BIGINT NOT NULL DEFAULT 0;
-- Unix milliseconds of the first broadcast and of the first receipt seen (time to inclusion).
ALTER TABLE outbox ADD COLUMN first_sent_ms BIGINT;
ALTER TABLE outbox ADD COLUMN included_ms BIGINT;
-- The hash and block of the receipt last seen for this duty's nonce; cleared when a reorg
-- removes it.
ALTER TABLE outbox ADD COLUMN mined_hash TEXT;
ALTER TABLE outbox ADD COLUMN mined_block BIGINT;

-- Next nonce per sending key. Taken (incremented) in the same database transaction that stores
-- the signed transaction, so a nonce is never handed out without a transaction that uses it.
CREATE TABLE nonces (
    address     TEXT    PRIMARY KEY,
    next_nonce  BIGINT  NOT NULL
);

-- Every signed transaction, stored before it is broadcast: a crash or a send error is repaired
-- by broadcasting `raw` again, and a receipt for any of a nonce's hashes settles the duty (R8).
CREATE TABLE tx_attempts (
    tx_hash         TEXT    PRIMARY KEY,
    outbox_id       BIGINT  NOT NULL REFERENCES outbox (id),
    from_address    TEXT    NOT NULL,
    nonce           BIGINT  NOT NULL,
    raw             BYTEA   NOT NULL,
    -- wei, decimal text
    max_fee         TEXT    NOT NULL,
    priority_fee    TEXT    NOT NULL,
    gas_limit       BIGINT  NOT NULL,
    -- a zero-value transfer to self that only uses up the nonce (R13)
    is_noop         BIGINT  NOT NULL DEFAULT 0,
    -- chain tip when signed: the fee bump counts blocks from here
    sent_block      BIGINT  NOT NULL,
    sent_at         BIGINT  NOT NULL
);
CREATE INDEX tx_attempts_outbox ON tx_attempts (outbox_id, nonce);
