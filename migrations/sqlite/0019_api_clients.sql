-- Systems that authenticate with OAuth 2.0 client credentials and a signed JWT client assertion
-- (RFC 7523 private_key_jwt) instead of a long-lived bearer token. Only the client's public key
-- is stored. Each client acts through a users row of its own (user_id), so everything that names
-- a user (requests, the audit trail) names the client; that row has no token anyone was given.
CREATE TABLE api_clients (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id           TEXT    NOT NULL UNIQUE,
    org_id              INTEGER NOT NULL REFERENCES organisations (id),
    user_id             INTEGER NOT NULL REFERENCES users (id),
    name                TEXT    NOT NULL,
    role                TEXT    NOT NULL,
    alg                 TEXT    NOT NULL,
    -- The public key as a JWK with public members only; thumbprint per RFC 7638.
    public_jwk          TEXT    NOT NULL,
    key_thumbprint      TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    revoked_at          INTEGER
);
CREATE INDEX api_clients_by_org ON api_clients (org_id);

-- Short-lived access tokens issued at the token endpoint: a keyed hash only, as for users.
CREATE TABLE client_access_tokens (
    token_hash          BLOB    PRIMARY KEY,
    client_row          INTEGER NOT NULL REFERENCES api_clients (id),
    issued_at           INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL
);
CREATE INDEX client_access_tokens_by_expiry ON client_access_tokens (expires_at);
CREATE INDEX client_access_tokens_by_client ON client_access_tokens (client_row);

-- Assertion ids (jti) seen, as hashes, until the assertion's expiry: a replay is refused on
-- every node sharing the database. Pruned when they expire.
CREATE TABLE client_assertion_jtis (
    client_row          INTEGER NOT NULL,
    jti_hash            BLOB    NOT NULL,
    expires_at          INTEGER NOT NULL,
    PRIMARY KEY (client_row, jti_hash)
);
CREATE INDEX client_assertion_jtis_by_expiry ON client_assertion_jtis (expires_at);

-- 0 refuses the organisation's long-lived API tokens (web sign-in keeps working).
ALTER TABLE organisations ADD COLUMN long_lived_tokens INTEGER NOT NULL DEFAULT 1;
