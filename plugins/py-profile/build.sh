#!/usr/bin/env bash
# Builds plugins/py-profile/dist/py-profile.wasm: a WebAssembly component that
# exports vaultaris:plugin/jwt-customizer@0.1.0 and
# vaultaris:plugin/input-validator@0.1.0 (world `plugin` in wit/world.wit).
#
# Needs python3 (>= 3.10, with venv). componentize-py (pinned in
# requirements-build.txt) is installed into <repo>/target/tmp/plugin-build-venv;
# it bundles CPython and the Python standard library, nothing else is fetched.
#
# The contract is linked in as wit/deps/vaultaris-plugin -> the repository's
# wit/vaultaris-plugin-0.1.0 (a symlink made here, not committed).
#
# By default the component is built with --stub-wasi: every WASI import of the
# CPython runtime is replaced by a trapping stub, so the component imports ONLY
# the seven vaultaris:plugin@0.1.0 interfaces. Without it, it imports 32 WASI
# 0.2.9 interfaces, including wasi:sockets/* which the host does not link.
# Consequences of the stubs: print()/stdout, time.time(), os.urandom() and
# filesystem access trap (use the host's logging/clock/random capabilities);
# hash and `random` seeds are those of the build-time snapshot.
# PY_WASI=1 builds without the stubs.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$ROOT/target/tmp/plugin-build-venv"
cd "$HERE"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r requirements-build.txt

mkdir -p wit/deps dist
ln -sfn ../../../../wit/vaultaris-plugin-0.1.0 wit/deps/vaultaris-plugin

STUB=(--stub-wasi)
if [ "${PY_WASI:-0}" = 1 ]; then STUB=(); fi

"$VENV/bin/componentize-py" -d wit -w plugin componentize app "${STUB[@]}" -o dist/py-profile.wasm
ls -l dist/py-profile.wasm
