-- Holdings: what an organisation holds, as pseudonyms only; and matches between holdings.

CREATE TABLE holdings (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id              INTEGER NOT NULL REFERENCES organisations (id),
    local_ref           TEXT    NOT NULL,
    category            TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    closed_at           INTEGER,
    contact_team        TEXT,
    contact_phone       TEXT,
    contact_email       TEXT,
    fields_present      INTEGER NOT NULL,
    key_id              TEXT    NOT NULL,
    fingerprint         BLOB    NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    UNIQUE (org_id, local_ref)
);

-- One row per stored match key of a holding. The primary key is the lookup path:
-- pseudonym first, so "which holdings carry any of these pseudonyms" is one index range each.
CREATE TABLE pseudonyms (
    pseudonym           BLOB    NOT NULL,
    holding_id          INTEGER NOT NULL REFERENCES holdings (id) ON DELETE CASCADE,
    kind                INTEGER NOT NULL,
    PRIMARY KEY (pseudonym, holding_id)
) WITHOUT ROWID;
CREATE INDEX pseudonyms_by_holding ON pseudonyms (holding_id);

-- A match between two holdings of different organisations; one public match_id for both sides.
CREATE TABLE matches (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    match_id            TEXT    NOT NULL UNIQUE,
    holding_a           INTEGER NOT NULL,
    holding_b           INTEGER NOT NULL,
    org_a               INTEGER NOT NULL,
    org_b               INTEGER NOT NULL,
    basis               TEXT    NOT NULL,
    tier                TEXT    NOT NULL,
    evidence            TEXT    NOT NULL,
    first_seen          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    withdrawn_at        INTEGER,
    UNIQUE (holding_a, holding_b, basis)
);
CREATE INDEX matches_by_org_a ON matches (org_a, withdrawn_at);
CREATE INDEX matches_by_org_b ON matches (org_b, withdrawn_at);
CREATE INDEX matches_by_holding_b ON matches (holding_b);
