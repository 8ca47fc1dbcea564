-- Key families (#21): which generation of match keys each holding's pseudonyms were written with.
-- Family 1 (every holding before this migration) stored no tolerance keys; family 2 adds each
-- name's deletion neighbourhood and the date with one part left out. Index pseudonyms cannot be
-- derived from one another, so a holding is re-keyed when its holder next syncs (its fingerprint
-- covers the family, so an unchanged record is rewritten); until the last family-1 holding is
-- rewritten, lookups also ask family 1's one-edit variants. The partial index holds only the
-- holdings still to re-key, so "are there any?" is one probe and new writes never touch it.
ALTER TABLE holdings ADD COLUMN key_family INTEGER NOT NULL DEFAULT 1;
CREATE INDEX holdings_of_key_family_one ON holdings (id) WHERE key_family < 2;
