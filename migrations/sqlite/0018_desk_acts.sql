-- The duty desk's acts happen once (docs/ui.md, docs/requests.md).

-- One open request per requesting organisation and holding, whichever match it came through
-- (each lookup mints a new match id, so the per-match index alone let duplicates in). The key
-- is the holding for requests made from now on; older open duplicates keep NULL (exempt), and
-- the earliest open request per holding takes the key, so the index can be built over them.
ALTER TABLE requests ADD COLUMN holding_key INTEGER;
UPDATE requests SET holding_key = holding_id
WHERE holding_id IS NOT NULL
  AND NOT (state IN ('requested', 'acknowledged') AND EXISTS (
      SELECT 1 FROM requests earlier
      WHERE earlier.requester_org_id = requests.requester_org_id AND earlier.holding_id = requests.holding_id
        AND earlier.state IN ('requested', 'acknowledged') AND earlier.id < requests.id));
CREATE UNIQUE INDEX requests_one_open_per_holding ON requests (requester_org_id, holding_key)
    WHERE state IN ('requested', 'acknowledged');

-- The asker's own case reference (short, plain characters, never a name or NHS number), shown
-- to the requesting organisation only.
ALTER TABLE requests ADD COLUMN case_ref TEXT;

-- A lookup answer kept for its address (/lookups/{lookup_id}), so a reload shows it again
-- without a new lookup: the redacted asking-side view the API returns (no identifier), readable
-- only by the asking user in the same browser session (`bound` is a keyed hash of the session
-- id, not the stored one), deleted at sign-out and after a few hours.
CREATE TABLE web_lookup_answers (
    lookup_id           TEXT    PRIMARY KEY,
    user_id             INTEGER NOT NULL,
    org_id              INTEGER NOT NULL,
    bound               BLOB    NOT NULL,
    case_ref            TEXT,
    answer              TEXT    NOT NULL,
    expires_at          INTEGER NOT NULL
);
CREATE INDEX web_lookup_answers_by_expiry ON web_lookup_answers (expires_at);
CREATE INDEX web_lookup_answers_by_user ON web_lookup_answers (user_id);

-- A one-time message for the next page of one session (a token just issued): encrypted with a
-- key derived from the session id, which the database never holds, and deleted when read.
CREATE TABLE web_flash (
    bound               BLOB    PRIMARY KEY,
    nonce               BLOB    NOT NULL,
    payload             BLOB    NOT NULL,
    expires_at          INTEGER NOT NULL
);
