//! Federated sign-in: an identity an identity-provider plugin brought back
//! from an upstream becomes a local user.
//!
//! Security decisions:
//! - An upstream identity is (plugin, issuer, subject); never an email. A
//!   linked identity signs in its linked user and no one else.
//! - An unlinked identity whose email belongs to an existing account is
//!   linked to it only when the upstream asserts the email verified AND the
//!   tenant lists (plugin, issuer) in `trusted_email_providers`; otherwise
//!   the sign-in is refused (the account owner signs in with their
//!   password, or an administrator links the identity). This is the
//!   account-takeover defence: an upstream that lets anyone claim any email
//!   must not reach existing accounts. The refusal does not say an account
//!   exists.
//! - A user created from an untrusted upstream gets `email_verified: false`
//!   whatever the upstream claims: relying parties must not be told an
//!   email is verified on the word of an upstream the tenant does not
//!   trust. (A password reset of such an account cuts its federated links,
//!   see `password_reset.rs`.)
//! - A new identity is a new user (just-in-time), created together with its
//!   link in one audited transaction, after the tenant's input validators
//!   and pre-registration hooks had their say.
//! - Disabled, locked and service accounts never sign in this way; every
//!   refusal is audited as `user.login_failed`.

use serde_json::{Value, json};
use uuid::Uuid;

use super::login::{LoginError, login_succeeded};
use crate::context::Ctx;
use crate::identity::extension_points as ext;
use crate::model::{Actor, AuditEvent, Tenant, UserProfile};
use crate::plugins::hooks::identity_provider::FederatedIdentity;
use crate::plugins::hooks::input_validator::Operation;
use crate::plugins::hooks::lifecycle_hook::{PostEvent, PreEvent, UserSnapshot};
use crate::store::{FederatedIdentityLink, NewUser, StoreError};
use crate::time::Timestamp;

/// Why a federated sign-in did not sign anyone in.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// Refused; the message is for the user.
    #[error("{0}")]
    Refused(String),
    /// A plugin on the sign-in path could not answer.
    #[error("a sign-in plugin failed: {0}")]
    Unavailable(String),
    /// Storage failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<LoginError> for FederationError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::Vetoed(m) => FederationError::Refused(format!("Sign-in refused: {m}")),
            LoginError::PluginUnavailable(p) => FederationError::Unavailable(p),
            LoginError::Store(s) => FederationError::Store(s),
            LoginError::Locked => FederationError::Refused(
                "This account is temporarily locked after too many failed sign-ins. Try again later."
                    .into(),
            ),
            other => FederationError::Unavailable(other.to_string()),
        }
    }
}

impl From<crate::error::Error> for FederationError {
    fn from(e: crate::error::Error) -> Self {
        use crate::error::Error;
        match e {
            Error::Validation(fields) => FederationError::Refused(format!(
                "Your account at the identity provider cannot be used here: {}",
                fields
                    .iter()
                    .map(|f| format!("{} {}", f.field, f.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
            Error::Forbidden(m) => FederationError::Refused(m),
            other => FederationError::Unavailable(other.to_string()),
        }
    }
}

/// Signs in the local user of `identity`, creating or linking it as the
/// rules above allow. Answers the user id.
pub async fn sign_in(
    ctx: &Ctx,
    tenant: &Tenant,
    identity: &FederatedIdentity,
    client_id: &str,
    actor: Actor,
) -> Result<Uuid, FederationError> {
    let via = format!("federated:{}", identity.plugin_id);
    let failure = |user_id: Option<Uuid>, reason: &str| AuditEvent {
        tenant_id: tenant.id,
        actor: Actor {
            actor_type: "anonymous".into(),
            actor_id: user_id,
            ..actor.clone()
        },
        action: "user.login_failed".into(),
        target_type: "user".into(),
        target_id: user_id.map(|u| u.to_string()),
        changes: json!({
            "client_id": client_id, "via": via, "reason": reason,
            "issuer": identity.issuer, "subject": identity.subject,
        }),
    };
    let link = FederatedIdentityLink {
        plugin_id: identity.plugin_id.clone(),
        issuer: identity.issuer.clone(),
        subject: identity.subject.clone(),
        user_id: Uuid::nil(),
        email: identity.email.clone(),
        created_at: Timestamp::now(),
        last_login_at: Some(Timestamp::now()),
    };
    let linked = ctx
        .store
        .federated_user(
            tenant.id,
            &identity.plugin_id,
            &identity.issuer,
            &identity.subject,
        )
        .await?;
    let user_id = match linked {
        Some(id) => id,
        None => match first_sign_in(ctx, tenant, identity, &link, &actor, &failure).await? {
            Some(id) => id,
            None => {
                return Err(FederationError::Refused(
                    "This identity cannot be used to sign in here. If you already have an account, sign in with your password; an administrator can link it to this identity provider."
                        .into(),
                ));
            }
        },
    };
    let user = ctx.store.get_user(tenant.id, user_id).await?;
    let locked = user.locked_until.is_some_and(|t| t > Timestamp::now());
    if !user.enabled || user.is_service_account || locked {
        ctx.store
            .append_audit(&failure(
                Some(user_id),
                "user disabled, locked or a service account",
            ))
            .await?;
        return Err(FederationError::Refused(
            "This account cannot sign in. Contact your administrator.".into(),
        ));
    }
    ctx.store
        .touch_federated_identity(tenant.id, &link, Timestamp::now())
        .await?;
    Ok(login_succeeded(ctx, tenant, user_id, client_id, &via, &actor, &failure).await?)
}

/// An identity seen for the first time: link it to the account with its
/// email when trusted, or create its user. `None` when the email belongs to
/// an account it may not be linked to.
async fn first_sign_in(
    ctx: &Ctx,
    tenant: &Tenant,
    identity: &FederatedIdentity,
    link: &FederatedIdentityLink,
    actor: &Actor,
    failure: &(dyn Fn(Option<Uuid>, &str) -> AuditEvent + Sync),
) -> Result<Option<Uuid>, FederationError> {
    let Some(email) = identity.email.clone() else {
        ctx.store
            .append_audit(&failure(None, "the upstream released no email"))
            .await?;
        return Err(FederationError::Refused(
            "The identity provider did not share your email address, which this sign-in needs."
                .into(),
        ));
    };
    let mut v = crate::identity::validate::Validator::new();
    v.email("email", &email);
    if v.finish().is_err() {
        ctx.store
            .append_audit(&failure(None, "the upstream released an invalid email"))
            .await?;
        return Err(FederationError::Refused(
            "The identity provider shared an email address this service cannot use.".into(),
        ));
    }
    if let Some(existing) = ctx
        .store
        .user_credentials_by_email(tenant.id, &email)
        .await?
    {
        let trusted = identity.email_verified
            && tenant
                .settings
                .trusts_email_from(&identity.plugin_id, &identity.issuer);
        let locked = existing.locked_until.is_some_and(|t| t > Timestamp::now());
        if !trusted || existing.is_service_account || !existing.enabled || locked {
            ctx.store
                .append_audit(&failure(
                    Some(existing.id),
                    "an unlinked upstream identity claimed this user's email",
                ))
                .await?;
            return Ok(None);
        }
        let mut l = link.clone();
        l.user_id = existing.id;
        match ctx
            .store
            .link_federated_identity(
                tenant.id,
                &l,
                &link_event(tenant, actor, existing.id, identity, "verified-email"),
            )
            .await
        {
            Ok(()) => return Ok(Some(existing.id)),
            // A concurrent first sign-in of the same identity linked it.
            Err(StoreError::Conflict(_)) => {
                return Ok(ctx
                    .store
                    .federated_user(
                        tenant.id,
                        &identity.plugin_id,
                        &identity.issuer,
                        &identity.subject,
                    )
                    .await?);
            }
            Err(e) => return Err(e.into()),
        }
    }
    create_user(ctx, tenant, identity, link, &email, actor)
        .await
        .map(Some)
}

fn link_event(
    tenant: &Tenant,
    actor: &Actor,
    user_id: Uuid,
    identity: &FederatedIdentity,
    how: &str,
) -> AuditEvent {
    AuditEvent {
        tenant_id: tenant.id,
        actor: Actor {
            actor_type: "system".into(),
            actor_id: None,
            ..actor.clone()
        },
        action: "user.federated_identity_linked".into(),
        target_type: "user".into(),
        target_id: Some(user_id.to_string()),
        changes: json!({
            "plugin": identity.plugin_id, "issuer": identity.issuer,
            "subject": identity.subject, "linked_by": how,
        }),
    }
}

/// Just-in-time registration of a federated user.
async fn create_user(
    ctx: &Ctx,
    tenant: &Tenant,
    identity: &FederatedIdentity,
    link: &FederatedIdentityLink,
    email: &str,
    actor: &Actor,
) -> Result<Uuid, FederationError> {
    let clip = |s: &Option<String>, max: usize| {
        s.as_ref()
            .filter(|s| s.chars().count() <= max)
            .map(|s| s.to_string())
    };
    let profile = UserProfile {
        first_name: clip(&identity.given_name, 100),
        last_name: clip(&identity.family_name, 100),
        display_name: clip(&identity.name, 200),
        locale: clip(&identity.locale, 35),
        avatar_url: clip(&identity.picture, 2048).filter(|u| u.starts_with("https://")),
        ..Default::default()
    };
    let mut attributes = serde_json::Map::new();
    for (k, v) in identity.attributes.iter().take(64) {
        attributes.insert(k.clone(), v.clone());
    }
    attributes.insert(
        "federation".into(),
        json!({ "plugin": identity.plugin_id, "issuer": identity.issuer }),
    );
    let mut fields: Vec<(String, Value)> = vec![("email".into(), Value::from(email))];
    for (k, v) in [
        ("first_name", &profile.first_name),
        ("last_name", &profile.last_name),
        ("display_name", &profile.display_name),
        ("locale", &profile.locale),
        ("avatar_url", &profile.avatar_url),
    ] {
        if let Some(v) = v {
            fields.push((k.into(), Value::from(v.clone())));
        }
    }
    fields.push(("attributes".into(), Value::Object(attributes.clone())));
    let changed: Vec<String> = fields.iter().map(|(k, _)| k.clone()).collect();
    ext::validate(
        ctx,
        tenant.id,
        Operation::SelfRegistration,
        None,
        fields.clone(),
        changed.clone(),
    )
    .await?;
    let email_verified = identity.email_verified
        && tenant
            .settings
            .trusts_email_from(&identity.plugin_id, &identity.issuer);
    let snapshot = UserSnapshot {
        id: None,
        email: Some(email.to_string()),
        email_verified,
        username: identity.preferred_username.clone(),
        enabled: true,
        attributes: fields,
    };
    let method = format!("federated:{}", identity.plugin_id);
    ext::before(
        ctx,
        tenant.id,
        PreEvent::Registration,
        &snapshot,
        actor,
        &method,
        changed,
    )
    .await?;
    let user = NewUser {
        id: Uuid::now_v7(),
        tenant_id: tenant.id,
        email: email.to_string(),
        password_hash: None,
        profile,
        email_verified,
        enabled: true,
        is_service_account: false,
        attributes: Value::Object(attributes),
    };
    let mut l = link.clone();
    l.user_id = user.id;
    let event = AuditEvent {
        tenant_id: tenant.id,
        actor: Actor {
            actor_type: "system".into(),
            actor_id: None,
            ..actor.clone()
        },
        action: "user.create".into(),
        target_type: "user".into(),
        target_id: Some(user.id.to_string()),
        changes: json!({
            "email": user.email, "via": method,
            "issuer": identity.issuer, "subject": identity.subject,
        }),
    };
    match ctx.store.create_federated_user(&user, &l, &event).await {
        Ok(created) => {
            ext::after(
                ctx,
                tenant.id,
                PostEvent::UserRegistered,
                &created,
                actor,
                &method,
                json!({ "plugin": identity.plugin_id }),
            );
            Ok(created.id)
        }
        // A concurrent first sign-in of the same identity created it.
        Err(StoreError::Conflict(_)) => ctx
            .store
            .federated_user(
                tenant.id,
                &identity.plugin_id,
                &identity.issuer,
                &identity.subject,
            )
            .await?
            .ok_or_else(|| {
                FederationError::Refused(
                    "This identity cannot be used to sign in here. If you already have an account, sign in with your password."
                        .into(),
                )
            }),
        Err(e) => Err(e.into()),
    }
}
