//! `jsonl-audit-sink` (audit-sink): appends every audit event as one JSON
//! object per line to `{directory}/{file_prefix}-{date}.jsonl`, where
//! `directory` is the plugin's own directory (the host preopens a
//! per-(tenant, plugin) directory at guest path `/data` when the manifest
//! asks for `"files": true`; a native build writes to the same directory's
//! real path, see `host::files::resolve`) and `date` is the event's UTC day
//! (`2025-01-31`), hour (`2025-01-31T13`) or nothing, after `rotate`.
//!
//! Delivery is at least once. The sink remembers the last sequence it
//! wrote (and its hash) in `{directory}/{file_prefix}.state` and skips
//! events at or below it, so a re-delivered batch is not written twice
//! (a crash between the append and the state update can still duplicate
//! lines: de-duplicate on `event_id`). A batch is acknowledged only after
//! every file was flushed (`fsync`) and the state was replaced atomically
//! (write then rename). With `verify_chain` the sink checks each event's
//! `previous_hash` against the hash of the event before it and logs an
//! error on a gap or a mismatch; it still writes the events (the audit log
//! in the database stays the source of truth).
//!
//! A line:
//!
//! ```json
//! {"tenant":"t1","event_id":"…","sequence":42,"occurred_at":1738328400000,
//!  "occurred_at_iso":"2025-01-31T13:00:00.000Z","actor_kind":"user","actor_id":"u1",
//!  "ip_address":"203.0.113.7","request_id":"r1","action":"login.succeeded",
//!  "target_kind":"user","target_id":"u1","outcome":"success","details":{},
//!  "previous_hash":"…","hash":"…"}
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vaultaris_plugin_sdk::audit::{AuditEvent, AuditSink};
use vaultaris_plugin_sdk::host::log;
use vaultaris_plugin_sdk::{CallContext, Plugin, PluginError, export_plugin, parse_config};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Rotate {
    #[default]
    Daily,
    Hourly,
    None,
}

fn default_directory() -> String {
    "/data".to_owned()
}
fn default_prefix() -> String {
    "audit".to_owned()
}
fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_directory")]
    directory: String,
    #[serde(default = "default_prefix")]
    file_prefix: String,
    #[serde(default)]
    rotate: Rotate,
    #[serde(default = "yes")]
    fsync: bool,
    #[serde(default = "yes")]
    verify_chain: bool,
}

/// What the sink remembers between batches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    last_sequence: Option<u64>,
    last_hash: Option<String>,
}

/// The plugin.
pub struct JsonlAuditSink {
    directory: PathBuf,
    prefix: String,
    rotate: Rotate,
    fsync: bool,
    verify_chain: bool,
    /// The state as last read or written; `None` until first needed.
    state: RefCell<Option<State>>,
}

impl Plugin for JsonlAuditSink {
    fn new(config: serde_json::Value) -> Result<Self, PluginError> {
        let config: Config = parse_config(config)?;
        let prefix_ok = !config.file_prefix.is_empty()
            && config.file_prefix.len() <= 64
            && config
                .file_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !prefix_ok {
            return Err(PluginError::misconfigured(
                "invalid_file_prefix",
                "file_prefix must match [A-Za-z0-9_-]{1,64}",
            ));
        }
        Ok(JsonlAuditSink {
            directory: vaultaris_plugin_sdk::host::files::resolve(&config.directory)?,
            prefix: config.file_prefix,
            rotate: config.rotate,
            fsync: config.fsync,
            verify_chain: config.verify_chain,
            state: RefCell::new(None),
        })
    }
}

/// Converts days since 1970-01-01 to (year, month, day) in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// RFC 3339 UTC text of a timestamp in ms, e.g. `2025-01-31T13:00:00.000Z`.
pub fn iso8601(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rest = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

fn io_error(what: &str, e: &std::io::Error) -> PluginError {
    match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            PluginError::misconfigured(
                "directory_unavailable",
                format!("{what}: {e} (was the plugin granted a directory?)"),
            )
        }
        _ => PluginError::unavailable("write_failed", format!("{what}: {e}")),
    }
}

impl JsonlAuditSink {
    /// The file an event belongs to.
    fn file_name(&self, occurred_at: i64) -> String {
        let iso = iso8601(occurred_at);
        match self.rotate {
            Rotate::Daily => format!("{}-{}.jsonl", self.prefix, &iso[..10]),
            Rotate::Hourly => format!("{}-{}.jsonl", self.prefix, &iso[..13]),
            Rotate::None => format!("{}.jsonl", self.prefix),
        }
    }

    fn state_path(&self) -> PathBuf {
        self.directory.join(format!("{}.state", self.prefix))
    }

    fn load_state(&self) -> Result<State, PluginError> {
        if let Some(s) = self.state.borrow().as_ref() {
            return Ok(s.clone());
        }
        let state = match std::fs::read(self.state_path()) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                log::error(&format!(
                    "audit sink state file is corrupt ({e}); starting over"
                ));
                State::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !self.directory.is_dir() {
                    return Err(io_error(
                        &format!("directory {}", self.directory.display()),
                        &std::io::Error::from(std::io::ErrorKind::NotFound),
                    ));
                }
                State::default()
            }
            Err(e) => return Err(io_error("reading the state file", &e)),
        };
        *self.state.borrow_mut() = Some(state.clone());
        Ok(state)
    }

    fn store_state(&self, state: &State) -> Result<(), PluginError> {
        let path = self.state_path();
        let tmp = self.directory.join(format!("{}.state.tmp", self.prefix));
        let text = serde_json::to_vec(state)
            .map_err(|e| PluginError::internal("state_encoding", e.to_string()))?;
        let mut f =
            std::fs::File::create(&tmp).map_err(|e| io_error("writing the state file", &e))?;
        f.write_all(&text)
            .map_err(|e| io_error("writing the state file", &e))?;
        if self.fsync {
            f.sync_all()
                .map_err(|e| io_error("syncing the state file", &e))?;
        }
        std::fs::rename(&tmp, &path).map_err(|e| io_error("replacing the state file", &e))?;
        *self.state.borrow_mut() = Some(state.clone());
        Ok(())
    }

    fn line(ctx: &CallContext, e: &AuditEvent) -> String {
        let details = e
            .details
            .value()
            .unwrap_or_else(|_| Value::from(e.details.as_str()));
        let line = json!({
            "tenant": ctx.tenant,
            "event_id": e.event_id,
            "sequence": e.sequence,
            "occurred_at": e.occurred_at,
            "occurred_at_iso": iso8601(e.occurred_at),
            "actor_kind": e.actor_kind.as_str(),
            "actor_id": e.actor_id,
            "ip_address": e.ip_address,
            "request_id": e.request_id,
            "action": e.action,
            "target_kind": e.target_kind,
            "target_id": e.target_id,
            "outcome": e.outcome.as_str(),
            "details": details,
            "previous_hash": e.previous_hash,
            "hash": e.hash,
        });
        let mut text = line.to_string();
        text.push('\n');
        text
    }
}

impl AuditSink for JsonlAuditSink {
    fn deliver(&self, ctx: &CallContext, events: Vec<AuditEvent>) -> Result<(), PluginError> {
        let mut state = self.load_state()?;
        // Group the new lines by file, keeping sequence order within each.
        let mut files: BTreeMap<String, String> = BTreeMap::new();
        let mut written = 0usize;
        for e in &events {
            if state.last_sequence.is_some_and(|last| e.sequence <= last) {
                continue;
            }
            if let (true, Some(last_seq), Some(last_hash)) = (
                self.verify_chain,
                state.last_sequence,
                state.last_hash.as_deref(),
            ) {
                if e.sequence != last_seq + 1 {
                    log::error(&format!(
                        "audit chain gap: sequence {} follows {last_seq}",
                        e.sequence
                    ));
                } else if e.previous_hash != last_hash {
                    log::error(&format!("audit chain mismatch at sequence {}", e.sequence));
                }
            }
            files
                .entry(self.file_name(e.occurred_at))
                .or_default()
                .push_str(&Self::line(ctx, e));
            state.last_sequence = Some(e.sequence);
            state.last_hash = Some(e.hash.clone());
            written += 1;
        }
        if written == 0 {
            return Ok(());
        }
        for (name, text) in &files {
            let path = self.directory.join(name);
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| io_error(&format!("opening {name}"), &e))?;
            f.write_all(text.as_bytes())
                .map_err(|e| io_error(&format!("appending to {name}"), &e))?;
            if self.fsync {
                f.sync_all()
                    .map_err(|e| io_error(&format!("syncing {name}"), &e))?;
            }
        }
        self.store_state(&state)
    }
}

export_plugin!(JsonlAuditSink: audit_sink);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use vaultaris_plugin_sdk::Json;
    use vaultaris_plugin_sdk::audit::{ActorKind, Outcome};
    use vaultaris_plugin_sdk::testing::{MockHost, with_host};

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("vaultaris-jsonl-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
        fn config(&self, extra: Value) -> Value {
            let mut c = json!({"directory": self.0.to_str().unwrap()});
            c.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            c
        }
        fn read(&self, name: &str) -> Vec<Value> {
            std::fs::read_to_string(self.0.join(name))
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn event(sequence: u64, occurred_at: i64) -> AuditEvent {
        AuditEvent {
            event_id: format!("ev-{sequence}"),
            sequence,
            occurred_at,
            actor_kind: ActorKind::User,
            actor_id: Some("u1".into()),
            ip_address: Some("203.0.113.7".into()),
            request_id: None,
            action: "login.succeeded".into(),
            target_kind: Some("user".into()),
            target_id: Some("u1".into()),
            outcome: Outcome::Success,
            details: Json::from_raw(r#"{"method":"password"}"#),
            previous_hash: format!("h{}", sequence - 1),
            hash: format!("h{sequence}"),
        }
    }

    const JAN31_2359: i64 = 1_738_367_940_000; // 2025-01-31T23:59:00Z

    #[test]
    fn manifest_matches_exports() {
        vaultaris_plugin_sdk::testing::check_manifest::<JsonlAuditSink>(include_str!(
            "../manifest.json"
        ))
        .unwrap();
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(iso8601(JAN31_2359), "2025-01-31T23:59:00.000Z");
        assert_eq!(iso8601(JAN31_2359 + 61_001), "2025-02-01T00:00:01.001Z");
    }

    #[test]
    fn writes_lines_into_daily_files() {
        let dir = TempDir::new("daily");
        let sink = JsonlAuditSink::new(dir.config(json!({}))).unwrap();
        let ctx = CallContext::for_tests();
        sink.deliver(
            &ctx,
            vec![event(1, JAN31_2359), event(2, JAN31_2359 + 120_000)],
        )
        .unwrap();
        let jan = dir.read("audit-2025-01-31.jsonl");
        let feb = dir.read("audit-2025-02-01.jsonl");
        assert_eq!(jan.len(), 1);
        assert_eq!(feb.len(), 1);
        assert_eq!(jan[0]["event_id"], "ev-1");
        assert_eq!(jan[0]["tenant"], "test-tenant");
        assert_eq!(jan[0]["details"], json!({"method": "password"}));
        assert_eq!(jan[0]["actor_kind"], "user");
        assert_eq!(jan[0]["outcome"], "success");
        assert_eq!(feb[0]["occurred_at_iso"], "2025-02-01T00:01:00.000Z");
    }

    #[test]
    fn redelivery_is_skipped_and_state_survives_instances() {
        let dir = TempDir::new("redeliver");
        let ctx = CallContext::for_tests();
        let sink = JsonlAuditSink::new(dir.config(json!({"rotate": "none"}))).unwrap();
        sink.deliver(&ctx, vec![event(1, 0), event(2, 0)]).unwrap();
        // A new instance (the old one was discarded) gets an overlapping batch.
        let sink = JsonlAuditSink::new(dir.config(json!({"rotate": "none"}))).unwrap();
        sink.deliver(&ctx, vec![event(2, 0), event(3, 0)]).unwrap();
        sink.deliver(&ctx, vec![event(3, 0)]).unwrap();
        let lines = dir.read("audit.jsonl");
        let seqs: Vec<u64> = lines
            .iter()
            .map(|l| l["sequence"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
    }

    #[test]
    fn hourly_rotation_and_prefix() {
        let dir = TempDir::new("hourly");
        let sink =
            JsonlAuditSink::new(dir.config(json!({"rotate": "hourly", "file_prefix": "t1"})))
                .unwrap();
        sink.deliver(&CallContext::for_tests(), vec![event(5, JAN31_2359)])
            .unwrap();
        assert_eq!(dir.read("t1-2025-01-31T23.jsonl").len(), 1);
    }

    #[test]
    fn chain_gaps_are_logged_not_refused() {
        let dir = TempDir::new("chain");
        let host = Arc::new(MockHost::new());
        let sink = JsonlAuditSink::new(dir.config(json!({"rotate": "none"}))).unwrap();
        with_host(host.clone(), || {
            sink.deliver(&CallContext::for_tests(), vec![event(1, 0)])
                .unwrap();
            let mut tampered = event(2, 0);
            tampered.previous_hash = "bogus".into();
            sink.deliver(&CallContext::for_tests(), vec![tampered, event(5, 0)])
                .unwrap();
        });
        let logs: Vec<String> = host.logs().into_iter().map(|(_, m)| m).collect();
        assert!(logs[0].contains("mismatch at sequence 2"), "{logs:?}");
        assert!(logs[1].contains("gap: sequence 5 follows 2"), "{logs:?}");
        assert_eq!(dir.read("audit.jsonl").len(), 3);
    }

    #[test]
    fn missing_directory_is_misconfigured() {
        let sink = JsonlAuditSink::new(json!({"directory": "/definitely/not/a/dir"})).unwrap();
        let e = sink
            .deliver(&CallContext::for_tests(), vec![event(1, 0)])
            .unwrap_err();
        assert_eq!(
            (e.kind(), e.code()),
            ("misconfigured", "directory_unavailable")
        );
        assert_eq!(
            JsonlAuditSink::new(json!({"file_prefix": "../x"}))
                .err()
                .unwrap()
                .code(),
            "invalid_file_prefix"
        );
    }
}
