-- Each holding lists its own pseudonyms (16 bytes each, end to end) and the index of pseudonyms
-- by holding goes. That index was a second B-tree entry for every stored key (22 a holding
-- since key family 2), written at every sync, and it was read only to delete or re-key a
-- holding and to refresh the lookup prefilter from recent writes; all three now read the
-- holding's own list, so a sync writes one index entry per key instead of two.
ALTER TABLE holdings ADD COLUMN key_list BYTEA NOT NULL DEFAULT '\x';
UPDATE holdings h SET key_list = p.keys
    FROM (SELECT holding_id, string_agg(pseudonym, ''::bytea) AS keys FROM pseudonyms GROUP BY holding_id) p
    WHERE p.holding_id = h.id;
DROP INDEX pseudonyms_by_holding;
