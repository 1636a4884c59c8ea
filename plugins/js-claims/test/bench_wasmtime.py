"""Runs dist/js-claims.wasm in wasmtime (wasmtime-py): fuel and time per call,
minimum memory. Usage: python test/bench_wasmtime.py [calls]
(needs `pip install wasmtime==50.0.1`; plugins/py-profile/build.sh's venv has it)."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from wasmtime_host import Plugin, Variant, min_memory_mib, record, to_py  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
WASM = os.path.join(HERE, "..", "dist", "js-claims.wasm")
CALLS = int(sys.argv[1]) if len(sys.argv) > 1 else 2000

CTX = record(tenant="t-1", plugin_id="js-claims", request_id="req-1", now=1764000000000, deadline=1764000000050)


def request(kind="access"):
    attrs = [
        ("email", Variant("text", "alice@example.com")),
        ("roles", Variant("text-list", ["admin", "billing"])),
        ("level", Variant("integer", 9007199254740993)),
        ("mfa", Variant("boolean", True)),
        ("org", Variant("json", '{"id":"o-1","name":"Acme"}')),
        ("department", Variant("text", "R&D")),
    ]
    claims = [("iss", '"https://id.example.com"'), ("sub", '"user-1"'), ("aud", '"https://api.example.com"'),
              ("exp", "1764003600"), ("iat", "1764000000"), ("scope", '"openid profile"')]
    return record(
        kind=kind, subject="user-1", client_id="my-app", grant_type="authorization_code",
        scopes=["openid", "profile"], audience=["https://api.example.com"],
        subject_attributes=[record(name=n, value=v) for n, v in attrs],
        claims=[record(name=n, value=v) for n, v in claims],
    )


CONFIG = {
    "claims": {"tenant_tier": "gold", "features": ["sso", "audit"], "org": {"id": "default"}},
    "copy_attributes": {"roles": "roles", "level": "level", "mfa": "mfa_enrolled", "org": "org",
                        "department": "dept", "email": "contact"},
    "token_kinds": ["access", "id"],
}


def main():
    p = Plugin(WASM, cache_dir=os.path.join(ROOT, "target", "tmp", "wasmtime-cache"))
    print(f"component: {p.size / 1e6:.1f} MB, compile/load {p.load_seconds:.1f} s")
    print("imports:", ", ".join(p.imports))
    print("exports:", ", ".join(p.exports))
    inst = p.instantiate(CONFIG)
    print(f"instantiate: {inst.instantiate_seconds * 1e3:.2f} ms, {inst.instantiate_fuel} fuel")
    req = request()
    for i in range(3):
        r, fuel, dt = inst.call("jwt-customizer", "customize", CTX, req)
        print(f"call {i + 1}: {dt * 1e6:.0f} µs, {fuel} fuel")
    print("result:", to_py(r))
    fuels, times = [], []
    for _ in range(CALLS):
        _, fuel, dt = inst.call("jwt-customizer", "customize", CTX, req)
        fuels.append(fuel)
        times.append(dt)
    times.sort()
    print(f"warm x{CALLS}: min {times[0] * 1e6:.1f} µs, median {times[len(times) // 2] * 1e6:.1f} µs, p99 {times[int(len(times) * .99)] * 1e6:.1f} µs, "
          f"fuel max {max(fuels)} min {min(fuels)}")
    # A fresh instance per call (what the host pays without a warm pool).
    fresh = []
    for _ in range(20):
        i2 = p.instantiate(CONFIG)
        _, fuel, dt = i2.call("jwt-customizer", "customize", CTX, req)
        fresh.append((i2.instantiate_seconds + dt, i2.instantiate_fuel + fuel))
    fresh.sort()
    print(f"fresh instance + first call: median {fresh[10][0] * 1e3:.2f} ms, fuel {fresh[10][1]}")
    mib = min_memory_mib(p, CONFIG, lambda i: [i.call("jwt-customizer", "customize", CTX, req) for _ in range(200)])
    print(f"minimum memory limit: {mib} MiB")

    # Worst case within the input/output limits: ~60 KiB of input (60
    # attributes of 512 bytes plus 40 claims), 60 claims out (~31 KiB, more
    # than the host's 16 KiB output limit: an upper bound).
    big_cfg = {"copy_attributes": {f"attr_{i}": f"claim_{i}" for i in range(60)}}
    big_req = request()
    setattr(big_req, "subject-attributes",
            [record(name=f"attr_{i}", value=Variant("text", "x" * 512)) for i in range(60)])
    setattr(big_req, "claims", [record(name=f"c{i}", value='"' + "y" * 200 + '"') for i in range(40)])
    ib = p.instantiate(big_cfg)
    big = [ib.call("jwt-customizer", "customize", CTX, big_req) for _ in range(50)]
    print(f"large request (60 attrs x 512 B + 40 claims in, 60 claims out): first {big[0][1]} fuel, "
          f"warm {big[-1][1]} fuel, {sorted(b[2] for b in big)[25] * 1e6:.0f} µs")
    mib = min_memory_mib(p, big_cfg, lambda i: [i.call("jwt-customizer", "customize", CTX, big_req) for _ in range(200)])
    print(f"minimum memory limit, large request x200: {mib} MiB")


main()
