// Secrets stay in their files: the first start does not print the generated key
// and admin token into a log, and `accounts import` takes a refresh token from
// stdin so that it never sits in /proc/<pid>/cmdline.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startStack, type Stack } from '../support/stack.ts';
import { firstStartSecrets } from '../../src/cli/serve.ts';
import { eventually } from '../support/eventually.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'grantpool.js');
let stack: Stack;
let refreshToken: string;

before(async () => {
  stack = await startStack();
  stack.issuer.addUser({ email: 'ann@example.com', name: 'ann' });
  await stack.addAccount('ann@example.com');
  refreshToken = (await stack.accountFile('ann@example.com')).token.refresh_token;
  assert.ok(refreshToken.length > 10);
});
after(() => stack.close());

function run(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) => child.on('close', (code) => resolve({ code, out, err })));
  return { child, done, stdin: (text: string) => child.stdin.end(text), out: () => out };
}

test('a first start on a pipe (journald, docker logs) prints where the secrets are, not their values', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'grantpool-secrets-'));
  const port = await freePort();
  const p = run(['serve'], { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_PORT: String(port), GRANTPOOL_LOG_FORMAT: 'json' });
  p.stdin('');
  await eventually('the gateway to print its auth mode', () => /auth mode/.test(p.out()), 20_000);
  p.child.kill('SIGTERM');
  const r = await p.done;
  const config = JSON.parse(await readFile(join(dataDir, 'config.json'), 'utf8'));
  const key: string = config.api_keys[0].key;
  const admin: string = config.admin_token;
  assert.match(r.out, /First start: a proxy API key and an admin token were generated and saved in .*config\.json/);
  assert.match(r.out, /auth mode\s+off \(auto: both the listen address/);
  assert.ok(!r.out.includes(key) && !r.err.includes(key), 'the API key is not in the output');
  assert.ok(!r.out.includes(admin) && !r.err.includes(admin), 'the admin token is not in the output');
});

test('on a terminal the first start shows the secrets once', () => {
  const out = { write() {}, error() {}, color: false };
  const lines = firstStartSecrets(out, { apiKey: 'gp-abc', adminToken: 'gpa-def' }, '/d/config.json', true).join('\n');
  assert.match(lines, /proxy API key\s+gp-abc/);
  assert.match(lines, /admin token\s+gpa-def/);
  assert.ok(!firstStartSecrets(out, { apiKey: 'gp-abc' }, '/d/config.json', false).join('\n').includes('gp-abc'));
});

test('accounts import --refresh-token - reads the token from stdin; it is never in the command line', async () => {
  const p = run(['accounts', 'import', '--refresh-token', '-'], stack.env);
  const cmdline = await readFile(`/proc/${p.child.pid}/cmdline`, 'utf8').catch(() => '');
  p.stdin(`${refreshToken}\n`);
  const r = await p.done;
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /ann@example\.com: updated/);
  assert.ok(!cmdline.includes(refreshToken));
  assert.ok(!r.err.includes('warning'), 'no warning on the safe path');

  // No value at all means the same.
  const bare = run(['accounts', 'import', '--refresh-token'], stack.env);
  bare.stdin(`\n  ${refreshToken}  \n`);
  const b = await bare.done;
  assert.equal(b.code, 0, b.err);
  assert.match(b.out, /ann@example\.com: updated/);

  const empty = run(['accounts', 'import', '--refresh-token', '-'], stack.env);
  empty.stdin('');
  const e = await empty.done;
  assert.equal(e.code, 1);
  assert.match(e.err, /no refresh token on stdin/);
});

test('accounts import --refresh-token=T still works and warns that the token is visible', async () => {
  // The stand-in's tokens are random base64url and may start with "-" (Google's start with "1//"): the = form takes any.
  const p = run(['accounts', 'import', `--refresh-token=${refreshToken}`], stack.env);
  p.stdin('');
  const r = await p.done;
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /ann@example\.com: updated/);
  assert.match(r.err, /warning: a refresh token given on the command line can be read by other users.*\/proc\/<pid>\/cmdline.*--refresh-token -/);
  assert.ok(!r.err.includes(refreshToken) && !r.out.includes(refreshToken));
});
