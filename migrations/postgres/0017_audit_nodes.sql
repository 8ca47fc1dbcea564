-- Every complete subtree of the Merkle log, (level, index) -> hash: level 0 the leaves, level l
-- the 2^l leaves from index << l. The writer stores the nodes each batch completes in the
-- batch's own transaction, so an inclusion or consistency proof reads O(log n) rows instead of
-- every leaf hash (a 4-million-event log took 22-24 s and 1.2 GB a proof).
CREATE TABLE audit_nodes (
    level               BIGINT  NOT NULL,
    idx                 BIGINT  NOT NULL,
    hash                BYTEA   NOT NULL,
    PRIMARY KEY (level, idx)
);

-- How many leaves have their nodes stored. A trail from before this table starts at 0; the
-- server fills it in from the stored leaf hashes, a page a transaction (resumable), and the
-- writer stores nodes only while this equals the size, so the nodes always cover a prefix.
ALTER TABLE audit_head ADD COLUMN nodes_size BIGINT NOT NULL DEFAULT 0;
