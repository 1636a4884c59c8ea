"""Independent-client conformance checks for Vaultaris, written against Authlib.

Run by tests/e2e/independent_clients.rs, which starts the server, provisions a
tenant, a user and the clients below, and passes them in the environment:

    conformance.py keygen PRIVATE_JWK_FILE   writes an ES256 private JWK, prints the public JWK
    conformance.py run                       runs every check; exit 0 only when all pass

Environment for `run`:
    ISSUER, USERNAME, PASSWORD, REDIRECT_URI
    WEB_CLIENT_ID, WEB_CLIENT_SECRET         confidential, client_secret_basic, code+refresh
    PUBLIC_CLIENT_ID                         public, PKCE, token_endpoint_auth_method none
    CONSENT_CLIENT_ID, CONSENT_CLIENT_SECRET confidential, require_consent
    SVC_CLIENT_ID, SVC_CLIENT_SECRET         client_credentials, client_secret_basic
    POST_CLIENT_ID, POST_CLIENT_SECRET       client_credentials, client_secret_post
    PKJWT_CLIENT_ID, PKJWT_KEY_FILE          client_credentials, private_key_jwt (ES256)
    EDDSA_CLIENT_ID, EDDSA_CLIENT_SECRET     id_token_signed_response_alg EdDSA
    ES256_CLIENT_ID, ES256_CLIENT_SECRET     id_token_signed_response_alg ES256

The library's checks are never loosened. The one concession is
AUTHLIB_INSECURE_TRANSPORT: the server under test listens on plain HTTP on the
loopback interface.
"""

import base64
import hashlib
import json
import os
import sys
import time
import traceback
import warnings
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
import requests  # noqa: E402
from authlib.deprecate import AuthlibDeprecationWarning  # noqa: E402

# authlib.jose announces its move to joserfc; the checks below still use it.
warnings.simplefilter("ignore", AuthlibDeprecationWarning)
from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session, OAuthError  # noqa: E402
from authlib.jose import JsonWebKey, JsonWebToken  # noqa: E402
from authlib.oauth2.rfc7523 import PrivateKeyJWT  # noqa: E402
from authlib.oidc.core import CodeIDToken  # noqa: E402
from authlib.oidc.discovery import OpenIDProviderMetadata  # noqa: E402
from joserfc.jwk import ECKey  # noqa: E402

TIMEOUT = 30
JWT = JsonWebToken(["RS256", "ES256", "EdDSA", "PS256"])


class CheckFailed(Exception):
    pass


def expect(cond, message):
    if not cond:
        raise CheckFailed(message)


def env(name):
    value = os.environ.get(name)
    if not value:
        raise CheckFailed(f"environment variable {name} is not set")
    return value


def show(resp):
    body = resp.text
    if len(body) > 2000:
        body = body[:2000] + "...(truncated)"
    return f"{resp.request.method} {resp.request.url} -> {resp.status_code} {dict(resp.headers)}\n{body}"


# ---------------------------------------------------------------- HTML forms


class FormParser(HTMLParser):
    """Collects every <form> with its inputs and submit buttons."""

    def __init__(self):
        super().__init__()
        self.forms = []
        self._form = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = {"attrs": a, "inputs": [], "buttons": []}
            self.forms.append(self._form)
        elif self._form is not None and tag == "input":
            self._form["inputs"].append(a)
        elif self._form is not None and tag == "button":
            self._form["buttons"].append(a)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def parse_forms(html):
    p = FormParser()
    p.feed(html)
    return p.forms


def form_fields(form):
    fields = {}
    for i in form["inputs"]:
        name = i.get("name")
        if not name:
            continue
        if i.get("type", "text").lower() in ("submit", "button", "image", "reset"):
            continue
        if i.get("type", "").lower() in ("checkbox", "radio") and "checked" not in i:
            continue
        fields[name] = i.get("value", "")
    return fields


# ---------------------------------------------------------------- the flows


class Ctx:
    def __init__(self):
        self.issuer = env("ISSUER")
        self.username = env("USERNAME")
        self.password = env("PASSWORD")
        self.redirect_uri = env("REDIRECT_URI")
        self.meta = None
        self.jwks = None
        self.state = {}

    def need(self, key):
        if key not in self.state:
            raise CheckFailed(f"skipped: needs '{key}' from an earlier check that failed")
        return self.state[key]


def drive_authorize(ctx, browser, url, redirect_uri, allow_form=True, decision="allow"):
    """Follows the authorization request through the hosted pages.

    Answers (callback_url, pages) where pages lists what was shown ("login",
    "consent"). Stops at the first redirect whose target is redirect_uri.
    """
    pages = []
    resp = browser.get(url, allow_redirects=False, timeout=TIMEOUT)
    for _ in range(20):
        if resp.status_code in (301, 302, 303, 307, 308):
            loc = resp.headers.get("Location")
            expect(loc, f"redirect without Location: {show(resp)}")
            loc = urljoin(resp.url, loc)
            base = loc.split("?", 1)[0].split("#", 1)[0]
            if base == redirect_uri:
                return loc, pages
            expect(
                loc.startswith(ctx.issuer + "/") or loc == ctx.issuer,
                f"redirect leaves the issuer before reaching the client: {loc}",
            )
            resp = browser.get(loc, allow_redirects=False, timeout=TIMEOUT)
            continue
        expect(resp.status_code == 200, f"authorization step failed: {show(resp)}")
        ctype = resp.headers.get("Content-Type", "")
        expect("text/html" in ctype, f"expected an HTML page: {show(resp)}")
        forms = parse_forms(resp.text)
        login = [f for f in forms if any(i.get("name") == "password" for i in f["inputs"])]
        consent = [
            f for f in forms if any(b.get("name") == "decision" for b in f["buttons"])
        ]
        if login:
            expect(allow_form, f"login form shown where the session should have been used: {resp.url}")
            expect(len(login) == 1, f"expected one login form, found {len(login)}")
            form = login[0]
            expect(
                form["attrs"].get("method", "get").lower() == "post",
                f"login form method is not post: {form['attrs']}",
            )
            ids = {i.get("id") for i in form["inputs"]} | {b.get("id") for b in form["buttons"]}
            for wanted in ("username", "password", "submit"):
                expect(wanted in ids, f"login form lacks #{wanted}: {form}")
            data = form_fields(form)
            data["username"] = ctx.username
            data["password"] = ctx.password
            pages.append("login")
        elif consent:
            form = consent[0]
            data = form_fields(form)
            data["decision"] = decision
            pages.append("consent")
        else:
            raise CheckFailed(f"page has neither a login nor a consent form: {show(resp)}")
        action = urljoin(resp.url, form["attrs"].get("action") or resp.url)
        expect(action.startswith(ctx.issuer + "/"), f"form posts outside the issuer: {action}")
        resp = browser.post(action, data=data, allow_redirects=False, timeout=TIMEOUT)
    raise CheckFailed("too many steps in the authorization flow")


def callback_params(ctx, callback, state):
    q = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    expect("error" not in q, f"authorization error: {q}")
    expect(q.get("state") == state, f"state mismatch: {q}")
    expect("code" in q, f"no code in {callback}")
    if ctx.meta.get("authorization_response_iss_parameter_supported"):
        expect(q.get("iss") == ctx.issuer, f"RFC 9207 iss mismatch: {q.get('iss')!r}")
    elif "iss" in q:
        expect(q["iss"] == ctx.issuer, f"iss mismatch: {q['iss']!r}")
    return q


def web_session(ctx, client_id=None, secret=None, scope="openid profile email offline_access"):
    return OAuth2Session(
        client_id or env("WEB_CLIENT_ID"),
        secret if secret is not None else env("WEB_CLIENT_SECRET"),
        token_endpoint_auth_method="client_secret_basic",
        redirect_uri=ctx.redirect_uri,
        scope=scope,
        code_challenge_method="S256",
    )


def validate_id_token(ctx, id_token, client_id, nonce=None, access_token=None):
    """Signature against the JWKS, then iss, aud, exp, iat, nonce, at_hash."""
    keys = JsonWebKey.import_key_set(ctx.jwks)
    options = {
        "iss": {"essential": True, "value": ctx.issuer},
        "aud": {"essential": True, "value": client_id},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
    }
    if nonce is not None:
        options["nonce"] = {"essential": True, "value": nonce}
    params = {"client_id": client_id}
    if nonce is not None:
        params["nonce"] = nonce
    if access_token is not None:
        params["access_token"] = access_token
    claims = JWT.decode(
        id_token, keys, claims_cls=CodeIDToken, claims_options=options, claims_params=params
    )
    claims.validate(leeway=5)
    if isinstance(claims.get("aud"), list) and len(claims["aud"]) > 1:
        expect(claims.get("azp") == client_id, f"multi-audience ID token without azp: {claims}")
    return claims


def decode_jwt_unverified(token):
    def part(s):
        return json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))

    h, p, _ = token.split(".")
    return part(h), part(p)


def login_code_flow(ctx, browser, sess, allow_form=True, extra=None):
    verifier = generate_token(64)
    nonce = generate_token(24)
    url, state = sess.create_authorization_url(
        ctx.meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **(extra or {})
    )
    callback, pages = drive_authorize(ctx, browser, url, sess.redirect_uri, allow_form=allow_form)
    callback_params(ctx, callback, state)
    token = sess.fetch_token(
        ctx.meta["token_endpoint"],
        authorization_response=callback,
        state=state,
        code_verifier=verifier,
    )
    return token, nonce, pages


# ---------------------------------------------------------------- checks


def check_discovery(ctx):
    resp = requests.get(ctx.issuer + "/.well-known/openid-configuration", timeout=TIMEOUT)
    expect(resp.status_code == 200, show(resp))
    expect(resp.headers.get("Content-Type", "").startswith("application/json"), show(resp))
    meta = resp.json()
    expect(meta.get("issuer") == ctx.issuer, f"issuer {meta.get('issuer')!r} != {ctx.issuer!r}")
    md = OpenIDProviderMetadata(meta)
    md.validate()
    for k in (
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "end_session_endpoint",
    ):
        expect(isinstance(meta.get(k), str) and meta[k].startswith(ctx.issuer + "/"), f"{k}: {meta.get(k)!r}")
    expect("code" in meta.get("response_types_supported", []), "response_types_supported lacks code")
    expect("S256" in meta.get("code_challenge_methods_supported", []), "no S256 PKCE")
    for m in ("client_secret_basic", "client_secret_post", "private_key_jwt"):
        expect(m in meta.get("token_endpoint_auth_methods_supported", []), f"auth method {m} not advertised")
    expect("ES256" in meta.get("token_endpoint_auth_signing_alg_values_supported", ["ES256"]),
           "ES256 not accepted for private_key_jwt")
    ctx.meta = meta
    jr = requests.get(meta["jwks_uri"], timeout=TIMEOUT)
    expect(jr.status_code == 200, show(jr))
    ctx.jwks = jr.json()
    expect(ctx.jwks.get("keys"), "empty JWKS")
    JsonWebKey.import_key_set(ctx.jwks)
    for k in ctx.jwks["keys"]:
        expect("d" not in k and "p" not in k, f"private material in the JWKS: {k.get('kid')}")


def check_code_flow(ctx):
    browser = requests.Session()
    sess = web_session(ctx)
    token, nonce, pages = login_code_flow(ctx, browser, sess)
    expect(pages == ["login"], f"expected one login page, saw {pages}")
    expect(token.get("token_type", "").lower() == "bearer", f"token_type {token.get('token_type')!r}")
    for k in ("access_token", "id_token", "refresh_token", "expires_in"):
        expect(k in token, f"token response lacks {k}: {sorted(token)}")
    claims = validate_id_token(
        ctx, token["id_token"], env("WEB_CLIENT_ID"), nonce=nonce, access_token=token["access_token"]
    )
    if "at_hash" not in claims:
        print("note: the ID token carries no at_hash (optional for the code flow)")
    ctx.state.update(browser=browser, web_token=token, sub=claims["sub"], id_claims=claims)


def check_code_reuse_rejected(ctx):
    browser = ctx.need("browser")
    sess = web_session(ctx)
    verifier = generate_token(64)
    url, state = sess.create_authorization_url(
        ctx.meta["authorization_endpoint"], code_verifier=verifier, nonce=generate_token(16)
    )
    callback, _ = drive_authorize(ctx, browser, url, ctx.redirect_uri, allow_form=False)
    code = callback_params(ctx, callback, state)["code"]
    # A wrong verifier fails (RFC 7636 4.6).
    bad = requests.post(
        ctx.meta["token_endpoint"],
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": ctx.redirect_uri,
              "code_verifier": generate_token(64)},
        auth=(env("WEB_CLIENT_ID"), env("WEB_CLIENT_SECRET")),
        timeout=TIMEOUT,
    )
    expect(bad.status_code == 400 and bad.json().get("error") == "invalid_grant",
           f"wrong code_verifier not rejected with invalid_grant: {show(bad)}")
    # The right one may still redeem it (the spec leaves that open); if not,
    # the code is simply spent.
    try:
        token = sess.fetch_token(ctx.meta["token_endpoint"], authorization_response=callback,
                                 state=state, code_verifier=verifier)
    except OAuthError as e:
        expect(e.error == "invalid_grant", f"expected invalid_grant, got {e.error}: {e.description}")
        return
    # A second redemption is refused (RFC 6749 4.1.2) and revokes what the
    # first one issued (a SHOULD there; the contract promises it).
    try:
        sess.fetch_token(ctx.meta["token_endpoint"], authorization_response=callback,
                         state=state, code_verifier=verifier)
        raise CheckFailed("an authorization code was redeemed twice")
    except OAuthError as e:
        expect(e.error == "invalid_grant", f"expected invalid_grant, got {e.error}: {e.description}")
    for kind in ("access_token", "refresh_token"):
        resp = sess.introspect_token(ctx.meta["introspection_endpoint"], token=token[kind])
        expect(resp.status_code == 200 and resp.json().get("active") is False,
               f"{kind} from a replayed code still active: {show(resp)}")


def check_sso_skips_form(ctx):
    browser = ctx.need("browser")
    sess = web_session(ctx)
    token, nonce, pages = login_code_flow(ctx, browser, sess, allow_form=False)
    expect(pages == [], f"SSO showed pages: {pages}")
    claims = validate_id_token(ctx, token["id_token"], env("WEB_CLIENT_ID"), nonce=nonce,
                               access_token=token["access_token"])
    expect(claims["sub"] == ctx.need("sub"), "SSO returned another subject")


def check_prompt_none(ctx):
    browser = ctx.need("browser")
    sess = web_session(ctx)
    token, nonce, pages = login_code_flow(ctx, browser, sess, allow_form=False, extra={"prompt": "none"})
    expect(pages == [], f"prompt=none showed pages: {pages}")
    validate_id_token(ctx, token["id_token"], env("WEB_CLIENT_ID"), nonce=nonce,
                      access_token=token["access_token"])
    # Without a session, prompt=none must come back with login_required.
    fresh = requests.Session()
    url, state = sess.create_authorization_url(
        ctx.meta["authorization_endpoint"], code_verifier=generate_token(64),
        nonce=generate_token(16), prompt="none"
    )
    callback, pages = drive_authorize(ctx, fresh, url, ctx.redirect_uri, allow_form=False)
    q = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    expect(q.get("error") == "login_required", f"expected error=login_required, got {q}")
    expect(q.get("state") == state, f"state not echoed on the error: {q}")


def check_public_client_pkce(ctx):
    browser = ctx.need("browser")
    sess = OAuth2Session(
        env("PUBLIC_CLIENT_ID"),
        token_endpoint_auth_method="none",
        redirect_uri=ctx.redirect_uri,
        scope="openid profile",
        code_challenge_method="S256",
    )
    token, nonce, pages = login_code_flow(ctx, browser, sess, allow_form=False)
    claims = validate_id_token(ctx, token["id_token"], env("PUBLIC_CLIENT_ID"), nonce=nonce,
                               access_token=token["access_token"])
    expect(claims["sub"] == ctx.need("sub"), "public client got another subject")
    expect("refresh_token" not in token, "refresh token issued without offline_access")
    # Without PKCE the public client must be refused.
    url, state = sess.create_authorization_url(ctx.meta["authorization_endpoint"], nonce="n")
    expect("code_challenge" not in url, "authlib added PKCE unexpectedly")
    resp = browser.get(url, allow_redirects=False, timeout=TIMEOUT)
    if resp.status_code in (302, 303):
        q = {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["Location"]).query).items()}
        expect(q.get("error") == "invalid_request", f"missing PKCE answered {q}")
    else:
        expect(resp.status_code == 400, f"missing PKCE not rejected: {show(resp)}")


def check_consent(ctx):
    browser = ctx.need("browser")
    sess = web_session(ctx, env("CONSENT_CLIENT_ID"), env("CONSENT_CLIENT_SECRET"), scope="openid email")
    # Deny first: access_denied back at the client.
    url, state = sess.create_authorization_url(
        ctx.meta["authorization_endpoint"], code_verifier=generate_token(64), nonce="n1"
    )
    callback, pages = drive_authorize(ctx, browser, url, ctx.redirect_uri, allow_form=False, decision="deny")
    expect(pages == ["consent"], f"expected the consent page, saw {pages}")
    q = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    expect(q.get("error") == "access_denied" and q.get("state") == state, f"deny answered {q}")
    # Then allow.
    token, nonce, pages = login_code_flow(ctx, browser, sess, allow_form=False)
    expect(pages == ["consent"], f"expected the consent page, saw {pages}")
    validate_id_token(ctx, token["id_token"], env("CONSENT_CLIENT_ID"), nonce=nonce,
                      access_token=token["access_token"])


def check_id_token_algorithms(ctx):
    browser = ctx.need("browser")
    for prefix, alg in (("EDDSA", "EdDSA"), ("ES256", "ES256")):
        client_id = env(f"{prefix}_CLIENT_ID")
        sess = web_session(ctx, client_id, env(f"{prefix}_CLIENT_SECRET"))
        token, nonce, _ = login_code_flow(ctx, browser, sess, allow_form=False)
        header, _ = decode_jwt_unverified(token["id_token"])
        expect(header.get("alg") == alg, f"{client_id}: ID token alg {header.get('alg')}, registered {alg}")
        claims = validate_id_token(ctx, token["id_token"], client_id, nonce=nonce,
                                   access_token=token["access_token"])
        expect(claims["sub"] == ctx.need("sub"), f"{client_id}: another subject")
        new = sess.refresh_token(ctx.meta["token_endpoint"], refresh_token=token["refresh_token"])
        if "id_token" in new:
            validate_id_token(ctx, new["id_token"], client_id, access_token=new["access_token"])


def check_userinfo(ctx):
    token = ctx.need("web_token")
    sess = web_session(ctx)
    sess.token = token
    resp = sess.get(ctx.meta["userinfo_endpoint"], timeout=TIMEOUT)
    expect(resp.status_code == 200, show(resp))
    info = resp.json()
    expect(info.get("sub") == ctx.need("sub"), f"userinfo sub {info.get('sub')!r} != ID token sub")
    expect(info.get("email") == ctx.username, f"userinfo email {info.get('email')!r}")
    # POST is allowed too (OIDC Core 5.3.1).
    resp = requests.post(ctx.meta["userinfo_endpoint"],
                         headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=TIMEOUT)
    expect(resp.status_code == 200 and resp.json().get("sub") == ctx.need("sub"), show(resp))
    # A bad token: 401 with a Bearer challenge (RFC 6750 3).
    resp = requests.get(ctx.meta["userinfo_endpoint"], headers={"Authorization": "Bearer nope"},
                        timeout=TIMEOUT)
    expect(resp.status_code == 401, show(resp))
    expect(resp.headers.get("WWW-Authenticate", "").startswith("Bearer"), show(resp))


def check_introspection_live(ctx):
    token = ctx.need("web_token")
    sess = web_session(ctx)
    resp = sess.introspect_token(ctx.meta["introspection_endpoint"], token=token["access_token"],
                                 token_type_hint="access_token")
    expect(resp.status_code == 200, show(resp))
    body = resp.json()
    expect(body.get("active") is True, f"live token inactive: {body}")
    expect(body.get("sub") == ctx.need("sub"), f"introspection sub: {body}")
    expect(body.get("client_id") == env("WEB_CLIENT_ID"), f"introspection client_id: {body}")
    scopes = set(body.get("scope", "").split())
    expect({"openid", "profile", "email"} <= scopes, f"introspection scope: {body}")
    expect(isinstance(body.get("exp"), int), f"introspection exp: {body}")
    # Without client authentication introspection is refused.
    bare = requests.post(ctx.meta["introspection_endpoint"], data={"token": token["access_token"]},
                         timeout=TIMEOUT)
    expect(bare.status_code == 401, f"unauthenticated introspection: {show(bare)}")


def check_refresh_rotation(ctx):
    token = ctx.need("web_token")
    sess = web_session(ctx)
    old_rt = token["refresh_token"]
    new = sess.refresh_token(ctx.meta["token_endpoint"], refresh_token=old_rt)
    expect(new.get("access_token") and new["access_token"] != token["access_token"], "no new access token")
    expect(new.get("refresh_token") and new["refresh_token"] != old_rt, "refresh token not rotated")
    if "id_token" in new:
        claims = validate_id_token(ctx, new["id_token"], env("WEB_CLIENT_ID"),
                                   access_token=new["access_token"])
        expect(claims["sub"] == ctx.need("sub"), "refreshed ID token has another sub")
    # The old refresh token is spent...
    try:
        sess.refresh_token(ctx.meta["token_endpoint"], refresh_token=old_rt)
        raise CheckFailed("the rotated-out refresh token still works")
    except OAuthError as e:
        expect(e.error == "invalid_grant", f"reuse answered {e.error}: {e.description}")
    # ...and reusing it revoked the whole family, the new one included.
    try:
        sess.refresh_token(ctx.meta["token_endpoint"], refresh_token=new["refresh_token"])
        raise CheckFailed("refresh token family not revoked after reuse")
    except OAuthError as e:
        expect(e.error == "invalid_grant", f"family revocation answered {e.error}: {e.description}")


def check_revocation(ctx):
    browser = ctx.need("browser")
    sess = web_session(ctx)
    token, _, _ = login_code_flow(ctx, browser, sess, allow_form=False)
    at, rt = token["access_token"], token["refresh_token"]
    resp = sess.introspect_token(ctx.meta["introspection_endpoint"], token=at)
    expect(resp.status_code == 200 and resp.json().get("active") is True, show(resp))
    resp = sess.revoke_token(ctx.meta["revocation_endpoint"], token=at, token_type_hint="access_token")
    expect(resp.status_code == 200, f"revocation: {show(resp)}")
    resp = sess.introspect_token(ctx.meta["introspection_endpoint"], token=at)
    expect(resp.status_code == 200, show(resp))
    expect(resp.json().get("active") is False, f"revoked access token introspects as {resp.json()}")
    # Revoking the refresh token ends the grant.
    resp = sess.revoke_token(ctx.meta["revocation_endpoint"], token=rt, token_type_hint="refresh_token")
    expect(resp.status_code == 200, f"revocation: {show(resp)}")
    resp = sess.introspect_token(ctx.meta["introspection_endpoint"], token=rt)
    expect(resp.status_code == 200 and resp.json().get("active") is False, show(resp))
    try:
        sess.refresh_token(ctx.meta["token_endpoint"], refresh_token=rt)
        raise CheckFailed("revoked refresh token still works")
    except OAuthError as e:
        expect(e.error == "invalid_grant", f"revoked refresh answered {e.error}: {e.description}")
    # Unknown tokens: 200 as well (RFC 7009 2.2).
    resp = sess.revoke_token(ctx.meta["revocation_endpoint"], token="not-a-token")
    expect(resp.status_code == 200, f"revoking an unknown token: {show(resp)}")


def verify_access_token(ctx, at, client_id):
    header, _ = decode_jwt_unverified(at)
    keys = JsonWebKey.import_key_set(ctx.jwks)
    claims = JWT.decode(at, keys, claims_options={
        "iss": {"essential": True, "value": ctx.issuer},
        "exp": {"essential": True},
    })
    claims.validate(leeway=5)
    expect(header.get("typ", "").lower() in ("at+jwt", "application/at+jwt"), f"access token typ {header}")
    expect(claims.get("client_id") == client_id, f"access token client_id {claims.get('client_id')!r}")
    return claims


def client_credentials(ctx, client_id, secret_or_key, method):
    sess = OAuth2Session(client_id, secret_or_key, token_endpoint_auth_method=method)
    if method == "private_key_jwt":
        sess.register_client_auth_method(PrivateKeyJWT(ctx.meta["token_endpoint"], alg="ES256"))
    token = sess.fetch_token(ctx.meta["token_endpoint"], grant_type="client_credentials")
    expect(token.get("token_type", "").lower() == "bearer", f"token_type {token.get('token_type')!r}")
    expect("refresh_token" not in token, "client_credentials issued a refresh token")
    expect("id_token" not in token, "client_credentials issued an ID token")
    verify_access_token(ctx, token["access_token"], client_id)
    return sess, token


def check_client_credentials_basic(ctx):
    _, token = client_credentials(ctx, env("SVC_CLIENT_ID"), env("SVC_CLIENT_SECRET"), "client_secret_basic")
    # A wrong secret is invalid_client with 401 and a Basic challenge (RFC 6749 5.2).
    resp = requests.post(ctx.meta["token_endpoint"], data={"grant_type": "client_credentials"},
                         auth=(env("SVC_CLIENT_ID"), "wrong"), timeout=TIMEOUT)
    expect(resp.status_code == 401 and resp.json().get("error") == "invalid_client", show(resp))
    expect("basic" in resp.headers.get("WWW-Authenticate", "").lower(), f"no Basic challenge: {show(resp)}")


def check_client_credentials_post(ctx):
    client_credentials(ctx, env("POST_CLIENT_ID"), env("POST_CLIENT_SECRET"), "client_secret_post")


def check_private_key_jwt(ctx):
    with open(env("PKJWT_KEY_FILE")) as f:
        key = ECKey.import_key(json.load(f))
    client_credentials(ctx, env("PKJWT_CLIENT_ID"), key, "private_key_jwt")
    # A key the client did not register is refused.
    other = ECKey.generate_key("P-256", private=True)
    sess = OAuth2Session(env("PKJWT_CLIENT_ID"), other, token_endpoint_auth_method="private_key_jwt")
    sess.register_client_auth_method(PrivateKeyJWT(ctx.meta["token_endpoint"], alg="ES256"))
    try:
        sess.fetch_token(ctx.meta["token_endpoint"], grant_type="client_credentials")
        raise CheckFailed("an assertion signed by an unregistered key was accepted")
    except OAuthError as e:
        expect(e.error == "invalid_client", f"foreign key answered {e.error}: {e.description}")


CHECKS = [
    check_discovery,
    check_code_flow,
    check_code_reuse_rejected,
    check_sso_skips_form,
    check_prompt_none,
    check_public_client_pkce,
    check_consent,
    check_id_token_algorithms,
    check_userinfo,
    check_introspection_live,
    check_refresh_rotation,
    check_revocation,
    check_client_credentials_basic,
    check_client_credentials_post,
    check_private_key_jwt,
]


def run():
    ctx = Ctx()
    passed, failed = [], []
    for check in CHECKS:
        name = check.__name__[len("check_"):]
        if ctx.meta is None and check is not check_discovery:
            failed.append(name)
            print(f"FAIL {name}: skipped, discovery failed", flush=True)
            continue
        t = time.monotonic()
        try:
            check(ctx)
            passed.append(name)
            print(f"ok   {name} ({time.monotonic() - t:.2f}s)", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failed.append(name)
            if isinstance(e, OAuthError):
                detail = f"OAuthError {e.error}: {e.description}"
            else:
                detail = f"{type(e).__name__}: {e}"
            print(f"FAIL {name}: {detail}", flush=True)
            if not isinstance(e, CheckFailed):
                traceback.print_exc()
    print(f"python/authlib: {len(passed)} passed, {len(failed)} failed", flush=True)
    return 0 if not failed else 1


def keygen(path):
    key = ECKey.generate_key("P-256", private=True)
    private = key.as_dict(private=True)
    kid = key.thumbprint()
    private.update(kid=kid, alg="ES256", use="sig")
    with open(path, "w") as f:
        json.dump(private, f)
    public = key.as_dict(private=False)
    public.update(kid=kid, alg="ES256", use="sig")
    print(json.dumps(public))
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "run":
        sys.exit(run())
    if len(sys.argv) == 3 and sys.argv[1] == "keygen":
        sys.exit(keygen(sys.argv[2]))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
