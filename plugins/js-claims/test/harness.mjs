// A tiny JS host for Vaultaris wasm plugins, for local testing only: it
// transpiles a component with jco (instantiation mode), links the six
// `vaultaris:plugin` capabilities as JS functions, and, for components that
// import WASI, the deny-by-default parts of @bytecodealliance/preview2-shim.
//
// The real host is wasmtime (host/); numbers measured here are V8's, not
// wasmtime's, and only indicate the guest's own cost.
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { transpile } from '@bytecodealliance/jco';

/** Capability implementations; `config` is the plugin configuration object. */
export function capabilities(config, logs = []) {
  const configJson = JSON.stringify(config);
  return {
    'vaultaris:plugin/types': {},
    'vaultaris:plugin/logging': {
      log(level, message, fields) {
        logs.push({ level, message, fields });
      },
    },
    'vaultaris:plugin/config': {
      getAll: () => configJson,
      get: (key) => (key in config ? JSON.stringify(config[key]) : undefined),
    },
    'vaultaris:plugin/key-value': {
      // Not granted: every operation is denied, as in the host without a grant.
      get: () => { throw { tag: 'denied' }; },
      set: () => { throw { tag: 'denied' }; },
      delete: () => { throw { tag: 'denied' }; },
      listPrefix: () => { throw { tag: 'denied' }; },
      increment: () => { throw { tag: 'denied' }; },
    },
    'vaultaris:plugin/outbound-http': {
      send: () => { throw { tag: 'denied-host', val: 'not granted in the test host' }; },
    },
    'vaultaris:plugin/clock': {
      now: () => BigInt(Date.now()),
      monotonicNs: () => process.hrtime.bigint(),
    },
    'vaultaris:plugin/random': {
      bytes: (len) => crypto.getRandomValues(new Uint8Array(Math.min(len, 4096))),
    },
  };
}

/** WASI 0.2 shims: no preopens, no environment, stdio captured by the shim. */
async function wasiImports(imports) {
  const need = imports.filter((i) => i.startsWith('wasi:'));
  if (need.length === 0) return {};
  const shim = {
    cli: await import('@bytecodealliance/preview2-shim/cli'),
    clocks: await import('@bytecodealliance/preview2-shim/clocks'),
    filesystem: await import('@bytecodealliance/preview2-shim/filesystem'),
    io: await import('@bytecodealliance/preview2-shim/io'),
    random: await import('@bytecodealliance/preview2-shim/random'),
  };
  // Locked down like the real host: no filesystem at all.
  shim.filesystem._setPreopens?.({});
  const out = {};
  for (const spec of need) {
    // e.g. "wasi:cli/environment@0.2.3" -> shim.cli.environment
    const m = /^wasi:([a-z]+)\/([a-z-]+)(@.*)?$/.exec(spec);
    if (!m) throw new Error(`unexpected import ${spec}`);
    const [, pkg, iface] = m;
    const camel = iface.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const impl = shim[pkg]?.[camel];
    if (!impl) throw new Error(`no shim for ${spec}`);
    out[spec.replace(/@.*$/, '')] = impl;
    out[spec] = impl;
  }
  return out;
}

/**
 * Transpiles `wasmPath` once and returns `{ imports, exports, instantiate(config, logs) }`.
 */
export async function loadComponent(wasmPath) {
  const bytes = await readFile(wasmPath);
  const t0 = performance.now();
  const { files, imports, exports } = await transpile(bytes, {
    name: 'component',
    instantiation: 'async',
    noTypescript: true,
    quiet: true,
  });
  const dir = await mkdtemp(join(tmpdir(), 'vaultaris-jshost-'));
  const modules = {};
  for (const [name, data] of Object.entries(files)) {
    const path = join(dir, name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, data);
    if (name.endsWith('.wasm')) modules[name] = WebAssembly.compile(data);
  }
  const mod = await import(pathToFileURL(join(dir, 'component.js')).href);
  await rm(dir, { recursive: true, force: true });
  const transpileMs = performance.now() - t0;
  const wasi = await wasiImports(imports);
  return {
    imports,
    exports,
    transpileMs,
    async instantiate(config, logs = []) {
      return mod.instantiate((name) => modules[name], { ...wasi, ...capabilities(config, logs) });
    },
  };
}

/** Times `n` calls of `fn` (after `warm` warm-up calls); returns µs per call. */
export function bench(fn, n = 5000, warm = 500) {
  for (let i = 0; i < warm; i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  const ns = Number(process.hrtime.bigint() - t0);
  return ns / n / 1000;
}

/** Minimal assertion helper that counts results for the closing line. */
export function checker() {
  let passed = 0;
  let failed = 0;
  return {
    check(name, cond, detail) {
      if (cond) passed++;
      else {
        failed++;
        console.error(`FAIL ${name}${detail === undefined ? '' : `: ${JSON.stringify(detail, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`}`);
      }
    },
    done() {
      console.log(`${passed} passed, ${failed} failed`);
      if (failed > 0) process.exitCode = 1;
    },
  };
}
