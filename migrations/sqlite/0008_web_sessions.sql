-- Browser sessions for the web pages. Only a keyed hash of the session id is stored (the cookie
-- holds the id), so a copy of the database cannot be used to take over a session. Several nodes
-- sharing one PostgreSQL see the same sessions. Revoking the user's token ends them too (the
-- session query joins users and requires revoked_at IS NULL).
CREATE TABLE web_sessions (
    id_hash             BLOB    PRIMARY KEY,
    user_id             INTEGER NOT NULL REFERENCES users (id),
    created_at          INTEGER NOT NULL,
    last_seen_at        INTEGER NOT NULL,
    -- The absolute expiry (created_at + the configured maximum); idle expiry is last_seen_at + idle.
    expires_at          INTEGER NOT NULL
);
CREATE INDEX web_sessions_by_user ON web_sessions (user_id);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);
