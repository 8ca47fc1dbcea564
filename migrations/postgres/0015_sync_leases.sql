-- One full sync per organisation at a time, across processes and nodes: a sync holds its
-- organisation's row here (taken with a conditional insert, renewed while it runs, released
-- when it ends). A row left by a crashed sync expires; the next sync of that organisation, or
-- any node's reconciliation, records it in the audit trail as `sync_interrupted`, with the
-- counts below. The counts are written in the same transaction as the sync's batches, so they
-- are exactly what the sync committed.
CREATE TABLE sync_leases (
    org_id              BIGINT  PRIMARY KEY REFERENCES organisations(id),
    run_id              TEXT    NOT NULL,
    started_at          BIGINT  NOT NULL,
    expires_at          BIGINT  NOT NULL,
    added               BIGINT  NOT NULL DEFAULT 0,
    updated             BIGINT  NOT NULL DEFAULT 0,
    removed             BIGINT  NOT NULL DEFAULT 0,
    commits             BIGINT  NOT NULL DEFAULT 0
);
