-- Batch settlement (settleBatch / releaseBatch): jobs ready to batch, proposals offered to
-- nodes, their signatures, and the entries of confirmed BatchSettled events.

-- The batch that settled a job (NULL for a job settled alone).
ALTER TABLE jobs ADD COLUMN batch_root TEXT;

-- Jobs with M agreeing attestations waiting to be batched (batching on). Kept apart from
-- `jobs`, which a reorg re-derives from events.
CREATE TABLE batch_ready (
    job_id       BIGINT  PRIMARY KEY,
    result_hash  TEXT    NOT NULL,
    runtime_id   TEXT    NOT NULL,
    -- unix milliseconds when the quorum was reached: max_wait_ms counts from here
    ready_at     BIGINT  NOT NULL,
    -- root of the live proposal holding the job; NULL while unassigned
    proposal     TEXT,
    -- proposals of this job that were dropped (after max_attempts it settles alone)
    attempts     BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX batch_ready_proposal ON batch_ready (proposal, runtime_id, ready_at);

-- Proposals: status signing | queued | settled | dropped.
CREATE TABLE batch_proposals (
    root        TEXT    PRIMARY KEY,
    runtime_id  TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    job_count   BIGINT  NOT NULL,
    created_ms  BIGINT  NOT NULL,
    updated_ms  BIGINT  NOT NULL,
    reason      TEXT
);
CREATE INDEX batch_proposals_status ON batch_proposals (status, created_ms);

CREATE TABLE batch_entries (
    root         TEXT    NOT NULL,
    job_id       BIGINT  NOT NULL,
    result_hash  TEXT    NOT NULL,
    PRIMARY KEY (root, job_id)
);
CREATE INDEX batch_entries_job ON batch_entries (job_id);

-- Node signatures over BatchAttestation(root, runtimeId), verified on arrival.
CREATE TABLE batch_signatures (
    root         TEXT    NOT NULL,
    signer       TEXT    NOT NULL,
    signature    BYTEA   NOT NULL,
    received_at  BIGINT  NOT NULL,
    PRIMARY KEY (root, signer)
);

-- Entries of confirmed BatchSettled logs (read from the settling transaction's calldata, or
-- from this relayer's own proposal), keyed by the log: a reorg deletes them with the event.
CREATE TABLE settled_entries (
    block_number  BIGINT  NOT NULL,
    log_index     BIGINT  NOT NULL,
    job_id        BIGINT  NOT NULL,
    result_hash   TEXT    NOT NULL,
    PRIMARY KEY (block_number, log_index, job_id)
);
CREATE INDEX settled_entries_job ON settled_entries (job_id);
