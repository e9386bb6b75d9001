-- Whether a node signs batch proposals (NodeHello.signs_batches): the batcher offers batches
-- only to such nodes. 0 for nodes registered before, until they register again.
ALTER TABLE nodes ADD COLUMN signs_batches BIGINT NOT NULL DEFAULT 0;
