-- Core state: the watcher's cursor and block-hash window, confirmed events, the jobs derived
-- from them, and the attestations nodes submitted.

-- Next block the watcher will read, per chain.
CREATE TABLE cursor (
    chain_id    BIGINT  PRIMARY KEY,
    next_block  BIGINT  NOT NULL
);

-- Hashes of processed blocks (range ends and blocks with events) inside the reorg window.
CREATE TABLE blocks (
    number       BIGINT  PRIMARY KEY,
    hash         TEXT    NOT NULL,
    parent_hash  TEXT
);

-- Every confirmed log the relayer acted on; the key makes a replayed range a no-op.
CREATE TABLE events (
    block_number  BIGINT  NOT NULL,
    log_index     BIGINT  NOT NULL,
    block_hash    TEXT    NOT NULL,
    tx_hash       TEXT    NOT NULL,
    -- event name, e.g. JobCreated
    kind          TEXT    NOT NULL,
    job_id        BIGINT,
    -- block timestamp (unix seconds)
    block_time    BIGINT  NOT NULL,
    -- the log as JSON (address, topics, data): enough to re-derive a job after a reorg
    data          TEXT    NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX events_job ON events (job_id, block_number, log_index);

-- Jobs, derived from events (plus quorum_at, the aggregator's own mark).
CREATE TABLE jobs (
    job_id         BIGINT  PRIMARY KEY,
    client         TEXT    NOT NULL,
    model_id       TEXT    NOT NULL,
    input_hash     TEXT    NOT NULL,
    fee            TEXT    NOT NULL,
    deadline       BIGINT  NOT NULL,
    -- open | settling | settled | challenged | released | refunded (only forward)
    status         TEXT    NOT NULL,
    created_block  BIGINT  NOT NULL,
    result_hash    TEXT,
    runtime_id     TEXT,
    -- settling signers, comma-separated, ascending
    signers        TEXT,
    output         BLOB,
    settle_tx      TEXT,
    -- block timestamp of JobSettled: the challenge window starts here
    settled_at     BIGINT,
    -- when M attestations agreed and a settlement was queued
    quorum_at      BIGINT
);
CREATE INDEX jobs_status ON jobs (status, job_id);

CREATE TABLE attestations (
    job_id       BIGINT  NOT NULL,
    signer       TEXT    NOT NULL,
    result_hash  TEXT    NOT NULL,
    runtime_id   TEXT    NOT NULL,
    signature    BLOB    NOT NULL,
    received_at  BIGINT  NOT NULL,
    PRIMARY KEY (job_id, signer, result_hash, runtime_id)
);

CREATE TABLE outputs (
    job_id       BIGINT  NOT NULL,
    result_hash  TEXT    NOT NULL,
    output       BLOB    NOT NULL,
    PRIMARY KEY (job_id, result_hash)
);

-- One signer, one job, two results: the evidence slashEquivocation takes.
CREATE TABLE equivocations (
    job_id        BIGINT  NOT NULL,
    signer        TEXT    NOT NULL,
    result_a      TEXT    NOT NULL,
    runtime_a     TEXT    NOT NULL,
    signature_a   BLOB    NOT NULL,
    result_b      TEXT    NOT NULL,
    runtime_b     TEXT    NOT NULL,
    signature_b   BLOB    NOT NULL,
    model_id      TEXT    NOT NULL,
    input_hash    TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    PRIMARY KEY (job_id, signer)
);
