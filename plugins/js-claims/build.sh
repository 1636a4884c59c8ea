#!/usr/bin/env bash
# Builds plugins/js-claims/dist/js-claims.wasm (a WebAssembly component that
# exports vaultaris:plugin/jwt-customizer@0.1.0) from a clean checkout.
#
# Needs Node.js >= 20 and npm; everything else comes from package-lock.json:
#   @bytecodealliance/jco 1.34.0 and @bytecodealliance/componentize-js 0.23.0
#   (StarlingMonkey, pre-initialised with Wizer; the wizer binary ships in the
#   npm package @bytecodealliance/wizer-linux-x64, nothing is downloaded).
#
# Why these versions: jco 1.35.0 cannot read a `--wit` directory (its
# preview2-shim 0.26 no longer preopens `/`, so every path fails with
# "failed to get path metadata ... os error 44"); jco 1.34.0 works. jco 1.34
# depends on componentize-js ^0.22, so package.json `overrides` makes it load
# componentize-js 0.23.0.
#
# The default backend is QuickJS (jco --backend quickjs, componentize-qjs):
# measured in the host's benchmark it answers a jwt-customizer call with about
# a fifth of the fuel of StarlingMonkey (~0.5M vs ~2.7M on the first call),
# in 1.5 MiB of memory instead of 19 MiB, ~7x smaller. The component imports
# WASI 0.2.12 (cli, io, clocks, filesystem, random/insecure-seed), which the
# host links locked down (no preopens, no environment, no sockets), uses the
# component-model async intrinsics (the host enables them), and exports an
# extra `init` function the host never calls (the component is
# pre-initialised at build time).
#
# JS_BACKEND=starlingmonkey builds with componentize-js (SpiderMonkey): every
# optional StarlingMonkey feature is disabled (stdio, random, clocks, http,
# fetch-event), so the component imports only the seven vaultaris:plugin@0.1.0
# interfaces and no WASI; `console.log` output is discarded.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

mkdir -p dist
case "${JS_BACKEND:-quickjs}" in
  starlingmonkey)
    npx --no-install jco componentize src/plugin.js \
      --wit ../../wit/vaultaris-plugin-0.1.0 \
      --world-name jwt-customizer-plugin \
      --disable stdio random clocks http fetch-event \
      -o dist/js-claims.wasm
    ;;
  quickjs)
    npx --no-install jco componentize src/plugin.js \
      --wit ../../wit/vaultaris-plugin-0.1.0 \
      --world-name jwt-customizer-plugin \
      --backend quickjs --backend-qjs-disable-async --cwd . \
      -o dist/js-claims.wasm
    ;;
  *)
    echo "unknown JS_BACKEND=${JS_BACKEND} (starlingmonkey | quickjs)" >&2
    exit 2
    ;;
esac
ls -l dist/js-claims.wasm
