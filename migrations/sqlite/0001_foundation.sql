-- Foundation schema: tenants, identities, RBAC, OAuth clients, signing keys,
-- entity history and the hash-chained audit log.
-- Every tenant-scoped table carries tenant_id and every query filters by it.
-- Soft-deleted rows keep their data; deleted_at marks them.

CREATE TABLE tenants (
    id            BLOB PRIMARY KEY,
    name          TEXT NOT NULL,
    slug          TEXT NOT NULL,
    display_name  TEXT,
    enabled       INTEGER NOT NULL DEFAULT 1,
    settings      TEXT NOT NULL,
    version       INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted_at    TEXT
);
CREATE UNIQUE INDEX tenants_slug_live ON tenants (slug) WHERE deleted_at IS NULL;

CREATE TABLE users (
    id                 BLOB PRIMARY KEY,
    tenant_id          BLOB NOT NULL REFERENCES tenants (id),
    email              TEXT NOT NULL,
    email_normalized   TEXT NOT NULL,
    password_hash      TEXT,
    first_name         TEXT,
    last_name          TEXT,
    display_name       TEXT,
    phone              TEXT,
    locale             TEXT,
    timezone           TEXT,
    avatar_url         TEXT,
    email_verified     INTEGER NOT NULL DEFAULT 0,
    enabled            INTEGER NOT NULL DEFAULT 1,
    is_service_account INTEGER NOT NULL DEFAULT 0,
    failed_attempts    INTEGER NOT NULL DEFAULT 0,
    locked_until       TEXT,
    last_login_at      TEXT,
    attributes         TEXT NOT NULL,
    version            INTEGER NOT NULL DEFAULT 1,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    deleted_at         TEXT
);
CREATE UNIQUE INDEX users_email_live ON users (tenant_id, email_normalized) WHERE deleted_at IS NULL;
CREATE INDEX users_tenant ON users (tenant_id, created_at);

CREATE TABLE applications (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    name        TEXT NOT NULL,
    description TEXT,
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT
);
CREATE UNIQUE INDEX applications_name_live ON applications (tenant_id, name) WHERE deleted_at IS NULL;

CREATE TABLE roles (
    id             BLOB PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    application_id BLOB REFERENCES applications (id),
    name           TEXT NOT NULL,
    description    TEXT,
    is_composite   INTEGER NOT NULL DEFAULT 0,
    is_system      INTEGER NOT NULL DEFAULT 0,
    version        INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    deleted_at     TEXT
);
CREATE UNIQUE INDEX roles_name_live ON roles (tenant_id, name) WHERE deleted_at IS NULL;

CREATE TABLE permissions (
    id             BLOB PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    application_id BLOB REFERENCES applications (id),
    resource       TEXT NOT NULL,
    action         TEXT NOT NULL,
    description    TEXT,
    version        INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    deleted_at     TEXT
);
CREATE UNIQUE INDEX permissions_live ON permissions (tenant_id, resource, action) WHERE deleted_at IS NULL;

CREATE TABLE tenant_groups (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    parent_id   BLOB REFERENCES tenant_groups (id),
    name        TEXT NOT NULL,
    description TEXT,
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT
);
CREATE INDEX groups_parent ON tenant_groups (tenant_id, parent_id);

CREATE TABLE role_composites (
    tenant_id      BLOB NOT NULL,
    parent_role_id BLOB NOT NULL REFERENCES roles (id),
    child_role_id  BLOB NOT NULL REFERENCES roles (id),
    PRIMARY KEY (parent_role_id, child_role_id)
);

CREATE TABLE role_permissions (
    tenant_id     BLOB NOT NULL,
    role_id       BLOB NOT NULL REFERENCES roles (id),
    permission_id BLOB NOT NULL REFERENCES permissions (id),
    PRIMARY KEY (role_id, permission_id)
);

CREATE TABLE user_roles (
    tenant_id BLOB NOT NULL,
    user_id   BLOB NOT NULL REFERENCES users (id),
    role_id   BLOB NOT NULL REFERENCES roles (id),
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role ON user_roles (role_id);

CREATE TABLE group_roles (
    tenant_id BLOB NOT NULL,
    group_id  BLOB NOT NULL REFERENCES tenant_groups (id),
    role_id   BLOB NOT NULL REFERENCES roles (id),
    PRIMARY KEY (group_id, role_id)
);

CREATE TABLE group_members (
    tenant_id BLOB NOT NULL,
    group_id  BLOB NOT NULL REFERENCES tenant_groups (id),
    user_id   BLOB NOT NULL REFERENCES users (id),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE oauth_clients (
    id                      BLOB PRIMARY KEY,
    tenant_id               BLOB NOT NULL REFERENCES tenants (id),
    application_id          BLOB REFERENCES applications (id),
    client_id               TEXT NOT NULL,
    name                    TEXT NOT NULL,
    client_type             TEXT NOT NULL,
    secret_hash             TEXT,
    redirect_uris           TEXT NOT NULL,
    grant_types             TEXT NOT NULL,
    scopes                  TEXT NOT NULL,
    require_pkce            INTEGER NOT NULL,
    require_consent         INTEGER NOT NULL,
    first_party             INTEGER NOT NULL DEFAULT 0,
    access_token_lifetime   INTEGER,
    refresh_token_lifetime  INTEGER,
    service_account_user_id BLOB REFERENCES users (id),
    enabled                 INTEGER NOT NULL DEFAULT 1,
    version                 INTEGER NOT NULL DEFAULT 1,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    deleted_at              TEXT
);
CREATE UNIQUE INDEX oauth_clients_client_id_live ON oauth_clients (tenant_id, client_id) WHERE deleted_at IS NULL;

CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    tenant_id       BLOB NOT NULL REFERENCES tenants (id),
    algorithm       TEXT NOT NULL,
    public_jwk      TEXT NOT NULL,
    private_key_enc TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    retired_at      TEXT
);
CREATE INDEX signing_keys_tenant ON signing_keys (tenant_id, status);

CREATE TABLE entity_history (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id   BLOB NOT NULL,
    version     INTEGER NOT NULL,
    operation   TEXT NOT NULL,
    data        TEXT NOT NULL,
    changed_by  BLOB,
    changed_at  TEXT NOT NULL
);
CREATE INDEX entity_history_entity ON entity_history (tenant_id, entity_type, entity_id, version);

-- The head of each tenant's audit chain. Every audited write locks its tenant's
-- head row first, which serialises appends so the chain never forks.
CREATE TABLE audit_chain_heads (
    tenant_id BLOB PRIMARY KEY,
    seq       INTEGER NOT NULL,
    hash      TEXT NOT NULL
);

CREATE TABLE audit_logs (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL,
    seq         INTEGER NOT NULL,
    actor_type  TEXT NOT NULL,
    actor_id    BLOB,
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT,
    ip          TEXT,
    user_agent  TEXT,
    changes     TEXT NOT NULL, -- exact JSON text that was hashed
    created_at  TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    UNIQUE (tenant_id, seq)
);
CREATE INDEX audit_logs_action ON audit_logs (tenant_id, action);
CREATE INDEX audit_logs_actor ON audit_logs (tenant_id, actor_id);
