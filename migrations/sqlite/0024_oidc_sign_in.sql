-- Sign-ins in flight: one row from the redirect to the provider until the callback takes it
-- (single use) or it expires. Only a keyed hash of `state` is stored; the nonce and the PKCE
-- verifier are sealed under a key derived from `state` itself, so the database alone opens
-- neither.
CREATE TABLE oidc_sign_ins (
    state_hash              BLOB   PRIMARY KEY,
    org_id                  INTEGER    NOT NULL REFERENCES organisations (id),
    sealed                  BLOB   NOT NULL,
    redirect_uri            TEXT    NOT NULL,
    created_at              INTEGER    NOT NULL,
    expires_at              INTEGER    NOT NULL
);
CREATE INDEX oidc_sign_ins_by_expiry ON oidc_sign_ins (expires_at);

-- People who sign in through their organisation's provider, known by issuer and subject (never
-- by e-mail), created on first sign-in. Their users row has a random token hash nobody holds.
ALTER TABLE users ADD COLUMN oidc_issuer TEXT;
ALTER TABLE users ADD COLUMN oidc_subject TEXT;
CREATE UNIQUE INDEX users_by_oidc_subject ON users (oidc_issuer, oidc_subject);
-- 1 when the user was disabled because the provider no longer gave a role: a later sign-in with a
-- role enables them again. A user an org-admin revoked here stays revoked.
ALTER TABLE users ADD COLUMN oidc_disabled INTEGER NOT NULL DEFAULT 0;

-- A session begun through a provider: its organisation's provider is offered at sign-out.
ALTER TABLE web_sessions ADD COLUMN via_provider INTEGER NOT NULL DEFAULT 0;
