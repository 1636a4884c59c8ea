//! `disposable-email-veto` (lifecycle-hook): vetoes `pre-registration`
//! (and, with `check_user_update`, `pre-user-update` events that change the
//! email) when the email's domain or one of its parent domains is a
//! disposable email provider: the built-in list ([`domains`]) plus the
//! tenant's `extra_domains`, unless the domain or a parent is in
//! `allow_domains` (the allow-list wins). Other pre-events proceed;
//! post-events are observed without action.
//!
//! ```json
//! { "extra_domains": ["spam.example"], "allow_domains": ["mailinator.com"], "check_user_update": true }
//! ```

pub mod domains;

use std::collections::HashSet;

use serde::Deserialize;
use vaultaris_plugin_sdk::lifecycle::{LifecycleHook, PreEvent, PreEventKind, Verdict};
use vaultaris_plugin_sdk::{CallContext, Plugin, PluginError, export_plugin, parse_config};

const DEFAULT_MESSAGE: &str = "Email addresses from disposable email providers cannot be used. Please use a permanent address.";

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "yes")]
    use_builtin_list: bool,
    #[serde(default)]
    extra_domains: Vec<String>,
    #[serde(default)]
    allow_domains: Vec<String>,
    #[serde(default)]
    check_user_update: bool,
    #[serde(default)]
    message: Option<String>,
}

/// The plugin: the block and allow sets, built once per instance.
pub struct DisposableEmailVeto {
    blocked: HashSet<String>,
    allowed: HashSet<String>,
    check_user_update: bool,
    message: String,
}

/// Lower-cases a domain and strips surrounding dots and whitespace.
fn normalise(domain: &str) -> String {
    domain.trim().trim_matches('.').to_ascii_lowercase()
}

/// The domain of an email address (after the last `@`), normalised;
/// `None` if there is none.
pub fn email_domain(email: &str) -> Option<String> {
    let (_, domain) = email.trim().rsplit_once('@')?;
    let domain = normalise(domain);
    (!domain.is_empty()).then_some(domain)
}

/// The domain and its parents: `a.b.c` → `a.b.c`, `b.c`, `c`.
fn self_and_parents(domain: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(domain), |d| d.split_once('.').map(|(_, rest)| rest))
}

impl Plugin for DisposableEmailVeto {
    fn new(config: serde_json::Value) -> Result<Self, PluginError> {
        let config: Config = parse_config(config)?;
        let mut blocked: HashSet<String> =
            config.extra_domains.iter().map(|d| normalise(d)).collect();
        if config.use_builtin_list {
            blocked.extend(domains::DISPOSABLE_DOMAINS.iter().map(|d| (*d).to_owned()));
        }
        blocked.remove("");
        let mut allowed: HashSet<String> =
            config.allow_domains.iter().map(|d| normalise(d)).collect();
        allowed.remove("");
        Ok(DisposableEmailVeto {
            blocked,
            allowed,
            check_user_update: config.check_user_update,
            message: config.message.unwrap_or_else(|| DEFAULT_MESSAGE.to_owned()),
        })
    }
}

impl DisposableEmailVeto {
    /// Whether an email address is refused.
    pub fn is_disposable(&self, email: &str) -> bool {
        let Some(domain) = email_domain(email) else {
            return false;
        };
        if self_and_parents(&domain).any(|d| self.allowed.contains(d)) {
            return false;
        }
        self_and_parents(&domain).any(|d| self.blocked.contains(d))
    }
}

impl LifecycleHook for DisposableEmailVeto {
    fn before(&self, _ctx: &CallContext, event: PreEvent) -> Result<Verdict, PluginError> {
        let check = match event.kind {
            PreEventKind::PreRegistration => true,
            PreEventKind::PreUserUpdate => {
                self.check_user_update && event.changed.iter().any(|c| c == "email")
            }
            PreEventKind::PreLogin | PreEventKind::PreUserDelete => false,
        };
        match event.user.email.as_deref() {
            Some(email) if check && self.is_disposable(email) => {
                Ok(Verdict::veto("disposable_email", &self.message))
            }
            _ => Ok(Verdict::Proceed),
        }
    }
}

export_plugin!(DisposableEmailVeto: lifecycle_hook);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vaultaris_plugin_sdk::Json;
    use vaultaris_plugin_sdk::lifecycle::{PostEvent, PostEventKind, UserSnapshot};

    fn event(kind: PreEventKind, email: Option<&str>, changed: &[&str]) -> PreEvent {
        PreEvent {
            kind,
            user: UserSnapshot {
                id: None,
                email: email.map(Into::into),
                email_verified: false,
                username: Some("bob".into()),
                enabled: true,
                attributes: vec![],
            },
            changed: changed.iter().map(|c| (*c).to_owned()).collect(),
            client_id: None,
            method: "password".into(),
            ip_address: None,
            user_agent: None,
        }
    }

    fn veto(p: &DisposableEmailVeto, kind: PreEventKind, email: &str, changed: &[&str]) -> bool {
        matches!(
            p.before(&CallContext::for_tests(), event(kind, Some(email), changed))
                .unwrap(),
            Verdict::Veto { .. }
        )
    }

    #[test]
    fn manifest_matches_exports() {
        vaultaris_plugin_sdk::testing::check_manifest::<DisposableEmailVeto>(include_str!(
            "../manifest.json"
        ))
        .unwrap();
    }

    #[test]
    fn builtin_list_is_normalised_and_unique() {
        let set: HashSet<&str> = domains::DISPOSABLE_DOMAINS.iter().copied().collect();
        assert_eq!(
            set.len(),
            domains::DISPOSABLE_DOMAINS.len(),
            "duplicates in the list"
        );
        for d in domains::DISPOSABLE_DOMAINS {
            assert_eq!(normalise(d), *d);
            assert!(d.contains('.'));
        }
    }

    #[test]
    fn vetoes_disposable_registrations() {
        let p = DisposableEmailVeto::new(json!({})).unwrap();
        let r = p
            .before(
                &CallContext::for_tests(),
                event(PreEventKind::PreRegistration, Some("x@Mailinator.com"), &[]),
            )
            .unwrap();
        assert_eq!(r, Verdict::veto("disposable_email", DEFAULT_MESSAGE));
        assert!(
            veto(
                &p,
                PreEventKind::PreRegistration,
                "x@eu.mx.yopmail.com.",
                &[]
            ),
            "parent domain"
        );
        assert!(!veto(
            &p,
            PreEventKind::PreRegistration,
            "x@example.com",
            &[]
        ));
        assert!(
            !veto(
                &p,
                PreEventKind::PreRegistration,
                "x@notmailinator.com",
                &[]
            ),
            "suffix is not a parent"
        );
        assert!(!veto(
            &p,
            PreEventKind::PreRegistration,
            "not-an-email",
            &[]
        ));
        let none = p
            .before(
                &CallContext::for_tests(),
                event(PreEventKind::PreRegistration, None, &[]),
            )
            .unwrap();
        assert_eq!(none, Verdict::Proceed);
    }

    #[test]
    fn extra_and_allowed_domains() {
        let p = DisposableEmailVeto::new(json!({
            "extra_domains": ["Spam.Example"],
            "allow_domains": ["mailinator.com"],
            "message": "No throw-away addresses, please."
        }))
        .unwrap();
        assert!(veto(
            &p,
            PreEventKind::PreRegistration,
            "a@spam.example",
            &[]
        ));
        assert!(veto(
            &p,
            PreEventKind::PreRegistration,
            "a@sub.spam.example",
            &[]
        ));
        assert!(
            !veto(&p, PreEventKind::PreRegistration, "a@mailinator.com", &[]),
            "allow-list wins"
        );
        assert!(veto(
            &p,
            PreEventKind::PreRegistration,
            "a@yopmail.com",
            &[]
        ));
        let r = p
            .before(
                &CallContext::for_tests(),
                event(PreEventKind::PreRegistration, Some("a@spam.example"), &[]),
            )
            .unwrap();
        assert_eq!(
            r,
            Verdict::veto("disposable_email", "No throw-away addresses, please.")
        );

        let only_extra = DisposableEmailVeto::new(
            json!({"use_builtin_list": false, "extra_domains": ["x.test"]}),
        )
        .unwrap();
        assert!(!veto(
            &only_extra,
            PreEventKind::PreRegistration,
            "a@yopmail.com",
            &[]
        ));
        assert!(veto(
            &only_extra,
            PreEventKind::PreRegistration,
            "a@x.test",
            &[]
        ));
    }

    #[test]
    fn updates_only_when_configured_and_email_changes() {
        let off = DisposableEmailVeto::new(json!({})).unwrap();
        assert!(!veto(
            &off,
            PreEventKind::PreUserUpdate,
            "a@yopmail.com",
            &["email"]
        ));
        let on = DisposableEmailVeto::new(json!({"check_user_update": true})).unwrap();
        assert!(veto(
            &on,
            PreEventKind::PreUserUpdate,
            "a@yopmail.com",
            &["email"]
        ));
        assert!(!veto(
            &on,
            PreEventKind::PreUserUpdate,
            "a@yopmail.com",
            &["given_name"]
        ));
        assert!(!veto(&on, PreEventKind::PreLogin, "a@yopmail.com", &[]));
        assert!(!veto(
            &on,
            PreEventKind::PreUserDelete,
            "a@yopmail.com",
            &[]
        ));
    }

    #[test]
    fn post_events_are_observed() {
        let p = DisposableEmailVeto::new(json!({})).unwrap();
        let e = PostEvent {
            event_id: "e1".into(),
            kind: PostEventKind::UserRegistered,
            occurred_at: 0,
            user: UserSnapshot::default(),
            session_id: None,
            client_id: None,
            ip_address: None,
            details: Json::empty_object(),
        };
        assert!(p.after(&CallContext::for_tests(), e).is_ok());
    }

    #[test]
    fn rejects_unknown_configuration() {
        assert_eq!(
            DisposableEmailVeto::new(json!({"domains": []}))
                .err()
                .unwrap()
                .code(),
            "invalid_config"
        );
    }
}
