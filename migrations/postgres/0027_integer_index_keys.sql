-- The index stores each pseudonym's first 8 bytes as an integer, not the 16-byte blob
-- (`IndexKey`): a row is about a third smaller and compares as one integer, and a sync's cost is
-- its inserts into this B-tree (docs/performance.md, "Integer index keys"). The integer is the
-- 8 bytes read big-endian as a signed 64-bit number; holdings' key lists keep whole pseudonyms.
-- Two keys of one holding sharing 8 bytes (odds 2^-64) would keep one row.
CREATE TABLE pseudonym_keys (
    pseudonym           BIGINT  NOT NULL,
    holding_id          BIGINT  NOT NULL,
    kind                BIGINT  NOT NULL,
    subject             BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (pseudonym, holding_id)
);
INSERT INTO pseudonym_keys (pseudonym, holding_id, kind, subject)
    SELECT ('x' || encode(substring(pseudonym FROM 1 FOR 8), 'hex'))::bit(64)::bigint, holding_id, kind, subject
    FROM pseudonyms
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
DROP TABLE pseudonyms;
ALTER TABLE pseudonym_keys RENAME TO pseudonyms;
ALTER TABLE pseudonyms RENAME CONSTRAINT pseudonym_keys_pkey TO pseudonyms_pkey;
