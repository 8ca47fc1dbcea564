-- Foundation: the directory of organisations, users with hashed tokens, and the audit log.
-- Times are integer milliseconds since the Unix epoch; booleans are integers 0/1.

CREATE TABLE organisations (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    code                TEXT    NOT NULL UNIQUE,
    name                TEXT    NOT NULL,
    kind                TEXT    NOT NULL,
    duty_phone          TEXT    NOT NULL,
    out_of_hours_phone  TEXT,
    secure_email        TEXT    NOT NULL,
    active              INTEGER NOT NULL DEFAULT 1,
    search_text         TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);

CREATE TABLE users (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id              INTEGER NOT NULL REFERENCES organisations (id),
    name                TEXT    NOT NULL,
    role                TEXT    NOT NULL,
    token_hash          BLOB    NOT NULL UNIQUE,
    token_hint          TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    revoked_at          INTEGER,
    reported_lost_at    INTEGER
);
CREATE INDEX users_by_org ON users (org_id);

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

-- Which organisations an event concerns (the actor's, and any whose holdings it touched):
-- the scope an IG officer sees.
CREATE TABLE audit_event_orgs (
    org_id              INTEGER NOT NULL,
    seq                 INTEGER NOT NULL,
    PRIMARY KEY (org_id, seq)
);

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
