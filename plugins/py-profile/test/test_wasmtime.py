"""Runs dist/py-profile.wasm in wasmtime (wasmtime-py): behaviour checks of
both categories, fuel and time per call, minimum memory.

    ../../target/tmp/plugin-build-venv/bin/python test/test_wasmtime.py [calls]

(build.sh's venv has wasmtime==50.0.1; the host helper lives in
plugins/js-claims/test/wasmtime_host.py)."""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "js-claims", "test"))
from wasmtime_host import Plugin, Variant, min_memory_mib, record, to_py  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
WASM = os.environ.get("PY_PROFILE_WASM", os.path.join(HERE, "..", "dist", "py-profile.wasm"))
CALLS = int(sys.argv[1]) if len(sys.argv) > 1 else 2000

CTX = record(tenant="t-1", plugin_id="py-profile", request_id="req-1", now=1764000000000, deadline=1764000002000)

CONFIG = {
    "required": {
        "user_create": ["email"],
        "self_registration": ["email", "username", "given_name", "attributes/country"],
        "user_update": ["email"],
    },
    "max_lengths": {"given_name": 20, "family_name": 30, "attributes/department": 10},
    "username_pattern": "^[a-z][a-z0-9_.-]{2,31}$",
    "blocked_words": ["admin", "Root"],
    "profile_complete_attributes": ["email", "given_name", "family_name"],
    "locale_attribute": "locale",
    "default_locale": "en",
}

passed = failed = 0


def check(name, cond, detail=None):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}: {detail!r}")


def fields(**kv):
    return [record(name=k.replace("__", "/"), value=json.dumps(v)) for k, v in kv.items()]


def vreq(op, flds, changed=None, locales=("en",), user_id=None):
    return record(operation=op, user_id=user_id, fields=flds,
                  changed=changed if changed is not None else [f.name for f in flds], locales=list(locales))


def treq(kind="id", attrs=None, subject="user-1"):
    if attrs is None:
        attrs = [
            ("email", Variant("text", "alice@example.com")),
            ("given_name", Variant("text", "Alice")),
            ("family_name", Variant("text", "Liddell")),
            ("locale", Variant("text", "de-CH")),
            ("roles", Variant("text-list", ["admin", "billing"])),
            ("mfa", Variant("boolean", True)),
        ]
    claims = [("iss", '"https://id.example.com"'), ("sub", '"user-1"'), ("aud", '"my-app"'),
              ("exp", "1764003600"), ("iat", "1764000000"), ("nonce", '"n-0S6_WzA2Mj"')]
    return record(kind=kind, subject=subject, client_id="my-app", grant_type="authorization_code",
                  scopes=["openid", "profile"], audience=[], claims=[record(name=n, value=v) for n, v in claims],
                  subject_attributes=[record(name=n, value=v) for n, v in attrs])


def codes(result):
    return sorted((v["field"], v["code"]) for v in to_py(result))


def claims_of(result):
    r = to_py(result)
    return {c["name"]: json.loads(c["value"]) for c in r["add"]}


def main():
    p = Plugin(WASM, cache_dir=os.path.join(ROOT, "target", "tmp", "wasmtime-cache"))
    print(f"component: {p.size / 1e6:.1f} MB, compile/load {p.load_seconds:.1f} s")
    print("imports:", ", ".join(p.imports))
    print("exports:", ", ".join(p.exports))
    inst = p.instantiate(CONFIG)
    print(f"instantiate: {inst.instantiate_seconds * 1e3:.2f} ms, {inst.instantiate_fuel} fuel")

    # ---- input-validator
    good = fields(email="a@example.com", username="alice", given_name="Alice", attributes__country="CH")
    r, fuel, dt = inst.call("input-validator", "validate", CTX, vreq("self-registration", good))
    print(f"validate, first call: {dt * 1e6:.0f} µs, {fuel} fuel")
    check("valid registration", to_py(r) == [], to_py(r))

    bad = fields(email="", username="Admin_1", given_name="Alice in Wonderland, Esq.", attributes__department="Research & Development")
    r, _, _ = inst.call("input-validator", "validate", CTX, vreq("self-registration", bad, locales=["de-DE", "en"]))
    got = codes(r)
    check("registration violations", got == sorted([
        ("attributes/country", "required"), ("email", "required"),
        ("given_name", "too_long"), ("username", "invalid_format"), ("username", "blocked_word"),
        ("attributes/department", "too_long"),
    ]), got)
    msgs = {v["code"]: v["message"] for v in to_py(r)}
    check("German messages", msgs.get("required") == "Dieses Feld ist erforderlich.", msgs)
    check("too_long message has limit", "20" in [v for v in to_py(r) if v["field"] == "given_name"][0]["message"], to_py(r))

    r, _, _ = inst.call("input-validator", "validate", CTX, vreq("user-create", fields(email="b@example.com", username="r.o.o.t")))
    check("blocked word across separators", codes(r) == [("username", "blocked_word")], codes(r))

    upd = fields(email="a@example.com", username="Legacy User", given_name="Bob")
    r, _, _ = inst.call("input-validator", "validate", CTX, vreq("user-update", upd, changed=["given_name"], user_id="u-1"))
    check("update checks only changed fields", to_py(r) == [], to_py(r))
    r, _, _ = inst.call("input-validator", "validate", CTX,
                        vreq("user-update", fields(email=None, given_name="Bob"), changed=["email"], user_id="u-1"))
    check("update cannot clear a required field", codes(r) == [("email", "required")], codes(r))

    pw = fields(password="admin-password-that-is-long", username="alice", email="a@example.com")
    r, _, _ = inst.call("input-validator", "validate", CTX, vreq("password-change", pw, changed=["password"], user_id="u-1"))
    check("password change untouched", to_py(r) == [], to_py(r))

    r, _, _ = inst.call("input-validator", "validate", CTX, vreq("user-create", [record(name="email", value="{not json")]))
    check("invalid JSON field -> invalid-input", to_py(r).get("tag") == "invalid-input" if isinstance(to_py(r), dict) else False, to_py(r))

    # ---- jwt-customizer
    r, fuel, dt = inst.call("jwt-customizer", "customize", CTX, treq())
    print(f"customize, first call: {dt * 1e6:.0f} µs, {fuel} fuel")
    c = claims_of(r)
    check("complete + locale", c == {"profile_complete": True, "locale": "de-CH"}, c)
    r, _, _ = inst.call("jwt-customizer", "customize", CTX, treq(attrs=[("email", Variant("text", "a@x")),
                                                                        ("given_name", Variant("text", " "))]))
    c = claims_of(r)
    check("incomplete + default locale", c == {"profile_complete": False, "locale": "en"}, c)
    r, _, _ = inst.call("jwt-customizer", "customize", CTX, treq(subject=None, attrs=[]))
    check("client token untouched", to_py(r) == {"add": [], "remove": []}, to_py(r))

    # ---- misconfiguration
    for name, cfg in [("bad regex", {"username_pattern": "("}), ("unknown op", {"required": {"login": []}}),
                      ("bad length", {"max_lengths": {"x": 0}}), ("bad locale", {"default_locale": "not a tag"})]:
        i2 = p.instantiate(cfg)
        r, _, _ = i2.call("jwt-customizer", "customize", CTX, treq())
        got = to_py(r)
        check(f"{name} -> misconfigured", isinstance(got, dict) and got.get("tag") == "misconfigured"
              and got["val"]["code"] == "invalid_config", got)

    # ---- timing (warm)
    def bench(iface, fn, *args):
        fuels, times = [], []
        for _ in range(CALLS):
            _, f, t = inst.call(iface, fn, *args)
            fuels.append(f)
            times.append(t)
        times.sort()
        return (f"min {times[0] * 1e6:.1f} µs, median {times[len(times) // 2] * 1e6:.1f} µs, p99 {times[int(len(times) * .99)] * 1e6:.1f} µs, "
                f"fuel max {max(fuels)} min {min(fuels)}")

    tr = treq()
    print(f"warm customize x{CALLS} (6 attributes, 6 claims in; 2 claims out): {bench('jwt-customizer', 'customize', CTX, tr)}")
    vr = vreq("self-registration", bad, locales=["de-DE", "en"])
    print(f"warm validate x{CALLS} (4 fields, 6 violations): {bench('input-validator', 'validate', CTX, vr)}")
    vr_ok = vreq("self-registration", good)
    print(f"warm validate x{CALLS} (4 fields, valid): {bench('input-validator', 'validate', CTX, vr_ok)}")

    # ---- fresh instance + first call
    fresh = []
    for _ in range(10):
        i3 = p.instantiate(CONFIG)
        _, f, t = i3.call("jwt-customizer", "customize", CTX, tr)
        fresh.append((i3.instantiate_seconds + t, i3.instantiate_fuel + f))
    fresh.sort()
    print(f"fresh instance + first customize: median {fresh[5][0] * 1e3:.2f} ms, fuel {fresh[5][1]}")

    # ---- a large validation input (~200 KiB: 200 attribute fields of 1 KiB)
    big = fields(email="a@example.com", username="alice", given_name="Alice", attributes__country="CH")
    big += [record(name=f"attributes/a{i}", value=json.dumps("z" * 1000)) for i in range(200)]
    bigcfg = dict(CONFIG, max_lengths={f"attributes/a{i}": 500 for i in range(200)})
    ib = p.instantiate(bigcfg)
    rb = [ib.call("input-validator", "validate", CTX, vreq("self-registration", big)) for _ in range(5)]
    check("large input: 64 violations kept", len(to_py(rb[-1][0])) == 64, len(to_py(rb[-1][0])))
    print(f"large validate (~200 KiB in, 64 violations out): first {rb[0][1]} fuel, warm {rb[-1][1]} fuel, "
          f"{rb[-1][2] * 1e3:.1f} ms")

    # ---- a large token request (~64 KiB: 60 attributes of 1 KiB)
    big_t = treq(attrs=[(f"a{i}", Variant("text", "z" * 1000)) for i in range(60)]
                 + [("email", Variant("text", "a@x")), ("locale", Variant("text", "fr"))])
    rt = [inst.call("jwt-customizer", "customize", CTX, big_t) for _ in range(5)]
    print(f"large customize (~60 KiB in): warm {rt[-1][1]} fuel, {rt[-1][2] * 1e3:.2f} ms")

    mib = min_memory_mib(p, CONFIG, lambda i: [i.call("jwt-customizer", "customize", CTX, tr) for _ in range(100)]
                         + [i.call("input-validator", "validate", CTX, vr) for _ in range(100)])
    print(f"minimum memory limit: {mib} MiB")
    mib = min_memory_mib(p, bigcfg, lambda i: [i.call("input-validator", "validate", CTX, vreq("self-registration", big))
                                                for _ in range(20)])
    print(f"minimum memory limit, large validate x20: {mib} MiB")

    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


main()
