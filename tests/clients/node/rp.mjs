// Independent-client conformance checks for Vaultaris: a relying party built on
// oauth4webapi (+ jose for a second, independent signature check) whose user
// logs in through real headless Chromium driven by playwright-core.
//
// Run by tests/e2e/independent_clients.rs, which starts the server, provisions
// the tenant, the user and these clients, and passes them in the environment:
//   ISSUER, USERNAME, PASSWORD, RP_PORT (the callback server listens on
//   http://127.0.0.1:RP_PORT; redirect_uri = .../callback,
//   post_logout_redirect_uri = .../logged-out)
//   WEB_CLIENT_ID, WEB_CLIENT_SECRET     client_secret_basic, RS256 ID tokens
//   DPOP_CLIENT_ID, DPOP_CLIENT_SECRET   dpop_bound_access_tokens
//   SPA_CLIENT_ID                        public, dpop_bound_access_tokens
//   ED_CLIENT_ID, ED_CLIENT_SECRET       id_token_signed_response_alg Ed25519 (RFC 9864)
//   ES_CLIENT_ID, ES_CLIENT_SECRET       id_token_signed_response_alg ES256
//   CHROMIUM (default /usr/bin/chromium), ARTIFACTS_DIR (screenshots on failure)
//
// The libraries' checks are never loosened. The one concession is
// allowInsecureRequests: the server under test listens on plain HTTP on the
// loopback interface.

import http from 'node:http'
import fs from 'node:fs'
import path from 'node:path'
import * as oauth from 'oauth4webapi'
import * as jose from 'jose'
import { chromium } from 'playwright-core'

const insecure = { [oauth.allowInsecureRequests]: true }

class CheckFailed extends Error {
  name = 'CheckFailed'
}

function expect(cond, message) {
  if (!cond) throw new CheckFailed(message)
}

function env(name) {
  const v = process.env[name]
  if (!v) throw new CheckFailed(`environment variable ${name} is not set`)
  return v
}

const ISSUER = env('ISSUER')
const USERNAME = env('USERNAME')
const PASSWORD = env('PASSWORD')
const RP_PORT = Number(env('RP_PORT'))
const RP_BASE = `http://127.0.0.1:${RP_PORT}`
const REDIRECT_URI = `${RP_BASE}/callback`
const LOGGED_OUT_URI = `${RP_BASE}/logged-out`
const ARTIFACTS = process.env.ARTIFACTS_DIR || path.resolve('.')

// ------------------------------------------------------------ the RP's server

// Each request to the RP is handed to whoever waits for that path.
const waiters = new Map()
function waitFor(pathname, ms = 20000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiters.delete(pathname)
      reject(new CheckFailed(`the browser never reached ${RP_BASE}${pathname}`))
    }, ms)
    waiters.set(pathname, (url) => {
      clearTimeout(timer)
      resolve(url)
    })
  })
}

const rpServer = http.createServer((req, res) => {
  const url = new URL(req.url, RP_BASE)
  const waiter = waiters.get(url.pathname)
  waiters.delete(url.pathname)
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
  res.end(`<!doctype html><title>RP</title><p id="rp">relying party: ${url.pathname}</p>`)
  if (waiter) waiter(url)
})

// ------------------------------------------------------------ helpers

async function describeError(err) {
  let s = `${err?.name}: ${err?.message}`
  if (err?.code) s += ` [${err.code}]`
  if (err?.error) s += ` error=${err.error} description=${err.error_description}`
  if (err?.cause instanceof Response) {
    try {
      s += `\n  response ${err.cause.status} ${JSON.stringify(Object.fromEntries(err.cause.headers))} ${await err.cause.clone().text()}`
    } catch {}
  } else if (err?.cause !== undefined) {
    try {
      s += `\n  cause: ${JSON.stringify(err.cause)}`
    } catch {
      s += `\n  cause: ${err.cause}`
    }
  }
  if (!(err instanceof CheckFailed) && err?.stack) s += `\n${err.stack}`
  return s
}

// Runs a token-endpoint or resource request, retrying once when the server
// asks for a DPoP nonce (as oauth4webapi documents: the handle keeps the nonce).
async function withDpopRetry(fn) {
  try {
    return await fn()
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err
    console.log('     note: the server asked for a DPoP nonce; retried once with it')
    return await fn()
  }
}

const jwks = () => jose.createRemoteJWKSet(new URL(state.as.jwks_uri))

async function joseVerifyIdToken(idToken, clientId, alg, nonce) {
  const { payload, protectedHeader } = await jose.jwtVerify(idToken, jwks(), {
    issuer: ISSUER,
    audience: clientId,
    algorithms: [alg],
    requiredClaims: ['sub', 'exp', 'iat'],
    clockTolerance: 5,
  })
  expect(protectedHeader.alg === alg, `ID token alg ${protectedHeader.alg}, expected ${alg}`)
  if (nonce !== undefined) expect(payload.nonce === nonce, `jose: nonce ${payload.nonce} != ${nonce}`)
  return payload
}

async function joseVerifyAccessToken(at, clientId) {
  const { payload, protectedHeader } = await jose.jwtVerify(at, jwks(), {
    issuer: ISSUER,
    typ: 'at+jwt',
    requiredClaims: ['sub', 'exp', 'iat', 'jti', 'client_id'],
    clockTolerance: 5,
  })
  expect(payload.client_id === clientId, `access token client_id ${payload.client_id}`)
  return { payload, protectedHeader }
}

// Sends the browser through an authorization request and answers the callback
// URL the RP received. loginExpected: 'yes' fills the form, 'no' fails if it
// appears.
async function browserAuthorize(page, authUrl, loginExpected) {
  const callback = waitFor('/callback')
  callback.catch(() => {})
  await page.goto(authUrl.href, { waitUntil: 'load' })
  if (!page.url().startsWith(REDIRECT_URI)) {
    expect(page.url().startsWith(ISSUER + '/'), `browser left the issuer: ${page.url()}`)
    const hasLogin = (await page.locator('#username').count()) > 0
    if (loginExpected === 'no') {
      expect(!hasLogin, `login form shown although the browser has a session: ${page.url()}`)
      throw new CheckFailed(`browser stuck at ${page.url()}: ${(await page.content()).slice(0, 1500)}`)
    }
    expect(hasLogin, `no login form at ${page.url()}: ${(await page.content()).slice(0, 1500)}`)
    await page.fill('#username', USERNAME)
    await page.fill('#password', PASSWORD)
    await Promise.all([page.waitForURL((u) => u.href.startsWith(REDIRECT_URI)), page.click('#submit')])
  } else {
    expect(loginExpected !== 'yes', 'expected a login form, went straight to the client')
  }
  const url = await callback
  expect(page.url() === url.href, `browser at ${page.url()}, RP got ${url.href}`)
  return url
}

function authorizationUrl(clientId, { challenge, nonce, st, scope = 'openid profile email offline_access', extra = {} }) {
  const u = new URL(state.as.authorization_endpoint)
  const p = {
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    scope,
    state: st,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...extra,
  }
  for (const [k, v] of Object.entries(p)) u.searchParams.set(k, v)
  return u
}

// Full code flow for one client through the browser; answers everything the
// later checks need.
async function codeFlow(page, clientId, clientSecret, { loginExpected = 'no', alg, dpop } = {}) {
  const client = { client_id: clientId }
  if (alg && alg !== 'RS256') client.id_token_signed_response_alg = alg
  const auth = oauth.ClientSecretBasic(clientSecret)
  const verifier = oauth.generateRandomCodeVerifier()
  const challenge = await oauth.calculatePKCECodeChallenge(verifier)
  const nonce = oauth.generateRandomNonce()
  const st = oauth.generateRandomState()
  const cbUrl = await browserAuthorize(page, authorizationUrl(clientId, { challenge, nonce, st }), loginExpected)
  const params = oauth.validateAuthResponse(state.as, client, cbUrl, st)
  let response
  const result = await withDpopRetry(async () => {
    response = await oauth.authorizationCodeGrantRequest(state.as, client, auth, params, REDIRECT_URI, verifier, {
      ...insecure,
      DPoP: dpop,
    })
    return oauth.processAuthorizationCodeResponse(state.as, client, response, {
      expectedNonce: nonce,
      requireIdToken: true,
    })
  })
  // oauth4webapi checked iss, aud, exp, iat, nonce and the alg; the signature:
  await oauth.validateApplicationLevelSignature(state.as, response, insecure)
  const claims = oauth.getValidatedIdTokenClaims(result)
  const expectedAlg = alg || 'RS256'
  const header = jose.decodeProtectedHeader(result.id_token)
  expect(header.alg === expectedAlg, `ID token signed with ${header.alg}, client registered ${expectedAlg}`)
  // A second, independent verification with jose against the JWKS.
  await joseVerifyIdToken(result.id_token, clientId, expectedAlg, nonce)
  return { client, auth, result, claims, nonce }
}

// ------------------------------------------------------------ checks

const state = {}
function need(key) {
  if (!(key in state)) throw new CheckFailed(`skipped: needs '${key}' from an earlier check that failed`)
  return state[key]
}

async function checkDiscovery() {
  const issuer = new URL(ISSUER)
  const res = await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure })
  const as = await oauth.processDiscoveryResponse(issuer, res)
  expect(as.issuer === ISSUER, `issuer ${as.issuer}`)
  for (const k of [
    'authorization_endpoint',
    'token_endpoint',
    'jwks_uri',
    'userinfo_endpoint',
    'revocation_endpoint',
    'introspection_endpoint',
    'end_session_endpoint',
  ]) {
    expect(typeof as[k] === 'string' && as[k].startsWith(ISSUER + '/'), `${k}: ${as[k]}`)
  }
  for (const alg of ['RS256', 'ES256', 'Ed25519'])
    expect(as.id_token_signing_alg_values_supported?.includes(alg), `ID token alg ${alg} not advertised`)
  expect(as.dpop_signing_alg_values_supported?.includes('ES256'), 'DPoP ES256 not advertised')
  state.as = as
}

async function checkWrongPasswordStaysOnForm() {
  const page = need('page')
  const u = authorizationUrl(env('WEB_CLIENT_ID'), {
    challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()),
    nonce: oauth.generateRandomNonce(),
    st: oauth.generateRandomState(),
  })
  await page.goto(u.href)
  expect((await page.locator('#username').count()) === 1, `no login form: ${page.url()}`)
  expect((await page.locator('#password[type=password]').count()) === 1, 'password input is not type=password')
  await page.fill('#username', USERNAME)
  await page.fill('#password', PASSWORD + '-wrong')
  await Promise.all([page.waitForLoadState('load'), page.click('#submit')])
  await page.waitForSelector('#username', { timeout: 10000 })
  expect(page.url().startsWith(ISSUER + '/'), `wrong password left the issuer: ${page.url()}`)
}

async function checkCodeFlowWeb() {
  const page = need('page')
  const r = await codeFlow(page, env('WEB_CLIENT_ID'), env('WEB_CLIENT_SECRET'), { loginExpected: 'yes' })
  expect(r.result.token_type === 'bearer', `token_type ${r.result.token_type}`)
  expect(typeof r.result.refresh_token === 'string', 'no refresh token despite offline_access')
  await joseVerifyAccessToken(r.result.access_token, env('WEB_CLIENT_ID'))
  state.web = r
  state.sub = r.claims.sub
}

async function checkUserinfoWeb() {
  const { client, result } = need('web')
  const res = await oauth.userInfoRequest(need('as'), client, result.access_token, insecure)
  const info = await oauth.processUserInfoResponse(state.as, client, need('sub'), res)
  expect(info.email === USERNAME, `userinfo email ${info.email}`)
}

async function checkIntrospectionWeb() {
  const { client, auth, result } = need('web')
  const res = await oauth.introspectionRequest(need('as'), client, auth, result.access_token, insecure)
  const body = await oauth.processIntrospectionResponse(state.as, client, res)
  expect(body.active === true, `live token inactive: ${JSON.stringify(body)}`)
  expect(body.sub === need('sub'), `sub ${body.sub}`)
  expect(body.client_id === env('WEB_CLIENT_ID'), `client_id ${body.client_id}`)
  expect(body.scope?.split(' ').includes('openid'), `scope ${body.scope}`)
}

async function checkRefreshWeb() {
  const { client, auth, result } = need('web')
  const res = await oauth.refreshTokenGrantRequest(need('as'), client, auth, result.refresh_token, insecure)
  const fresh = await oauth.processRefreshTokenResponse(state.as, client, res)
  expect(fresh.access_token !== result.access_token, 'same access token after refresh')
  expect(fresh.refresh_token && fresh.refresh_token !== result.refresh_token, 'refresh token not rotated')
  if (!fresh.id_token) console.log('     note: no ID token in the refresh response')
  if (fresh.id_token) {
    await oauth.validateApplicationLevelSignature(state.as, res, insecure)
    const c = oauth.getValidatedIdTokenClaims(fresh)
    expect(c.sub === need('sub'), 'refreshed ID token sub changed')
  }
  state.webRefreshed = fresh
}

async function checkRevocationWeb() {
  const { client, auth } = need('web')
  const fresh = need('webRefreshed')
  const rev = await oauth.revocationRequest(need('as'), client, auth, fresh.access_token, {
    ...insecure,
    additionalParameters: { token_type_hint: 'access_token' },
  })
  await oauth.processRevocationResponse(rev)
  let res = await oauth.introspectionRequest(state.as, client, auth, fresh.access_token, insecure)
  let body = await oauth.processIntrospectionResponse(state.as, client, res)
  expect(body.active === false, `revoked access token: ${JSON.stringify(body)}`)
  const res2 = await oauth.revocationRequest(state.as, client, auth, fresh.refresh_token, insecure)
  await oauth.processRevocationResponse(res2)
  res = await oauth.refreshTokenGrantRequest(state.as, client, auth, fresh.refresh_token, insecure)
  try {
    await oauth.processRefreshTokenResponse(state.as, client, res)
    throw new CheckFailed('revoked refresh token still works')
  } catch (err) {
    if (err instanceof CheckFailed) throw err
    expect(err instanceof oauth.ResponseBodyError && err.error === 'invalid_grant', await describeError(err))
  }
}

async function checkAlg(envPrefix, alg) {
  const page = need('page')
  need('sub')
  const r = await codeFlow(page, env(`${envPrefix}_CLIENT_ID`), env(`${envPrefix}_CLIENT_SECRET`), { alg })
  expect(r.claims.sub === state.sub, 'another subject')
  // Refresh: the new ID token is signed with the same alg and validates.
  const res = await oauth.refreshTokenGrantRequest(state.as, r.client, r.auth, r.result.refresh_token, insecure)
  const fresh = await oauth.processRefreshTokenResponse(state.as, r.client, res)
  if (fresh.id_token) {
    await oauth.validateApplicationLevelSignature(state.as, res, insecure)
    await joseVerifyIdToken(fresh.id_token, r.client.client_id, alg)
  }
}

async function checkEd25519IdTokens() {
  await checkAlg('ED', 'Ed25519')
}

async function checkEs256IdTokens() {
  await checkAlg('ES', 'ES256')
}

async function checkDpop() {
  const page = need('page')
  need('sub')
  const clientId = env('DPOP_CLIENT_ID')
  const keyPair = await oauth.generateKeyPair('ES256')
  const jkt = await jose.calculateJwkThumbprint(await jose.exportJWK(keyPair.publicKey))
  const client = { client_id: clientId }
  const DPoP = oauth.DPoP(client, keyPair)
  const r = await codeFlow(page, clientId, env('DPOP_CLIENT_SECRET'), { dpop: DPoP })
  expect(r.result.token_type === 'dpop', `token_type ${r.result.token_type}, expected DPoP`)
  const { payload } = await joseVerifyAccessToken(r.result.access_token, clientId)
  expect(payload.cnf?.jkt === jkt, `access token cnf ${JSON.stringify(payload.cnf)}, key thumbprint ${jkt}`)

  // userinfo with the DPoP proof (ath bound to the token).
  const info = await withDpopRetry(async () => {
    const res = await oauth.userInfoRequest(state.as, r.client, r.result.access_token, { ...insecure, DPoP })
    return oauth.processUserInfoResponse(state.as, r.client, state.sub, res)
  })
  expect(info.sub === state.sub, 'userinfo sub')

  // The same token presented as a plain Bearer token is refused.
  const bearer = await fetch(state.as.userinfo_endpoint, {
    headers: { authorization: `Bearer ${r.result.access_token}` },
  })
  expect(bearer.status === 401, `DPoP-bound token accepted as Bearer at userinfo: ${bearer.status}`)

  // Introspection shows the binding.
  const ires = await oauth.introspectionRequest(state.as, r.client, r.auth, r.result.access_token, insecure)
  const ibody = await oauth.processIntrospectionResponse(state.as, r.client, ires)
  expect(ibody.active === true, `introspection: ${JSON.stringify(ibody)}`)
  expect(ibody.cnf?.jkt === jkt, `introspection cnf ${JSON.stringify(ibody.cnf)}`)

  // Refresh with the same key: again DPoP-bound to it.
  const fresh = await withDpopRetry(async () => {
    const res = await oauth.refreshTokenGrantRequest(state.as, r.client, r.auth, r.result.refresh_token, {
      ...insecure,
      DPoP,
    })
    return oauth.processRefreshTokenResponse(state.as, r.client, res)
  })
  expect(fresh.token_type === 'dpop', `refreshed token_type ${fresh.token_type}`)
  const { payload: p2 } = await joseVerifyAccessToken(fresh.access_token, clientId)
  expect(p2.cnf?.jkt === jkt, `refreshed access token cnf ${JSON.stringify(p2.cnf)}`)
  const info2 = await withDpopRetry(async () => {
    const res = await oauth.userInfoRequest(state.as, r.client, fresh.access_token, { ...insecure, DPoP })
    return oauth.processUserInfoResponse(state.as, r.client, state.sub, res)
  })
  expect(info2.sub === state.sub, 'userinfo sub after refresh')

  // A proof from another key does not unlock the token.
  const other = oauth.DPoP(client, await oauth.generateKeyPair('ES256'))
  try {
    await withDpopRetry(async () => {
      const res = await oauth.userInfoRequest(state.as, r.client, fresh.access_token, { ...insecure, DPoP: other })
      return oauth.processUserInfoResponse(state.as, r.client, state.sub, res)
    })
    throw new CheckFailed('userinfo accepted a proof from a key the token is not bound to')
  } catch (err) {
    if (err instanceof CheckFailed) throw err
    expect(err instanceof oauth.WWWAuthenticateChallengeError, await describeError(err))
  }

  // The client requires DPoP: a token request without a proof is refused.
  const verifier = oauth.generateRandomCodeVerifier()
  const st = oauth.generateRandomState()
  const cb = await browserAuthorize(
    page,
    authorizationUrl(clientId, {
      challenge: await oauth.calculatePKCECodeChallenge(verifier),
      nonce: oauth.generateRandomNonce(),
      st,
    }),
    'no',
  )
  const params = oauth.validateAuthResponse(state.as, r.client, cb, st)
  const res = await oauth.authorizationCodeGrantRequest(state.as, r.client, r.auth, params, REDIRECT_URI, verifier, insecure)
  try {
    await oauth.processAuthorizationCodeResponse(state.as, r.client, res)
    throw new CheckFailed('a dpop_bound_access_tokens client got a token without a DPoP proof')
  } catch (err) {
    if (err instanceof CheckFailed) throw err
    expect(err instanceof oauth.ResponseBodyError, await describeError(err))
    expect(['invalid_request', 'invalid_dpop_proof'].includes(err.error), await describeError(err))
  }
}

// A public client: DPoP with an Ed25519 proof key, the code bound to the key
// by dpop_jkt (RFC 9449 §10), and the refresh token bound to it (§5).
async function checkPublicDpop() {
  const page = need('page')
  need('sub')
  const client = { client_id: env('SPA_CLIENT_ID') }
  const auth = oauth.None()
  const keyPair = await oauth.generateKeyPair('Ed25519')
  const DPoP = oauth.DPoP(client, keyPair)
  const jkt = await DPoP.calculateThumbprint()
  const expectedJkt = await jose.calculateJwkThumbprint(await jose.exportJWK(keyPair.publicKey))
  expect(jkt === expectedJkt, `oauth4webapi thumbprint ${jkt} != jose ${expectedJkt}`)
  const other = oauth.DPoP(client, await oauth.generateKeyPair('ES256'))

  const authorize = async () => {
    const verifier = oauth.generateRandomCodeVerifier()
    const nonce = oauth.generateRandomNonce()
    const st = oauth.generateRandomState()
    const url = authorizationUrl(client.client_id, {
      challenge: await oauth.calculatePKCECodeChallenge(verifier),
      nonce,
      st,
      extra: { dpop_jkt: jkt },
    })
    const cb = await browserAuthorize(page, url, 'no')
    return { params: oauth.validateAuthResponse(state.as, client, cb, st), verifier, nonce }
  }
  const redeem = async (a, dpop) => {
    let response
    const result = await withDpopRetry(async () => {
      response = await oauth.authorizationCodeGrantRequest(state.as, client, auth, a.params, REDIRECT_URI, a.verifier, {
        ...insecure,
        DPoP: dpop,
      })
      return oauth.processAuthorizationCodeResponse(state.as, client, response, { expectedNonce: a.nonce })
    })
    await oauth.validateApplicationLevelSignature(state.as, response, insecure)
    return result
  }

  // The code is bound to the key named in dpop_jkt: another key cannot redeem it.
  const first = await authorize()
  try {
    await redeem(first, other)
    throw new CheckFailed('a code bound by dpop_jkt was redeemed with another DPoP key')
  } catch (err) {
    if (err instanceof CheckFailed) throw err
    expect(err instanceof oauth.ResponseBodyError, await describeError(err))
    expect(['invalid_dpop_proof', 'invalid_grant'].includes(err.error), await describeError(err))
  }

  const a = await authorize()
  const result = await redeem(a, DPoP)
  expect(result.token_type === 'dpop', `token_type ${result.token_type}`)
  const { payload } = await joseVerifyAccessToken(result.access_token, client.client_id)
  expect(payload.cnf?.jkt === jkt, `access token cnf ${JSON.stringify(payload.cnf)}`)
  expect(typeof result.refresh_token === 'string', 'no refresh token for the public client')
  const info = await withDpopRetry(async () => {
    const res = await oauth.userInfoRequest(state.as, client, result.access_token, { ...insecure, DPoP })
    return oauth.processUserInfoResponse(state.as, client, state.sub, res)
  })
  expect(info.sub === state.sub, 'userinfo sub')

  // A public client's refresh token is bound to its DPoP key.
  try {
    await withDpopRetry(async () => {
      const res = await oauth.refreshTokenGrantRequest(state.as, client, auth, result.refresh_token, {
        ...insecure,
        DPoP: other,
      })
      return oauth.processRefreshTokenResponse(state.as, client, res)
    })
    throw new CheckFailed("a public client's refresh token was used with another DPoP key")
  } catch (err) {
    if (err instanceof CheckFailed) throw err
    expect(err instanceof oauth.ResponseBodyError, await describeError(err))
    expect(['invalid_dpop_proof', 'invalid_grant'].includes(err.error), await describeError(err))
  }
  const fresh = await withDpopRetry(async () => {
    const res = await oauth.refreshTokenGrantRequest(state.as, client, auth, result.refresh_token, {
      ...insecure,
      DPoP,
    })
    return oauth.processRefreshTokenResponse(state.as, client, res)
  })
  expect(fresh.token_type === 'dpop', `refreshed token_type ${fresh.token_type}`)
  const { payload: p2 } = await joseVerifyAccessToken(fresh.access_token, client.client_id)
  expect(p2.cnf?.jkt === jkt, `refreshed access token cnf ${JSON.stringify(p2.cnf)}`)
}

async function checkLogout() {
  const page = need('page')
  const { result } = need('web')
  const u = new URL(state.as.end_session_endpoint)
  u.searchParams.set('id_token_hint', result.id_token)
  u.searchParams.set('post_logout_redirect_uri', LOGGED_OUT_URI)
  u.searchParams.set('state', 'bye')
  u.searchParams.set('client_id', env('WEB_CLIENT_ID'))
  const back = waitFor('/logged-out')
  back.catch(() => {})
  await page.goto(u.href)
  const url = await back
  expect(url.searchParams.get('state') === 'bye', `post-logout redirect ${url.href}`)
  // The session is gone: the next authorization shows the form again.
  const verifier = oauth.generateRandomCodeVerifier()
  const st = oauth.generateRandomState()
  const auth = authorizationUrl(env('WEB_CLIENT_ID'), {
    challenge: await oauth.calculatePKCECodeChallenge(verifier),
    nonce: oauth.generateRandomNonce(),
    st,
  })
  await page.goto(auth.href)
  expect(page.url().startsWith(ISSUER + '/'), `still logged in after logout: ${page.url()}`)
  expect((await page.locator('#username').count()) === 1, 'no login form after logout')
}

const CHECKS = [
  ['discovery', checkDiscovery],
  ['wrong_password_stays_on_form', checkWrongPasswordStaysOnForm],
  ['code_flow_rs256_browser_login', checkCodeFlowWeb],
  ['userinfo', checkUserinfoWeb],
  ['introspection', checkIntrospectionWeb],
  ['refresh_rotation', checkRefreshWeb],
  ['revocation', checkRevocationWeb],
  ['id_token_ed25519', checkEd25519IdTokens],
  ['id_token_es256', checkEs256IdTokens],
  ['dpop', checkDpop],
  ['dpop_public_client_ed25519', checkPublicDpop],
  ['rp_initiated_logout', checkLogout],
]

async function main() {
  await new Promise((resolve, reject) => {
    rpServer.once('error', reject)
    rpServer.listen(RP_PORT, '127.0.0.1', resolve)
  })
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  })
  const context = await browser.newContext()
  const page = await context.newPage()
  page.setDefaultTimeout(15000)
  state.page = page
  const passed = []
  const failed = []
  for (const [name, fn] of CHECKS) {
    const t = Date.now()
    try {
      await fn()
      passed.push(name)
      console.log(`ok   ${name} (${((Date.now() - t) / 1000).toFixed(2)}s)`)
    } catch (err) {
      failed.push(name)
      console.log(`FAIL ${name}: ${await describeError(err)}`)
      try {
        fs.mkdirSync(ARTIFACTS, { recursive: true })
        const shot = path.join(ARTIFACTS, `node-rp-${name}.png`)
        await page.screenshot({ path: shot, fullPage: true })
        fs.writeFileSync(path.join(ARTIFACTS, `node-rp-${name}.html`), `<!-- ${page.url()} -->\n${await page.content()}`)
        console.log(`     page ${page.url()} saved to ${shot}`)
      } catch (e) {
        console.log(`     (no screenshot: ${e.message})`)
      }
    }
  }
  await browser.close()
  rpServer.close()
  console.log(`node/oauth4webapi: ${passed.length} passed, ${failed.length} failed`)
  return failed.length === 0 ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  async (err) => {
    console.log(`FATAL ${await describeError(err)}`)
    process.exit(1)
  },
)
