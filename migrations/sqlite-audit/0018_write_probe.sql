-- Where the audit writer, after an append failed (a full disk), tries a write of its own to learn
-- whether the trail can be written again. A write that changes nothing could fit in space a failed
-- commit left in the write-ahead log, so the probe writes a megabyte here, then deletes it. Empty
-- except for that moment; not part of the trail.
CREATE TABLE audit_write_probe (
    id      INTEGER PRIMARY KEY,
    filler  BLOB    NOT NULL
);
