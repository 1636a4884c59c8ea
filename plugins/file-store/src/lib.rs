//! `file-store` (storage-backend): serves the tenant's `key-value`
//! capability from files in the plugin's own directory (the host preopens
//! a per-(tenant, plugin) directory at `/data` when the manifest asks for
//! `"files": true`; a native build uses the same directory's real path,
//! see `host::files::resolve`).
//!
//! ```json
//! { "directory": "/data", "fsync": true, "lock_wait_ms": 500, "lock_stale_ms": 10000 }
//! ```
//!
//! # Layout
//!
//! `{directory}/{tenant}/{namespace}/{key}`, each segment a safe file name:
//! the lower-case hex of its UTF-8 bytes when they are at most 100 bytes
//! (hex keeps the byte order, so names sort like keys), otherwise the hex
//! of the first 80 bytes, `-`, and the hex SHA-256 of the whole (at most
//! 225 characters). The tenant level is defence in depth: the directory is
//! already private to the (tenant, plugin).
//!
//! A file is a 16-byte header, the key, then the value:
//!
//! | bytes | content |
//! | --- | --- |
//! | 0–3 | magic `VXFS` |
//! | 4 | format version `1` |
//! | 5 | flags: bit 0 = has an expiry |
//! | 6–13 | `expires_at`, ms since the epoch, `i64` little-endian (0 without expiry) |
//! | 14–15 | key length, `u16` little-endian |
//!
//! The file's modification time is a hint of the expiry: the expiry itself,
//! or the epoch (1970-01-01) for an entry without one. It lets `usage` size
//! a namespace with one `stat` per entry instead of opening every file; the
//! header stays the authority for every read and every purge.
//!
//! # Consistency
//!
//! - Writes (`set`, `increment`) write a temporary file
//!   `.tmp-<created ms>-<random>` in
//!   the namespace directory, flush it (`fsync`, unless disabled) and
//!   rename it over the entry: a reader sees the old or the new file, never
//!   a torn one.
//! - Every write and delete of a key holds the key's lock file
//!   (`<name>.lock`, created with `create_new`, i.e. `O_EXCL`), so
//!   `increment`'s read-modify-write is atomic with respect to every
//!   instance using the same directory, and a `set` racing an `increment`
//!   is never lost. A writer waits up to `lock_wait_ms` (capped by the
//!   call's deadline) and then fails with `unavailable` (`lock_timeout`). A
//!   lock file older than `lock_stale_ms` was left by a call the host
//!   interrupted and is removed.
//! - Across server nodes this holds only if they share the directory on a
//!   file system with atomic exclusive create and rename (e.g. NFSv4);
//!   otherwise use the file store on a single node.
//!
//! # Expiry
//!
//! Entries whose `expires_at` is at or before `ctx.now` read as absent.
//! They are purged lazily: a `get` or `list-prefix` that meets one, and
//! `usage` for up to 200 per call (found by their modification time),
//! remove it if they can take the key's lock at once (re-reading the
//! header under the lock); `set`, `increment` and `delete` replace or remove
//! it anyway. Since the host calls `usage` for every namespace regularly,
//! expired counters (e.g. a rate limiter's old windows) do not pile up.
//! `usage` also removes temporary files left by interrupted writes.
//!
//! # Operations
//!
//! - `list-prefix` reads the namespace directory, filters and orders by the
//!   names (reading the header only for long keys), then reads headers in
//!   key order until `limit` unexpired keys are found; the cursor is the
//!   hex of the last key returned.
//! - `increment` on a value that is not 8 bytes fails with `invalid-input`
//!   `not_a_counter`; an overflow with `invalid-input` `counter_overflow`.
//! - `usage` counts unexpired entries and their value bytes from one
//!   directory read and one `stat` per entry (the expiry from the
//!   modification time, so approximate: a file system with coarse times
//!   rounds expiries down, and one that cannot set times makes every entry
//!   look expired at its write time).
//! - Cost: `list-prefix` and `usage` read the whole namespace directory,
//!   linear in its size: about 3.5k fuel per entry to read the directory,
//!   7k more per `stat` (`usage`) or header read (each key `list-prefix`
//!   returns), measured under the host. The host's quota is 10,000 keys per
//!   namespace, hence the manifest's 300M fuel and 5 s deadline (a `get`,
//!   `set`, `delete` or `increment` takes a few milliseconds, most of it the
//!   `fsync`).
//!
//! I/O failures are `unavailable` (the calling plugin's `key-value` call
//! fails with `unavailable`; the host never falls back to another store);
//! a missing or unwritable directory is `misconfigured`
//! (`directory_unavailable`).

use std::cell::Cell;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use vaultaris_plugin_sdk::host::{clock, random};
use vaultaris_plugin_sdk::storage::{Entry, KeyPage, NamespaceUsage, StorageBackend};
use vaultaris_plugin_sdk::{
    CallContext, Plugin, PluginError, Timestamp, export_plugin, parse_config,
};

const MAGIC: &[u8; 4] = b"VXFS";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 16;
/// Segments up to this many bytes are named by their hex.
const SHORT_MAX: usize = 100;
/// Long segments keep the hex of this many leading bytes in their name.
const LONG_PREFIX: usize = 80;
const LOCK_SUFFIX: &str = ".lock";
const TMP_PREFIX: &str = ".tmp-";
/// The most keys one `list-prefix` page returns.
const MAX_PAGE: u32 = 1000;
/// The most expired entries one `usage` call removes (bounding its time).
const MAX_PURGES_PER_CALL: usize = 200;

fn default_directory() -> String {
    "/data".to_owned()
}
fn yes() -> bool {
    true
}
fn default_lock_wait() -> u64 {
    500
}
fn default_lock_stale() -> u64 {
    10_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_directory")]
    directory: String,
    #[serde(default = "yes")]
    fsync: bool,
    #[serde(default = "default_lock_wait")]
    lock_wait_ms: u64,
    #[serde(default = "default_lock_stale")]
    lock_stale_ms: u64,
}

/// The plugin.
pub struct FileStore {
    directory: PathBuf,
    fsync: bool,
    lock_wait: Duration,
    lock_stale: Duration,
    /// Whether the configured directory was seen to exist.
    directory_ok: Cell<bool>,
}

impl Plugin for FileStore {
    fn new(config: serde_json::Value) -> Result<Self, PluginError> {
        let config: Config = parse_config(config)?;
        if config.directory.trim().is_empty() {
            return Err(PluginError::misconfigured(
                "invalid_directory",
                "directory is empty",
            ));
        }
        Ok(FileStore {
            directory: vaultaris_plugin_sdk::host::files::resolve(&config.directory)?,
            fsync: config.fsync,
            lock_wait: Duration::from_millis(config.lock_wait_ms),
            lock_stale: Duration::from_millis(config.lock_stale_ms.max(100)),
            directory_ok: Cell::new(false),
        })
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Decodes lower-case hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// The file (or directory) name of a key, namespace or tenant.
pub fn segment(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() <= SHORT_MAX {
        hex(b)
    } else {
        format!("{}-{}", hex(&b[..LONG_PREFIX]), hex(&Sha256::digest(b)))
    }
}

/// What a file name says about its key.
enum NameKind {
    /// A short key, fully known from the name.
    Short(String),
    /// A long key: the first bytes are known, the rest is in the header.
    Long(Vec<u8>),
    /// Not an entry (temporary file, lock, foreign file).
    Other,
}

fn classify(name: &str) -> NameKind {
    if name.starts_with('.') || name.ends_with(LOCK_SUFFIX) {
        return NameKind::Other;
    }
    match name.split_once('-') {
        None => unhex(name)
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|k| !k.is_empty())
            .map_or(NameKind::Other, NameKind::Short),
        Some((head, hash)) if hash.len() == 64 && unhex(hash).is_some() => {
            unhex(head).map_or(NameKind::Other, NameKind::Long)
        }
        Some(_) => NameKind::Other,
    }
}

/// The parsed header of an entry file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    expires_at: Option<Timestamp>,
    key: String,
}

impl Header {
    fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

fn corrupt(path: &Path) -> PluginError {
    PluginError::internal(
        "corrupt_entry",
        format!("{} is not a file-store entry", path.display()),
    )
}

fn io_error(what: &str, e: &io::Error) -> PluginError {
    PluginError::unavailable("io_error", format!("{what}: {e}"))
}

/// Serialises an entry.
fn encode_entry(key: &str, value: &[u8], expires_at: Option<Timestamp>) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + key.len() + value.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(u8::from(expires_at.is_some()));
    out.extend_from_slice(&expires_at.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(value);
    out
}

/// Parses the fixed header; returns it and the key length.
fn parse_fixed(bytes: &[u8]) -> Option<(Option<Timestamp>, usize)> {
    if bytes.len() < HEADER_LEN || &bytes[..4] != MAGIC || bytes[4] != VERSION {
        return None;
    }
    let expires = i64::from_le_bytes(bytes[6..14].try_into().ok()?);
    let key_len = usize::from(u16::from_le_bytes(bytes[14..16].try_into().ok()?));
    Some(((bytes[5] & 1 == 1).then_some(expires), key_len))
}

/// Parses a whole entry file: header and value.
fn decode_entry(bytes: Vec<u8>) -> Option<(Header, Vec<u8>)> {
    let (expires_at, key_len) = parse_fixed(&bytes)?;
    let key_end = HEADER_LEN.checked_add(key_len)?;
    let key = std::str::from_utf8(bytes.get(HEADER_LEN..key_end)?)
        .ok()?
        .to_owned();
    let value = bytes[key_end..].to_vec();
    Some((Header { expires_at, key }, value))
}

/// Reads only the header of an entry file; `None` if the file is gone.
fn read_header(path: &Path) -> Result<Option<Header>, PluginError> {
    let mut f = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("opening an entry", &e)),
    };
    let mut fixed = [0u8; HEADER_LEN];
    f.read_exact(&mut fixed).map_err(|_| corrupt(path))?;
    let (expires_at, key_len) = parse_fixed(&fixed).ok_or_else(|| corrupt(path))?;
    let mut key = vec![0u8; key_len];
    f.read_exact(&mut key).map_err(|_| corrupt(path))?;
    let key = String::from_utf8(key).map_err(|_| corrupt(path))?;
    Ok(Some(Header { expires_at, key }))
}

/// A held lock file; removed on drop.
struct Lock(PathBuf);

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn lock_path(entry: &Path) -> PathBuf {
    let mut name = entry.file_name().unwrap_or_default().to_os_string();
    name.push(LOCK_SUFFIX);
    entry.with_file_name(name)
}

fn try_lock(entry: &Path) -> io::Result<Option<Lock>> {
    let path = lock_path(entry);
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(_) => Ok(Some(Lock(path))),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(e),
    }
}

impl FileStore {
    fn namespace_dir(&self, ctx: &CallContext, namespace: &str) -> Result<PathBuf, PluginError> {
        if namespace.is_empty() {
            return Err(PluginError::invalid_input(
                "invalid_namespace",
                "the namespace is empty",
            ));
        }
        Ok(self
            .directory
            .join(segment(&ctx.tenant))
            .join(segment(namespace)))
    }

    fn entry_path(
        &self,
        ctx: &CallContext,
        namespace: &str,
        key: &str,
    ) -> Result<PathBuf, PluginError> {
        if key.is_empty() || key.len() > usize::from(u16::MAX) {
            return Err(PluginError::invalid_input(
                "invalid_key",
                "the key is empty or too long",
            ));
        }
        Ok(self.namespace_dir(ctx, namespace)?.join(segment(key)))
    }

    /// Creates the tenant and namespace directories for a write (never the
    /// configured directory itself: that one the host provides).
    fn ensure_dir(&self, entry: &Path) -> Result<(), PluginError> {
        if !self.directory_ok.get() {
            if !self.directory.is_dir() {
                return Err(PluginError::misconfigured(
                    "directory_unavailable",
                    format!(
                        "{} is not a directory; was the plugin granted files?",
                        self.directory.display()
                    ),
                ));
            }
            self.directory_ok.set(true);
        }
        let dir = entry.parent().unwrap_or(&self.directory);
        fs::create_dir_all(dir).map_err(|e| io_error("creating the namespace directory", &e))
    }

    /// Takes the key's lock, waiting for another writer and breaking a
    /// stale lock.
    fn lock(&self, ctx: &CallContext, entry: &Path) -> Result<Lock, PluginError> {
        let left = u64::try_from(ctx.deadline.saturating_sub(clock::now())).unwrap_or(0);
        let budget = self.lock_wait.min(Duration::from_millis(left));
        let start = Instant::now();
        let mut broken = 0;
        loop {
            if let Some(lock) = try_lock(entry).map_err(|e| io_error("creating a lock", &e))? {
                return Ok(lock);
            }
            let path = lock_path(entry);
            let age = fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            if broken < 3 && age.is_some_and(|a| a >= self.lock_stale) {
                // Left by a call the host interrupted (a lock is held for
                // one operation, well under a second).
                let _ = fs::remove_file(&path);
                broken += 1;
                continue;
            }
            if start.elapsed() >= budget {
                return Err(PluginError::unavailable(
                    "lock_timeout",
                    "another writer holds the key's lock",
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Removes an expired entry if its lock is free right now.
    fn purge_if_expired(&self, ctx: &CallContext, entry: &Path) {
        if let Ok(Some(_lock)) = try_lock(entry)
            && let Ok(Some(header)) = read_header(entry)
            && header.expired(ctx.now)
        {
            let _ = fs::remove_file(entry);
        }
    }

    /// Reads an entry (even an expired one); `None` if absent.
    fn read(&self, entry: &Path, key: &str) -> Result<Option<(Header, Vec<u8>)>, PluginError> {
        let bytes = match fs::read(entry) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("reading an entry", &e)),
        };
        let (header, value) = decode_entry(bytes).ok_or_else(|| corrupt(entry))?;
        Ok((header.key == key).then_some((header, value)))
    }

    /// Writes an entry atomically (temporary file, flush, rename). The
    /// caller holds the key's lock. The file's modification time is set to
    /// the expiry hint (see [`mtime_hint`]).
    fn write(
        &self,
        entry: &Path,
        key: &str,
        value: &[u8],
        expires_at: Option<Timestamp>,
    ) -> Result<(), PluginError> {
        let tmp = entry.with_file_name(format!(
            "{TMP_PREFIX}{}-{}",
            clock::now(),
            hex(&random::bytes(8))
        ));
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(&encode_entry(key, value, expires_at))?;
            // Best effort: a file system that cannot set times only makes
            // `usage` less accurate.
            let _ = f.set_modified(mtime_hint(expires_at));
            if self.fsync {
                f.sync_all()?;
            }
            drop(f);
            fs::rename(&tmp, entry)
        })();
        result.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_error("writing an entry", &e)
        })
    }

    /// Whether a temporary file name is older than a stale lock (its
    /// creation time is in the name).
    fn stale_tmp(&self, name: &str) -> bool {
        let created = name
            .strip_prefix(TMP_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|t| t.parse::<i64>().ok());
        let stale_ms = i64::try_from(self.lock_stale.as_millis()).unwrap_or(i64::MAX);
        created.is_none_or(|t| clock::now().saturating_sub(t) >= stale_ms)
    }
}

/// The modification time an entry file gets: its expiry, or the epoch for
/// an entry without one. `usage` reads it with one `stat` per entry instead
/// of opening every file; the header stays the authority (`get`,
/// `list-prefix`, and every purge, which re-reads the header under the
/// key's lock).
fn mtime_hint(expires_at: Option<Timestamp>) -> SystemTime {
    match expires_at {
        None => UNIX_EPOCH,
        Some(t) => UNIX_EPOCH + Duration::from_millis(u64::try_from(t.max(1)).unwrap_or(1)),
    }
}

/// What a modification time says: `None` for no expiry, else the expiry
/// (rounded down to the file system's time granularity).
fn hinted_expiry(mtime: SystemTime) -> Option<Timestamp> {
    let ms = mtime.duration_since(UNIX_EPOCH).ok()?.as_millis();
    (ms > 0).then(|| i64::try_from(ms).unwrap_or(i64::MAX))
}

impl StorageBackend for FileStore {
    fn get(
        &self,
        ctx: &CallContext,
        namespace: &str,
        key: &str,
    ) -> Result<Option<Entry>, PluginError> {
        let path = self.entry_path(ctx, namespace, key)?;
        match self.read(&path, key)? {
            None => Ok(None),
            Some((header, _)) if header.expired(ctx.now) => {
                self.purge_if_expired(ctx, &path);
                Ok(None)
            }
            Some((header, value)) => Ok(Some(Entry {
                value,
                expires_at: header.expires_at,
            })),
        }
    }

    fn set(
        &self,
        ctx: &CallContext,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        expires_at: Option<Timestamp>,
    ) -> Result<(), PluginError> {
        let path = self.entry_path(ctx, namespace, key)?;
        self.ensure_dir(&path)?;
        let _lock = self.lock(ctx, &path)?;
        self.write(&path, key, &value, expires_at)
    }

    fn delete(&self, ctx: &CallContext, namespace: &str, key: &str) -> Result<bool, PluginError> {
        let path = self.entry_path(ctx, namespace, key)?;
        if !path.parent().is_some_and(Path::is_dir) {
            return Ok(false);
        }
        let _lock = self.lock(ctx, &path)?;
        let existed = match self.read(&path, key) {
            Ok(found) => found.is_some_and(|(h, _)| !h.expired(ctx.now)),
            // A corrupt file is removed all the same.
            Err(PluginError::Internal(_)) => false,
            Err(e) => return Err(e),
        };
        match fs::remove_file(&path) {
            Ok(()) => Ok(existed),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("removing an entry", &e)),
        }
    }

    fn list_prefix(
        &self,
        ctx: &CallContext,
        namespace: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPage, PluginError> {
        if limit == 0 {
            return Err(PluginError::invalid_input(
                "invalid_limit",
                "limit must be at least 1",
            ));
        }
        let limit = limit.min(MAX_PAGE) as usize;
        let after = match cursor {
            None => None,
            Some(c) => Some(
                unhex(c)
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        PluginError::invalid_input("invalid_cursor", "unknown cursor")
                    })?,
            ),
        };
        let dir = self.namespace_dir(ctx, namespace)?;
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(KeyPage::default()),
            Err(e) => return Err(io_error("listing a namespace", &e)),
        };
        let wanted =
            |key: &str| key.starts_with(prefix) && after.as_deref().is_none_or(|a| key > a);
        // Candidates by name; long keys need their header for the full key.
        let mut candidates: Vec<(String, PathBuf, Option<Header>)> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error("listing a namespace", &e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            match classify(name) {
                NameKind::Other => {}
                NameKind::Short(key) => {
                    if wanted(&key) {
                        candidates.push((key, entry.path(), None));
                    }
                }
                NameKind::Long(head) => {
                    let p = prefix.as_bytes();
                    let n = head.len().min(p.len());
                    if head[..n] != p[..n] {
                        continue;
                    }
                    if let Some(header) = read_header(&entry.path())?
                        && wanted(&header.key)
                    {
                        candidates.push((header.key.clone(), entry.path(), Some(header)));
                    }
                }
            }
        }
        candidates.sort_by(|a, b| a.0.cmp(&b.0));
        let mut keys = Vec::new();
        for (key, path, header) in candidates {
            let header = match header {
                Some(h) => h,
                None => match read_header(&path)? {
                    Some(h) => h,
                    None => continue,
                },
            };
            if header.expired(ctx.now) {
                self.purge_if_expired(ctx, &path);
                continue;
            }
            keys.push(key);
            if keys.len() > limit {
                break;
            }
        }
        let next_cursor = if keys.len() > limit {
            keys.truncate(limit);
            keys.last().map(|k| hex(k.as_bytes()))
        } else {
            None
        };
        Ok(KeyPage { keys, next_cursor })
    }

    fn increment(
        &self,
        ctx: &CallContext,
        namespace: &str,
        key: &str,
        delta: i64,
        expires_at_if_created: Option<Timestamp>,
    ) -> Result<i64, PluginError> {
        let path = self.entry_path(ctx, namespace, key)?;
        self.ensure_dir(&path)?;
        let _lock = self.lock(ctx, &path)?;
        let (current, expires_at) = match self.read(&path, key)? {
            Some((header, value)) if !header.expired(ctx.now) => {
                let bytes = <[u8; 8]>::try_from(value.as_slice()).map_err(|_| {
                    PluginError::invalid_input(
                        "not_a_counter",
                        format!("the value is {} bytes, not an 8-byte counter", value.len()),
                    )
                })?;
                (i64::from_le_bytes(bytes), header.expires_at)
            }
            _ => (0, expires_at_if_created),
        };
        let new = current.checked_add(delta).ok_or_else(|| {
            PluginError::invalid_input("counter_overflow", "the counter would overflow")
        })?;
        self.write(&path, key, &new.to_le_bytes(), expires_at)?;
        Ok(new)
    }

    fn usage(&self, ctx: &CallContext, namespace: &str) -> Result<NamespaceUsage, PluginError> {
        let dir = self.namespace_dir(ctx, namespace)?;
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(NamespaceUsage::default()),
            Err(e) => return Err(io_error("listing a namespace", &e)),
        };
        let mut usage = NamespaceUsage::default();
        let mut purges = 0;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("listing a namespace", &e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(TMP_PREFIX) {
                if self.stale_tmp(name) {
                    // Left behind by an interrupted write.
                    let _ = fs::remove_file(entry.path());
                }
                continue;
            }
            let key_len = match classify(name) {
                NameKind::Other => continue,
                NameKind::Short(key) => key.len() as u64,
                // Rare: the length of a long key is only in its header.
                NameKind::Long(_) => match read_header(&entry.path()) {
                    Ok(Some(header)) => header.key.len() as u64,
                    _ => continue,
                },
            };
            let Ok(meta) = entry.metadata() else { continue };
            if hinted_expiry(meta.modified().unwrap_or(UNIX_EPOCH)).is_some_and(|t| t <= ctx.now) {
                if purges < MAX_PURGES_PER_CALL {
                    purges += 1;
                    self.purge_if_expired(ctx, &entry.path());
                }
                continue;
            }
            usage.keys += 1;
            usage.bytes += meta.len().saturating_sub(HEADER_LEN as u64 + key_len);
        }
        Ok(usage)
    }
}

export_plugin!(FileStore: storage_backend);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;
    use vaultaris_plugin_sdk::testing::{MockHost, with_host};

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "vaultaris-file-store-{name}-{}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
        fn store(&self) -> FileStore {
            FileStore::new(json!({"directory": self.0.to_str().unwrap(), "fsync": false})).unwrap()
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn ctx() -> CallContext {
        CallContext {
            deadline: CallContext::for_tests().now + 1000,
            ..CallContext::for_tests()
        }
    }

    fn at(now: Timestamp) -> CallContext {
        CallContext {
            now,
            deadline: now + 1000,
            ..CallContext::for_tests()
        }
    }

    const NS: &str = "plugin:acme-claims";

    #[test]
    fn manifest_matches_exports() {
        let m = vaultaris_plugin_sdk::testing::check_manifest::<FileStore>(include_str!(
            "../manifest.json"
        ))
        .unwrap();
        assert_eq!(m["capabilities"]["files"], true);
    }

    #[test]
    fn names() {
        assert_eq!(hex(b"a/b"), "612f62");
        assert_eq!(unhex("612f62").unwrap(), b"a/b");
        assert_eq!(unhex("612F62"), None);
        assert_eq!(unhex("6"), None);
        assert_eq!(segment("../x"), "2e2e2f78");
        let long = "k".repeat(300);
        let s = segment(&long);
        assert_eq!(s.len(), 225);
        assert!(matches!(classify(&s), NameKind::Long(h) if h.len() == 80));
        assert!(matches!(classify("6b31"), NameKind::Short(k) if k == "k1"));
        assert!(matches!(classify("6b31.lock"), NameKind::Other));
        assert!(matches!(classify(".tmp-00"), NameKind::Other));
        assert!(matches!(classify("README"), NameKind::Other));
        // Hex names sort like the keys' bytes.
        let mut keys = vec!["b", "a~", "a", "ab", "é", "Z"];
        let mut names: Vec<String> = keys.iter().map(|k| segment(k)).collect();
        keys.sort();
        names.sort();
        let decoded: Vec<String> = names
            .iter()
            .map(|n| String::from_utf8(unhex(n).unwrap()).unwrap())
            .collect();
        assert_eq!(decoded, keys);
    }

    #[test]
    fn set_get_delete() {
        let dir = TempDir::new("basic");
        let s = dir.store();
        let c = ctx();
        assert_eq!(s.get(&c, NS, "k1").unwrap(), None);
        s.set(&c, NS, "k1", b"hello".to_vec(), None).unwrap();
        assert_eq!(
            s.get(&c, NS, "k1").unwrap(),
            Some(Entry {
                value: b"hello".to_vec(),
                expires_at: None
            })
        );
        s.set(&c, NS, "k1", b"".to_vec(), Some(c.now + 10)).unwrap();
        assert_eq!(
            s.get(&c, NS, "k1").unwrap(),
            Some(Entry {
                value: vec![],
                expires_at: Some(c.now + 10)
            })
        );
        // Namespaces never mix.
        assert_eq!(s.get(&c, "plugin:other", "k1").unwrap(), None);
        // Nor do tenants sharing a directory.
        let other_tenant = CallContext {
            tenant: "t2".into(),
            ..ctx()
        };
        assert_eq!(s.get(&other_tenant, NS, "k1").unwrap(), None);
        assert!(s.delete(&c, NS, "k1").unwrap());
        assert!(!s.delete(&c, NS, "k1").unwrap());
        assert!(!s.delete(&c, "plugin:never", "k1").unwrap());
        assert_eq!(s.get(&c, NS, "k1").unwrap(), None);
        // A new instance reads what the last one wrote.
        s.set(&c, NS, "path/../odd key ✓", vec![1, 2, 3], None)
            .unwrap();
        assert_eq!(
            dir.store()
                .get(&c, NS, "path/../odd key ✓")
                .unwrap()
                .unwrap()
                .value,
            vec![1, 2, 3]
        );
        // No temporary or lock files are left behind.
        let ns_dir = s.namespace_dir(&c, NS).unwrap();
        let names: Vec<String> = fs::read_dir(ns_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![segment("path/../odd key ✓")]);
    }

    #[test]
    fn expiry() {
        let dir = TempDir::new("expiry");
        let s = dir.store();
        let c = ctx();
        s.set(&c, NS, "short", b"v".to_vec(), Some(c.now + 100))
            .unwrap();
        s.set(&c, NS, "long", b"vv".to_vec(), None).unwrap();
        assert!(s.get(&at(c.now + 99), NS, "short").unwrap().is_some());
        let later = at(c.now + 100);
        assert_eq!(s.get(&later, NS, "short").unwrap(), None);
        assert_eq!(
            s.list_prefix(&later, NS, "", None, 10).unwrap().keys,
            vec!["long"]
        );
        assert_eq!(
            s.usage(&later, NS).unwrap(),
            NamespaceUsage { keys: 1, bytes: 2 }
        );
        // The expired entry was purged.
        assert!(!s.entry_path(&c, NS, "short").unwrap().exists());
        // Deleting an expired entry reports false.
        s.set(&c, NS, "gone", b"v".to_vec(), Some(c.now + 1))
            .unwrap();
        assert!(!s.delete(&later, NS, "gone").unwrap());
    }

    #[test]
    fn list_prefix_pages_in_byte_order() {
        let dir = TempDir::new("list");
        let s = dir.store();
        let c = ctx();
        let long_a = format!("user:{}a", "x".repeat(150));
        let long_b = format!("user:{}b", "x".repeat(150));
        for k in [
            "user:2",
            "user:10",
            "user:1",
            "session:1",
            &long_b,
            &long_a,
            "user:",
        ] {
            s.set(&c, NS, k, k.as_bytes().to_vec(), None).unwrap();
        }
        s.set(&c, NS, "user:0", b"x".to_vec(), Some(c.now)).unwrap(); // already expired
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = s
                .list_prefix(&c, NS, "user:", cursor.as_deref(), 2)
                .unwrap();
            assert!(page.keys.len() <= 2);
            all.extend(page.keys);
            pages += 1;
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(
            all,
            vec![
                "user:".to_owned(),
                "user:1".into(),
                "user:10".into(),
                "user:2".into(),
                long_a.clone(),
                long_b.clone()
            ]
        );
        assert_eq!(pages, 3);
        // A long prefix filters long keys too.
        let prefix = format!("user:{}", "x".repeat(150));
        assert_eq!(
            s.list_prefix(&c, NS, &prefix, None, 1000).unwrap().keys,
            vec![long_a.clone(), long_b.clone()]
        );
        assert_eq!(
            s.get(&c, NS, &long_b).unwrap().unwrap().value,
            long_b.as_bytes()
        );
        assert_eq!(
            s.list_prefix(&c, NS, "nothing", None, 10).unwrap(),
            KeyPage::default()
        );
        assert_eq!(
            s.list_prefix(&c, "plugin:empty", "", None, 10).unwrap(),
            KeyPage::default()
        );
        assert_eq!(
            s.list_prefix(&c, NS, "", Some("zz"), 10)
                .unwrap_err()
                .code(),
            "invalid_cursor"
        );
        assert_eq!(
            s.list_prefix(&c, NS, "", None, 0).unwrap_err().code(),
            "invalid_limit"
        );
        assert_eq!(
            s.usage(&c, NS).unwrap(),
            NamespaceUsage {
                keys: 7,
                bytes: (6 + 7 + 6 + 9 + 2 * 156 + 5) as u64
            }
        );
    }

    #[test]
    fn increment_counters() {
        let dir = TempDir::new("incr");
        let s = dir.store();
        let c = ctx();
        assert_eq!(
            s.increment(&c, NS, "hits", 1, Some(c.now + 60_000))
                .unwrap(),
            1
        );
        assert_eq!(s.increment(&c, NS, "hits", 41, None).unwrap(), 42);
        // The expiry is the one set at creation.
        let e = s.get(&c, NS, "hits").unwrap().unwrap();
        assert_eq!(e.value, 42i64.to_le_bytes());
        assert_eq!(e.expires_at, Some(c.now + 60_000));
        // An expired counter restarts with the new TTL.
        let later = at(c.now + 60_000);
        assert_eq!(
            s.increment(&later, NS, "hits", -5, Some(later.now + 10))
                .unwrap(),
            -5
        );
        assert_eq!(
            s.get(&later, NS, "hits").unwrap().unwrap().expires_at,
            Some(later.now + 10)
        );
        s.set(&c, NS, "text", b"abc".to_vec(), None).unwrap();
        let e = s.increment(&c, NS, "text", 1, None).unwrap_err();
        assert_eq!((e.kind(), e.code()), ("invalid-input", "not_a_counter"));
        s.set(&c, NS, "max", i64::MAX.to_le_bytes().to_vec(), None)
            .unwrap();
        assert_eq!(
            s.increment(&c, NS, "max", 1, None).unwrap_err().code(),
            "counter_overflow"
        );
    }

    #[test]
    fn concurrent_increments_are_atomic() {
        let dir = TempDir::new("concurrent");
        let path = dir.0.to_str().unwrap().to_owned();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    // Each thread is its own instance over the same directory.
                    let s = FileStore::new(
                        json!({"directory": path, "fsync": false, "lock_wait_ms": 10000}),
                    )
                    .unwrap();
                    let c = CallContext {
                        deadline: CallContext::for_tests().now + 60_000,
                        ..CallContext::for_tests()
                    };
                    let host = Arc::new(MockHost::new());
                    with_host(host, || {
                        for _ in 0..50 {
                            s.increment(&c, NS, "n", 1, None).unwrap();
                        }
                    });
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = dir.store();
        assert_eq!(
            s.get(&ctx(), NS, "n").unwrap().unwrap().value,
            200i64.to_le_bytes()
        );
    }

    #[test]
    fn locks_wait_and_stale_locks_are_broken() {
        let dir = TempDir::new("locks");
        let s = FileStore::new(json!({"directory": dir.0.to_str().unwrap(), "fsync": false,
            "lock_wait_ms": 20, "lock_stale_ms": 100}))
        .unwrap();
        let c = ctx();
        let host = Arc::new(MockHost::new());
        with_host(host, || {
            s.set(&c, NS, "k", b"1".to_vec(), None).unwrap();
            let path = s.entry_path(&c, NS, "k").unwrap();
            let held = try_lock(&path).unwrap().unwrap();
            let e = s.set(&c, NS, "k", b"2".to_vec(), None).unwrap_err();
            assert_eq!((e.kind(), e.code()), ("unavailable", "lock_timeout"));
            // Readers are not blocked.
            assert_eq!(s.get(&c, NS, "k").unwrap().unwrap().value, b"1");
            // A lock left behind by an interrupted call expires.
            std::mem::forget(held);
            std::thread::sleep(Duration::from_millis(150));
            s.set(&c, NS, "k", b"3".to_vec(), None).unwrap();
            assert_eq!(s.get(&c, NS, "k").unwrap().unwrap().value, b"3");
            assert!(!lock_path(&path).exists());
        });
    }

    #[test]
    fn usage_uses_the_mtime_hint_and_cleans_up() {
        let dir = TempDir::new("usage");
        let s = FileStore::new(json!({"directory": dir.0.to_str().unwrap(), "fsync": false,
            "lock_stale_ms": 100}))
        .unwrap();
        let c = ctx();
        s.set(&c, NS, "forever", b"12345".to_vec(), None).unwrap();
        s.set(&c, NS, "brief", b"123".to_vec(), Some(c.now + 50))
            .unwrap();
        let long = "l".repeat(120);
        s.set(&c, NS, &long, b"1".to_vec(), None).unwrap();
        let path = |k: &str| s.entry_path(&c, NS, k).unwrap();
        let mtime = |k: &str| fs::metadata(path(k)).unwrap().modified().unwrap();
        assert_eq!(hinted_expiry(mtime("forever")), None);
        assert_eq!(hinted_expiry(mtime("brief")), Some(c.now + 50));
        assert_eq!(
            s.usage(&c, NS).unwrap(),
            NamespaceUsage { keys: 3, bytes: 9 }
        );
        // A stale temporary file from an interrupted write is removed; a
        // fresh one (a write in progress) is not.
        let ns_dir = s.namespace_dir(&c, NS).unwrap();
        let old_tmp = ns_dir.join(format!("{TMP_PREFIX}{}-00", clock::now() - 1000));
        let new_tmp = ns_dir.join(format!("{TMP_PREFIX}{}-01", clock::now()));
        fs::write(&old_tmp, b"x").unwrap();
        fs::write(&new_tmp, b"x").unwrap();
        let later = at(c.now + 50);
        assert_eq!(
            s.usage(&later, NS).unwrap(),
            NamespaceUsage { keys: 2, bytes: 6 }
        );
        assert!(!path("brief").exists(), "purged");
        assert!(!old_tmp.exists());
        assert!(new_tmp.exists());
    }

    #[test]
    fn corrupt_and_missing_directories() {
        let dir = TempDir::new("corrupt");
        let s = dir.store();
        let c = ctx();
        s.set(&c, NS, "k", b"v".to_vec(), None).unwrap();
        let path = s.entry_path(&c, NS, "k").unwrap();
        fs::write(&path, b"garbage").unwrap();
        assert_eq!(s.get(&c, NS, "k").unwrap_err().code(), "corrupt_entry");
        // `usage` does not open short-key entries: it counts the file.
        assert_eq!(s.usage(&c, NS).unwrap().keys, 1);
        assert!(!s.delete(&c, NS, "k").unwrap());
        assert!(!path.exists());

        let missing = FileStore::new(json!({"directory": "/definitely/not/a/dir"})).unwrap();
        let e = missing.set(&c, NS, "k", b"v".to_vec(), None).unwrap_err();
        assert_eq!(
            (e.kind(), e.code()),
            ("misconfigured", "directory_unavailable")
        );
        assert_eq!(missing.get(&c, NS, "k").unwrap(), None);
        assert_eq!(s.get(&c, "", "k").unwrap_err().code(), "invalid_namespace");
        assert_eq!(s.get(&c, NS, "").unwrap_err().code(), "invalid_key");
    }
}
