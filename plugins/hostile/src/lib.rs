//! `hostile` (jwt-customizer + input-validator): misbehaves on purpose so
//! the host's sandbox, limits and failure policies can be tested. The
//! behaviour is chosen by the configuration's `mode` and applies to both
//! categories:
//!
//! | mode | jwt-customizer `customize` | input-validator `validate` |
//! | --- | --- | --- |
//! | `ok` | adds claim `hostile` = `"ok"` | no violations |
//! | `loop` | infinite loop (deadline / epoch interruption) | same |
//! | `fuel` | long finite compute (`iterations`, default 10⁹), then the result as claim `hostile_fuel` | same, result as a violation |
//! | `memory` | allocates 1 MiB chunks without bound | same |
//! | `stack` | unbounded recursion | same |
//! | `panic` | panics (a trap) | same |
//! | `big-output` | `size_kib` (default 8 MiB, ≈ 1 fuel per byte) of claims | `size_kib` of violation messages |
//! | `malformed` | a claim whose value is not valid JSON | 1,000 violations (over the 64 the host keeps) with an empty code |
//! | `read-file` | tries `std::fs::read(path)`; claim `hostile_read_file` = `{"ok": bool, "error"?: text, "bytes"?: n}` | same report as violation `read_file_ok` / `read_file_failed` |
//! | `http` | sends GET `url` to an ungranted host; claim `hostile_http` = `{"ok": bool, "error"?: text, "status"?: n}` | same report as violation `http_ok` / `http_failed` |
//! | `sleep` | blocks `sleep_ms` in a WASI clock wait (a host call, not Wasm code) | same |
//! | `error` | returns `plugin-error::unavailable` (`hostile_error`) | same |
//! | `init-error` | `Plugin::new` fails with `misconfigured` (`hostile_init_error`) | same |
//!
//! Every loop and recursion goes through `std::hint::black_box`, so the
//! optimiser cannot remove or shorten it.

use std::hint::black_box;

use serde::Deserialize;
use serde_json::json;
use vaultaris_plugin_sdk::host::http;
use vaultaris_plugin_sdk::jwt::{Claim, Customization, JwtCustomizer, TokenRequest};
use vaultaris_plugin_sdk::validation::{InputValidator, ValidationRequest, Violation};
use vaultaris_plugin_sdk::{CallContext, Json, Plugin, PluginError, export_plugin, parse_config};

/// The behaviour, from the configuration's `mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Behave normally.
    Ok,
    /// Loop forever.
    Loop,
    /// Long finite compute.
    Fuel,
    /// Allocate without bound.
    Memory,
    /// Recurse without bound.
    Stack,
    /// Panic.
    Panic,
    /// Return about `size_kib` of output.
    BigOutput,
    /// Return output the host must reject.
    Malformed,
    /// Try to read a file.
    ReadFile,
    /// Try outbound HTTP to an ungranted host.
    Http,
    /// Block in a WASI clock wait.
    Sleep,
    /// Return a plugin error.
    Error,
    /// Fail in `Plugin::new`.
    InitError,
}

fn default_iterations() -> u64 {
    1_000_000_000
}
/// 8 MiB: about 8.6M fuel, so it fits the jwt-customizer's default 10M
/// fuel and the output-size limit is what stops it.
fn default_size_kib() -> u64 {
    8 * 1024
}
fn default_path() -> String {
    "/etc/passwd".to_owned()
}
fn default_url() -> String {
    "https://ungranted.example/".to_owned()
}
fn default_sleep_ms() -> u64 {
    10_000
}

/// The plugin's configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hostile {
    mode: Mode,
    #[serde(default = "default_iterations")]
    iterations: u64,
    #[serde(default = "default_size_kib")]
    size_kib: u64,
    #[serde(default = "default_path")]
    path: String,
    #[serde(default = "default_url")]
    url: String,
    #[serde(default = "default_sleep_ms")]
    sleep_ms: u64,
}

impl Plugin for Hostile {
    fn new(config: serde_json::Value) -> Result<Self, PluginError> {
        let h: Hostile = parse_config(config)?;
        if h.mode == Mode::InitError {
            return Err(PluginError::misconfigured(
                "hostile_init_error",
                "init-error mode",
            ));
        }
        Ok(h)
    }
}

/// Spins forever; `black_box` keeps every iteration.
fn spin_forever() -> ! {
    let mut x = 0u64;
    loop {
        x = black_box(x.wrapping_add(1));
    }
}

/// A xorshift-style mix, `iterations` times.
fn burn(iterations: u64) -> u64 {
    let mut x = black_box(0x9E37_79B9_7F4A_7C15u64);
    let mut i = 0;
    while i < black_box(iterations) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = black_box(x);
        i += 1;
    }
    x
}

/// Allocates 1 MiB blocks (uninitialised, so nothing fills them) and
/// touches one byte per 4 KiB page, until allocation fails (a trap). Cheap
/// in fuel, so the memory limit is what stops it.
fn exhaust_memory() -> usize {
    const BLOCK: usize = 1 << 20;
    let layout = std::alloc::Layout::from_size_align(BLOCK, 4096).expect("valid layout");
    let mut blocks = 0usize;
    loop {
        // SAFETY: `layout` has a non-zero size; the block is only written
        // within its bounds and deliberately never freed.
        let block = unsafe { std::alloc::alloc(layout) };
        if block.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        for offset in (0..BLOCK).step_by(4096) {
            // SAFETY: `offset < BLOCK`, inside the allocation.
            unsafe { block.add(offset).write_volatile(1) };
        }
        blocks = black_box(blocks + 1);
        if blocks == usize::MAX {
            return blocks;
        }
    }
}

/// Recurses until the stack overflows (a trap); the frame holds a buffer so
/// each level costs real stack.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth as u8; 256]);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    black_box(recurse(black_box(depth + 1))).wrapping_add(u64::from(frame[0]))
}

/// What a probe (file read, HTTP request) found.
fn report_file(path: &str) -> serde_json::Value {
    match std::fs::read(path) {
        Ok(bytes) => json!({"ok": true, "bytes": bytes.len()}),
        Err(e) => json!({"ok": false, "error": e.to_string()}),
    }
}

fn report_http(url: &str) -> serde_json::Value {
    match http::send(&http::Request::get(url).timeout_ms(1_000)) {
        Ok(r) => json!({"ok": true, "status": r.status}),
        Err(e) => json!({"ok": false, "error": e.to_string(), "kind": format!("{e:?}")}),
    }
}

/// The outcome of the common part of both exports.
enum Outcome {
    /// A named report for the caller to encode.
    Report(&'static str, serde_json::Value),
    /// Behave as each category's `ok` / `big-output` / `malformed`.
    Normal,
}

impl Hostile {
    fn act(&self) -> Result<Outcome, PluginError> {
        match self.mode {
            Mode::Ok | Mode::BigOutput | Mode::Malformed | Mode::InitError => Ok(Outcome::Normal),
            Mode::Loop => spin_forever(),
            Mode::Fuel => Ok(Outcome::Report("fuel", json!(burn(self.iterations)))),
            Mode::Memory => Ok(Outcome::Report("memory", json!(exhaust_memory()))),
            Mode::Stack => Ok(Outcome::Report("stack", json!(recurse(0)))),
            Mode::Panic => panic!("hostile plugin panics on purpose"),
            Mode::ReadFile => Ok(Outcome::Report("read_file", report_file(&self.path))),
            Mode::Http => Ok(Outcome::Report("http", report_http(&self.url))),
            Mode::Sleep => {
                std::thread::sleep(std::time::Duration::from_millis(self.sleep_ms));
                Ok(Outcome::Report("sleep", json!(self.sleep_ms)))
            }
            Mode::Error => Err(PluginError::unavailable("hostile_error", "error mode")),
        }
    }

    /// JSON string literals of 64 KiB (`"xxx…"`) adding up to about
    /// `size_kib`, each made by one `memset` and no copy, so the call stays
    /// cheap in fuel and the output limit is what stops it.
    fn big_pieces(&self) -> impl Iterator<Item = String> {
        const PIECE: usize = 64 * 1024;
        (0..self.size_kib.div_ceil(64)).map(|_| {
            let mut bytes = vec![b'x'; PIECE];
            bytes[0] = b'"';
            bytes[PIECE - 1] = b'"';
            // SAFETY: every byte is ASCII.
            unsafe { String::from_utf8_unchecked(bytes) }
        })
    }
}

impl JwtCustomizer for Hostile {
    fn customize(
        &self,
        _ctx: &CallContext,
        _request: TokenRequest,
    ) -> Result<Customization, PluginError> {
        let add = match self.act()? {
            Outcome::Report(name, value) => vec![Claim::new(format!("hostile_{name}"), &value)],
            Outcome::Normal => match self.mode {
                Mode::BigOutput => self
                    .big_pieces()
                    .enumerate()
                    .map(|(i, text)| Claim {
                        name: format!("hostile_big_{i}"),
                        value: Json::from_raw(text),
                    })
                    .collect(),
                Mode::Malformed => vec![Claim {
                    name: "hostile_malformed".to_owned(),
                    value: Json::from_raw("{\"unterminated\": [1, 2"),
                }],
                _ => vec![Claim::new("hostile", &json!("ok"))],
            },
        };
        Ok(Customization {
            add,
            remove: Vec::new(),
        })
    }
}

impl InputValidator for Hostile {
    fn validate(
        &self,
        _ctx: &CallContext,
        _request: ValidationRequest,
    ) -> Result<Vec<Violation>, PluginError> {
        Ok(match self.act()? {
            Outcome::Report(name, value) => {
                let ok = value.get("ok").and_then(|v| v.as_bool());
                let code = match ok {
                    Some(true) => format!("{name}_ok"),
                    Some(false) => format!("{name}_failed"),
                    None => format!("hostile_{name}"),
                };
                vec![Violation::new("", code, value.to_string())]
            }
            Outcome::Normal => match self.mode {
                Mode::BigOutput => self
                    .big_pieces()
                    .map(|text| Violation::new("", "hostile_big", text))
                    .collect(),
                Mode::Malformed => (0..1000)
                    .map(|i| Violation::new(format!("f{i}"), "", ""))
                    .collect(),
                _ => Vec::new(),
            },
        })
    }
}

export_plugin!(Hostile: jwt_customizer, input_validator);

#[cfg(test)]
mod tests {
    use super::*;
    use vaultaris_plugin_sdk::jwt::TokenKind;
    use vaultaris_plugin_sdk::validation::Operation;

    fn token() -> TokenRequest {
        TokenRequest {
            kind: TokenKind::Access,
            subject: Some("u".into()),
            client_id: "c".into(),
            grant_type: "authorization_code".into(),
            scopes: vec![],
            audience: vec![],
            subject_attributes: vec![],
            claims: vec![],
        }
    }

    fn validation() -> ValidationRequest {
        ValidationRequest {
            operation: Operation::UserCreate,
            user_id: None,
            fields: vec![],
            changed: vec![],
            locales: vec![],
        }
    }

    fn plugin(config: serde_json::Value) -> Hostile {
        Hostile::new(config).unwrap()
    }

    #[test]
    fn manifest_matches_exports() {
        vaultaris_plugin_sdk::testing::check_manifest::<Hostile>(include_str!("../manifest.json"))
            .unwrap();
    }

    #[test]
    fn manifest_lists_every_mode() {
        let m: serde_json::Value = serde_json::from_str(include_str!("../manifest.json")).unwrap();
        for mode in m["config_schema"]["properties"]["mode"]["enum"]
            .as_array()
            .unwrap()
        {
            let parsed = parse_config::<Hostile>(json!({"mode": mode}));
            assert!(parsed.is_ok(), "mode {mode} must parse");
        }
    }

    #[test]
    fn ok_mode_is_normal() {
        let p = plugin(json!({"mode": "ok"}));
        let c = p.customize(&CallContext::for_tests(), token()).unwrap();
        assert_eq!(c.add, vec![Claim::new("hostile", &json!("ok"))]);
        assert!(
            p.validate(&CallContext::for_tests(), validation())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn fuel_mode_terminates_with_small_iteration_counts() {
        let p = plugin(json!({"mode": "fuel", "iterations": 1000}));
        let c = p.customize(&CallContext::for_tests(), token()).unwrap();
        assert_eq!(c.add[0].name, "hostile_fuel");
        assert_eq!(c.add[0].value.value().unwrap(), json!(burn(1000)));
    }

    #[test]
    fn big_output_is_about_the_requested_size() {
        let p = plugin(json!({"mode": "big-output", "size_kib": 256}));
        let c = p.customize(&CallContext::for_tests(), token()).unwrap();
        let total: usize = c.add.iter().map(|c| c.value.as_str().len()).sum();
        assert_eq!(total, 256 * 1024);
        assert!(
            c.add.iter().all(|c| c.value.value().is_ok()),
            "valid JSON strings"
        );
        let v = p.validate(&CallContext::for_tests(), validation()).unwrap();
        assert_eq!(v.len(), 4);
        // the default is 8 MiB
        assert_eq!(
            plugin(json!({"mode": "big-output"})).big_pieces().count(),
            128
        );
    }

    #[test]
    fn malformed_mode_returns_invalid_json() {
        let p = plugin(json!({"mode": "malformed"}));
        let c = p.customize(&CallContext::for_tests(), token()).unwrap();
        assert!(c.add[0].value.value().is_err());
        assert_eq!(
            p.validate(&CallContext::for_tests(), validation())
                .unwrap()
                .len(),
            1000
        );
    }

    #[test]
    fn read_file_and_http_report_outcomes() {
        let p = plugin(json!({"mode": "read-file", "path": "/definitely/not/here"}));
        let c = p.customize(&CallContext::for_tests(), token()).unwrap();
        let report = c.add[0].value.value().unwrap();
        assert_eq!(report["ok"], json!(false));
        let v = p.validate(&CallContext::for_tests(), validation()).unwrap();
        assert_eq!(v[0].code, "read_file_failed");

        // A mock host that grants nothing refuses the host, as the real one does.
        let host = std::sync::Arc::new(vaultaris_plugin_sdk::testing::MockHost::new());
        let p = plugin(json!({"mode": "http"}));
        let c = vaultaris_plugin_sdk::testing::with_host(host, || {
            p.customize(&CallContext::for_tests(), token())
        })
        .unwrap();
        let report = c.add[0].value.value().unwrap();
        assert_eq!(report["ok"], json!(false));
        assert!(
            report["kind"].as_str().unwrap().starts_with("DeniedHost"),
            "{report}"
        );
    }

    #[test]
    fn error_modes() {
        let p = plugin(json!({"mode": "error"}));
        let e = p.customize(&CallContext::for_tests(), token()).unwrap_err();
        assert_eq!((e.kind(), e.code()), ("unavailable", "hostile_error"));
        let e = Hostile::new(json!({"mode": "init-error"})).err().unwrap();
        assert_eq!(e.code(), "hostile_init_error");
        let e = Hostile::new(json!({"mode": "nope"})).err().unwrap();
        assert_eq!(e.code(), "invalid_config");
    }

    #[test]
    fn panic_mode_panics() {
        let p = plugin(json!({"mode": "panic"}));
        let r = std::panic::catch_unwind(|| p.customize(&CallContext::for_tests(), token()));
        assert!(r.is_err());
    }
}
