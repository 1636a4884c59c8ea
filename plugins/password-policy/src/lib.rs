//! `password-policy` (input-validator): checks a new password on password
//! change, user creation and self registration (and on a user update that
//! changes `password`).
//!
//! Rules, each a field-level violation on `password` with a stable code:
//! `too_short`, `too_long`, `missing_lowercase`, `missing_uppercase`,
//! `missing_digit`, `missing_symbol`, `too_few_character_classes`,
//! `contains_username`, `contains_email`, `breached`.
//!
//! The breached-password check uses the k-anonymity range API of Have I
//! Been Pwned: `GET {breach_base_url}/range/{first 5 hex digits of the
//! upper-case SHA-1}` answers lines `SUFFIX:COUNT`; the password never
//! leaves the plugin, only 20 bits of its hash do. The request asks for
//! padding (`add-padding: true`); padded entries have count 0 and are
//! ignored. The check runs only when the local rules passed (no network
//! round trip for a password that is refused anyway). When the API cannot
//! be reached or answers an error, `breach_failure: "closed"` (default)
//! fails the call with `unavailable` (the host refuses the operation with
//! 503), `"open"` accepts the password and logs a warning.
//!
//! Messages are in English, German or French, after the request's locales.

use serde::Deserialize;
use sha1::{Digest, Sha1};
use vaultaris_plugin_sdk::host::{http, log};
use vaultaris_plugin_sdk::validation::{InputValidator, Operation, ValidationRequest, Violation};
use vaultaris_plugin_sdk::{CallContext, Plugin, PluginError, export_plugin, parse_config};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FailureMode {
    Closed,
    Open,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    min_length: usize,
    max_length: usize,
    require_lowercase: bool,
    require_uppercase: bool,
    require_digit: bool,
    require_symbol: bool,
    min_character_classes: usize,
    forbid_username: bool,
    forbid_email: bool,
    breach_check: bool,
    breach_base_url: String,
    breach_threshold: u64,
    breach_timeout_ms: u32,
    breach_api_key: Option<String>,
    breach_failure: FailureMode,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min_length: 12,
            max_length: 128,
            require_lowercase: false,
            require_uppercase: false,
            require_digit: false,
            require_symbol: false,
            min_character_classes: 0,
            forbid_username: true,
            forbid_email: true,
            breach_check: true,
            breach_base_url: "https://api.pwnedpasswords.com".to_owned(),
            breach_threshold: 1,
            breach_timeout_ms: 1500,
            breach_api_key: None,
            breach_failure: FailureMode::Closed,
        }
    }
}

/// The plugin.
pub struct PasswordPolicy {
    config: Config,
}

impl Plugin for PasswordPolicy {
    fn new(config: serde_json::Value) -> Result<Self, PluginError> {
        let mut config: Config = parse_config(config)?;
        if config.min_length > config.max_length {
            return Err(PluginError::misconfigured(
                "invalid_length_bounds",
                "min_length must not exceed max_length",
            ));
        }
        if config.min_character_classes > 4 {
            return Err(PluginError::misconfigured(
                "invalid_character_classes",
                "min_character_classes must be between 0 and 4",
            ));
        }
        let base = config.breach_base_url.trim_end_matches('/').to_owned();
        if config.breach_check && !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(PluginError::misconfigured(
                "invalid_breach_base_url",
                "breach_base_url must be an http(s) URL",
            ));
        }
        config.breach_base_url = base;
        Ok(PasswordPolicy { config })
    }
}

/// The languages messages exist in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lang {
    En,
    De,
    Fr,
}

fn language(locales: &[String]) -> Lang {
    for l in locales {
        let primary = l
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "en" => return Lang::En,
            "de" => return Lang::De,
            "fr" => return Lang::Fr,
            _ => {}
        }
    }
    Lang::En
}

fn message(lang: Lang, code: &str, n: usize) -> String {
    match (lang, code) {
        (Lang::En, "too_short") => format!("Use at least {n} characters."),
        (Lang::De, "too_short") => format!("Verwenden Sie mindestens {n} Zeichen."),
        (Lang::Fr, "too_short") => format!("Utilisez au moins {n} caractères."),
        (Lang::En, "too_long") => format!("Use at most {n} characters."),
        (Lang::De, "too_long") => format!("Verwenden Sie höchstens {n} Zeichen."),
        (Lang::Fr, "too_long") => format!("Utilisez au plus {n} caractères."),
        (Lang::En, "missing_lowercase") => "Include a lower-case letter.".into(),
        (Lang::De, "missing_lowercase") => "Verwenden Sie einen Kleinbuchstaben.".into(),
        (Lang::Fr, "missing_lowercase") => "Ajoutez une lettre minuscule.".into(),
        (Lang::En, "missing_uppercase") => "Include an upper-case letter.".into(),
        (Lang::De, "missing_uppercase") => "Verwenden Sie einen Großbuchstaben.".into(),
        (Lang::Fr, "missing_uppercase") => "Ajoutez une lettre majuscule.".into(),
        (Lang::En, "missing_digit") => "Include a digit.".into(),
        (Lang::De, "missing_digit") => "Verwenden Sie eine Ziffer.".into(),
        (Lang::Fr, "missing_digit") => "Ajoutez un chiffre.".into(),
        (Lang::En, "missing_symbol") => "Include a symbol (neither a letter nor a digit).".into(),
        (Lang::De, "missing_symbol") => "Verwenden Sie ein Sonderzeichen.".into(),
        (Lang::Fr, "missing_symbol") => "Ajoutez un caractère spécial.".into(),
        (Lang::En, "too_few_character_classes") => {
            format!("Mix at least {n} of: lower-case letters, upper-case letters, digits, symbols.")
        }
        (Lang::De, "too_few_character_classes") => {
            format!(
                "Kombinieren Sie mindestens {n} von: Kleinbuchstaben, Großbuchstaben, Ziffern, Sonderzeichen."
            )
        }
        (Lang::Fr, "too_few_character_classes") => {
            format!(
                "Combinez au moins {n} types : minuscules, majuscules, chiffres, caractères spéciaux."
            )
        }
        (Lang::En, "contains_username") => "The password must not contain your username.".into(),
        (Lang::De, "contains_username") => {
            "Das Passwort darf Ihren Benutzernamen nicht enthalten.".into()
        }
        (Lang::Fr, "contains_username") => {
            "Le mot de passe ne doit pas contenir votre identifiant.".into()
        }
        (Lang::En, "contains_email") => "The password must not contain your email address.".into(),
        (Lang::De, "contains_email") => {
            "Das Passwort darf Ihre E-Mail-Adresse nicht enthalten.".into()
        }
        (Lang::Fr, "contains_email") => {
            "Le mot de passe ne doit pas contenir votre adresse e-mail.".into()
        }
        (Lang::En, "breached") => {
            "This password has appeared in a data breach and cannot be used. Choose another one."
                .into()
        }
        (Lang::De, "breached") => {
            "Dieses Passwort ist in einem Datenleck aufgetaucht und kann nicht verwendet werden."
                .into()
        }
        (Lang::Fr, "breached") => {
            "Ce mot de passe est apparu dans une fuite de données et ne peut pas être utilisé."
                .into()
        }
        (_, other) => other.to_owned(),
    }
}

/// The upper-case hex SHA-1 of the password, split into the 5-digit
/// prefix sent to the API and the 35-digit suffix looked up locally.
pub fn sha1_prefix_suffix(password: &str) -> (String, String) {
    let digest = Sha1::digest(password.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02X}")).collect();
    let (prefix, suffix) = hex.split_at(5);
    (prefix.to_owned(), suffix.to_owned())
}

/// How often `suffix` appears in a range response (`SUFFIX:COUNT` lines);
/// 0 if absent.
pub fn breach_count(body: &str, suffix: &str) -> u64 {
    body.lines()
        .filter_map(|line| line.trim().split_once(':'))
        .find(|(s, _)| s.eq_ignore_ascii_case(suffix))
        .and_then(|(_, count)| count.trim().parse().ok())
        .unwrap_or(0)
}

impl PasswordPolicy {
    fn local_violations(
        &self,
        password: &str,
        request: &ValidationRequest,
        lang: Lang,
    ) -> Vec<Violation> {
        let c = &self.config;
        let mut codes: Vec<(&'static str, usize)> = Vec::new();
        let length = password.chars().count();
        if length < c.min_length {
            codes.push(("too_short", c.min_length));
        }
        if length > c.max_length {
            codes.push(("too_long", c.max_length));
        }
        let lower = password.chars().any(char::is_lowercase);
        let upper = password.chars().any(char::is_uppercase);
        let digit = password.chars().any(|ch| ch.is_numeric());
        let symbol = password.chars().any(|ch| !ch.is_alphanumeric());
        if c.require_lowercase && !lower {
            codes.push(("missing_lowercase", 0));
        }
        if c.require_uppercase && !upper {
            codes.push(("missing_uppercase", 0));
        }
        if c.require_digit && !digit {
            codes.push(("missing_digit", 0));
        }
        if c.require_symbol && !symbol {
            codes.push(("missing_symbol", 0));
        }
        let classes = [lower, upper, digit, symbol].iter().filter(|x| **x).count();
        if classes < c.min_character_classes {
            codes.push(("too_few_character_classes", c.min_character_classes));
        }
        let folded = password.to_lowercase();
        let contains = |needle: &str| {
            let needle = needle.trim().to_lowercase();
            needle.chars().count() >= 3 && folded.contains(&needle)
        };
        if c.forbid_username
            && request
                .string_field("username")
                .is_some_and(|u| contains(&u))
        {
            codes.push(("contains_username", 0));
        }
        if c.forbid_email
            && request.string_field("email").is_some_and(|e| {
                let local = e.split('@').next().unwrap_or_default();
                contains(&e) || contains(local)
            })
        {
            codes.push(("contains_email", 0));
        }
        codes
            .into_iter()
            .map(|(code, n)| Violation::new("password", code, message(lang, code, n)))
            .collect()
    }

    /// Asks the range API; `Ok(None)` when the check was skipped because
    /// the API is unavailable and the policy fails open.
    fn breached(&self, ctx: &CallContext, password: &str) -> Result<Option<bool>, PluginError> {
        let c = &self.config;
        let (prefix, suffix) = sha1_prefix_suffix(password);
        let timeout = u32::try_from(ctx.time_left_ms())
            .unwrap_or(u32::MAX)
            .min(c.breach_timeout_ms);
        let mut request = http::Request::get(format!("{}/range/{prefix}", c.breach_base_url))
            .header("add-padding", "true")
            .timeout_ms(timeout.max(1));
        if let Some(key) = &c.breach_api_key {
            request = request.header("hibp-api-key", key.clone());
        }
        let failure = match http::send(&request) {
            Ok(r) if r.status == 200 => {
                return Ok(Some(breach_count(&r.text(), &suffix) >= c.breach_threshold));
            }
            Ok(r) => format!("range API answered HTTP {}", r.status),
            Err(e) => e.to_string(),
        };
        match c.breach_failure {
            FailureMode::Closed => Err(PluginError::unavailable(
                "breach_check_unavailable",
                failure,
            )),
            FailureMode::Open => {
                log::warn(&format!(
                    "breached-password check skipped (fail open): {failure}"
                ));
                Ok(None)
            }
        }
    }
}

impl InputValidator for PasswordPolicy {
    fn validate(
        &self,
        ctx: &CallContext,
        request: ValidationRequest,
    ) -> Result<Vec<Violation>, PluginError> {
        let applies = match request.operation {
            Operation::PasswordChange | Operation::UserCreate | Operation::SelfRegistration => true,
            Operation::UserUpdate => request.changes("password"),
        };
        if !applies {
            return Ok(Vec::new());
        }
        let Some(field) = request.field("password") else {
            return Ok(Vec::new());
        };
        let Some(password) = field.as_string() else {
            return Err(PluginError::invalid_input(
                "password_not_a_string",
                "the password field is not a JSON string",
            ));
        };
        let lang = language(&request.locales);
        let mut violations = self.local_violations(&password, &request, lang);
        if violations.is_empty()
            && self.config.breach_check
            && self.breached(ctx, &password)? == Some(true)
        {
            violations.push(Violation::new(
                "password",
                "breached",
                message(lang, "breached", 0),
            ));
        }
        Ok(violations)
    }
}

export_plugin!(PasswordPolicy: input_validator);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;
    use vaultaris_plugin_sdk::Json;
    use vaultaris_plugin_sdk::host::http::HttpError;
    use vaultaris_plugin_sdk::testing::{MockHost, response, with_host};
    use vaultaris_plugin_sdk::validation::Field;

    fn request(op: Operation, password: &str) -> ValidationRequest {
        ValidationRequest {
            operation: op,
            user_id: Some("u1".into()),
            fields: vec![
                Field {
                    name: "password".into(),
                    value: Json::string(password),
                },
                Field {
                    name: "username".into(),
                    value: Json::string("alice"),
                },
                Field {
                    name: "email".into(),
                    value: Json::string("alice.smith@example.com"),
                },
            ],
            changed: vec!["password".into()],
            locales: vec!["en-GB".into()],
        }
    }

    fn codes(v: &[Violation]) -> Vec<&str> {
        v.iter().map(|v| v.code.as_str()).collect()
    }

    fn local(config: serde_json::Value) -> PasswordPolicy {
        let mut config = config;
        config["breach_check"] = json!(false);
        PasswordPolicy::new(config).unwrap()
    }

    #[test]
    fn manifest_matches_exports() {
        vaultaris_plugin_sdk::testing::check_manifest::<PasswordPolicy>(include_str!(
            "../manifest.json"
        ))
        .unwrap();
    }

    #[test]
    fn sha1_split_matches_known_vector() {
        // SHA-1("password") = 5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8
        let (p, s) = sha1_prefix_suffix("password");
        assert_eq!(p, "5BAA6");
        assert_eq!(s, "1E4C9B93F3F0682250B6CF8331B7EE68FD8");
        let body = "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n1E4C9B93F3F0682250B6CF8331B7EE68FD8:9545824\r\nFFFF:0";
        assert_eq!(breach_count(body, &s), 9_545_824);
        assert_eq!(breach_count(body, "FFFF"), 0);
        assert_eq!(breach_count(body, "ABC"), 0);
    }

    #[test]
    fn length_and_classes() {
        let p = local(
            json!({"min_length": 10, "max_length": 20, "require_lowercase": true,
            "require_uppercase": true, "require_digit": true, "require_symbol": true}),
        );
        let ctx = CallContext::for_tests();
        let v = p
            .validate(&ctx, request(Operation::PasswordChange, "short"))
            .unwrap();
        assert_eq!(
            codes(&v),
            [
                "too_short",
                "missing_uppercase",
                "missing_digit",
                "missing_symbol"
            ]
        );
        assert!(
            v.iter()
                .all(|v| v.field == "password" && !v.message.contains("short"))
        );
        let v = p
            .validate(
                &ctx,
                request(Operation::PasswordChange, "Aa1!Aa1!Aa1!Aa1!Aa1!x"),
            )
            .unwrap();
        assert_eq!(codes(&v), ["too_long"]);
        assert!(
            p.validate(&ctx, request(Operation::PasswordChange, "Correct-Horse-9"))
                .unwrap()
                .is_empty()
        );
        // length counts characters, not bytes
        let p = local(json!({"min_length": 4}));
        assert!(
            p.validate(&ctx, request(Operation::PasswordChange, "ééé€"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn character_class_count() {
        let p = local(json!({"min_length": 1, "min_character_classes": 3}));
        let ctx = CallContext::for_tests();
        let v = p
            .validate(&ctx, request(Operation::PasswordChange, "abcdEFGH"))
            .unwrap();
        assert_eq!(codes(&v), ["too_few_character_classes"]);
        assert!(v[0].message.contains('3'));
        assert!(
            p.validate(&ctx, request(Operation::PasswordChange, "abcdEFGH1"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn username_and_email() {
        let p = local(json!({"min_length": 1}));
        let ctx = CallContext::for_tests();
        let v = p
            .validate(&ctx, request(Operation::SelfRegistration, "xxALICExx"))
            .unwrap();
        assert_eq!(codes(&v), ["contains_username"]);
        let v = p
            .validate(&ctx, request(Operation::UserCreate, "my alice.smith pass"))
            .unwrap();
        assert_eq!(codes(&v), ["contains_username", "contains_email"]);
        let p = local(json!({"min_length": 1, "forbid_username": false, "forbid_email": false}));
        assert!(
            p.validate(&ctx, request(Operation::UserCreate, "alice.smith"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn operations_and_missing_password() {
        let p = local(json!({}));
        let ctx = CallContext::for_tests();
        let mut r = request(Operation::UserUpdate, "x");
        r.changed = vec!["given_name".into()];
        assert!(
            p.validate(&ctx, r).unwrap().is_empty(),
            "update without password change"
        );
        let mut r = request(Operation::UserCreate, "x");
        r.fields.retain(|f| f.name != "password");
        assert!(
            p.validate(&ctx, r).unwrap().is_empty(),
            "no password to check"
        );
        let mut r = request(Operation::UserCreate, "x");
        r.fields[0].value = Json::from_raw("42");
        assert_eq!(p.validate(&ctx, r).unwrap_err().kind(), "invalid-input");
    }

    #[test]
    fn messages_follow_locales() {
        let p = local(json!({}));
        let ctx = CallContext::for_tests();
        let mut r = request(Operation::PasswordChange, "kurz");
        r.locales = vec!["it".into(), "de-AT".into(), "en".into()];
        let v = p.validate(&ctx, r).unwrap();
        assert_eq!(v[0].message, "Verwenden Sie mindestens 12 Zeichen.");
    }

    #[test]
    fn invalid_configurations() {
        for c in [
            json!({"min_length": 20, "max_length": 10}),
            json!({"breach_base_url": "ftp://x"}),
            json!({"breach_failure": "maybe"}),
            json!({"min_character_classes": 5}),
        ] {
            assert_eq!(
                PasswordPolicy::new(c).err().unwrap().kind(),
                "misconfigured"
            );
        }
    }

    fn range_host() -> Arc<MockHost> {
        Arc::new(MockHost::new().http(&["pwned.test:8080"], |req| {
            assert_eq!(req.headers[0].key, "add-padding");
            match req.url.as_str() {
                // The range of SHA-1("password"): its suffix (seen 3 times) plus a
                // padding entry; every other range lacks the asked suffix.
                u if u.ends_with("/range/5BAA6") => Ok(response(
                    200,
                    "1E4C9B93F3F0682250B6CF8331B7EE68FD8:3\r\n0000000000000000000000000000000000A:0\r\n",
                )),
                _ => Ok(response(200, "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n")),
            }
        }))
    }

    #[test]
    fn breached_password_is_refused() {
        let p = PasswordPolicy::new(json!({"min_length": 8, "forbid_username": false,
            "breach_base_url": "http://pwned.test:8080/"}))
        .unwrap();
        let host = range_host();
        let ctx = CallContext::for_tests();
        let v = with_host(host.clone(), || {
            p.validate(&ctx, request(Operation::PasswordChange, "password"))
        })
        .unwrap();
        assert_eq!(codes(&v), ["breached"]);
        let sent = host.requests();
        assert_eq!(
            sent[0].url, "http://pwned.test:8080/range/5BAA6",
            "only the 5-digit prefix is sent"
        );
        let v = with_host(host.clone(), || {
            p.validate(
                &ctx,
                request(Operation::PasswordChange, "Correct-Horse-9-Battery"),
            )
        })
        .unwrap();
        assert!(v.is_empty());
        // no lookup when local rules already refused the password
        with_host(host.clone(), || {
            p.validate(&ctx, request(Operation::PasswordChange, "short"))
        })
        .unwrap();
        assert_eq!(host.requests().len(), 2);
    }

    #[test]
    fn breach_threshold() {
        let p = PasswordPolicy::new(json!({"min_length": 8, "breach_threshold": 4,
            "breach_base_url": "http://pwned.test:8080"}))
        .unwrap();
        let ctx = CallContext::for_tests();
        let v = with_host(range_host(), || {
            p.validate(&ctx, request(Operation::PasswordChange, "password"))
        })
        .unwrap();
        assert!(v.is_empty(), "seen 3 times, threshold 4");
    }

    #[test]
    fn upstream_failure_closed_or_open() {
        let down = || Arc::new(MockHost::new().http(&["pwned.test"], |_| Err(HttpError::Timeout)));
        let error_503 =
            || Arc::new(MockHost::new().http(&["pwned.test"], |_| Ok(response(503, "busy"))));
        let ctx = CallContext::for_tests();
        let closed = PasswordPolicy::new(json!({"breach_base_url": "https://pwned.test"})).unwrap();
        let e = with_host(down(), || {
            closed.validate(&ctx, request(Operation::PasswordChange, "long enough pw"))
        })
        .unwrap_err();
        assert_eq!(
            (e.kind(), e.code()),
            ("unavailable", "breach_check_unavailable")
        );
        let e = with_host(error_503(), || {
            closed.validate(&ctx, request(Operation::PasswordChange, "long enough pw"))
        })
        .unwrap_err();
        assert!(e.message().contains("503"));

        let open = PasswordPolicy::new(
            json!({"breach_base_url": "https://pwned.test", "breach_failure": "open"}),
        )
        .unwrap();
        let host = down();
        let v = with_host(host.clone(), || {
            open.validate(&ctx, request(Operation::PasswordChange, "long enough pw"))
        })
        .unwrap();
        assert!(v.is_empty());
        assert!(host.logs()[0].1.contains("fail open"));
        // an ungranted host is an upstream failure too
        let denied = Arc::new(MockHost::new());
        let e = with_host(denied, || {
            closed.validate(&ctx, request(Operation::PasswordChange, "long enough pw"))
        })
        .unwrap_err();
        assert!(e.message().contains("not allowed"));
    }
}
