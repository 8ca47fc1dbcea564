-- Each organisation's OpenID Connect provider for its people (docs/operator-guide.md). One per
-- organisation, and one organisation per (issuer, client_id): a provider is bound to its
-- organisation, so an ID token issued for one organisation's client cannot sign anyone in to
-- another. The client secret is stored sealed under a key derived from the node secret, or as a
-- reference (env:NAME or file:PATH) read when needed; a private key only as a reference.
CREATE TABLE identity_providers (
    org_id                  INTEGER PRIMARY KEY REFERENCES organisations (id),
    label                   TEXT    NOT NULL,
    issuer                  TEXT    NOT NULL,
    client_id               TEXT    NOT NULL,
    client_secret_sealed    BLOB,
    client_secret_ref       TEXT,
    private_key_ref         TEXT,
    allowed_tenant          TEXT,
    allowed_domain          TEXT,
    -- The claim holding groups or roles, and which of its values give each role (JSON arrays).
    -- Scopes asked for beyond `openid`, space-separated (e.g. `profile email`; CIS2 adds its own).
    scopes                  TEXT    NOT NULL,
    role_claim              TEXT    NOT NULL,
    practitioner_values     TEXT    NOT NULL,
    ig_officer_values       TEXT    NOT NULL,
    org_admin_values        TEXT    NOT NULL,
    session_max_minutes     INTEGER,
    created_at              INTEGER    NOT NULL,
    updated_at              INTEGER    NOT NULL,
    UNIQUE (issuer, client_id)
);
