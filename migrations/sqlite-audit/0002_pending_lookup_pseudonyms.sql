-- Each event's exact-form pseudonyms as one row, keyed by the event's place in the trail, written
-- in the event's own group commit. `lookup_pseudonyms` (pseudonym, seq) is the index subject
-- access searches, and its keys are random: written inside every lookup's commit, about ten rows
-- a lookup each dirtied a page of their own, some 200 pages a commit of 16 lookups, and those
-- commits bounded the lookup rate. Rows here append at the end of one B-tree instead; the audit
-- writer moves them into the index between commits, many lookups at a time, and every reader of
-- the index reads this table with it in one statement, so a search is never missed in between.
CREATE TABLE lookup_pseudonyms_pending (
    seq                 INTEGER PRIMARY KEY,
    -- The pseudonyms, 16 bytes each, end to end.
    pseudonyms          BLOB    NOT NULL
);
