//! OAuth client administration: registration, secrets, service accounts.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::event;
use crate::context::Ctx;
use crate::crypto::secrets::{random_secret, sha256_hex};
use crate::error::{Error, Result};
use crate::identity::validate::Validator;
use crate::model::{
    Actor, CLIENT_AUTH_METHODS, ClientOidcSettings, ClientType, ID_TOKEN_ALGS, OAuthClient, Page,
    PageRequest, UserProfile,
};
use crate::store::{ClientUpdate, NewClient, NewUser};
use crate::time::Timestamp;

/// Grant types a client may be registered for.
pub const SUPPORTED_GRANTS: &[&str] = &[
    "authorization_code",
    "client_credentials",
    "password",
    "refresh_token",
];

/// Body of client create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    /// Public client id (generated when omitted).
    pub client_id: Option<String>,
    /// Human name.
    pub name: String,
    /// `public` or `confidential`.
    pub client_type: ClientType,
    /// Exact-match redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Allowed grant types (default `authorization_code`).
    pub grant_types: Option<Vec<String>>,
    /// Allowed scopes (default `openid profile email`).
    pub scopes: Option<Vec<String>>,
    /// PKCE required (default true; always true for public clients).
    pub require_pkce: Option<bool>,
    /// Consent required (default false).
    #[serde(default)]
    pub require_consent: bool,
    /// Access token lifetime override, seconds.
    pub access_token_lifetime: Option<i64>,
    /// Refresh token lifetime override, seconds.
    pub refresh_token_lifetime: Option<i64>,
    /// Owning application.
    pub application_id: Option<Uuid>,
    /// OpenID Connect metadata.
    #[serde(flatten)]
    pub oidc: ClientOidcSettings,
}

/// Body of client update; absent fields stay unchanged.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateClient {
    /// Name.
    pub name: Option<String>,
    /// Redirect URIs.
    pub redirect_uris: Option<Vec<String>>,
    /// Grant types.
    pub grant_types: Option<Vec<String>>,
    /// Scopes.
    pub scopes: Option<Vec<String>>,
    /// PKCE flag.
    pub require_pkce: Option<bool>,
    /// Consent flag.
    pub require_consent: Option<bool>,
    /// Lifetime override; `null` clears.
    #[serde(default, with = "crate::identity::double_option")]
    #[schema(value_type = Option<i64>)]
    pub access_token_lifetime: Option<Option<i64>>,
    /// Lifetime override; `null` clears.
    #[serde(default, with = "crate::identity::double_option")]
    #[schema(value_type = Option<i64>)]
    pub refresh_token_lifetime: Option<Option<i64>>,
    /// Enabled flag.
    pub enabled: Option<bool>,
    /// Authentication method at the token endpoint.
    pub token_endpoint_auth_method: Option<String>,
    /// Public keys for `private_key_jwt`.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// ID token signing algorithm.
    pub id_token_signed_response_alg: Option<String>,
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// DPoP required at the token endpoint.
    pub dpop_bound_access_tokens: Option<bool>,
}

/// A client with its secret, answered exactly once (creation or rotation).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientWithPlainSecret {
    /// The client.
    #[serde(flatten)]
    pub client: OAuthClient,
    /// The secret in clear; store it now, it is never shown again.
    pub client_secret: Option<String>,
}

fn validate_lists(
    v: &mut Validator,
    redirect_uris: &[String],
    grants: &[String],
    scopes: &[String],
) {
    if redirect_uris.len() > 50 {
        v.fail("redirect_uris", "at most 50 redirect URIs");
    }
    for (i, u) in redirect_uris.iter().enumerate() {
        v.redirect_uri(&format!("redirect_uris[{i}]"), u);
    }
    for (i, g) in grants.iter().enumerate() {
        if !SUPPORTED_GRANTS.contains(&g.as_str()) {
            v.fail(
                &format!("grant_types[{i}]"),
                format!("must be one of {}", SUPPORTED_GRANTS.join(", ")),
            );
        }
    }
    if scopes.len() > 100 {
        v.fail("scopes", "at most 100 scopes");
    }
    for (i, s) in scopes.iter().enumerate() {
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if !ok {
            v.fail(
                &format!("scopes[{i}]"),
                "must be 1-128 printable ASCII characters without spaces, quotes or backslashes",
            );
        }
    }
}

/// Checks OpenID Connect metadata against the client type.
fn validate_oidc(v: &mut Validator, o: &ClientOidcSettings, confidential: bool) {
    if let Some(m) = &o.token_endpoint_auth_method {
        if !CLIENT_AUTH_METHODS.contains(&m.as_str()) {
            v.fail(
                "token_endpoint_auth_method",
                format!("must be one of {}", CLIENT_AUTH_METHODS.join(", ")),
            );
        } else if confidential == (m == "none") {
            v.fail(
                "token_endpoint_auth_method",
                if confidential {
                    "confidential clients must authenticate"
                } else {
                    "public clients use 'none'"
                },
            );
        }
    }
    if let Some(a) = &o.id_token_signed_response_alg
        && !ID_TOKEN_ALGS.contains(&a.as_str())
    {
        v.fail(
            "id_token_signed_response_alg",
            format!("must be one of {}", ID_TOKEN_ALGS.join(", ")),
        );
    }
    if o.post_logout_redirect_uris.len() > 50 {
        v.fail("post_logout_redirect_uris", "at most 50 URIs");
    }
    for (i, u) in o.post_logout_redirect_uris.iter().enumerate() {
        v.redirect_uri(&format!("post_logout_redirect_uris[{i}]"), u);
    }
    let pkjwt = o.token_endpoint_auth_method.as_deref() == Some("private_key_jwt");
    match &o.jwks {
        None if pkjwt => v.fail("jwks", "private_key_jwt needs the client's public keys"),
        None => {}
        Some(jwks) => {
            let keys = jwks.get("keys").and_then(|k| k.as_array());
            match keys {
                Some(keys) if !keys.is_empty() && keys.len() <= 10 => {
                    for (i, k) in keys.iter().enumerate() {
                        if let Err(e) = crate::crypto::jose::jwk_thumbprint(k) {
                            v.fail(
                                &format!("jwks.keys[{i}]"),
                                format!("not a usable public JWK: {e}"),
                            );
                        }
                    }
                }
                _ => v.fail("jwks", "must be a JWK Set with 1 to 10 keys"),
            }
        }
    }
}

fn validate_lifetime(v: &mut Validator, field: &str, value: Option<i64>) {
    if value.is_some_and(|x| !(1..=31_536_000).contains(&x)) {
        v.fail(field, "must be between 1 and 31536000 seconds");
    }
}

/// Registers a client. Confidential clients get a secret (answered once)
/// and, when allowed `client_credentials`, a service account user.
pub async fn create(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    req: CreateClient,
) -> Result<ClientWithPlainSecret> {
    let client_id = req
        .client_id
        .clone()
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    let grants = req
        .grant_types
        .clone()
        .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
    let scopes = req.scopes.clone().unwrap_or_else(|| {
        ["openid", "profile", "email", "offline_access"]
            .map(String::from)
            .to_vec()
    });
    let mut v = Validator::new();
    let ok_id = !client_id.is_empty()
        && client_id.len() <= 128
        && client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok_id {
        v.fail(
            "client_id",
            "must be 1-128 characters of letters, digits, '-', '_', '.'",
        );
    }
    v.text("name", &req.name, 200);
    validate_lists(&mut v, &req.redirect_uris, &grants, &scopes);
    validate_lifetime(&mut v, "access_token_lifetime", req.access_token_lifetime);
    validate_lifetime(&mut v, "refresh_token_lifetime", req.refresh_token_lifetime);
    validate_oidc(
        &mut v,
        &req.oidc,
        req.client_type == ClientType::Confidential,
    );
    if req.client_type == ClientType::Public && grants.iter().any(|g| g == "client_credentials") {
        v.fail(
            "grant_types",
            "public clients cannot use client_credentials",
        );
    }
    if grants.iter().any(|g| g == "authorization_code") && req.redirect_uris.is_empty() {
        v.fail(
            "redirect_uris",
            "the authorization_code grant needs at least one redirect URI",
        );
    }
    v.finish()?;
    let now = Timestamp::now();
    let confidential = req.client_type == ClientType::Confidential;
    // A private_key_jwt client proves itself with its key, never a secret.
    let uses_secret =
        confidential && req.oidc.token_endpoint_auth_method.as_deref() != Some("private_key_jwt");
    let secret = uses_secret.then(random_secret);
    let service_account =
        (confidential && grants.iter().any(|g| g == "client_credentials")).then(|| NewUser {
            id: Uuid::now_v7(),
            tenant_id,
            // A reserved, non-routable address keeps the email unique per client.
            email: format!("service-account-{client_id}@clients.invalid"),
            password_hash: None,
            profile: UserProfile {
                display_name: Some(format!("Service account of {}", req.name)),
                ..Default::default()
            },
            email_verified: false,
            enabled: true,
            is_service_account: true,
            attributes: json!({ "client_id": client_id }),
        });
    let client = OAuthClient {
        id: Uuid::now_v7(),
        tenant_id,
        application_id: req.application_id,
        client_id: client_id.clone(),
        name: req.name.trim().into(),
        client_type: req.client_type.as_str().into(),
        redirect_uris: req.redirect_uris,
        grant_types: grants,
        scopes,
        // Security decision: public clients always need PKCE.
        require_pkce: !confidential || req.require_pkce.unwrap_or(true),
        require_consent: req.require_consent,
        first_party: false,
        access_token_lifetime: req.access_token_lifetime,
        refresh_token_lifetime: req.refresh_token_lifetime,
        service_account_user_id: service_account.as_ref().map(|u| u.id),
        oidc_settings: req.oidc,
        enabled: true,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let ev = event(
        tenant_id,
        actor,
        "client.create",
        "client",
        client.id,
        json!({
            "client_id": client.client_id, "client_type": client.client_type, "grant_types": client.grant_types,
            "redirect_uris": client.redirect_uris, "scopes": client.scopes,
        }),
    );
    let nc = NewClient {
        client,
        secret_hash: secret.as_deref().map(sha256_hex),
        service_account,
    };
    let created = ctx
        .store
        .create_client(&nc, &ev)
        .await
        .map_err(Error::from_store("application"))?;
    Ok(ClientWithPlainSecret {
        client: created,
        client_secret: secret,
    })
}

/// Lists clients.
pub async fn list(ctx: &Ctx, tenant_id: Uuid, page: PageRequest) -> Result<Page<OAuthClient>> {
    Ok(ctx.store.list_clients(tenant_id, page).await?)
}

/// One client.
pub async fn get(ctx: &Ctx, tenant_id: Uuid, id: Uuid) -> Result<OAuthClient> {
    ctx.store
        .get_client(tenant_id, id)
        .await
        .map_err(Error::from_store("client"))
}

/// Updates a client.
pub async fn update(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    id: Uuid,
    req: UpdateClient,
) -> Result<OAuthClient> {
    let current = get(ctx, tenant_id, id).await?;
    let grants = req
        .grant_types
        .clone()
        .unwrap_or(current.grant_types.clone());
    let uris = req
        .redirect_uris
        .clone()
        .unwrap_or(current.redirect_uris.clone());
    let mut v = Validator::new();
    if let Some(n) = &req.name {
        v.text("name", n, 200);
    }
    validate_lists(
        &mut v,
        &uris,
        &grants,
        req.scopes.as_deref().unwrap_or(&current.scopes),
    );
    validate_lifetime(
        &mut v,
        "access_token_lifetime",
        req.access_token_lifetime.flatten(),
    );
    validate_lifetime(
        &mut v,
        "refresh_token_lifetime",
        req.refresh_token_lifetime.flatten(),
    );
    if grants.iter().any(|g| g == "client_credentials") && current.service_account_user_id.is_none()
    {
        v.fail(
            "grant_types",
            "client_credentials needs a confidential client registered with it",
        );
    }
    let mut oidc = current.oidc_settings.clone();
    if let Some(m) = &req.token_endpoint_auth_method {
        oidc.token_endpoint_auth_method = Some(m.clone());
    }
    if let Some(j) = &req.jwks {
        oidc.jwks = Some(j.clone());
    }
    if let Some(a) = &req.id_token_signed_response_alg {
        oidc.id_token_signed_response_alg = Some(a.clone());
    }
    if let Some(u) = &req.post_logout_redirect_uris {
        oidc.post_logout_redirect_uris = u.clone();
    }
    if let Some(d) = req.dpop_bound_access_tokens {
        oidc.dpop_bound_access_tokens = d;
    }
    validate_oidc(&mut v, &oidc, current.is_confidential());
    if current.auth_method() == "private_key_jwt"
        && oidc.token_endpoint_auth_method.as_deref() != Some("private_key_jwt")
    {
        v.fail(
            "token_endpoint_auth_method",
            "a private_key_jwt client has no secret; register a new client to change method",
        );
    }
    if !current.is_confidential() && req.require_pkce == Some(false) {
        v.fail("require_pkce", "public clients always require PKCE");
    }
    if grants.iter().any(|g| g == "authorization_code") && uris.is_empty() {
        v.fail(
            "redirect_uris",
            "the authorization_code grant needs at least one redirect URI",
        );
    }
    v.finish()?;
    let ev = event(
        tenant_id,
        actor,
        "client.update",
        "client",
        id,
        json!({
            "name": req.name, "redirect_uris": req.redirect_uris, "grant_types": req.grant_types, "scopes": req.scopes,
            "require_pkce": req.require_pkce, "require_consent": req.require_consent, "enabled": req.enabled,
        }),
    );
    let update = ClientUpdate {
        name: req.name.map(|n| n.trim().to_string()),
        redirect_uris: req.redirect_uris,
        grant_types: req.grant_types,
        scopes: req.scopes,
        require_pkce: req.require_pkce,
        require_consent: req.require_consent,
        access_token_lifetime: req.access_token_lifetime,
        refresh_token_lifetime: req.refresh_token_lifetime,
        oidc_settings: (oidc != current.oidc_settings).then_some(oidc),
        enabled: req.enabled,
    };
    ctx.store
        .update_client(tenant_id, id, &update, &ev)
        .await
        .map_err(Error::from_store("client"))
}

/// Issues a new secret for a confidential client; the old one stops working.
pub async fn rotate_secret(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<ClientWithPlainSecret> {
    let client = get(ctx, tenant_id, id).await?;
    if !client.is_confidential() {
        return Err(Error::Conflict("public clients have no secret".into()));
    }
    let secret = random_secret();
    let ev = event(
        tenant_id,
        actor,
        "client.secret_rotate",
        "client",
        id,
        json!({ "client_id": client.client_id }),
    );
    ctx.store
        .set_client_secret(tenant_id, id, &sha256_hex(&secret), &ev)
        .await
        .map_err(Error::from_store("client"))?;
    Ok(ClientWithPlainSecret {
        client: get(ctx, tenant_id, id).await?,
        client_secret: Some(secret),
    })
}

/// Soft-deletes a client (and its service account). First-party clients stay.
pub async fn delete(ctx: &Ctx, actor: &Actor, tenant_id: Uuid, id: Uuid) -> Result<()> {
    let client = get(ctx, tenant_id, id).await?;
    if client.first_party {
        return Err(Error::Conflict(
            "first-party clients cannot be deleted".into(),
        ));
    }
    let ev = event(
        tenant_id,
        actor,
        "client.delete",
        "client",
        id,
        json!({ "client_id": client.client_id }),
    );
    ctx.store
        .delete_client(tenant_id, id, &ev)
        .await
        .map_err(Error::from_store("client"))
}
