// Runs dist/js-claims.wasm in the JS test host: behaviour checks and a warm
// per-call timing. Usage (after ./build.sh): node test/run.mjs [calls]
import { fileURLToPath } from 'node:url';
import { bench, checker, loadComponent } from './harness.mjs';

const wasm = fileURLToPath(new URL('../dist/js-claims.wasm', import.meta.url));
const calls = Number(process.argv[2] ?? 5000);
const { check, done } = checker();

const t0 = performance.now();
const component = await loadComponent(wasm);
console.log(`imports: ${component.imports.join(', ')}`);
console.log(`exports: ${component.exports.map(([n]) => n).join(', ')}`);

const ctx = {
  tenant: '6f1c2b9e-0000-4000-8000-000000000001',
  pluginId: 'js-claims',
  requestId: 'req-1',
  now: 1764000000000n,
  deadline: 1764000000050n,
};
const request = (kind = 'access', attrs = undefined) => ({
  kind,
  subject: 'user-1',
  clientId: 'my-app',
  grantType: 'authorization_code',
  scopes: ['openid', 'profile'],
  audience: ['https://api.example.com'],
  subjectAttributes: attrs ?? [
    { name: 'email', value: { tag: 'text', val: 'alice@example.com' } },
    { name: 'roles', value: { tag: 'text-list', val: ['admin', 'billing'] } },
    { name: 'level', value: { tag: 'integer', val: 9007199254740993n } },
    { name: 'mfa', value: { tag: 'boolean', val: true } },
    { name: 'org', value: { tag: 'json', val: '{"id":"o-1","name":"Acme"}' } },
    { name: 'department', value: { tag: 'text', val: 'R&D "labs"' } },
  ],
  claims: [
    { name: 'iss', value: '"https://id.example.com"' },
    { name: 'sub', value: '"user-1"' },
    { name: 'aud', value: '"https://api.example.com"' },
    { name: 'exp', value: '1764003600' },
    { name: 'iat', value: '1764000000' },
    { name: 'scope', value: '"openid profile"' },
  ],
});
const asObject = (c) => Object.fromEntries(c.add.map(({ name, value }) => [name, JSON.parse(value)]));

const config = {
  claims: { tenant_tier: 'gold', features: ['sso', 'audit'], org: { id: 'default' } },
  copy_attributes: {
    roles: 'roles',
    level: 'level',
    mfa: 'mfa_enrolled',
    org: 'org',
    department: 'dept',
    missing_attr: 'never',
    email: 'contact',
    secondary_email: 'contact',
  },
  token_kinds: ['access'],
};

{
  const inst = await component.instantiate(config);
  console.log(`first instantiation (compile + instantiate): ${(performance.now() - t0).toFixed(0)} ms incl. transpile ${component.transpileMs.toFixed(0)} ms`);
  const t1 = performance.now();
  const c = inst.jwtCustomizer.customize(ctx, request());
  console.log(`first call (reads and compiles config): ${((performance.now() - t1) * 1000).toFixed(0)} µs`);
  const got = asObject(c);
  check('remove is empty', c.remove.length === 0, c);
  check('static string', got.tenant_tier === 'gold', got);
  check('static array', JSON.stringify(got.features) === '["sso","audit"]', got);
  check('text-list copied', JSON.stringify(got.roles) === '["admin","billing"]', got);
  check('s64 copied exactly', c.add.find((x) => x.name === 'level')?.value === '9007199254740993', c);
  check('boolean copied', got.mfa_enrolled === true, got);
  check('json attribute replaces static default', got.org?.name === 'Acme', got);
  check('string escaped', got.dept === 'R&D "labs"', got);
  check('absent attribute adds nothing', !('never' in got), got);
  check('text copied', got.contact === 'alice@example.com', got);
  check('no duplicate names', new Set(c.add.map((x) => x.name)).size === c.add.length, c);

  const c2 = inst.jwtCustomizer.customize(ctx, request('id'));
  check('id token not customized', c2.add.length === 0 && c2.remove.length === 0, c2);

  const c3 = inst.jwtCustomizer.customize(ctx, {
    ...request('access', [{ name: 'secondary_email', value: { tag: 'text', val: 'b@example.com' } }]),
    subject: undefined,
  });
  const got3 = asObject(c3);
  check('fallback static default used', got3.org?.id === 'default', got3);
  check('second-priority attribute used when first absent', got3.contact === 'b@example.com', got3);

  const us = bench(() => inst.jwtCustomizer.customize(ctx, request()), calls);
  console.log(`warm customize (6 attributes in, ${c.add.length} claims out): ${us.toFixed(1)} µs/call over ${calls} calls`);
}

{
  const inst = await component.instantiate({});
  const c = inst.jwtCustomizer.customize(ctx, request('id'));
  check('empty config: empty customization', c.add.length === 0 && c.remove.length === 0, c);
  const us = bench(() => inst.jwtCustomizer.customize(ctx, request()), calls);
  console.log(`warm customize, empty config: ${us.toFixed(1)} µs/call`);
}

for (const [name, bad] of [
  ['protected static claim', { claims: { sub: 'x' } }],
  ['protected copy target', { copy_attributes: { email: 'iss' } }],
  ['bad token kind', { token_kinds: ['refresh'] }],
  ['claims not an object', { claims: [1] }],
]) {
  const inst = await component.instantiate(bad);
  let err;
  try {
    inst.jwtCustomizer.customize(ctx, request());
  } catch (e) {
    err = e.payload ?? e;
  }
  check(`${name} -> misconfigured`, err?.tag === 'misconfigured' && err.val?.code === 'invalid_config', err);
}

done();
