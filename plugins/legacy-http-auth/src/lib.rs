//! `legacy-http-auth` (auth-provider): verifies a username and password
//! against a legacy user store's HTTP API while its users are migrated to
//! Vaultaris.
//!
//! ```json
//! { "endpoint": "https://legacy.acme.example/api/verify", "api_key": "…", "timeout_ms": 3000 }
//! ```
//!
//! Request: `POST {endpoint}` with `content-type: application/json`,
//! `accept: application/json`, `x-request-id: {ctx.request_id}`,
//! `authorization: Bearer {api_key}` (if configured) and the body
//! `{"username": "<identifier>", "password": "<password>"}`.
//!
//! Answers:
//!
//! | legacy store | outcome |
//! | --- | --- |
//! | 200 `{"id", "email"?, "email_verified"?, "name"?, "username"?, "attributes"?}` | `verified`: external subject = `id` (string or integer), `amr: ["pwd"]`; `attributes` (an object) become user attributes (strings, integers, booleans, lists of strings, anything else as JSON; at most 64) |
//! | 401, 403 | `rejected(invalid-credentials)` |
//! | 423 | `rejected(account-locked)` |
//! | 404 | `not-applicable`: the user is unknown there too, the next provider or the built-in check decides |
//! | anything else, a malformed 200 body, a timeout, a connection failure | `unavailable` error: the host fails the login closed ("temporarily unavailable") |
//!
//! Only the `password` credential is handled; one-time codes and custom
//! credentials are `not-applicable`. With `email_domains`, identifiers that
//! are not email addresses in one of those domains are `not-applicable`
//! without any request (their passwords never leave the server).
//!
//! The password is sent only to the legacy store and never logged. Timing:
//! the plugin adds no identifier-dependent work of its own, so whether an
//! identifier exists is only as visible as the legacy store makes it (a 404
//! hands the attempt to the built-in check, which takes its own time).

use serde::Deserialize;
use serde_json::{Map, Value, json};
use vaultaris_plugin_sdk::auth::{
    AuthProvider, Credential, PasswordCredential, RejectionReason, VerifiedIdentity, VerifyOutcome,
    VerifyRequest,
};
use vaultaris_plugin_sdk::host::{http, log};
use vaultaris_plugin_sdk::{
    Attribute, AttributeValue, CallContext, Json, KeyValue, Plugin, PluginError, export_plugin,
    parse_config,
};

/// Most attributes the host accepts on a verified identity.
const MAX_ATTRIBUTES: usize = 64;
/// Longest external subject the host accepts (bytes).
const MAX_SUBJECT_BYTES: usize = 255;

fn default_timeout() -> u32 {
    3000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    endpoint: String,
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default = "default_timeout")]
    timeout_ms: u32,
    #[serde(default)]
    email_domains: Option<Vec<String>>,
    #[serde(default)]
    lowercase_identifier: bool,
}

/// The plugin.
pub struct LegacyHttpAuth {
    endpoint: String,
    authorization: Option<String>,
    timeout_ms: u32,
    /// Lower-cased domains, if restricted.
    email_domains: Option<Vec<String>>,
    lowercase_identifier: bool,
}

impl Plugin for LegacyHttpAuth {
    fn new(config: Value) -> Result<Self, PluginError> {
        let config: Config = parse_config(config)?;
        if !(config.endpoint.starts_with("https://") || config.endpoint.starts_with("http://")) {
            return Err(PluginError::misconfigured(
                "invalid_endpoint",
                "endpoint must be an http(s) URL",
            ));
        }
        let authorization = match config.api_key.as_deref().map(str::trim) {
            None => None,
            Some("") => {
                return Err(PluginError::misconfigured(
                    "invalid_api_key",
                    "api_key is empty",
                ));
            }
            Some(k) => Some(format!("Bearer {k}")),
        };
        let email_domains = config.email_domains.map(|domains| {
            domains
                .iter()
                .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect()
        });
        Ok(LegacyHttpAuth {
            endpoint: config.endpoint,
            authorization,
            timeout_ms: config.timeout_ms.max(1),
            email_domains,
            lowercase_identifier: config.lowercase_identifier,
        })
    }
}

/// The legacy store's answer to a successful verification.
#[derive(Debug, Deserialize)]
struct LegacyUser {
    id: Value,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<Value>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    attributes: Option<Value>,
}

/// A JSON value as the closest attribute value.
fn attribute_value(v: &Value) -> AttributeValue {
    match v {
        Value::String(s) => AttributeValue::Text(s.clone()),
        Value::Bool(b) => AttributeValue::Boolean(*b),
        Value::Number(n) if n.is_i64() => AttributeValue::Integer(n.as_i64().unwrap_or_default()),
        Value::Array(items) if items.iter().all(Value::is_string) => AttributeValue::TextList(
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
        ),
        other => AttributeValue::Json(Json::from_value(other)),
    }
}

/// `true`, `"true"` (any case) and `1` count as verified.
fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn malformed(why: impl Into<String>) -> PluginError {
    PluginError::unavailable(
        "legacy_malformed_response",
        format!("the legacy store answered 200 with {}", why.into()),
    )
}

impl LegacyHttpAuth {
    /// Whether this identifier may be sent to the legacy store.
    fn applies_to(&self, identifier: &str) -> bool {
        if identifier.is_empty() {
            return false;
        }
        match &self.email_domains {
            None => true,
            Some(domains) => identifier.rsplit_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
            }),
        }
    }

    fn request(&self, ctx: &CallContext, credential: &PasswordCredential) -> http::Request {
        let username = if self.lowercase_identifier {
            credential.identifier.to_lowercase()
        } else {
            credential.identifier.clone()
        };
        let timeout = u32::try_from(ctx.time_left_ms())
            .unwrap_or(u32::MAX)
            .min(self.timeout_ms)
            .max(1);
        let mut request = http::Request::post(&self.endpoint)
            .header("accept", "application/json")
            .header("x-request-id", &ctx.request_id)
            .json_body(&json!({"username": username, "password": credential.password}))
            .timeout_ms(timeout);
        if let Some(auth) = &self.authorization {
            request = request.header("authorization", auth);
        }
        request
    }

    /// The identity in a 200 answer.
    fn identity(body: &[u8]) -> Result<VerifiedIdentity, PluginError> {
        let user: LegacyUser = serde_json::from_slice(body)
            .map_err(|e| malformed(format!("a body that is not the expected JSON ({e})")))?;
        let subject = match &user.id {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            _ => return Err(malformed("an `id` that is neither a string nor an integer")),
        };
        if subject.is_empty() || subject.len() > MAX_SUBJECT_BYTES {
            return Err(malformed("an empty `id` or one longer than 255 bytes"));
        }
        let mut attributes = Vec::new();
        match &user.attributes {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                if map.len() > MAX_ATTRIBUTES {
                    log::warn(&format!(
                        "the legacy store returned {} attributes; keeping the first {MAX_ATTRIBUTES}",
                        map.len()
                    ));
                }
                attributes.extend(
                    map.iter()
                        .filter(|(k, _)| !k.is_empty())
                        .take(MAX_ATTRIBUTES)
                        .map(|(k, v)| Attribute::new(k.clone(), attribute_value(v))),
                );
            }
            Some(_) => return Err(malformed("`attributes` that is not an object")),
        }
        let email = non_empty(user.email);
        Ok(VerifiedIdentity {
            external_subject: subject,
            email_verified: email.is_some() && truthy(user.email_verified.as_ref()),
            email,
            preferred_username: non_empty(user.username),
            name: non_empty(user.name),
            attributes,
            amr: vec!["pwd".to_owned()],
        })
    }
}

impl AuthProvider for LegacyHttpAuth {
    fn verify(
        &self,
        ctx: &CallContext,
        request: VerifyRequest,
    ) -> Result<VerifyOutcome, PluginError> {
        let Credential::Password(credential) = &request.credential else {
            return Ok(VerifyOutcome::NotApplicable);
        };
        if !self.applies_to(&credential.identifier) {
            return Ok(VerifyOutcome::NotApplicable);
        }
        let response = http::send(&self.request(ctx, credential))?;
        let outcome = match response.status {
            200 => VerifyOutcome::Verified(Self::identity(&response.body)?),
            401 | 403 => VerifyOutcome::Rejected(RejectionReason::InvalidCredentials),
            423 => VerifyOutcome::Rejected(RejectionReason::AccountLocked),
            404 => VerifyOutcome::NotApplicable,
            status => {
                log::log(
                    log::Level::Warn,
                    "legacy store answered an unexpected status",
                    &[KeyValue::new("status", status.to_string())],
                );
                return Err(PluginError::unavailable(
                    "legacy_unavailable",
                    format!("the legacy store answered HTTP {status}"),
                ));
            }
        };
        Ok(outcome)
    }
}

/// The attributes of a verified identity as one JSON object (for tests and
/// diagnostics).
pub fn attributes_json(attributes: &[Attribute]) -> Value {
    Value::Object(
        attributes
            .iter()
            .map(|a| (a.name.clone(), a.value.to_json_value()))
            .collect::<Map<String, Value>>(),
    )
}

export_plugin!(LegacyHttpAuth: auth_provider);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use vaultaris_plugin_sdk::auth::{CustomCredential, OneTimeCodeCredential};
    use vaultaris_plugin_sdk::host::http::HttpError;
    use vaultaris_plugin_sdk::testing::{MockHost, response, with_host};

    const ENDPOINT: &str = "https://legacy.example/api/verify";

    fn plugin(extra: Value) -> LegacyHttpAuth {
        let mut config = json!({"endpoint": ENDPOINT, "api_key": "s3cret"});
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        LegacyHttpAuth::new(config).unwrap()
    }

    fn password(identifier: &str, password: &str) -> VerifyRequest {
        VerifyRequest {
            credential: Credential::Password(PasswordCredential {
                identifier: identifier.into(),
                password: password.into(),
            }),
            client_id: Some("web".into()),
            ip_address: Some("203.0.113.7".into()),
            user_agent: None,
        }
    }

    fn host(status: u16, body: &'static str) -> Arc<MockHost> {
        Arc::new(MockHost::new().http(&["legacy.example"], move |_| Ok(response(status, body))))
    }

    fn verify_with(h: Arc<MockHost>, p: &LegacyHttpAuth, r: VerifyRequest) -> VerifyOutcome {
        with_host(h, || p.verify(&CallContext::for_tests(), r)).unwrap()
    }

    #[test]
    fn manifest_matches_exports() {
        let m = vaultaris_plugin_sdk::testing::check_manifest::<LegacyHttpAuth>(include_str!(
            "../manifest.json"
        ))
        .unwrap();
        assert_eq!(
            m["config_schema"]["properties"]["api_key"]["writeOnly"],
            true
        );
        assert_eq!(
            m["capabilities"]["outbound_http"],
            json!(["127.0.0.1", "localhost"])
        );
    }

    #[test]
    fn verified_user_with_attributes() {
        let h = host(
            200,
            r#"{"id": 4711, "email": "ann@acme.example", "email_verified": true, "name": "Ann Lee",
                "username": "ann", "attributes": {"groups": ["staff", "ops"], "level": 3, "vip": false,
                "dept": "R&D", "extra": {"a": 1}}}"#,
        );
        let outcome = verify_with(h.clone(), &plugin(json!({})), password("ann", "pw 1"));
        let VerifyOutcome::Verified(id) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(id.external_subject, "4711");
        assert_eq!(id.email.as_deref(), Some("ann@acme.example"));
        assert!(id.email_verified);
        assert_eq!(id.name.as_deref(), Some("Ann Lee"));
        assert_eq!(id.preferred_username.as_deref(), Some("ann"));
        assert_eq!(id.amr, vec!["pwd"]);
        assert_eq!(
            attributes_json(&id.attributes),
            json!({"groups": ["staff", "ops"], "level": 3, "vip": false, "dept": "R&D", "extra": {"a": 1}})
        );
        assert!(matches!(
            id.attributes
                .iter()
                .find(|a| a.name == "extra")
                .unwrap()
                .value,
            AttributeValue::Json(_)
        ));

        let sent = &h.requests()[0];
        assert_eq!(sent.method, http::Method::Post);
        assert_eq!(sent.url, ENDPOINT);
        let header = |n: &str| vaultaris_plugin_sdk::find_key_value(&sent.headers, n);
        assert_eq!(header("authorization"), Some("Bearer s3cret"));
        assert_eq!(header("content-type"), Some("application/json"));
        assert_eq!(header("x-request-id"), Some("test-request"));
        let body: Value = serde_json::from_slice(sent.body.as_ref().unwrap()).unwrap();
        assert_eq!(body, json!({"username": "ann", "password": "pw 1"}));
        assert!(sent.timeout_ms.unwrap() <= 3000);
    }

    #[test]
    fn minimal_verified_answer() {
        let h = host(200, r#"{"id": "u-1", "email": "bob@x.example"}"#);
        let outcome = verify_with(h, &plugin(json!({})), password("bob", "pw"));
        assert_eq!(
            outcome,
            VerifyOutcome::Verified(VerifiedIdentity {
                external_subject: "u-1".into(),
                email: Some("bob@x.example".into()),
                email_verified: false,
                amr: vec!["pwd".into()],
                ..Default::default()
            })
        );
        // email_verified without an email means nothing.
        let h = host(200, r#"{"id": "u-2", "email_verified": "TRUE"}"#);
        let VerifyOutcome::Verified(id) = verify_with(h, &plugin(json!({})), password("c", "p"))
        else {
            panic!()
        };
        assert!(!id.email_verified);
    }

    #[test]
    fn status_mapping() {
        let p = plugin(json!({}));
        let outcome = |status, body| verify_with(host(status, body), &p, password("ann", "x"));
        assert_eq!(
            outcome(401, ""),
            VerifyOutcome::Rejected(RejectionReason::InvalidCredentials)
        );
        assert_eq!(
            outcome(403, "{}"),
            VerifyOutcome::Rejected(RejectionReason::InvalidCredentials)
        );
        assert_eq!(
            outcome(423, ""),
            VerifyOutcome::Rejected(RejectionReason::AccountLocked)
        );
        assert_eq!(outcome(404, ""), VerifyOutcome::NotApplicable);
        for status in [500, 502, 429, 400, 302, 204] {
            let e = with_host(host(status, ""), || {
                p.verify(&CallContext::for_tests(), password("ann", "x"))
            })
            .unwrap_err();
            assert_eq!((e.kind(), e.code()), ("unavailable", "legacy_unavailable"));
        }
    }

    #[test]
    fn transport_failures_and_malformed_answers_are_unavailable() {
        let p = plugin(json!({}));
        for err in [
            HttpError::Timeout,
            HttpError::ConnectionFailed("refused".into()),
        ] {
            let h = Arc::new(MockHost::new().http(&["legacy.example"], move |_| Err(err.clone())));
            let e = with_host(h, || {
                p.verify(&CallContext::for_tests(), password("ann", "x"))
            })
            .unwrap_err();
            assert_eq!(e.kind(), "unavailable");
        }
        for body in [
            "not json",
            r#"{"email": "a@b.c"}"#,
            r#"{"id": ""}"#,
            r#"{"id": 1.5}"#,
            r#"{"id": "x", "attributes": [1]}"#,
        ] {
            let e = with_host(host(200, body), || {
                p.verify(&CallContext::for_tests(), password("ann", "x"))
            })
            .unwrap_err();
            assert_eq!(
                (e.kind(), e.code()),
                ("unavailable", "legacy_malformed_response"),
                "{body}"
            );
        }
        let long = format!(r#"{{"id": "{}"}}"#, "x".repeat(256));
        let h = Arc::new(MockHost::new().http(&["legacy.example"], move |_| {
            Ok(response(200, long.clone()))
        }));
        assert!(
            with_host(h, || p
                .verify(&CallContext::for_tests(), password("a", "x")))
            .is_err()
        );
        // A host the operator did not allow is a configuration problem.
        let e = with_host(Arc::new(MockHost::new()), || {
            p.verify(&CallContext::for_tests(), password("ann", "x"))
        })
        .unwrap_err();
        assert_eq!(e.kind(), "misconfigured");
    }

    #[test]
    fn only_passwords_apply() {
        let p = plugin(json!({}));
        let h = host(200, r#"{"id": "1"}"#);
        for credential in [
            Credential::OneTimeCode(OneTimeCodeCredential {
                identifier: "ann".into(),
                code: "123456".into(),
            }),
            Credential::Custom(CustomCredential {
                kind: "acme:badge".into(),
                identifier: None,
                payload: Json::empty_object(),
            }),
        ] {
            let r = VerifyRequest {
                credential,
                client_id: None,
                ip_address: None,
                user_agent: None,
            };
            assert_eq!(verify_with(h.clone(), &p, r), VerifyOutcome::NotApplicable);
        }
        assert_eq!(
            verify_with(h.clone(), &p, password("", "x")),
            VerifyOutcome::NotApplicable
        );
        assert!(h.requests().is_empty());
    }

    #[test]
    fn email_domains_and_lowercasing() {
        let p = plugin(json!({"email_domains": ["@Acme.example", "old.example"],
            "lowercase_identifier": true}));
        let h = host(200, r#"{"id": "1"}"#);
        assert_eq!(
            verify_with(h.clone(), &p, password("ann", "x")),
            VerifyOutcome::NotApplicable
        );
        assert_eq!(
            verify_with(h.clone(), &p, password("ann@other.example", "x")),
            VerifyOutcome::NotApplicable
        );
        assert_eq!(
            verify_with(h.clone(), &p, password("@acme.example", "x")),
            VerifyOutcome::NotApplicable
        );
        assert!(h.requests().is_empty());
        assert!(matches!(
            verify_with(h.clone(), &p, password("Ann@ACME.example", "x")),
            VerifyOutcome::Verified(_)
        ));
        let body: Value = serde_json::from_slice(h.requests()[0].body.as_ref().unwrap()).unwrap();
        assert_eq!(body["username"], "ann@acme.example");
    }

    #[test]
    fn configuration() {
        let err = |c: Value| LegacyHttpAuth::new(c).err().unwrap().code().to_owned();
        assert_eq!(err(json!({})), "invalid_config");
        assert_eq!(err(json!({"endpoint": "ftp://x"})), "invalid_endpoint");
        assert_eq!(
            err(json!({"endpoint": ENDPOINT, "api_key": " "})),
            "invalid_api_key"
        );
        assert_eq!(
            err(json!({"endpoint": ENDPOINT, "unknown": 1})),
            "invalid_config"
        );
        // Without an API key no authorization header is sent.
        let p = LegacyHttpAuth::new(json!({"endpoint": ENDPOINT})).unwrap();
        let h = host(404, "");
        verify_with(h.clone(), &p, password("ann", "x"));
        assert_eq!(
            vaultaris_plugin_sdk::find_key_value(&h.requests()[0].headers, "authorization"),
            None
        );
    }
}
