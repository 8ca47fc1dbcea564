-- Lookups: the match ids a lookup handed out (so a record can be requested through them and
-- the holder can see who asked), and the pseudonyms each lookup asked (for subject access).
-- Both are written in the same transaction as the lookup's audit event.

CREATE TABLE lookup_matches (
    match_id            TEXT    PRIMARY KEY,
    lookup_id           TEXT    NOT NULL,
    seq                 BIGINT  NOT NULL,
    asker_user_id       BIGINT  NOT NULL,
    asker_org_id        BIGINT  NOT NULL,
    holding_id          BIGINT  NOT NULL,
    holder_org_id       BIGINT  NOT NULL,
    tier                TEXT    NOT NULL,
    purpose             TEXT    NOT NULL,
    at                  BIGINT  NOT NULL
);
CREATE INDEX lookup_matches_by_holder ON lookup_matches (holder_org_id, at);
CREATE INDEX lookup_matches_by_lookup ON lookup_matches (lookup_id);

CREATE TABLE lookup_pseudonyms (
    pseudonym           BYTEA   NOT NULL,
    seq                 BIGINT  NOT NULL,
    PRIMARY KEY (pseudonym, seq)
);

-- Daily quotas and "a user's volume" count a user's lookups by time.
CREATE INDEX audit_events_by_actor ON audit_events (actor_user_id, type, at);
