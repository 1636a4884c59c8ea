-- OpenID Connect provider: client metadata, browser sessions, consents,
-- authorization codes, token families (grants) with rotating refresh tokens,
-- and revoked access tokens.

ALTER TABLE oauth_clients ADD COLUMN oidc_settings TEXT NOT NULL DEFAULT '{}';

CREATE TABLE browser_sessions (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    user_id     BLOB NOT NULL REFERENCES users (id),
    token_hash  TEXT NOT NULL UNIQUE,
    auth_time   TEXT NOT NULL,
    amr         TEXT NOT NULL,
    ip          TEXT,
    user_agent  TEXT,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    ended_at    TEXT
);
CREATE INDEX browser_sessions_user ON browser_sessions (tenant_id, user_id);

CREATE TABLE consents (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    user_id     BLOB NOT NULL REFERENCES users (id),
    client_id   TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, client_id)
);

CREATE TABLE oauth_grants (
    id             BLOB PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    client_id      TEXT NOT NULL,
    user_id        BLOB NOT NULL REFERENCES users (id),
    session_id     BLOB,
    scope          TEXT NOT NULL,
    auth_time      TEXT NOT NULL,
    dpop_jkt       TEXT,
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    revoked_at     TEXT,
    revoked_reason TEXT
);
CREATE INDEX oauth_grants_session ON oauth_grants (session_id);
CREATE INDEX oauth_grants_user ON oauth_grants (tenant_id, user_id);

CREATE TABLE authorization_codes (
    code_hash      TEXT PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    client_id      TEXT NOT NULL,
    user_id        BLOB NOT NULL REFERENCES users (id),
    session_id     BLOB,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT,
    auth_time      TEXT NOT NULL,
    dpop_jkt       TEXT,
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    consumed_at    TEXT,
    grant_id       BLOB
);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    grant_id    BLOB NOT NULL REFERENCES oauth_grants (id),
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    status      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    rotated_at  TEXT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);

CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY,
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    expires_at TEXT NOT NULL
);
