// A full disk must not stop serving (issue 17): with the data directory on a
// tiny tmpfs filled to the last byte, a refresh still takes its lock, serves
// the new token from memory and writes it once there is space again; /healthz
// says degraded and /api/status names the cause; the API answers a clear 507;
// a first start on a full disk says what is wrong in one line.
// Needs root to mount a tmpfs (skipped otherwise).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startStack, type Stack } from '../support/stack.ts';
import { eventually } from '../support/eventually.ts';

const MOUNT = `/tmp/grantpool-full-disk-${process.pid}`;
function mount(dir: string, size: string): boolean {
  mkdirSync(dir, { recursive: true });
  return spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]).status === 0;
}
function unmount(dir: string): void {
  spawnSync('umount', ['-l', dir]);
  rmSync(dir, { recursive: true, force: true });
}
const canMount = process.getuid?.() === 0 && mount(MOUNT, '4m');
const skip = canMount ? false : 'needs root to mount a tmpfs';

/** Fills the file system holding `dir` to the last byte. */
async function fill(dir: string, name = 'filler'): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, Buffer.alloc(64 * 1024 * 1024)).catch((e: NodeJS.ErrnoException) => assert.equal(e.code, 'ENOSPC'));
  return path;
}

let stack: Stack;
const previousTmp = process.env.TMPDIR;
before(async () => {
  if (!canMount) return;
  // The stack makes its data directory with mkdtemp(tmpdir()): put it on the tmpfs.
  process.env.TMPDIR = MOUNT;
  try {
    stack = await startStack();
  } finally {
    if (previousTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previousTmp;
  }
  stack.issuer.addUser({ email: 'full@example.com', name: 'Full' });
  await stack.addAccount('full@example.com');
});
after(async () => {
  if (!canMount) return;
  await stack?.close().catch(() => {});
  unmount(MOUNT);
});

test('a full disk: refreshes still serve, /healthz and /api/status say why, the new token is written once there is space', { skip, timeout: 60_000 }, async () => {
  const before = await stack.accountFile('full@example.com');
  const filler = await fill(MOUNT);
  // The access token expires: the next request needs a refresh, whose lock and write hit the full disk.
  stack.clock.advance(2 * 3600_000);
  const client = new OpenAI({ baseURL: `${stack.gateway.url}/v1`, apiKey: 'x', maxRetries: 0 });
  for (let i = 0; i < 5; i++) {
    const r = await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: `on a full disk ${i}` }] });
    assert.ok(r.choices[0]!.message.content, 'served with the refreshed token from memory');
  }
  assert.equal(stack.issuer.counters.refreshRequests >= 1, true, 'the token was refreshed');
  const onDisk = await stack.accountFile('full@example.com');
  assert.equal(onDisk.token.access_token, before.token.access_token, 'the file is intact (the old token: nothing could be written)');

  const health = (await (await fetch(`${stack.gateway.url}/healthz`)).json()) as { status: string; problems?: string[] };
  assert.equal(health.status, 'degraded');
  assert.match(health.problems!.join('\n'), /no space left on the device \(ENOSPC\)/);
  const status = await stack.api('GET', '/api/status');
  assert.match(status.body.problems.join('\n'), new RegExp(`cannot write to ${MOUNT}.*ENOSPC`));

  // A change through the API gets a clear answer, not "see its log". Whatever the
  // gateway freed meanwhile (a temporary file it gave up on) is taken again first.
  const topUp = await fill(MOUNT, 'filler-2');
  const account = (await stack.api('GET', '/api/accounts')).body.accounts[0];
  const patch = await stack.api('PATCH', `/api/accounts/${account.id}`, { proxy_disabled: true }, { allowError: true });
  assert.equal(patch.status, 507);
  assert.equal(patch.body.error.code, 'storage_full');
  assert.match(patch.body.error.message, /the change was not saved: .*no space left on the device \(ENOSPC\); free some space/);

  // Space again: the refreshed token reaches the file, and the gateway is healthy.
  await rm(filler);
  await rm(topUp);
  await eventually('the token write to be retried', async () => (await stack.accountFile('full@example.com')).token.access_token !== before.token.access_token, 20_000);
  await eventually('/healthz ok', async () => ((await (await fetch(`${stack.gateway.url}/healthz`)).json()) as { status: string }).status === 'ok', 15_000);
  const r = await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'space again' }] });
  assert.ok(r.choices[0]!.message.content);
});

test('a first start on a full disk says what is wrong in one line', { skip, timeout: 60_000 }, async () => {
  const dir = `${MOUNT}-first`;
  assert.ok(mount(dir, '256k'));
  try {
    await fill(dir);
    const bin = join(import.meta.dirname, '..', '..', 'bin', 'grantpool.js');
    const child = spawn(process.execPath, [bin, 'serve'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, GRANTPOOL_DATA_DIR: join(dir, 'data'), GRANTPOOL_PORT: '0', GRANTPOOL_LOG_FORMAT: 'json' },
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.resume();
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 1);
    const lines = err.trim().split('\n');
    assert.equal(lines.length, 1, err);
    assert.match(lines[0]!, /^grantpool: cannot start: could not write the data directory .*no space left on the device \(ENOSPC\); free some space/);
  } finally {
    unmount(dir);
  }
});
