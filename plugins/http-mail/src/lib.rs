//! `http-mail` (notification-channel): sends email through an HTTP JSON
//! mail API (Resend-style) with a bearer token.
//!
//! ```json
//! { "endpoint": "https://api.resend.com/emails", "api_key": "re_…", "default_sender": "Acme <no-reply@acme.example>" }
//! ```
//!
//! Request: `POST {endpoint}` with `authorization: Bearer {api_key}`,
//! `idempotency-key: {message_id}` and the body
//! `{"from", "to": ["Name <addr>"], "subject", "text", "html"?, "headers"?: {..}, "tags": [{"name": "template", "value": ..}]}`.
//! The provider's `id` from the JSON answer becomes the receipt's
//! `provider_message_id`.
//!
//! Outcomes: 2xx → delivered; 408, 429 and 5xx, timeouts and connection
//! failures → `unavailable` (the host retries with the same message id);
//! 401 / 403 → `misconfigured` (`provider_auth_failed`); other 4xx →
//! `invalid_input` (`rejected_by_provider`, the host moves on to the next
//! channel); an SMS → `unsupported`.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use vaultaris_plugin_sdk::host::http;
use vaultaris_plugin_sdk::notification::{
    DeliveryReceipt, Message, MessageKind, NotificationChannel,
};
use vaultaris_plugin_sdk::{CallContext, Plugin, PluginError, export_plugin, parse_config};

fn default_endpoint() -> String {
    "https://api.resend.com/emails".to_owned()
}
fn default_timeout() -> u32 {
    5000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_endpoint")]
    endpoint: String,
    api_key: String,
    default_sender: String,
    #[serde(default = "default_timeout")]
    timeout_ms: u32,
}

/// The plugin.
pub struct HttpMail {
    config: Config,
}

impl Plugin for HttpMail {
    fn new(config: serde_json::Value) -> Result<Self, PluginError> {
        let config: Config = parse_config(config)?;
        if !(config.endpoint.starts_with("https://") || config.endpoint.starts_with("http://")) {
            return Err(PluginError::misconfigured(
                "invalid_endpoint",
                "endpoint must be an http(s) URL",
            ));
        }
        if config.api_key.trim().is_empty() {
            return Err(PluginError::misconfigured(
                "missing_api_key",
                "api_key is empty",
            ));
        }
        Ok(HttpMail { config })
    }
}

/// `Name <address>` (the name quoted if needed), or the bare address.
fn mailbox(address: &str, name: Option<&str>) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        None => address.to_owned(),
        Some(n)
            if n.chars()
                .all(|c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '.') =>
        {
            format!("{n} <{address}>")
        }
        Some(n) => format!(
            "\"{}\" <{address}>",
            n.replace('\\', "\\\\").replace('"', "\\\"")
        ),
    }
}

impl HttpMail {
    /// The JSON body for a message.
    pub fn body(&self, m: &Message) -> Value {
        let mut body = Map::new();
        body.insert(
            "from".into(),
            json!(m.sender.as_deref().unwrap_or(&self.config.default_sender)),
        );
        body.insert("to".into(), json!([mailbox(&m.to, m.to_name.as_deref())]));
        body.insert(
            "subject".into(),
            json!(m.subject.as_deref().unwrap_or_default()),
        );
        body.insert("text".into(), json!(m.text_body));
        if let Some(html) = &m.html_body {
            body.insert("html".into(), json!(html));
        }
        if !m.headers.is_empty() {
            let headers: Map<String, Value> = m
                .headers
                .iter()
                .map(|h| (h.key.clone(), json!(h.value)))
                .collect();
            body.insert("headers".into(), Value::Object(headers));
        }
        let tag: String = m
            .template
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        body.insert("tags".into(), json!([{"name": "template", "value": tag}, {"name": "locale", "value": m.locale.replace(|c: char| !c.is_ascii_alphanumeric(), "_")}]));
        Value::Object(body)
    }
}

impl NotificationChannel for HttpMail {
    fn supported_kinds(&self, _ctx: &CallContext) -> Vec<MessageKind> {
        vec![MessageKind::Email]
    }

    fn deliver(&self, ctx: &CallContext, message: Message) -> Result<DeliveryReceipt, PluginError> {
        if message.kind != MessageKind::Email {
            return Err(PluginError::unsupported(
                "sms_unsupported",
                "this channel only sends email",
            ));
        }
        let timeout = u32::try_from(ctx.time_left_ms())
            .unwrap_or(u32::MAX)
            .min(self.config.timeout_ms)
            .max(1);
        let request = http::Request::post(&self.config.endpoint)
            .header("authorization", format!("Bearer {}", self.config.api_key))
            .header("idempotency-key", &message.message_id)
            .json_body(&self.body(&message))
            .timeout_ms(timeout);
        let response = http::send(&request)?;
        let status = response.status;
        match status {
            200..=299 => {
                let id = response
                    .json::<Value>()
                    .ok()
                    .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
                    .or_else(|| response.header("x-message-id").map(str::to_owned));
                Ok(DeliveryReceipt {
                    provider_message_id: id,
                })
            }
            408 | 429 | 500..=599 => Err(PluginError::unavailable(
                "provider_unavailable",
                format!("mail API answered HTTP {status}"),
            )),
            401 | 403 => Err(PluginError::misconfigured(
                "provider_auth_failed",
                format!("mail API refused the API key (HTTP {status})"),
            )),
            _ => {
                let detail: String = response.text().chars().take(300).collect();
                Err(PluginError::invalid_input(
                    "rejected_by_provider",
                    format!("mail API answered HTTP {status}: {detail}"),
                ))
            }
        }
    }
}

export_plugin!(HttpMail: notification_channel);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use vaultaris_plugin_sdk::KeyValue;
    use vaultaris_plugin_sdk::host::http::HttpError;
    use vaultaris_plugin_sdk::testing::{MockHost, response, with_host};

    fn plugin() -> HttpMail {
        HttpMail::new(
            json!({"api_key": "re_test", "default_sender": "Acme <no-reply@acme.example>",
            "endpoint": "https://api.resend.com/emails"}),
        )
        .unwrap()
    }

    fn message(kind: MessageKind) -> Message {
        Message {
            kind,
            message_id: "m-1".into(),
            template: "verify-email".into(),
            to: "bob@example.com".into(),
            to_name: Some("Bob O'Neil".into()),
            sender: None,
            subject: Some("Verify your email".into()),
            text_body: "Click the link".into(),
            html_body: Some("<p>Click the link</p>".into()),
            headers: vec![KeyValue::new("reply-to", "help@acme.example")],
            locale: "en-GB".into(),
        }
    }

    fn host(status: u16, body: &'static str) -> Arc<MockHost> {
        Arc::new(MockHost::new().http(&["api.resend.com"], move |_| Ok(response(status, body))))
    }

    #[test]
    fn manifest_matches_exports() {
        vaultaris_plugin_sdk::testing::check_manifest::<HttpMail>(include_str!("../manifest.json"))
            .unwrap();
    }

    #[test]
    fn sends_json_with_bearer_and_idempotency_key() {
        let h = host(200, r#"{"id":"prov-42"}"#);
        let receipt = with_host(h.clone(), || {
            plugin().deliver(&CallContext::for_tests(), message(MessageKind::Email))
        })
        .unwrap();
        assert_eq!(receipt.provider_message_id.as_deref(), Some("prov-42"));
        let sent = &h.requests()[0];
        assert_eq!(sent.method, http::Method::Post);
        let header = |n: &str| {
            sent.headers
                .iter()
                .find(|h| h.key == n)
                .map(|h| h.value.clone())
        };
        assert_eq!(header("authorization").as_deref(), Some("Bearer re_test"));
        assert_eq!(header("idempotency-key").as_deref(), Some("m-1"));
        let body: Value = serde_json::from_slice(sent.body.as_ref().unwrap()).unwrap();
        assert_eq!(body["from"], "Acme <no-reply@acme.example>");
        assert_eq!(body["to"], json!(["\"Bob O'Neil\" <bob@example.com>"]));
        assert_eq!(body["html"], "<p>Click the link</p>");
        assert_eq!(body["headers"]["reply-to"], "help@acme.example");
        assert_eq!(
            body["tags"][0],
            json!({"name": "template", "value": "verify-email"})
        );
        assert_eq!(body["tags"][1], json!({"name": "locale", "value": "en_GB"}));
    }

    #[test]
    fn status_mapping() {
        let deliver = |status, body| {
            with_host(host(status, body), || {
                plugin().deliver(&CallContext::for_tests(), message(MessageKind::Email))
            })
        };
        assert_eq!(deliver(503, "").unwrap_err().kind(), "unavailable");
        assert_eq!(deliver(429, "").unwrap_err().kind(), "unavailable");
        assert_eq!(deliver(401, "").unwrap_err().code(), "provider_auth_failed");
        let e = deliver(422, r#"{"message":"invalid to"}"#).unwrap_err();
        assert_eq!(
            (e.kind(), e.code()),
            ("invalid-input", "rejected_by_provider")
        );
        assert!(e.message().contains("invalid to"));
        assert_eq!(deliver(202, "not json").unwrap().provider_message_id, None);
        let down = Arc::new(MockHost::new().http(&["api.resend.com"], |_| Err(HttpError::Timeout)));
        let e = with_host(down, || {
            plugin().deliver(&CallContext::for_tests(), message(MessageKind::Email))
        })
        .unwrap_err();
        assert_eq!(e.kind(), "unavailable");
    }

    #[test]
    fn sms_is_unsupported() {
        let p = plugin();
        assert_eq!(
            p.supported_kinds(&CallContext::for_tests()),
            vec![MessageKind::Email]
        );
        let e = p
            .deliver(&CallContext::for_tests(), message(MessageKind::Sms))
            .unwrap_err();
        assert_eq!(e.kind(), "unsupported");
    }

    #[test]
    fn configuration() {
        assert_eq!(
            HttpMail::new(json!({"api_key": "k"})).err().unwrap().code(),
            "invalid_config"
        );
        assert_eq!(
            HttpMail::new(json!({"api_key": " ", "default_sender": "a@b.c"}))
                .err()
                .unwrap()
                .code(),
            "missing_api_key"
        );
        assert_eq!(mailbox("a@b.c", None), "a@b.c");
        assert_eq!(mailbox("a@b.c", Some("Ann Lee")), "Ann Lee <a@b.c>");
    }
}
