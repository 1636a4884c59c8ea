//! What a plugin instance's `Store` carries: its WASI shim, its memory
//! limiter, the activation it serves (tenant, plugin, configuration, granted
//! capabilities) and the deadline of the call in progress.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use uuid::Uuid;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{FsPerms, ResourceTable, WasiCtx, WasiCtxView, WasiView};

use super::kv::KeyValueBackend;

/// The activation an instance serves: everything a capability needs to
/// answer, fixed when the instance is created.
#[derive(Debug)]
pub struct ActivationContext {
    /// The tenant.
    pub tenant_id: Uuid,
    /// The plugin id.
    pub plugin_id: String,
    /// The tenant's configuration, secrets included, as JSON text.
    pub config_json: String,
    /// The same, parsed.
    pub config: serde_json::Value,
    /// Whether the key-value capability is granted.
    pub key_value: bool,
    /// Hosts (`host` or `host:port`) outbound HTTP may reach.
    pub http_hosts: Vec<String>,
    /// The private directory preopened at `/data`, when granted.
    pub files_dir: Option<PathBuf>,
    /// Where key-value calls go.
    pub kv: Arc<dyn KeyValueBackend>,
    /// Outbound HTTP: the operator's policy and its client (no redirects,
    /// no proxies from the environment, a resolver that refuses private
    /// addresses).
    pub outbound: Arc<super::capabilities::OutboundHttp>,
}

/// Most bytes a plugin may read from one outbound HTTP response.
pub const MAX_HTTP_RESPONSE_BYTES: usize = 1 << 20;
/// Most outbound HTTP requests in one call.
pub const MAX_HTTP_REQUESTS_PER_CALL: u32 = 8;
/// Most log lines kept per call (the rest are counted and dropped).
pub const MAX_LOG_LINES_PER_CALL: u32 = 64;

/// The data of one instance's `Store`.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The memory limiter.
    pub limiter: MemoryLimiter,
    /// The activation served.
    pub activation: Arc<ActivationContext>,
    /// When the call in progress must end.
    pub deadline: Instant,
    /// When the call in progress started running guest code.
    pub started: Instant,
    /// The call's deadline as wall-clock milliseconds (for `call-context`).
    pub deadline_ms: i64,
    /// Request id of the call in progress.
    pub request_id: String,
    /// Log lines written in the call in progress.
    pub log_lines: u32,
    /// Outbound requests made in the call in progress.
    pub http_requests: u32,
}

impl PluginState {
    /// A fresh state for a new instance.
    pub fn new(activation: Arc<ActivationContext>, memory_bytes: usize) -> anyhow::Result<Self> {
        let mut b = WasiCtx::builder();
        // No arguments, environment, stdin, sockets or name lookup; output
        // streams go nowhere (plugins log through the logging capability).
        b.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        if let Some(dir) = &activation.files_dir {
            std::fs::create_dir_all(dir)?;
            b.preopened_dir(dir, "/data", FsPerms::ReadWrite)
                .map_err(|e| anyhow::anyhow!("preopening {}: {e:#}", dir.display()))?;
        }
        Ok(Self {
            wasi: b.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                limit: memory_bytes,
                exceeded: false,
                peak: 0,
                total: 0,
            },
            activation,
            deadline: Instant::now(),
            started: Instant::now(),
            deadline_ms: 0,
            request_id: String::new(),
            log_lines: 0,
            http_requests: 0,
        })
    }
}

impl PluginState {
    /// Resets the per-call fields before a call.
    pub fn begin_call(&mut self, deadline: Instant, deadline_ms: i64, request_id: &str) {
        self.deadline = deadline;
        self.started = Instant::now();
        self.deadline_ms = deadline_ms;
        self.request_id.clear();
        self.request_id.push_str(request_id);
        self.log_lines = 0;
        self.http_requests = 0;
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Refuses memory growth beyond the limit and remembers that it did, so the
/// resulting trap is reported as a memory-limit breach.
///
/// Security decision: the limit is on the sum of every linear memory of the
/// instance, not per memory. A component holds several core modules (a
/// componentize-py or jco guest has two or three memories); a per-memory
/// limit would let such a plugin use a multiple of its budget. The number
/// of memories, tables and instances per store is bounded as well.
#[derive(Debug)]
pub struct MemoryLimiter {
    /// Bytes of linear memory allowed, all memories together.
    pub limit: usize,
    /// Whether a growth was refused.
    pub exceeded: bool,
    /// Largest total seen.
    pub peak: usize,
    /// Bytes of all memories now.
    pub total: usize,
}

/// Linear memories one plugin instance may define.
const MAX_MEMORIES: usize = 16;
/// Tables one plugin instance may define.
const MAX_TABLES: usize = 64;
/// Core instances one plugin instance may create.
const MAX_INSTANCES: usize = 256;
/// Elements one table may hold.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.total.saturating_sub(current).saturating_add(desired);
        if total > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        self.total = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryLimiter;
    use wasmtime::ResourceLimiter;

    #[test]
    fn the_memory_limit_covers_all_memories_together() {
        let mut l = MemoryLimiter {
            limit: 100,
            exceeded: false,
            peak: 0,
            total: 0,
        };
        assert!(l.memory_growing(0, 60, None).unwrap());
        // A second memory of the same instance: 60 + 50 > 100.
        assert!(!l.memory_growing(0, 50, None).unwrap());
        assert!(l.exceeded);
        assert!(l.memory_growing(0, 40, None).unwrap());
        // The first memory grows by 1 byte: over.
        assert!(!l.memory_growing(60, 61, None).unwrap());
        assert_eq!((l.total, l.peak), (100, 100));
    }
}
