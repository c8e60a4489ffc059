// Usage survives a crash (SIGKILL): records are appended to a log as they
// happen and compacted into usage.json now and then, so a crash loses at most
// the last half second, and a crash during a compaction counts nothing twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileUsageStore } from '../../src/pool/usage-file.ts';
import { eventually } from '../support/eventually.ts';

const CHILD = join(import.meta.dirname, '..', 'support', 'usage-child.ts');

function startChild(dir: string, count: number, everyMs: number, debounceMs: number) {
  const child = spawn(process.execPath, [CHILD, dir, String(count), String(everyMs), String(debounceMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let printed = 0;
  let added = false;
  const history: { t: number; n: number }[] = [];
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) {
      if (l === 'added') added = true;
      else if (l) {
        printed = Number(l);
        history.push({ t: Date.now(), n: printed });
      }
    }
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    printed: () => printed,
    added: () => added,
    /** The count printed at least `ms` ago. */
    countBefore: (ms: number) => history.filter((h) => h.t <= Date.now() - ms).at(-1)?.n ?? 0,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

async function recovered(dir: string): Promise<{ requests: number; tokens_in: number; tokens_out: number }> {
  const u = new FileUsageStore(dir, { debounceMs: 60_000 });
  await u.load();
  const sum = { requests: 0, tokens_in: 0, tokens_out: 0 };
  for (const r of u.records('0000')) {
    sum.requests += r.requests;
    sum.tokens_in += r.tokens_in;
    sum.tokens_out += r.tokens_out;
  }
  return sum;
}

test('300 requests, then SIGKILL a second later: all 300 are counted after the restart', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grantpool-usage-crash-'));
  try {
    // As the gateway runs it: usage.json is rewritten at most every 15 s.
    const child = startChild(dir, 300, 0, 15_000);
    await eventually('the child to add its records', child.added, 20_000);
    await new Promise((r) => setTimeout(r, 1000));
    await child.kill();
    assert.deepEqual(await recovered(dir), { requests: 300, tokens_in: 3000, tokens_out: 1500 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('killed at random times during frequent compactions: nothing older than two seconds is lost, nothing counted twice', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grantpool-usage-crash-'));
  try {
    let before = 0;
    for (let round = 0; round < 4; round++) {
      const child = startChild(dir, 100_000, 1, 20);
      await eventually('the child to start', () => child.printed() > 0, 20_000);
      // The log is appended every half second, behind any compaction in
      // progress; on a loaded machine (CI runs test files in parallel) that
      // write can take most of a second more, so the margin is two seconds.
      await new Promise((r) => setTimeout(r, 2300 + round * 170));
      const safe = child.countBefore(2000);
      await child.kill();
      const most = child.printed() + 1;
      const got = (await recovered(dir)).requests - before;
      assert.ok(got >= safe, `round ${round}: ${got} recovered, but ${safe} were added more than two seconds before the kill`);
      assert.ok(got <= most, `round ${round}: ${got} recovered, more than the ${most} added (counted twice)`);
      before += got;
    }
    const logs = (await readdir(dir)).filter((n) => n.endsWith('.log'));
    assert.ok(logs.length <= 3, `old logs are deleted: ${logs.join(', ')}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a log line cut short by a crash is skipped; usage.json written by an older version still loads', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grantpool-usage-crash-'));
  try {
    const u = new FileUsageStore(dir, { debounceMs: 60_000, appendDelayMs: 10 });
    await u.load();
    u.add('2026-12-01', 'a', 'm', { requests: 2, tokens_in: 3 });
    await new Promise((r) => setTimeout(r, 100));
    const log = (await readdir(dir)).find((n) => n.endsWith('.log'))!;
    await appendFile(join(dir, log), '["2026-12-01","a","m",1');
    assert.deepEqual(await recovered(dir), { requests: 2, tokens_in: 3, tokens_out: 0 });
    const twice = new FileUsageStore(dir, { debounceMs: 60_000 });
    await twice.load();
    await twice.load();
    assert.equal(twice.get('2026-12-01', 'a', 'm').requests, 2, 'loading twice (the gateway and the pool both call it) counts once');
    await u.close();
    assert.deepEqual(await recovered(dir), { requests: 2, tokens_in: 3, tokens_out: 0 }, 'after compaction: the same, once');

    // The format before the log: no "log" field.
    await writeFile(join(dir, 'usage.json'), JSON.stringify({ version: 1, days: { '2026-11-30': { b: { m: { requests: 7, tokens_in: 1, tokens_out: 1 } } } } }));
    assert.deepEqual(await recovered(dir), { requests: 7, tokens_in: 1, tokens_out: 1 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('records of one account and model within the half second reach the log as one line, and count in full', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grantpool-usage-crash-'));
  try {
    const u = new FileUsageStore(dir, { debounceMs: 60_000, appendDelayMs: 50 });
    await u.load();
    for (let n = 0; n < 1000; n++) {
      u.add('2026-12-01', 'a', 'm', { requests: 1, tokens_in: 5, tokens_out: 2 });
      u.add('2026-12-01', n % 2 ? 'b' : 'c', 'm', { requests: 1 });
    }
    await new Promise((r) => setTimeout(r, 300));
    const log = (await readdir(dir)).find((n) => n.endsWith('.log'))!;
    const lines = (await readFile(join(dir, log), 'utf8')).split('\n').filter(Boolean);
    assert.equal(lines.length, 3, lines.join('\n'));
    // What a crash now would leave: the log alone.
    const other = new FileUsageStore(dir, { debounceMs: 60_000 });
    await other.load();
    assert.deepEqual(other.get('2026-12-01', 'a', 'm'), { requests: 1000, tokens_in: 5000, tokens_out: 2000 });
    assert.equal(other.get('2026-12-01', 'b', 'm').requests, 500);
    await u.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
