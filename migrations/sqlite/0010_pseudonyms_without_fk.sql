-- Pseudonyms lose their foreign key to holdings: its check was a seventh of a bulk sync's write
-- time (a holdings lookup per pseudonym inserted, and a statement journal for every multi-row
-- insert). Integrity is kept by the store: pseudonyms are only ever written with the id their
-- holding was just given, and deleted in the same transaction as their holding.
CREATE TABLE pseudonyms_new (
    pseudonym           BLOB    NOT NULL,
    holding_id          INTEGER NOT NULL,
    kind                INTEGER NOT NULL,
    subject             INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pseudonym, holding_id)
) WITHOUT ROWID;
INSERT INTO pseudonyms_new (pseudonym, holding_id, kind, subject)
    SELECT pseudonym, holding_id, kind, subject FROM pseudonyms;
DROP TABLE pseudonyms;
ALTER TABLE pseudonyms_new RENAME TO pseudonyms;
CREATE INDEX pseudonyms_by_holding ON pseudonyms (holding_id);
