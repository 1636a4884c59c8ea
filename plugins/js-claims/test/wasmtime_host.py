"""A tiny wasmtime host for Vaultaris wasm plugins, for measurements only.

Uses wasmtime-py (the same wasmtime the Rust host embeds, via its C API) to
instantiate a plugin component, link the `vaultaris:plugin@0.1.0`
capabilities as Python functions (and WASI 0.2 with no preopens, no env, for
components that import it), and measure per call: fuel consumed and wall time.

The wall time includes wasmtime-py's value conversion in Python (ctypes),
which the Rust host does not pay, so it is an upper bound on the guest's cost;
fuel is exact and host-independent.

    pip install wasmtime==50.0.1
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any, Callable

import wasmtime
from wasmtime import Config, Engine, Store, WasiConfig
from wasmtime.component import Component, Linker, Record, Variant

try:
    from importlib.metadata import version as _dist_version

    _WASMTIME_VERSION = _dist_version("wasmtime")
except Exception:  # pragma: no cover
    _WASMTIME_VERSION = "unknown"

# Time only what wasmtime does (the call with lifting/lowering in Rust, and
# post-return), not wasmtime-py's Python value conversion around it.
from wasmtime import _ffi as _wffi  # noqa: E402

_ffi_time = [0.0]


def _timed(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            _ffi_time[0] += time.perf_counter() - t0
    return wrapper


_wffi.wasmtime_component_func_call = _timed(_wffi.wasmtime_component_func_call)
_wffi.wasmtime_component_func_post_return = _timed(_wffi.wasmtime_component_func_post_return)

PKG = "vaultaris:plugin"
VER = "0.1.0"


def record(**fields: Any) -> Record:
    """Builds a WIT record; `snake_case` keyword names become `kebab-case` fields."""
    r = Record()
    for k, v in fields.items():
        setattr(r, k.replace("_", "-"), v)
    return r


def get(r: Any, name: str) -> Any:
    return getattr(r, name)


def to_py(v: Any) -> Any:
    """Converts lifted component values into plain Python for assertions."""
    if isinstance(v, Record):
        return {k: to_py(x) for k, x in vars(v).items()}
    if isinstance(v, Variant):
        return {"tag": v.tag, "val": to_py(v.payload)}
    if isinstance(v, list):
        return [to_py(x) for x in v]
    return v


class Plugin:
    """A compiled component plus an engine with fuel metering."""

    def __init__(self, wasm_path: str, cache_dir: str | None = None):
        cfg = Config()
        cfg.consume_fuel = True
        self.engine = Engine(cfg)
        data = open(wasm_path, "rb").read()
        self.size = len(data)
        t0 = time.perf_counter()
        self.component = self._load(data, cache_dir)
        self.load_seconds = time.perf_counter() - t0
        ty = self.component.type
        self.imports = sorted(ty.imports(self.engine).keys())
        self.exports = sorted(ty.exports(self.engine).keys())

    def _load(self, data: bytes, cache_dir: str | None) -> Component:
        if cache_dir is None:
            return Component(self.engine, data)
        os.makedirs(cache_dir, exist_ok=True)
        key = hashlib.sha256(data + _WASMTIME_VERSION.encode()).hexdigest()[:32]
        path = os.path.join(cache_dir, f"{key}.cwasm")
        if os.path.exists(path):
            return Component.deserialize_file(self.engine, path)
        comp = Component(self.engine, data)
        with open(path + ".tmp", "wb") as f:
            f.write(comp.serialize())
        os.replace(path + ".tmp", path)
        return comp

    def instantiate(self, config: dict, memory_bytes: int | None = None, fuel: int = 10**12) -> "Instance":
        return Instance(self, config, memory_bytes, fuel)


class Instance:
    def __init__(self, plugin: Plugin, config: dict, memory_bytes: int | None, fuel: int):
        self.plugin = plugin
        self.logs: list[tuple[str, str, list]] = []
        self.store = Store(plugin.engine)
        if memory_bytes is not None:
            self.store.set_limits(memory_size=memory_bytes)
        if any(i.startswith("wasi:") for i in plugin.imports):
            # Locked down like the real host: no preopens, no env, no args;
            # stdout/stderr inherited so guest prints show up in test output.
            wasi = WasiConfig()
            wasi.inherit_stdout()
            wasi.inherit_stderr()
            self.store.set_wasi(wasi)
        linker = Linker(plugin.engine)
        if any(i.startswith("wasi:") for i in plugin.imports):
            linker.add_wasip2()
        self._define_capabilities(linker, config)
        self.store.set_fuel(fuel)
        t0 = time.perf_counter()
        self.instance = linker.instantiate(self.store, plugin.component)
        self.instantiate_seconds = time.perf_counter() - t0
        self.instantiate_fuel = fuel - self.store.get_fuel()
        self._funcs: dict[str, Any] = {}

    def _define_capabilities(self, linker: Linker, config: dict) -> None:
        config_json = json.dumps(config)

        def trap(what: str) -> Callable[..., Any]:
            def f(_store: Any, *_args: Any) -> Any:
                raise RuntimeError(f"{what}: not granted in the test host")
            return f

        caps: dict[str, dict[str, Callable[..., Any]]] = {
            "logging": {"log": lambda _s, level, msg, fields: self.logs.append((level, msg, fields))},
            "config": {
                "get-all": lambda _s: config_json,
                "get": lambda _s, key: json.dumps(config[key]) if key in config else None,
            },
            "key-value": {n: trap(f"key-value.{n}") for n in ("get", "set", "delete", "list-prefix", "increment")},
            "outbound-http": {"send": trap("outbound-http.send")},
            "clock": {
                "now": lambda _s: int(time.time() * 1000),
                "monotonic-ns": lambda _s: time.monotonic_ns(),
            },
            "random": {"bytes": lambda _s, n: os.urandom(min(n, 4096))},
        }
        with linker.root() as root:
            for iface, funcs in caps.items():
                with root.add_instance(f"{PKG}/{iface}@{VER}") as inst:
                    for name, fn in funcs.items():
                        inst.add_func(name, fn)

    def func(self, iface: str, name: str) -> Any:
        key = f"{iface}#{name}"
        f = self._funcs.get(key)
        if f is None:
            store = self.store
            iidx = self.instance.get_export_index(store, f"{PKG}/{iface}@{VER}")
            assert iidx is not None, f"no export {iface}"
            fidx = self.instance.get_export_index(store, name, iidx)
            assert fidx is not None, f"no function {iface}#{name}"
            f = self.instance.get_func(store, fidx)
            self._funcs[key] = f
        return f

    def call(self, iface: str, name: str, *args: Any, fuel: int = 10**12) -> tuple[Any, int, float]:
        """Calls an export; returns (result, fuel consumed, seconds spent in
        wasmtime: the call including lifting/lowering, plus post-return)."""
        f = self.func(iface, name)
        self.store.set_fuel(fuel)
        _ffi_time[0] = 0.0
        result = f(self.store, *args)
        f.post_return(self.store)
        return result, fuel - self.store.get_fuel(), _ffi_time[0]


def min_memory_mib(plugin: Plugin, config: dict, exercise: Callable[[Instance], None], hi_mib: int = 512) -> int:
    """Smallest whole-MiB store memory limit with which instantiation plus
    `exercise(instance)` succeed (binary search)."""
    def ok(mib: int) -> bool:
        try:
            inst = plugin.instantiate(config, memory_bytes=mib * 1024 * 1024)
            exercise(inst)
            return True
        except Exception:
            return False

    lo, hi = 1, hi_mib
    if not ok(hi):
        raise RuntimeError(f"does not run within {hi_mib} MiB")
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo
