// The `grantpool` CLI as a user runs it: a separate process on the same data
// directory as a running (or stopped) gateway.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startStack, type Stack } from '../support/stack.ts';
import { runCli } from '../support/run-cli.ts';
import { eventually } from '../support/eventually.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'grantpool.js');
let stack: Stack;

before(async () => {
  stack = await startStack();
  for (const email of ['ann@example.com', 'ben@example.com']) {
    stack.issuer.addUser({ email, name: email.split('@')[0] });
    await stack.addAccount(email);
  }
});
after(async () => {
  await stack.close();
});

/** Runs the CLI in its own process (asynchronously: the issuer and gateway live in this one). */
function cli(args: string[], env: Record<string, string> = {}, node = process.execPath): Promise<{ code: number | null; out: string; err: string }> {
  return runCli(args, { ...stack.env, ...env }, node);
}

test('accounts list prints an aligned table with state words, no colour when piped, and --json for scripts', async () => {
  const r = await cli(['accounts', 'list']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /EMAIL\s+NAME\s+STATE/);
  assert.match(r.out, /ann@example\.com\s+ann\s+active/);
  assert.ok(!r.out.includes('\x1b['), 'no colour codes when piped');
  const j = await cli(['accounts', 'list', '--json']);
  const list = JSON.parse(j.out);
  assert.equal(list.length, 2);
  const secrets = (await stack.accountFiles()).flatMap((a) => [a.token.refresh_token, a.token.access_token]);
  for (const s of secrets) assert.ok(!j.out.includes(s) && !r.out.includes(s), 'no token in CLI output');
});

test('accounts that share a quota lane are shown and warned about (API, status, list, doctor) until each has its own project', async () => {
  const shared = "2 accounts share the quota of the OAuth client's project: give each its own project";
  const listed = (await stack.api('GET', '/api/accounts')).body.accounts;
  for (const a of listed) {
    assert.match(a.lane.key, /^gemini_api:client:/);
    assert.equal(a.lane.project_id, null);
    assert.equal(a.lane.accounts, 2);
    assert.equal(a.lane.warning, shared);
  }
  const status = (await stack.api('GET', '/api/status')).body;
  assert.deepEqual(status.pool.shared_lanes.map((l: { warning: string; account_ids: string[] }) => [l.warning, l.account_ids.length]), [[shared, 2]]);
  const list = await cli(['accounts', 'list']);
  assert.match(list.out, /OAuth client project \(shared by 2\)/);
  assert.ok(list.out.includes(`warning: ${shared}`), list.out);
  const doc = await cli(['doctor']);
  assert.ok(doc.out.includes(`warn quota per account: ${shared}`), doc.out);
  assert.equal(doc.code, 0, 'a shared lane is a warning, not a failed check');

  // ben gets a project of his own: the running gateway moves him to its lane at once
  const ben = await stack.accountFile('ben@example.com');
  const file = join(stack.dataDir, 'accounts', `${ben.id}.json`);
  await writeFile(file, JSON.stringify({ ...ben, project_id: 'ben-project' }, null, 2));
  try {
    await eventually('the gateway to see the new project', async () => {
      const accounts = (await stack.api('GET', '/api/accounts')).body.accounts;
      return accounts.find((a: { email: string }) => a.email === 'ben@example.com').lane.key === 'gemini_api:ben-project';
    });
    const after = (await stack.api('GET', '/api/accounts')).body.accounts;
    assert.ok(after.every((a: { lane: { warning: string | null } }) => a.lane.warning === null));
    assert.deepEqual((await stack.api('GET', '/api/status')).body.pool.shared_lanes, []);
    const list2 = await cli(['accounts', 'list']);
    assert.match(list2.out, /project ben-project/);
    assert.ok(!list2.out.includes('warning:'), list2.out);
  } finally {
    await writeFile(file, JSON.stringify(ben, null, 2));
  }
});

test('disable / enable set proxy_disabled with reason "manual" and the running gateway sees it at once', async () => {
  const ann = (await stack.accountFiles()).find((a) => a.email === 'ann@example.com');
  const r = await cli(['accounts', 'disable', 'ann@example.com']);
  assert.equal(r.code, 0, r.err);
  const after = (await stack.accountFiles()).find((a) => a.email === 'ann@example.com');
  assert.equal(after.proxy_disabled, true);
  assert.equal(after.proxy_disabled_reason, 'manual');
  await eventually('gateway to see the disable', async () => (await stack.api('GET', `/api/accounts/${ann.id}`)).body.account.state.state === 'proxy_disabled');
  assert.equal((await cli(['accounts', 'enable', ann.id])).code, 0);
  await eventually('gateway to see the enable', async () => (await stack.api('GET', `/api/accounts/${ann.id}`)).body.account.state.state === 'active');
});

test('an unknown account, a missing argument or an unknown command exit non-zero with one line', async () => {
  const r = await cli(['accounts', 'disable', 'nobody@example.com']);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /no account matches "nobody@example\.com"/);
  assert.notEqual((await cli(['accounts', 'remove'])).code, 0);
  assert.notEqual((await cli(['frobnicate'])).code, 0);
});

test('status summarises the running gateway', async () => {
  const r = await cli(['status']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /on http:\/\/127\.0\.0\.1:\d+/);
  assert.match(r.out, /auth mode: off/);
  assert.match(r.out, /OAuth client .*: ok/);
  assert.match(r.out, /Accounts: 2 \(2 active\)/);
  assert.match(r.out, /Requests in the last hour: \d+/);
});

test('import --refresh-token and --file report per entry; a bad entry fails the command', async () => {
  stack.issuer.addUser({ email: 'cid@example.com', name: 'cid' });
  await stack.addAccount('cid@example.com');
  const cid = (await stack.accountFiles()).find((a) => a.email === 'cid@example.com');
  await stack.api('DELETE', `/api/accounts/${cid.id}?revoke=false`);
  // The = form: the stand-in's opaque tokens may start with '-' (Google's start with 1//).
  const one = await cli(['accounts', 'import', `--refresh-token=${cid.token.refresh_token}`]);
  assert.equal(one.code, 0, one.err);
  assert.match(one.out, /cid@example\.com: added/);
  assert.ok(!one.out.includes(cid.token.refresh_token));
  const file = join(stack.dataDir, 'import.json');
  await writeFile(file, JSON.stringify({ accounts: [{ email: 'cid@example.com', refresh_token: cid.token.refresh_token }, { email: 'x@example.com', refresh_token: 'dead' }] }));
  const many = await cli(['accounts', 'import', '--file', file]);
  assert.equal(many.code, 1);
  assert.match(many.out, /\[1\/2\] cid@example\.com: updated/);
  assert.match(many.out, /\[2\/2\] x@example\.com: failed/);
  assert.match(many.out, /1 of 2 imported, 1 failed/);
  const bad = await cli(['accounts', 'import', '--file', join(stack.dataDir, 'nope.json')]);
  assert.equal(bad.code, 1);
});

test('remove revokes the refresh token at the issuer', async () => {
  const cid = (await stack.accountFiles()).find((a) => a.email === 'cid@example.com');
  const r = await cli(['accounts', 'remove', 'cid@example.com']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /removed \(refresh token revoked at Google\)/);
  assert.equal(await stack.issuer.refreshTokenIsActive(cid.token.refresh_token), false);
  assert.ok(!(await stack.accountFiles()).some((a) => a.email === 'cid@example.com'));
});

test('accounts add --paste finishes a consent through the running gateway', async () => {
  stack.issuer.addUser({ email: 'dora@example.com', name: 'dora' });
  const child = spawn(process.execPath, [BIN, 'accounts', 'add', '--paste'], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...stack.env } });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', () => {});
  await eventually('the consent URL', async () => /https?:\/\/\S+/.test(out), 10_000);
  const authUrl = out.match(/(https?:\/\/\S+)/)![1]!;
  const callback = await stack.issuer.consent(authUrl, { email: 'dora@example.com' });
  child.stdin.end(callback + '\n');
  const code = await new Promise((r) => child.on('exit', r));
  assert.equal(code, 0, out);
  assert.match(out, /dora@example\.com: added/);
});

test('doctor passes on a good setup and names the fix for each failing check', async () => {
  const good = await cli(['doctor']);
  assert.match(good.out, /ok\s+client_secret\.json/);
  assert.match(good.out, /ok\s+issuer discovery/);
  assert.match(good.out, /ok\s+redirect URI/);
  assert.match(good.out, /ok\s+port: a gateway is running/);
  assert.equal(good.code, 0, good.out);

  const noSecret = await cli(['doctor'], { GRANTPOOL_CLIENT_SECRET_FILE: join(stack.dataDir, 'missing.json') });
  assert.equal(noSecret.code, 1);
  assert.match(noSecret.out, /FAIL client_secret\.json: no OAuth client file/);
  assert.match(noSecret.out, /fix: .*Web application/);

  const badUri = await cli(['doctor'], { GRANTPOOL_PUBLIC_URL: 'http://example.com' });
  assert.match(badUri.out, /FAIL redirect URI: .*https/);

  const badConfig = await cli(['doctor'], { GRANTPOOL_AUTH_MODE: 'sometimes' });
  assert.match(badConfig.out, /FAIL config: .*auth_mode/);

  const badIssuer = await cli(['doctor'], { GRANTPOOL_OAUTH_ISSUER: 'http://127.0.0.1:1' });
  assert.match(badIssuer.out, /FAIL issuer discovery/);

  await chmod(stack.dataDir, 0o755);
  try {
    const loose = await cli(['doctor']);
    assert.match(loose.out, /FAIL data directory: .* mode 755/);
    assert.match(loose.out, /fix: chmod 700/);
  } finally {
    await chmod(stack.dataDir, 0o700);
  }
});

test('the launcher runs on the machine\'s old Node by handing over to the project\'s Node 24', { skip: !spawnSync('/usr/bin/node', ['--version']).stdout }, async () => {
  const r = await cli(['--help'], {}, '/usr/bin/node');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /Usage: grantpool/);
});

test('the launcher\'s shebang, `npm start` and the hand-over from an old Node all start Node with the same flags and environment', async () => {
  const { NODE_FLAGS, NODE_ENV, envAssignments } = await import('../../bin/node-flags.js');
  const root = join(import.meta.dirname, '..', '..');
  const shebang = (await readFile(BIN, 'utf8')).split('\n')[0]!;
  const start = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')).scripts.start as string;
  assert.ok(NODE_FLAGS.length > 0);
  assert.ok(Object.keys(NODE_ENV).length > 0);
  assert.equal(shebang, `#!/usr/bin/env -S ${envAssignments()} node ${NODE_FLAGS.join(' ')}`);
  assert.equal(start, `${envAssignments()} node ${NODE_FLAGS.join(' ')} bin/grantpool.js serve`);
  assert.match(await readFile(BIN, 'utf8'), /spawn\(local, \[\.\.\.NODE_FLAGS,.*env: \{ \.\.\.process\.env, \.\.\.NODE_ENV \}/);
});

test('with the gateway stopped, list still works from the files and add listens on the redirect URI itself', async () => {
  await stack.gateway.close();
  try {
    const r = await cli(['accounts', 'list']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /gateway not running/);
    assert.equal((await cli(['status'])).code, 1);
    stack.issuer.addUser({ email: 'eve@example.com', name: 'eve' });
    const child = spawn(process.execPath, [BIN, 'accounts', 'add'], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...stack.env } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await eventually('the CLI to listen', async () => /Waiting/.test(out), 10_000);
    const authUrl = out.match(/(https?:\/\/\S+)/)![1]!;
    const callback = await stack.issuer.consent(authUrl, { email: 'eve@example.com' });
    const page = await fetch(callback.replace('localhost', '127.0.0.1'));
    assert.equal(page.status, 200);
    const code = await new Promise((r) => child.on('exit', r));
    assert.equal(code, 0, out);
    assert.ok((await stack.accountFiles()).some((a) => a.email === 'eve@example.com'));
  } finally {
    await stack.restartGateway();
  }
});
