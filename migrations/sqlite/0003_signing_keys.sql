-- Signing-key rotation with overlap, and one active key per algorithm.
--
-- Statuses: 'active' (signs, in the JWKS), 'retiring' (verifies, in the JWKS
-- until retire_after), 'retired' (gone from the JWKS). Tenants now hold an
-- active EdDSA, ES256 and RS256 key; the server creates missing ones on
-- first use.

ALTER TABLE signing_keys ADD COLUMN retire_after TEXT;

-- Should a tenant somehow hold several active keys of one algorithm, all but
-- the newest retire (after a day) so the unique index below can be built.
UPDATE signing_keys
SET status = 'retiring',
    retire_after = strftime('%Y-%m-%dT%H:%M:%S', 'now', '+1 day') || '.000000Z'
WHERE status = 'active'
  AND EXISTS (
    SELECT 1 FROM signing_keys n
    WHERE n.tenant_id = signing_keys.tenant_id
      AND n.algorithm = signing_keys.algorithm
      AND n.status = 'active'
      AND (n.created_at > signing_keys.created_at
           OR (n.created_at = signing_keys.created_at AND n.kid > signing_keys.kid))
  );

-- At most one active key per tenant and algorithm: concurrent creators of a
-- missing key conflict here, and the loser re-reads.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (tenant_id, algorithm) WHERE status = 'active';

-- The new admin permission keys:rotate, for every existing tenant ...
INSERT INTO permissions (id, tenant_id, application_id, resource, action, description, version, created_at, updated_at)
SELECT randomblob(16), t.id, NULL, 'keys', 'rotate', 'Built-in: rotate keys through the admin API', 1,
       strftime('%Y-%m-%dT%H:%M:%S', 'now') || '.000000Z',
       strftime('%Y-%m-%dT%H:%M:%S', 'now') || '.000000Z'
FROM tenants t
WHERE NOT EXISTS (
    SELECT 1 FROM permissions p
    WHERE p.tenant_id = t.id AND p.resource = 'keys' AND p.action = 'rotate' AND p.deleted_at IS NULL
);

-- ... carried by each tenant's built-in admin role.
INSERT INTO role_permissions (tenant_id, role_id, permission_id)
SELECT r.tenant_id, r.id, p.id
FROM roles r
JOIN permissions p
  ON p.tenant_id = r.tenant_id AND p.resource = 'keys' AND p.action = 'rotate' AND p.deleted_at IS NULL
WHERE r.name = 'admin' AND r.is_system = 1 AND r.deleted_at IS NULL
  AND NOT EXISTS (
    SELECT 1 FROM role_permissions rp WHERE rp.role_id = r.id AND rp.permission_id = p.id
  );
