-- OpenID Connect provider: client metadata, browser sessions, consents,
-- authorization codes, token families (grants) with rotating refresh tokens,
-- and revoked access tokens.

ALTER TABLE oauth_clients ADD COLUMN oidc_settings JSONB NOT NULL DEFAULT '{}';

CREATE TABLE browser_sessions (
    id          UUID PRIMARY KEY,
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    user_id     UUID NOT NULL REFERENCES users (id),
    token_hash  TEXT NOT NULL UNIQUE,
    auth_time   TIMESTAMPTZ NOT NULL,
    amr         TEXT NOT NULL,
    ip          TEXT,
    user_agent  TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    ended_at    TIMESTAMPTZ
);
CREATE INDEX browser_sessions_user ON browser_sessions (tenant_id, user_id);

CREATE TABLE consents (
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    user_id     UUID NOT NULL REFERENCES users (id),
    client_id   TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, user_id, client_id)
);

CREATE TABLE oauth_grants (
    id             UUID PRIMARY KEY,
    tenant_id      UUID NOT NULL REFERENCES tenants (id),
    client_id      TEXT NOT NULL,
    user_id        UUID NOT NULL REFERENCES users (id),
    session_id     UUID,
    scope          TEXT NOT NULL,
    auth_time      TIMESTAMPTZ NOT NULL,
    dpop_jkt       TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    revoked_at     TIMESTAMPTZ,
    revoked_reason TEXT
);
CREATE INDEX oauth_grants_session ON oauth_grants (session_id);
CREATE INDEX oauth_grants_user ON oauth_grants (tenant_id, user_id);

CREATE TABLE authorization_codes (
    code_hash      TEXT PRIMARY KEY,
    tenant_id      UUID NOT NULL REFERENCES tenants (id),
    client_id      TEXT NOT NULL,
    user_id        UUID NOT NULL REFERENCES users (id),
    session_id     UUID,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT,
    auth_time      TIMESTAMPTZ NOT NULL,
    dpop_jkt       TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    consumed_at    TIMESTAMPTZ,
    grant_id       UUID
);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    grant_id    UUID NOT NULL REFERENCES oauth_grants (id),
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    status      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    rotated_at  TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);

CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY,
    tenant_id  UUID NOT NULL REFERENCES tenants (id),
    expires_at TIMESTAMPTZ NOT NULL
);
