-- The index stores each pseudonym's first 8 bytes as an integer, not the 16-byte blob
-- (`IndexKey`): a row is about a third smaller and compares as one integer, and a sync's cost is
-- its inserts into this B-tree (docs/performance.md, "Integer index keys"). The integer is the
-- 8 bytes read big-endian as a signed 64-bit number; holdings' key lists keep whole pseudonyms.
-- SQLite has no cast from a blob to an integer: each of the first 16 hex digits is placed with a
-- shift (a shift wraps as two's complement, so the top digit gives the sign). The blobs from
-- x'80' up become the negative keys, so reading them first, then the rest, writes the new table
-- in key order. Two keys of one holding sharing 8 bytes (odds 2^-64) would keep one row.
CREATE TABLE pseudonym_keys (
    pseudonym           INTEGER NOT NULL,
    holding_id          INTEGER NOT NULL,
    kind                INTEGER NOT NULL,
    subject             INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pseudonym, holding_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO pseudonym_keys (pseudonym, holding_id, kind, subject)
    SELECT
        (instr('123456789ABCDEF', substr(h, 1, 1)) << 60) |
        (instr('123456789ABCDEF', substr(h, 2, 1)) << 56) |
        (instr('123456789ABCDEF', substr(h, 3, 1)) << 52) |
        (instr('123456789ABCDEF', substr(h, 4, 1)) << 48) |
        (instr('123456789ABCDEF', substr(h, 5, 1)) << 44) |
        (instr('123456789ABCDEF', substr(h, 6, 1)) << 40) |
        (instr('123456789ABCDEF', substr(h, 7, 1)) << 36) |
        (instr('123456789ABCDEF', substr(h, 8, 1)) << 32) |
        (instr('123456789ABCDEF', substr(h, 9, 1)) << 28) |
        (instr('123456789ABCDEF', substr(h, 10, 1)) << 24) |
        (instr('123456789ABCDEF', substr(h, 11, 1)) << 20) |
        (instr('123456789ABCDEF', substr(h, 12, 1)) << 16) |
        (instr('123456789ABCDEF', substr(h, 13, 1)) << 12) |
        (instr('123456789ABCDEF', substr(h, 14, 1)) << 8) |
        (instr('123456789ABCDEF', substr(h, 15, 1)) << 4) |
        instr('123456789ABCDEF', substr(h, 16, 1)),
        holding_id, kind, subject
    FROM (SELECT hex(substr(pseudonym, 1, 8)) AS h, holding_id, kind, subject FROM pseudonyms WHERE pseudonym >= x'80'
          UNION ALL
          SELECT hex(substr(pseudonym, 1, 8)) AS h, holding_id, kind, subject FROM pseudonyms WHERE pseudonym < x'80');
DROP TABLE pseudonyms;
ALTER TABLE pseudonym_keys RENAME TO pseudonyms;
