-- The audit trail moves to its own file (see migrations/sqlite-audit). This row names the trail
-- this database belongs to; the store fills it when it moves the trail's tables out of this
-- file, and refuses to start if the audit file beside it is not that trail.
CREATE TABLE audit_link (
    id                  INTEGER PRIMARY KEY CHECK (id = 1),
    identity            TEXT    NOT NULL
);
