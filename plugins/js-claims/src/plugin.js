// js-claims: a Vaultaris jwt-customizer written in JavaScript (componentize-js).
//
// "Claims mapper": adds static claims and copies named subject attributes into
// claims, as configured per tenant:
//
//   {
//     "claims":          { "<claim name>": <any JSON value>, ... },
//     "copy_attributes": { "<attribute name>": "<claim name>", ... },
//     "token_kinds":     ["access", "id"]
//   }
//
// - `claims` are added to every token of the configured kinds.
// - `copy_attributes` copies a subject attribute, when the subject has it, into
//   the named claim. A copied attribute replaces a static claim of the same
//   name (the static value acts as a default). When several attributes map to
//   the same claim, the one listed first in `copy_attributes` that the subject
//   has wins.
// - `token_kinds` (default: both) limits which tokens are customized; for the
//   other kind the plugin returns an empty customization.
//
// The configuration does not change during the life of an instance (the host
// discards warm instances when it changes), so it is read through the `config`
// capability on the first call and cached in module state. It is NOT read at
// module top level: componentize-js pre-initialises the module with Wizer at
// build time, when there is no host to ask.
//
// Everything that can be computed once (JSON encoding of static claims, the
// attribute lookup table) is computed at configuration time; a call only walks
// the subject's attributes once and builds the output list.

import { getAll } from 'vaultaris:plugin/config@0.1.0';

// Claims the host never lets a customizer add or remove (jwt-customizer.wit).
const PROTECTED = new Set([
  'iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'auth_time', 'nonce', 'acr',
  'amr', 'azp', 'sid', 'at_hash', 'c_hash', 's_hash', 'cnf', 'client_id', 'scope',
]);
const KINDS = new Set(['access', 'id']);

// Limits the host enforces on output (jwt-customizer.wit): 64 added claims,
// 8 KiB of added JSON. Checked against the configuration up front so an
// administrator learns about it from the activation, not from failed tokens.
const MAX_CLAIMS = 64;
const MAX_STATIC_JSON_BYTES = 8 * 1024;

/** Cached, pre-compiled configuration (null until the first call). */
let compiled = null;

/** Thrown values become the `err` of `result<customization, plugin-error>`. */
class PluginError extends Error {
  constructor(tag, code, message) {
    super(message);
    // componentize-js lowers the thrown value's `payload` as the error case.
    this.payload = { tag, val: { code, message } };
  }
}

function misconfigured(message) {
  return new PluginError('misconfigured', 'invalid_config', message);
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function compile(raw) {
  let doc;
  try {
    doc = JSON.parse(raw);
  } catch (e) {
    throw misconfigured(`configuration is not valid JSON: ${e.message}`);
  }
  if (!isPlainObject(doc)) throw misconfigured('configuration must be a JSON object');

  const claims = doc.claims ?? {};
  const copy = doc.copy_attributes ?? {};
  const kinds = doc.token_kinds ?? ['access', 'id'];
  if (!isPlainObject(claims)) throw misconfigured('`claims` must be an object');
  if (!isPlainObject(copy)) throw misconfigured('`copy_attributes` must be an object');
  if (!Array.isArray(kinds) || kinds.some((k) => !KINDS.has(k))) {
    throw misconfigured('`token_kinds` must be an array of "access" and/or "id"');
  }

  // Copy targets: unique claim names in order of first appearance.
  const targetIndex = new Map(); // claim name -> target index
  const targets = []; // { name, fallback: json string | undefined }
  const byAttribute = new Map(); // attribute name -> { target, priority }
  let priority = 0;
  for (const [attribute, claim] of Object.entries(copy)) {
    if (typeof claim !== 'string' || claim.length === 0) {
      throw misconfigured(`copy_attributes.${attribute} must be a non-empty claim name`);
    }
    if (PROTECTED.has(claim)) {
      throw misconfigured(`copy_attributes.${attribute} targets the protected claim \`${claim}\``);
    }
    let t = targetIndex.get(claim);
    if (t === undefined) {
      t = targets.length;
      targetIndex.set(claim, t);
      targets.push({ name: claim, fallback: undefined });
    }
    byAttribute.set(attribute, { target: t, priority: priority++ });
  }

  const staticClaims = []; // prebuilt { name, value } records, reused every call
  let staticBytes = 0;
  for (const [name, value] of Object.entries(claims)) {
    if (name.length === 0) throw misconfigured('claim names must not be empty');
    if (PROTECTED.has(name)) throw misconfigured(`\`${name}\` is a protected claim`);
    const json = JSON.stringify(value);
    staticBytes += json.length;
    const t = targetIndex.get(name);
    if (t !== undefined) targets[t].fallback = json; // default for a copied claim
    else staticClaims.push(Object.freeze({ name, value: json }));
  }
  if (staticClaims.length + targets.length > MAX_CLAIMS) {
    throw misconfigured(`more than ${MAX_CLAIMS} claims configured`);
  }
  if (staticBytes > MAX_STATIC_JSON_BYTES) {
    throw misconfigured(`static claims exceed ${MAX_STATIC_JSON_BYTES} bytes of JSON`);
  }

  return {
    access: kinds.includes('access'),
    id: kinds.includes('id'),
    staticClaims,
    targets,
    byAttribute,
  };
}

function config() {
  if (compiled === null) compiled = compile(getAll());
  return compiled;
}

/** Encodes a WIT `attribute-value` variant as JSON text. */
function attributeJson(v) {
  switch (v.tag) {
    case 'text':
      return JSON.stringify(v.val);
    case 'integer': // s64 arrives as a BigInt; its decimal text is a JSON number
      return String(v.val);
    case 'boolean':
      return v.val ? 'true' : 'false';
    case 'text-list':
      return JSON.stringify(v.val);
    case 'json': // already JSON text (validated by the host on the way in)
      return v.val;
    default:
      throw new PluginError('internal', 'unknown_attribute_value', `unknown attribute value case ${v.tag}`);
  }
}

const EMPTY = Object.freeze({ add: [], remove: [] });

export const jwtCustomizer = {
  customize(_ctx, request) {
    try {
      return customize(request);
    } catch (e) {
      if (e instanceof PluginError) throw e;
      // Anything else is a bug: report it as `internal` instead of trapping.
      throw new PluginError('internal', 'unexpected_exception', String(e && e.message ? e.message : e));
    }
  },
};

function customize(request) {
  const c = config();
  if (!(request.kind === 'access' ? c.access : c.id)) return EMPTY;

  const add = c.staticClaims.slice();
  const targets = c.targets;
  const n = targets.length;
  if (n > 0) {
    const found = new Array(n);
    const prio = new Array(n);
    const attrs = request.subjectAttributes;
    const byAttribute = c.byAttribute;
    for (let i = 0; i < attrs.length; i++) {
      const hit = byAttribute.get(attrs[i].name);
      if (hit === undefined) continue;
      const t = hit.target;
      if (found[t] === undefined || hit.priority < prio[t]) {
        found[t] = attrs[i].value;
        prio[t] = hit.priority;
      }
    }
    for (let t = 0; t < n; t++) {
      const v = found[t];
      if (v !== undefined) add.push({ name: targets[t].name, value: attributeJson(v) });
      else if (targets[t].fallback !== undefined) add.push({ name: targets[t].name, value: targets[t].fallback });
    }
  }
  return { add, remove: [] };
}
