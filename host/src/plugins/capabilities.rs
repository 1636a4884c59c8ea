//! The host side of the capability imports (`logging`, `config`,
//! `key-value`, `outbound-http`, `clock`, `random`) for contract 0.1.0.
//!
//! Security decisions:
//! - `key-value` and `outbound-http` are linked into every instance but
//!   answer `denied` unless the activation was granted them, so any
//!   toolchain's component instantiates and a plugin learns at call time,
//!   with a typed error, what it may not do.
//! - Outbound HTTP goes only to granted hosts (manifest ∩ operator
//!   allow-list), never follows redirects (a redirect could lead anywhere:
//!   a 3xx is handed to the plugin, and a request it makes to the new
//!   location passes every check again), reads at most 1 MiB, makes at most
//!   8 requests per call, and never outlives the call's deadline.
//! - Server-side request forgery: a granted *name* is not trusted to point
//!   where the operator thinks. The host resolves it itself and refuses the
//!   request if any address is loopback, private (RFC 1918, fc00::/7,
//!   CGNAT 100.64.0.0/10, other non-global unicast), link-local
//!   (169.254.0.0/16 with the cloud metadata service, fe80::/10),
//!   unspecified, broadcast, multicast or reserved, IPv4-mapped and other
//!   IPv4-embedding IPv6 forms included.
//!   `PLUGIN_HTTP_ALLOW_PRIVATE_NETWORKS` admits loopback and private
//!   addresses; link-local and non-unicast addresses stay refused for
//!   names (the metadata service is the classic SSRF target). The
//!   connection goes to exactly the addresses that were checked: the check
//!   runs inside the client's DNS resolver (`GuardedResolver`), so nothing
//!   can re-resolve between check and connect (DNS rebinding), and pooled
//!   connections were checked when they were opened.
//! - An IP-literal URL host skips resolution; it is admitted when the
//!   operator listed that address verbatim in `PLUGIN_HTTP_ALLOWED_HOSTS`
//!   (the operator named it: e.g. `127.0.0.1` for a local stand-in), and
//!   otherwise classified like a resolved address (an address granted only
//!   through `*` is not named by the operator).
//! - Plain `http://` only where cleartext cannot cross a network or the
//!   operator named the address: loopback (`localhost`, `*.localhost`,
//!   loopback literals) and IP literals listed verbatim. Every other host
//!   needs `https://`.
//! - Logging is rate-limited per call and attributed to tenant and plugin;
//!   a plugin cannot forge other log fields.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngCore;

use super::bindings::v0_1_0::caps::vaultaris::plugin::{
    clock, config, key_value, logging, outbound_http, random, types,
};
use super::kv::{KvFailure, check_key};
use super::manifest::host_matches;
use super::state::{
    MAX_HTTP_REQUESTS_PER_CALL, MAX_HTTP_RESPONSE_BYTES, MAX_LOG_LINES_PER_CALL, PluginState,
};

impl types::Host for PluginState {}

impl logging::Host for PluginState {
    async fn log(&mut self, level: logging::Level, message: String, fields: Vec<types::KeyValue>) {
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES_PER_CALL {
            return;
        }
        let mut message = message;
        truncate(&mut message, 1024);
        // Bounded and escaped: keys and values are cut and printed with
        // `{:?}`, so a plugin cannot forge log lines or flood the log.
        let clip = |s: &str, n: usize| s.chars().take(n).collect::<String>();
        let fields: String = fields
            .iter()
            .take(16)
            .map(|kv| format!("{:?}={:?} ", clip(&kv.key, 64), clip(&kv.value, 512)))
            .collect();
        let message = message.escape_debug().to_string();
        let a = &self.activation;
        macro_rules! emit {
            ($lvl:ident) => {
                tracing::$lvl!(target: "vaultaris::plugin", tenant = %a.tenant_id, plugin = %a.plugin_id,
                    request_id = %self.request_id, fields = %fields.trim_end(), "{message}")
            };
        }
        match level {
            logging::Level::Trace => emit!(trace),
            logging::Level::Debug => emit!(debug),
            logging::Level::Info => emit!(info),
            logging::Level::Warn => emit!(warn),
            logging::Level::Error => emit!(error),
        }
    }
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

impl config::Host for PluginState {
    async fn get_all(&mut self) -> String {
        self.activation.config_json.clone()
    }

    async fn get(&mut self, key: String) -> Option<String> {
        self.activation.config.get(&key).map(|v| v.to_string())
    }
}

fn kv_error(e: KvFailure) -> key_value::KvError {
    match e {
        KvFailure::InvalidKey => key_value::KvError::InvalidKey,
        KvFailure::ValueTooLarge => key_value::KvError::ValueTooLarge,
        KvFailure::QuotaExceeded => key_value::KvError::QuotaExceeded,
        KvFailure::NotACounter => key_value::KvError::NotACounter,
        KvFailure::Unavailable(m) => key_value::KvError::Unavailable(m),
    }
}

impl PluginState {
    fn kv_allowed(&self, key: &str) -> Result<(), key_value::KvError> {
        if !self.activation.key_value {
            return Err(key_value::KvError::Denied);
        }
        check_key(key).map_err(kv_error)
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// Runs a backend operation no longer than the call's remaining time.
async fn bounded<T>(
    remaining: Duration,
    f: impl Future<Output = Result<T, KvFailure>>,
) -> Result<T, key_value::KvError> {
    match tokio::time::timeout(remaining, f).await {
        Ok(r) => r.map_err(kv_error),
        Err(_) => Err(key_value::KvError::Unavailable("deadline reached".into())),
    }
}

impl key_value::Host for PluginState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, key_value::KvError> {
        self.kv_allowed(&key)?;
        let a = self.activation.clone();
        bounded(self.remaining(), a.kv.get(a.tenant_id, &a.plugin_id, &key)).await
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl: Option<u64>,
    ) -> Result<(), key_value::KvError> {
        self.kv_allowed(&key)?;
        let a = self.activation.clone();
        let ttl = ttl.map(Duration::from_millis);
        bounded(
            self.remaining(),
            a.kv.set(a.tenant_id, &a.plugin_id, &key, &value, ttl),
        )
        .await
    }

    async fn delete(&mut self, key: String) -> Result<bool, key_value::KvError> {
        self.kv_allowed(&key)?;
        let a = self.activation.clone();
        bounded(
            self.remaining(),
            a.kv.delete(a.tenant_id, &a.plugin_id, &key),
        )
        .await
    }

    async fn list_prefix(
        &mut self,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<key_value::KeyPage, key_value::KvError> {
        if !self.activation.key_value {
            return Err(key_value::KvError::Denied);
        }
        let a = self.activation.clone();
        let page = bounded(
            self.remaining(),
            a.kv.list_prefix(
                a.tenant_id,
                &a.plugin_id,
                &prefix,
                cursor.as_deref(),
                limit.clamp(1, 1000),
            ),
        )
        .await?;
        Ok(key_value::KeyPage {
            keys: page.keys,
            next_cursor: page.next_cursor,
        })
    }

    async fn increment(
        &mut self,
        key: String,
        delta: i64,
        ttl_if_created: Option<u64>,
    ) -> Result<i64, key_value::KvError> {
        self.kv_allowed(&key)?;
        let a = self.activation.clone();
        let ttl = ttl_if_created.map(Duration::from_millis);
        bounded(
            self.remaining(),
            a.kv.increment(a.tenant_id, &a.plugin_id, &key, delta, ttl),
        )
        .await
    }
}

/// What an address is, for outbound HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Globally routable unicast: always reachable.
    Public,
    /// 127.0.0.0/8, ::1 (and their IPv4-embedding forms).
    Loopback,
    /// RFC 1918, fc00::/7, CGNAT 100.64.0.0/10 and other non-global
    /// unicast ranges (benchmarking, documentation, IETF assignments,
    /// deprecated site-local, NAT64 local use, discard-only).
    Private,
    /// 169.254.0.0/16 (the cloud metadata service 169.254.169.254 among
    /// them), fe80::/10.
    LinkLocal,
    /// Unspecified (0.0.0.0/8, ::), broadcast, multicast, reserved
    /// (240.0.0.0/4): never a legitimate peer (0.0.0.0 even reaches the
    /// local host on Linux).
    NonUnicast,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Public => "a public address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private-network address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::NonUnicast => "a non-unicast or reserved address",
        })
    }
}

/// Classifies an address, looking through IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4
/// (`2002::/16`) forms to the IPv4 address they carry.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, ..) => AddressClass::NonUnicast,
        (127, ..) => AddressClass::Loopback,
        (169, 254, _) => AddressClass::LinkLocal,
        (224..=255, ..) => AddressClass::NonUnicast,
        (10, ..)
        | (172, 16..=31, _)
        | (192, 168, _)
        | (100, 64..=127, _)
        | (192, 0, 0)
        | (192, 0, 2)
        | (198, 18..=19, _)
        | (198, 51, 100)
        | (203, 0, 113) => AddressClass::Private,
        _ => AddressClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    if ip.is_unspecified() {
        return AddressClass::NonUnicast;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // IPv4-mapped ::ffff:0:0/96 and IPv4-compatible ::/96.
        [0, 0, 0, 0, 0, 0xffff | 0, hi, lo] => classify_v4(embedded(hi, lo)),
        // NAT64 well-known prefix 64:ff9b::/96.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => classify_v4(embedded(hi, lo)),
        // 6to4 2002::/16 carries the IPv4 address in bits 16..48.
        [0x2002, hi, lo, ..] => match classify_v4(embedded(hi, lo)) {
            AddressClass::Public => AddressClass::Public,
            _ => AddressClass::Private,
        },
        [first, ..] if first & 0xff00 == 0xff00 => AddressClass::NonUnicast,
        [first, ..] if first & 0xffc0 == 0xfe80 => AddressClass::LinkLocal,
        [first, ..] if first & 0xfe00 == 0xfc00 => AddressClass::Private,
        // Deprecated site-local fec0::/10, documentation 2001:db8::/32,
        // NAT64 local use 64:ff9b:1::/48, discard-only 100::/64.
        [first, ..] if first & 0xffc0 == 0xfec0 => AddressClass::Private,
        [0x2001, 0x0db8, ..] | [0x64, 0xff9b, 1, ..] | [0x100, 0, 0, 0, ..] => {
            AddressClass::Private
        }
        _ => AddressClass::Public,
    }
}

/// Whether `host` is `localhost` or a name under it (RFC 6761: always
/// the loopback interface; the resolver answers these itself).
fn is_localhost_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

/// Why the outbound-HTTP policy refuses a request before sending it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The URL's IP-literal host is of a class the policy refuses.
    Address(AddressClass),
    /// Plain `http://` to a host that is neither loopback nor an IP
    /// address the operator listed verbatim.
    PlainHttp,
}

/// What the operator decides about outbound HTTP beyond the per-plugin
/// grant (which `ActivationContext::http_hosts` carries).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// `PLUGIN_HTTP_ALLOWED_HOSTS` as the operator wrote it: IP literals
    /// listed here verbatim are admitted whatever their class.
    pub allowed_hosts: Vec<String>,
    /// `PLUGIN_HTTP_ALLOW_PRIVATE_NETWORKS`: loopback and private addresses
    /// are admitted too (link-local and non-unicast ones never are, unless
    /// listed verbatim as IP literals).
    pub allow_private_networks: bool,
}

impl OutboundPolicy {
    /// Whether the operator listed `ip` itself (as `ip` or `ip:port`, the
    /// port then matching `port`).
    pub fn lists_verbatim(&self, ip: IpAddr, port: u16) -> bool {
        self.allowed_hosts.iter().any(|entry| {
            let entry = entry.trim();
            if let Ok(listed) = entry
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
            {
                return listed == ip;
            }
            entry
                .parse::<SocketAddr>()
                .is_ok_and(|sa| sa.ip() == ip && sa.port() == port)
        })
    }

    /// Whether an address of `class` may be reached through a name (or an
    /// IP literal the operator did not list).
    pub fn admits_class(&self, class: AddressClass) -> bool {
        match class {
            AddressClass::Public => true,
            AddressClass::Loopback | AddressClass::Private => self.allow_private_networks,
            AddressClass::LinkLocal | AddressClass::NonUnicast => false,
        }
    }

    /// The checks that need no name resolution, for a URL whose host the
    /// plugin was granted: an IP-literal host's class, and the scheme.
    /// Names are checked when they are resolved (`GuardedResolver`).
    pub fn admits(&self, url: &url::Url) -> Result<(), Refusal> {
        let port = url.port_or_known_default().unwrap_or(0);
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        let verbatim = literal.is_some_and(|ip| self.lists_verbatim(ip, port));
        if let Some(ip) = literal
            && !verbatim
        {
            let class = classify(ip);
            if !self.admits_class(class) {
                return Err(Refusal::Address(class));
            }
        }
        if url.scheme() == "http" {
            let loopback = match literal {
                Some(ip) => classify(ip) == AddressClass::Loopback,
                None => is_localhost_name(url.host_str().unwrap_or_default()),
            };
            if !(verbatim || loopback) {
                return Err(Refusal::PlainHttp);
            }
        }
        Ok(())
    }
}

/// A name resolved to an address the policy refuses (the resolver's error,
/// found again in the request error's source chain).
#[derive(Debug, thiserror::Error)]
#[error("{name} resolves to {class} ({addr})")]
struct BlockedAddress {
    name: String,
    addr: IpAddr,
    class: AddressClass,
}

/// The outbound client's DNS resolver: resolves with the system resolver
/// (`localhost` names straight to loopback), and fails the connection if
/// any address is one the policy refuses. reqwest connects to exactly the
/// addresses returned here; IP-literal hosts never reach it.
#[derive(Debug)]
struct GuardedResolver {
    policy: OutboundPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_string();
        let policy = self.policy.clone();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = if is_localhost_name(&name) {
                vec![
                    SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                    SocketAddr::from((Ipv6Addr::LOCALHOST, 0)),
                ]
            } else {
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect()
            };
            // Every address must pass: the connector may try any of them.
            for a in &addrs {
                let class = classify(a.ip());
                if !policy.admits_class(class) {
                    return Err(Box::new(BlockedAddress {
                        name,
                        addr: a.ip(),
                        class,
                    })
                        as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The operator's outbound-HTTP policy and the client that enforces it
/// (its resolver refuses what the policy refuses), shared by every
/// activation of a runtime.
#[derive(Debug)]
pub struct OutboundHttp {
    /// The policy.
    pub policy: OutboundPolicy,
    client: reqwest::Client,
}

impl OutboundHttp {
    /// Builds the client for `policy`.
    pub fn new(policy: OutboundPolicy) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("vaultaris-plugin/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .build()?;
        Ok(Self { policy, client })
    }
}

/// The `BlockedAddress` behind a failed request, if that is why it failed.
fn blocked_address(e: &reqwest::Error) -> Option<&BlockedAddress> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(b) = s.downcast_ref::<BlockedAddress>() {
            return Some(b);
        }
        source = s.source();
    }
    None
}

impl PluginState {
    fn refuse_outbound(&self, host: &str, reason: &dyn fmt::Display) {
        let a = &self.activation;
        tracing::warn!(target: "vaultaris::plugin", tenant = %a.tenant_id, plugin = %a.plugin_id,
            request_id = %self.request_id, host = %host, reason = %reason,
            "outbound HTTP refused by the operator's policy");
    }
}

impl outbound_http::Host for PluginState {
    async fn send(
        &mut self,
        request: outbound_http::Request,
    ) -> Result<outbound_http::Response, outbound_http::HttpError> {
        use outbound_http::HttpError;
        let url = url::Url::parse(&request.url)
            .map_err(|e| HttpError::InvalidRequest(format!("url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::InvalidRequest("only http and https URLs".into()));
        }
        let host = url.host_str().unwrap_or_default().to_string();
        let port = url.port_or_known_default().unwrap_or(0);
        let granted = self
            .activation
            .http_hosts
            .iter()
            .any(|p| host_matches(p, host.trim_start_matches('[').trim_end_matches(']'), port));
        if !granted {
            return Err(HttpError::DeniedHost(host));
        }
        let outbound = self.activation.outbound.clone();
        match outbound.policy.admits(&url) {
            Ok(()) => {}
            Err(Refusal::Address(class)) => {
                self.refuse_outbound(&host, &class);
                return Err(HttpError::DeniedHost(format!("{host} ({class})")));
            }
            Err(Refusal::PlainHttp) => {
                let message = "plain http:// is allowed only to loopback and to IP addresses \
                               the operator lists; use https://";
                self.refuse_outbound(&host, &message);
                return Err(HttpError::InvalidRequest(message.into()));
            }
        }
        self.http_requests += 1;
        if self.http_requests > MAX_HTTP_REQUESTS_PER_CALL {
            return Err(HttpError::TooManyRequests);
        }
        let remaining = self.remaining();
        let timeout = request
            .timeout_ms
            .map(|t| Duration::from_millis(t.into()))
            .unwrap_or(remaining)
            .min(remaining);
        if timeout.is_zero() {
            return Err(HttpError::Timeout);
        }
        let method = match request.method {
            outbound_http::Method::Get => reqwest::Method::GET,
            outbound_http::Method::Head => reqwest::Method::HEAD,
            outbound_http::Method::Post => reqwest::Method::POST,
            outbound_http::Method::Put => reqwest::Method::PUT,
            outbound_http::Method::Patch => reqwest::Method::PATCH,
            outbound_http::Method::Delete => reqwest::Method::DELETE,
            outbound_http::Method::Options => reqwest::Method::OPTIONS,
        };
        let mut builder = outbound.client.request(method, url).timeout(timeout);
        for h in &request.headers {
            let name = reqwest::header::HeaderName::from_bytes(h.key.as_bytes())
                .map_err(|_| HttpError::InvalidRequest(format!("header name {:?}", h.key)))?;
            if name == reqwest::header::HOST {
                return Err(HttpError::InvalidRequest(
                    "the Host header is set by the host".into(),
                ));
            }
            let value = reqwest::header::HeaderValue::from_str(&h.value)
                .map_err(|_| HttpError::InvalidRequest(format!("header value of {:?}", h.key)))?;
            builder = builder.header(name, value);
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let mut response = match builder.send().await {
            Ok(r) => r,
            Err(e) => {
                if let Some(b) = blocked_address(&e) {
                    self.refuse_outbound(&host, b);
                    return Err(HttpError::DeniedHost(format!(
                        "{host} (resolves to {})",
                        b.class
                    )));
                }
                return Err(if e.is_timeout() {
                    HttpError::Timeout
                } else {
                    HttpError::ConnectionFailed(e.without_url().to_string())
                });
            }
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                Some(types::KeyValue {
                    key: k.as_str().to_string(),
                    value: v.to_str().ok()?.to_string(),
                })
            })
            .collect();
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_HTTP_RESPONSE_BYTES {
                        return Err(HttpError::ResponseTooLarge);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err(HttpError::Timeout),
                Err(e) => return Err(HttpError::ConnectionFailed(e.without_url().to_string())),
            }
        }
        Ok(outbound_http::Response {
            status,
            headers,
            body,
        })
    }
}

impl clock::Host for PluginState {
    async fn now(&mut self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    async fn monotonic_ns(&mut self) -> u64 {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Most random bytes one `random.bytes` call returns.
pub const MAX_RANDOM_BYTES: u32 = 64 * 1024;

impl random::Host for PluginState {
    async fn bytes(&mut self, len: u32) -> Vec<u8> {
        let mut out = vec![0u8; len.min(MAX_RANDOM_BYTES) as usize];
        rand::rngs::OsRng.fill_bytes(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classifies_addresses() {
        use AddressClass::*;
        for (addr, class) in [
            ("93.184.216.34", Public),
            ("8.8.8.8", Public),
            ("172.32.0.1", Public),
            ("100.128.0.1", Public),
            ("127.0.0.1", Loopback),
            ("127.255.0.9", Loopback),
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", Private),
            ("100.127.255.255", Private),
            ("169.254.169.254", LinkLocal),
            ("169.254.0.1", LinkLocal),
            ("0.0.0.0", NonUnicast),
            ("0.1.2.3", NonUnicast),
            ("255.255.255.255", NonUnicast),
            ("224.0.0.1", NonUnicast),
            ("239.255.255.250", NonUnicast),
            ("240.0.0.1", NonUnicast),
            ("2606:4700::1111", Public),
            ("::1", Loopback),
            ("::", NonUnicast),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("ff02::1", NonUnicast),
            // IPv4-mapped, IPv4-compatible, NAT64 and 6to4 forms.
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:0.0.0.0", NonUnicast),
            ("::ffff:8.8.8.8", Public),
            ("::127.0.0.1", Loopback),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("64:ff9b::808:808", Public),
            ("2002:7f00:1::", Private),
            ("2002:808:808::", Public),
        ] {
            assert_eq!(classify(ip(addr)), class, "{addr}");
        }
    }

    fn policy(hosts: &[&str], private: bool) -> OutboundPolicy {
        OutboundPolicy {
            allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            allow_private_networks: private,
        }
    }

    fn admits(p: &OutboundPolicy, url: &str) -> Result<(), Refusal> {
        p.admits(&url::Url::parse(url).unwrap())
    }

    #[test]
    fn ip_literals_listed_verbatim_are_admitted_others_classified() {
        let named = policy(&["127.0.0.1", "10.0.0.5:8080", "api.example.com"], false);
        assert_eq!(admits(&named, "http://127.0.0.1:9000/x"), Ok(()));
        assert_eq!(admits(&named, "https://127.0.0.1/x"), Ok(()));
        // WHATWG URL parsing normalises other spellings of the address.
        assert_eq!(admits(&named, "http://127.1:9000/"), Ok(()));
        assert_eq!(admits(&named, "http://10.0.0.5:8080/"), Ok(()));
        // Listed with a port: only that port is named.
        assert_eq!(
            admits(&named, "https://10.0.0.5:8443/"),
            Err(Refusal::Address(AddressClass::Private))
        );
        // Granted only through `*`: the operator did not name the address.
        let star = policy(&["*"], false);
        assert_eq!(
            admits(&star, "https://127.0.0.1/"),
            Err(Refusal::Address(AddressClass::Loopback))
        );
        assert_eq!(
            admits(&star, "https://0x7f.1/"),
            Err(Refusal::Address(AddressClass::Loopback))
        );
        assert_eq!(
            admits(&star, "https://169.254.169.254/latest/meta-data/"),
            Err(Refusal::Address(AddressClass::LinkLocal))
        );
        assert_eq!(
            admits(&star, "https://[::ffff:a9fe:a9fe]/"),
            Err(Refusal::Address(AddressClass::LinkLocal))
        );
        assert_eq!(admits(&star, "https://8.8.8.8/"), Ok(()));
        // Private networks allowed: loopback and private, never link-local.
        let private = policy(&["*"], true);
        assert_eq!(admits(&private, "https://10.1.1.1/"), Ok(()));
        assert_eq!(admits(&private, "https://127.0.0.1/"), Ok(()));
        assert_eq!(
            admits(&private, "https://169.254.169.254/"),
            Err(Refusal::Address(AddressClass::LinkLocal))
        );
        assert_eq!(
            admits(&private, "https://0.0.0.0/"),
            Err(Refusal::Address(AddressClass::NonUnicast))
        );
        // ... unless the operator names that address.
        let metadata = policy(&["169.254.169.254"], false);
        assert_eq!(admits(&metadata, "http://169.254.169.254/"), Ok(()));
    }

    #[test]
    fn plain_http_only_to_loopback_or_named_addresses() {
        let p = policy(&["*", "203.0.113.7"], true);
        assert_eq!(admits(&p, "https://api.example.com/"), Ok(()));
        assert_eq!(
            admits(&p, "http://api.example.com/"),
            Err(Refusal::PlainHttp)
        );
        assert_eq!(admits(&p, "http://localhost:8080/"), Ok(()));
        assert_eq!(admits(&p, "http://app.localhost./"), Ok(()));
        assert_eq!(admits(&p, "http://127.0.0.1/"), Ok(()));
        assert_eq!(admits(&p, "http://[::1]:80/"), Ok(()));
        assert_eq!(admits(&p, "http://203.0.113.7/"), Ok(()));
        assert_eq!(admits(&p, "http://10.0.0.1/"), Err(Refusal::PlainHttp));
        assert_eq!(admits(&p, "http://8.8.8.8/"), Err(Refusal::PlainHttp));
        // Names are checked at resolution: nothing to refuse here.
        assert_eq!(admits(&policy(&[], false), "https://localhost/"), Ok(()));
    }

    #[test]
    fn verbatim_entries() {
        let p = policy(
            &["127.0.0.1", "10.0.0.1:8080", "[::1]", "[fe80::1]:443", "*"],
            false,
        );
        assert!(p.lists_verbatim(ip("127.0.0.1"), 1));
        assert!(p.lists_verbatim(ip("10.0.0.1"), 8080));
        assert!(!p.lists_verbatim(ip("10.0.0.1"), 80));
        assert!(p.lists_verbatim(ip("::1"), 80));
        assert!(p.lists_verbatim(ip("fe80::1"), 443));
        assert!(!p.lists_verbatim(ip("127.0.0.2"), 80));
    }

    /// The resolver refuses names resolving to refused addresses before
    /// any connection, and the refusal is found in the request's error.
    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_at_connect() {
        let client = OutboundHttp::new(OutboundPolicy::default()).unwrap().client;
        let err = client
            .get("http://localhost:9/")
            .send()
            .await
            .expect_err("refused");
        let blocked = blocked_address(&err).expect("refused by the resolver");
        assert_eq!(blocked.class, AddressClass::Loopback);
        assert_eq!(blocked.name, "localhost");

        // With private networks allowed the same name connects (here: to
        // a listener of this test).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/\r\ncontent-length: 0\r\n\r\n")
                .await;
        });
        let open = OutboundPolicy {
            allowed_hosts: vec![],
            allow_private_networks: true,
        };
        let client = OutboundHttp::new(open.clone()).unwrap().client;
        let res = client
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap();
        // Redirects are handed back, never followed.
        assert_eq!(res.status().as_u16(), 302);
    }
}
