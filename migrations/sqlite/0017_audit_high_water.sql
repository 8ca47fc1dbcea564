-- The latest signed checkpoint of the audit trail this database has seen, kept in the main file
-- because the trail lives in a file of its own (`locator-audit.db`): restoring an older copy of
-- that file alone would otherwise pass as a whole, shorter trail. At start and in
-- `audit verify` the trail must be at least this long and extend this checkpoint.
CREATE TABLE audit_high_water (
    id                  INTEGER PRIMARY KEY CHECK (id = 1),
    tree_size           INTEGER NOT NULL,
    note                TEXT    NOT NULL
);
