-- The audit trail in its own SQLite file (`locator-audit.db` beside `locator.db`): every lookup
-- appends to it, and a write to a file makes every reader of that file drop its page cache, so
-- with the trail beside the holdings each lookup's audit event emptied the caches the next
-- lookups search. Its own file also has its own write lock: a sync's long transaction on the
-- holdings never holds up a lookup's audit append. Databases from before the split keep these
-- tables in the main file until the store moves them here at start-up (store::sqlite).

-- Which file this is: the main database records the identity of the trail it belongs to, so a
-- missing, emptied or swapped audit file is refused at start-up instead of silently restarting
-- the trail.
CREATE TABLE audit_identity (
    id                  INTEGER PRIMARY KEY CHECK (id = 1),
    identity            TEXT    NOT NULL
);
INSERT INTO audit_identity (id, identity) VALUES (1, lower(hex(randomblob(16))));

-- One row per event; seq is the Merkle leaf index (0-based, gapless).
CREATE TABLE audit_events (
    seq                 INTEGER PRIMARY KEY,
    at                  INTEGER NOT NULL,
    type                TEXT    NOT NULL,
    actor_user_id       INTEGER,
    actor_org_id        INTEGER,
    purpose             TEXT,
    lookup_id           TEXT,
    body                BLOB    NOT NULL,
    leaf_hash           BLOB    NOT NULL
);
CREATE INDEX audit_events_by_lookup ON audit_events (lookup_id) WHERE lookup_id IS NOT NULL;
-- Daily quotas and "a user's volume" count a user's lookups by time.
CREATE INDEX audit_events_by_actor ON audit_events (actor_user_id, type, at);
-- The IG officer's filters: time, type, acting organisation.
CREATE INDEX audit_events_by_at ON audit_events (at);
CREATE INDEX audit_events_by_type ON audit_events (type, at);
CREATE INDEX audit_events_by_actor_org ON audit_events (actor_org_id, at);

-- Which organisations an event concerns (the actor's, and any whose holdings it touched):
-- the scope an IG officer sees.
CREATE TABLE audit_event_orgs (
    org_id              INTEGER NOT NULL,
    seq                 INTEGER NOT NULL,
    PRIMARY KEY (org_id, seq)
) WITHOUT ROWID;

-- The current tree: size, the compact frontier, and the latest signed checkpoint.
CREATE TABLE audit_head (
    id                  INTEGER PRIMARY KEY CHECK (id = 1),
    size                INTEGER NOT NULL,
    frontier            BLOB    NOT NULL,
    checkpoint          TEXT
);
INSERT INTO audit_head (id, size, frontier, checkpoint) VALUES (1, 0, X'', NULL);

CREATE TABLE audit_checkpoints (
    tree_size           INTEGER PRIMARY KEY,
    note                TEXT    NOT NULL,
    at                  INTEGER NOT NULL
);

-- The match ids a lookup handed out (what a record request names), written with its event.
CREATE TABLE lookup_matches (
    match_id            TEXT    PRIMARY KEY,
    lookup_id           TEXT    NOT NULL,
    seq                 INTEGER NOT NULL,
    asker_user_id       INTEGER NOT NULL,
    asker_org_id        INTEGER NOT NULL,
    holding_id          INTEGER NOT NULL,
    holder_org_id       INTEGER NOT NULL,
    tier                TEXT    NOT NULL,
    purpose             TEXT    NOT NULL,
    at                  INTEGER NOT NULL,
    -- Fixed when the lookup is made, so hiding the holder survives the holding's removal.
    shielded            INTEGER NOT NULL DEFAULT 0,
    basis               TEXT    NOT NULL DEFAULT 'child'
);
CREATE INDEX lookup_matches_by_holder ON lookup_matches (holder_org_id, at);
CREATE INDEX lookup_matches_by_lookup ON lookup_matches (lookup_id);
CREATE INDEX lookup_matches_by_seq ON lookup_matches (seq);

-- The exact-form pseudonyms a lookup asked, so subject access can find the lookups about a child.
CREATE TABLE lookup_pseudonyms (
    pseudonym           BLOB    NOT NULL,
    seq                 INTEGER NOT NULL,
    PRIMARY KEY (pseudonym, seq)
) WITHOUT ROWID;
CREATE INDEX lookup_pseudonyms_by_seq ON lookup_pseudonyms (seq);
