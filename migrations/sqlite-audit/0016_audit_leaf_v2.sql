-- Leaf format v2 (docs/audit.md): free text a person typed (a lookup's purpose detail) is kept
-- here, beside the leaf, which holds only a salted commitment to it. Retention erases the text
-- (it becomes NULL, with the time it was erased); the leaf and its commitment stay and verify.
CREATE TABLE audit_free_text (
    seq                 INTEGER PRIMARY KEY,
    text                TEXT,
    erased_at           INTEGER
);
-- `audit verify` re-derives each event's scope rows in log order.
CREATE INDEX audit_event_orgs_by_seq ON audit_event_orgs (seq, org_id);
