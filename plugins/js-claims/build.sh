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
# Every optional StarlingMonkey feature is disabled (stdio, random, clocks,
# http, fetch-event): the component then imports no WASI interface at all, only
# the seven vaultaris:plugin@0.1.0 interfaces (types, logging, config,
# key-value, outbound-http, clock, random). `console.log` output is discarded.
#
# JS_BACKEND=quickjs builds with componentize-qjs instead (jco
# --backend quickjs): ~7x smaller and ~5x less fuel per call, but the component
# then imports WASI 0.2.12 (cli, io, clocks, filesystem, random/insecure-seed)
# and exports an extra `init` function.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

mkdir -p dist
case "${JS_BACKEND:-starlingmonkey}" in
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
