-- Federated sign-in through identity-provider plugins, activation
-- revisions for multi-node sync, and the delivery lease of audit-sink plugins.

-- Bumped by every change of an activation: nodes sharing the database
-- compare (plugin, revision) per tenant to pick up each other's changes.
ALTER TABLE tenant_plugins ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;

-- The node delivering a batch to an audit sink holds this lease (a random
-- owner token and an expiry); the cursor moves only after the sink accepted
-- the batch, and only by the lease's owner, so a node that dies mid-delivery
-- loses nothing: its lease expires and another node delivers.
ALTER TABLE tenant_plugins ADD COLUMN audit_lease_owner TEXT;
ALTER TABLE tenant_plugins ADD COLUMN audit_lease_until TEXT;

-- A sign-in in progress at an upstream: created when the browser leaves for
-- the upstream, consumed (deleted) by the one callback that returns. Only a
-- hash of the `state` is stored; browser_binding is a hash of the browser's
-- CSRF cookie, so a callback completes only in the browser that started it.
CREATE TABLE federation_states (
    state_hash      TEXT PRIMARY KEY,
    tenant_id       BLOB NOT NULL REFERENCES tenants (id),
    plugin_id       TEXT NOT NULL,
    nonce           TEXT NOT NULL,
    flow_state      TEXT NOT NULL,
    -- The relying party's authorization request, sealed as on the login page.
    authorization_request TEXT NOT NULL,
    browser_binding TEXT NOT NULL,
    -- The address the sign-in came from: at most a few wait per address.
    client_ip       TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL
);
CREATE INDEX federation_states_expiry ON federation_states (expires_at);
CREATE INDEX federation_states_tenant ON federation_states (tenant_id, expires_at);
CREATE INDEX federation_states_client ON federation_states (tenant_id, client_ip, expires_at);

-- The link between a local user and an upstream identity: the only way a
-- federated sign-in reaches an existing account.
CREATE TABLE federated_identities (
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    plugin_id      TEXT NOT NULL,
    issuer         TEXT NOT NULL,
    subject        TEXT NOT NULL,
    user_id        BLOB NOT NULL REFERENCES users (id),
    email          TEXT,
    created_at     TEXT NOT NULL,
    last_login_at  TEXT,
    PRIMARY KEY (tenant_id, plugin_id, issuer, subject)
);
CREATE INDEX federated_identities_user ON federated_identities (tenant_id, user_id);
