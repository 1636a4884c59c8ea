-- The plugin platform: installed plugins, per-tenant activations, and the
-- key-value store plugins reach through their key-value capability.

-- An installed plugin. The component itself is stored here so every node
-- of a cluster loads the same bytes; sha256 is verified on every load.
CREATE TABLE plugins (
    id           TEXT PRIMARY KEY,
    version      TEXT NOT NULL,
    manifest     JSONB NOT NULL,
    sha256       TEXT NOT NULL,
    component    BYTEA NOT NULL,
    source       TEXT NOT NULL,          -- 'directory' or 'api'
    installed_at TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

-- A tenant's activation of a plugin. Secret configuration properties
-- (writeOnly in the plugin's schema) live sealed in secrets_enc, never in
-- config.
CREATE TABLE tenant_plugins (
    tenant_id    UUID NOT NULL REFERENCES tenants (id),
    plugin_id    TEXT NOT NULL REFERENCES plugins (id),
    enabled      BOOLEAN NOT NULL,
    config       JSONB NOT NULL,
    secrets_enc  TEXT,
    limits       JSONB NOT NULL,
    failure_mode TEXT,
    position     BIGINT NOT NULL,
    -- audit-sink plugins: the last audit seq handed to the plugin (NULL
    -- until its first delivery, which starts at the chain's head).
    audit_cursor BIGINT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, plugin_id)
);
CREATE INDEX tenant_plugins_plugin ON tenant_plugins (plugin_id);

-- The key-value capability, scoped to (tenant, plugin). A key holds bytes
-- (value) or a counter, never both.
CREATE TABLE plugin_kv (
    tenant_id  UUID NOT NULL REFERENCES tenants (id),
    plugin_id  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      BYTEA,
    counter    BIGINT,
    expires_at TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, plugin_id, key)
);
CREATE INDEX plugin_kv_expiry ON plugin_kv (expires_at) WHERE expires_at IS NOT NULL;

-- The new admin permissions plugins:read, plugins:write (a tenant's
-- activations) and plugins:install (installing plugins; meaningful only in
-- the master tenant), for every existing tenant and its admin role.
INSERT INTO permissions (id, tenant_id, application_id, resource, action, description, version, created_at, updated_at)
SELECT gen_random_uuid(), t.id, NULL, 'plugins', 'read', 'Built-in: read plugin activations through the admin API', 1,
       date_trunc('second', now()), date_trunc('second', now())
FROM tenants t
WHERE NOT EXISTS (
    SELECT 1 FROM permissions p
    WHERE p.tenant_id = t.id AND p.resource = 'plugins' AND p.action = 'read' AND p.deleted_at IS NULL
);

INSERT INTO role_permissions (tenant_id, role_id, permission_id)
SELECT r.tenant_id, r.id, p.id
FROM roles r
JOIN permissions p
  ON p.tenant_id = r.tenant_id AND p.resource = 'plugins' AND p.action = 'read' AND p.deleted_at IS NULL
WHERE r.name = 'admin' AND r.is_system AND r.deleted_at IS NULL
  AND NOT EXISTS (
    SELECT 1 FROM role_permissions rp WHERE rp.role_id = r.id AND rp.permission_id = p.id
  );

INSERT INTO permissions (id, tenant_id, application_id, resource, action, description, version, created_at, updated_at)
SELECT gen_random_uuid(), t.id, NULL, 'plugins', 'write', 'Built-in: activate and configure plugins through the admin API', 1,
       date_trunc('second', now()), date_trunc('second', now())
FROM tenants t
WHERE NOT EXISTS (
    SELECT 1 FROM permissions p
    WHERE p.tenant_id = t.id AND p.resource = 'plugins' AND p.action = 'write' AND p.deleted_at IS NULL
);

INSERT INTO role_permissions (tenant_id, role_id, permission_id)
SELECT r.tenant_id, r.id, p.id
FROM roles r
JOIN permissions p
  ON p.tenant_id = r.tenant_id AND p.resource = 'plugins' AND p.action = 'write' AND p.deleted_at IS NULL
WHERE r.name = 'admin' AND r.is_system AND r.deleted_at IS NULL
  AND NOT EXISTS (
    SELECT 1 FROM role_permissions rp WHERE rp.role_id = r.id AND rp.permission_id = p.id
  );

INSERT INTO permissions (id, tenant_id, application_id, resource, action, description, version, created_at, updated_at)
SELECT gen_random_uuid(), t.id, NULL, 'plugins', 'install', 'Built-in: install and remove plugins through the admin API', 1,
       date_trunc('second', now()), date_trunc('second', now())
FROM tenants t
WHERE NOT EXISTS (
    SELECT 1 FROM permissions p
    WHERE p.tenant_id = t.id AND p.resource = 'plugins' AND p.action = 'install' AND p.deleted_at IS NULL
);

INSERT INTO role_permissions (tenant_id, role_id, permission_id)
SELECT r.tenant_id, r.id, p.id
FROM roles r
JOIN permissions p
  ON p.tenant_id = r.tenant_id AND p.resource = 'plugins' AND p.action = 'install' AND p.deleted_at IS NULL
WHERE r.name = 'admin' AND r.is_system AND r.deleted_at IS NULL
  AND NOT EXISTS (
    SELECT 1 FROM role_permissions rp WHERE rp.role_id = r.id AND rp.permission_id = p.id
  );

