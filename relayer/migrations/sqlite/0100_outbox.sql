-- Transactions the relayer owes the chain, one row per unique duty ("settle:<jobId>", ...).
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT    NOT NULL UNIQUE,
    to_address  TEXT    NOT NULL,
    calldata    BLOB    NOT NULL,
    -- queued | pending | confirmed | noop | failed
    status      TEXT    NOT NULL DEFAULT 'queued',
    nonce       BIGINT,
    reason      TEXT,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX outbox_status ON outbox (status, id);
