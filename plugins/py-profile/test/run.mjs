// Runs dist/py-profile.wasm in the JS test host (jco transpile + Node), a
// smoke test of both exports plus a warm timing. The harness and jco come
// from plugins/js-claims (run `npm ci` there first).
// Usage: node --experimental-wasm-extended-const test/run.mjs [calls]
// (CPython's core module uses extended constant expressions; Node 22+ has
// them on by default, Node 20 needs the flag.)
import { fileURLToPath } from 'node:url';
import { bench, checker, loadComponent } from '../../js-claims/test/harness.mjs';

const wasm = fileURLToPath(new URL('../dist/py-profile.wasm', import.meta.url));
const calls = Number(process.argv[2] ?? 2000);
const { check, done } = checker();

const component = await loadComponent(wasm);
console.log(`imports: ${component.imports.join(', ')}`);
console.log(`exports: ${component.exports.map(([n]) => n).join(', ')}`);
const inst = await component.instantiate({
  required: { self_registration: ['email', 'username'] },
  max_lengths: { given_name: 20 },
  username_pattern: '^[a-z][a-z0-9_.-]{2,31}$',
  blocked_words: ['admin'],
  profile_complete_attributes: ['email', 'given_name'],
  default_locale: 'en',
});
const ctx = { tenant: 't-1', pluginId: 'py-profile', requestId: 'r', now: 1n, deadline: 2n };

const vreq = {
  operation: 'self-registration',
  userId: undefined,
  fields: [
    { name: 'username', value: '"SysAdmin"' },
    { name: 'given_name', value: '"Alice in Wonderland, Esq."' },
  ],
  changed: ['username', 'given_name'],
  locales: ['fr-CH'],
};
const v = inst.inputValidator.validate(ctx, vreq);
const codes = v.map((x) => `${x.field}:${x.code}`).sort();
check('violations', JSON.stringify(codes) === JSON.stringify(['email:required', 'given_name:too_long', 'username:blocked_word', 'username:invalid_format']), v);
check('French message', v.find((x) => x.code === 'required')?.message === 'Ce champ est obligatoire.', v);

const treq = {
  kind: 'id',
  subject: 'u-1',
  clientId: 'app',
  grantType: 'authorization_code',
  scopes: ['openid'],
  audience: [],
  subjectAttributes: [
    { name: 'email', value: { tag: 'text', val: 'a@example.com' } },
    { name: 'given_name', value: { tag: 'text', val: 'Alice' } },
    { name: 'locale', value: { tag: 'text', val: 'fr-CH' } },
  ],
  claims: [{ name: 'sub', value: '"u-1"' }],
};
const c = inst.jwtCustomizer.customize(ctx, treq);
check('claims', JSON.stringify(c.add) === JSON.stringify([
  { name: 'profile_complete', value: 'true' },
  { name: 'locale', value: '"fr-CH"' },
]), c);

console.log(`warm customize: ${bench(() => inst.jwtCustomizer.customize(ctx, treq), calls).toFixed(1)} µs/call`);
console.log(`warm validate: ${bench(() => inst.inputValidator.validate(ctx, vreq), calls).toFixed(1)} µs/call`);
done();
