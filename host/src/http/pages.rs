//! Server-rendered HTML pages of the hosted login: sign-in, consent, errors
//! and logout, branded per tenant.
//!
//! Security decisions: every interpolated value is HTML-escaped; tenant
//! colours are validated as `#rrggbb` on input and again here; pages carry a
//! strict Content-Security-Policy (no scripts at all), `frame-ancestors
//! 'none'` against clickjacking, `no-store`, and `Referrer-Policy:
//! no-referrer` so codes and state never leak through the Referer header.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::model::Tenant;
use crate::plugins::hooks::identity_provider::ProviderButton;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn colour(c: Option<&str>, default: &'static str) -> String {
    match c {
        Some(c)
            if c.len() == 7
                && c.starts_with('#')
                && c[1..].bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            c.to_string()
        }
        _ => default.to_string(),
    }
}

/// A whole page around `body` with the tenant's name and colours.
pub fn page(tenant: &Tenant, status: StatusCode, title: &str, body: &str) -> Response {
    let name = tenant.display_name.as_deref().unwrap_or(&tenant.name);
    let primary = colour(tenant.settings.primary_color.as_deref(), "#2b59c3");
    let background = colour(tenant.settings.background_color.as_deref(), "#f4f6fb");
    let logo = tenant
        .settings
        .logo_url
        .as_deref()
        .filter(|u| u.starts_with("https://"))
        .map(|u| format!(r#"<img class="logo" src="{}" alt="">"#, escape(u)))
        .unwrap_or_default();
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · {name}</title>
<style>
body {{ margin: 0; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; background: {background}; color: #1c2333; }}
main {{ max-width: 380px; margin: 8vh auto; background: #fff; border-radius: 12px; padding: 32px; box-shadow: 0 4px 24px rgba(0,0,0,.08); }}
h1 {{ font-size: 1.35rem; margin: 0 0 4px; }}
p.tenant {{ color: #5b6475; margin: 0 0 24px; }}
label {{ display: block; font-weight: 600; margin: 16px 0 6px; }}
input[type=email], input[type=text], input[type=password] {{ width: 100%; box-sizing: border-box; padding: 10px 12px; border: 1px solid #c9cfdb; border-radius: 8px; font-size: 1rem; }}
button {{ margin-top: 24px; width: 100%; padding: 11px; border: 0; border-radius: 8px; background: {primary}; color: #fff; font-size: 1rem; cursor: pointer; }}
button.secondary {{ background: #e8ebf2; color: #1c2333; margin-top: 10px; }}
.error {{ background: #fdecec; color: #8a1c1c; padding: 10px 12px; border-radius: 8px; margin-bottom: 12px; }}
ul.scopes {{ padding-left: 20px; }}
.logo {{ max-height: 40px; margin-bottom: 16px; }}
p.or {{ text-align: center; color: #5b6475; margin: 20px 0 0; }}
img.icon {{ height: 1em; vertical-align: -0.15em; }}
</style>
</head>
<body>
<main>
{logo}
<h1>{title}</h1>
<p class="tenant">{name}</p>
{body}
</main>
</body>
</html>"#,
        title = escape(title),
        name = escape(name),
    );
    let mut res = (status, Html(html)).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        r#"<input type="hidden" name="{}" value="{}">"#,
        escape(name),
        escape(value)
    )
}

/// The sign-in form.
pub struct LoginForm<'a> {
    /// Where the form posts.
    pub action: &'a str,
    /// Name of the application asking.
    pub client_name: &'a str,
    /// Sealed request state.
    pub flow: &'a str,
    /// CSRF token (also in a cookie).
    pub csrf: &'a str,
    /// Prefilled username.
    pub login_hint: Option<&'a str>,
    /// A message from the last attempt.
    pub error: Option<&'a str>,
    /// The tenant's identity providers, one button each.
    pub providers: &'a [ProviderButton],
}

/// The federated sign-in buttons: submit buttons of the same form, so the
/// sealed request and the CSRF token travel with them and no script is
/// needed; `formnovalidate` lets them through with the password empty.
fn provider_buttons(providers: &[ProviderButton]) -> String {
    if providers.is_empty() {
        return String::new();
    }
    let mut out = String::from(r#"<p class="or">or</p>"#);
    for p in providers {
        let icon = p
            .icon_url
            .as_deref()
            .map(|u| format!(r#"<img class="icon" src="{}" alt=""> "#, escape(u)))
            .unwrap_or_default();
        out.push_str(&format!(
            r#"<button class="secondary" id="provider-{id}" type="submit" name="provider" value="{id}" formnovalidate>{icon}{name}</button>"#,
            id = escape(&p.plugin_id),
            name = escape(&p.display_name),
        ));
    }
    out
}

/// Renders the sign-in page.
pub fn login(tenant: &Tenant, status: StatusCode, f: &LoginForm<'_>) -> Response {
    let error = f
        .error
        .map(|e| format!(r#"<div class="error" role="alert">{}</div>"#, escape(e)))
        .unwrap_or_default();
    let body = format!(
        r#"{error}<p>to continue to <strong>{client}</strong></p>
<form method="post" action="{action}">
{action_field}{flow}{csrf}
<label for="username">Email</label>
<input id="username" name="username" type="email" autocomplete="username" required autofocus value="{hint}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button id="submit" type="submit">Sign in</button>
{providers}
</form>"#,
        client = escape(f.client_name),
        action = escape(f.action),
        action_field = hidden("action", "login"),
        flow = hidden("flow", f.flow),
        csrf = hidden("csrf", f.csrf),
        hint = escape(f.login_hint.unwrap_or("")),
        providers = provider_buttons(f.providers),
    );
    page(tenant, status, "Sign in", &body)
}

/// The consent form.
pub struct ConsentForm<'a> {
    /// Where the form posts.
    pub action: &'a str,
    /// Name of the application asking.
    pub client_name: &'a str,
    /// Who is signed in.
    pub user_email: &'a str,
    /// Scopes asked for.
    pub scopes: &'a [String],
    /// Sealed request state.
    pub flow: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
}

fn describe_scope(s: &str) -> String {
    match s {
        "openid" => "Sign you in with your account".into(),
        "profile" => "See your name and profile".into(),
        "email" => "See your email address".into(),
        "phone" => "See your phone number".into(),
        "offline_access" => "Stay connected when you are not using it".into(),
        other => format!("Access: {}", escape(other)),
    }
}

/// Renders the consent page.
pub fn consent(tenant: &Tenant, f: &ConsentForm<'_>) -> Response {
    let items: String = f
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>", describe_scope(s)))
        .collect();
    let body = format!(
        r#"<p><strong>{client}</strong> would like to:</p>
<ul class="scopes">{items}</ul>
<p>Signed in as {user}.</p>
<form method="post" action="{action}">
{action_field}{flow}{csrf}
<button id="allow" type="submit" name="decision" value="allow">Allow</button>
<button id="deny" class="secondary" type="submit" name="decision" value="deny">Deny</button>
</form>"#,
        client = escape(f.client_name),
        user = escape(f.user_email),
        action = escape(f.action),
        action_field = hidden("action", "consent"),
        flow = hidden("flow", f.flow),
        csrf = hidden("csrf", f.csrf),
    );
    page(tenant, StatusCode::OK, "Allow access", &body)
}

/// An error page (never a redirect to an unverified client).
pub fn error(tenant: &Tenant, status: StatusCode, detail: &str) -> Response {
    let body = format!(
        r#"<div class="error" role="alert" id="error">{}</div><p>Return to the application and try again.</p>"#,
        escape(detail)
    );
    page(tenant, status, "Something went wrong", &body)
}

/// Asks the user to confirm signing out.
pub fn logout_confirm(
    tenant: &Tenant,
    action: &str,
    fields: &[(String, String)],
    csrf: &str,
) -> Response {
    let hidden_fields: String = fields.iter().map(|(k, v)| hidden(k, v)).collect();
    let body = format!(
        r#"<p>Do you want to sign out?</p>
<form method="post" action="{action}">
{hidden_fields}{confirm}{csrf}
<button id="logout" type="submit">Sign out</button>
</form>"#,
        action = escape(action),
        confirm = hidden("confirm", "yes"),
        csrf = hidden("csrf", csrf),
    );
    page(tenant, StatusCode::OK, "Sign out", &body)
}

/// Confirms the user is signed out.
pub fn signed_out(tenant: &Tenant) -> Response {
    page(
        tenant,
        StatusCode::OK,
        "You are signed out",
        r#"<p id="signed-out">You can close this window.</p>"#,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
    }
}
