-- Record requests (a practitioner asks the holder for the record behind a match) with their
-- history, and the outbox: notifications to organisations' webhooks, retried until delivered.
-- No table here holds a child's identifier; free text is short and not for case details.

-- An organisation's webhook. The signing secret is not stored: it is derived from the index
-- secret, the organisation id and secret_version (bumped on every PUT, so setting the webhook
-- again rotates the secret). url is NULL once the webhook is removed; the version is kept.
CREATE TABLE webhooks (
    org_id              INTEGER PRIMARY KEY REFERENCES organisations (id),
    url                 TEXT,
    secret_version      INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);

-- One notification for one organisation. Pending until delivered_at or dead_at is set.
-- A delivery pass claims due rows (claimed_by, claimed_until) so several nodes never send the
-- same message at once; a claim that is not settled expires and the row is due again.
CREATE TABLE outbox (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id              INTEGER NOT NULL REFERENCES organisations (id),
    kind                TEXT    NOT NULL,
    payload             TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     INTEGER NOT NULL,
    claimed_by          TEXT,
    claimed_until       INTEGER,
    delivered_at        INTEGER,
    last_error          TEXT,
    dead_at             INTEGER
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX outbox_by_org ON outbox (org_id, id);

CREATE TABLE requests (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id          TEXT    NOT NULL UNIQUE,
    match_id            TEXT    NOT NULL,
    requester_org_id    INTEGER NOT NULL REFERENCES organisations (id),
    requester_user_id   INTEGER NOT NULL REFERENCES users (id),
    holder_org_id       INTEGER NOT NULL REFERENCES organisations (id),
    -- The holder's record (NULL-safe join: the holding may since have been removed).
    holding_id          INTEGER,
    legal_basis         TEXT    NOT NULL,
    legal_basis_detail  TEXT,
    reason              TEXT    NOT NULL,
    urgency             TEXT    NOT NULL,
    state               TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    due_at              INTEGER NOT NULL,
    escalated_at        INTEGER
);
CREATE INDEX requests_by_holder ON requests (holder_org_id, created_at);
CREATE INDEX requests_by_requester ON requests (requester_org_id, created_at);
CREATE INDEX requests_by_match ON requests (match_id);
-- At most one open request per match and requesting organisation, even with several nodes.
CREATE UNIQUE INDEX requests_one_open ON requests (match_id, requester_org_id)
    WHERE state IN ('requested', 'acknowledged');
CREATE INDEX requests_overdue ON requests (due_at) WHERE escalated_at IS NULL;

-- Every step of a request, oldest first: both sides read the same history.
CREATE TABLE request_events (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id          TEXT    NOT NULL,
    at                  INTEGER NOT NULL,
    action              TEXT    NOT NULL,
    from_state          TEXT,
    to_state            TEXT    NOT NULL,
    actor_user_id       INTEGER,
    actor_org_id        INTEGER,
    how                 TEXT,
    reference           TEXT,
    sent_at             INTEGER,
    note                TEXT
);
CREATE INDEX request_events_by_request ON request_events (request_id, id);
