// The CLI's error boundary: a GatewayError is one line plus its fix and a
// non-zero exit; anything unexpected is a generic line (never its text), then
// its stack for a bug report, free of secrets.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import type { Out } from '../../src/cli/output.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'gp-cli-errors-'));
  dirs.push(d);
  return d;
}

function capture(write?: (t: string) => void): Out & { out: string; err: string } {
  const o = {
    out: '',
    err: '',
    color: false,
    write: (t: string) => {
      if (write) write(t);
      o.out += t;
    },
    error: (t: string) => {
      o.err += t;
    },
  };
  return o;
}

test('a GatewayError is one line with its fix, and a non-zero exit', async () => {
  const dir = await tempDir();
  await writeFile(join(dir, 'file'), '');
  const out = capture();
  const code = await main(['accounts', 'list'], out, { GRANTPOOL_DATA_DIR: join(dir, 'file', 'data') });
  assert.equal(code, 1);
  const lines = out.err.trimEnd().split('\n');
  assert.equal(lines.length, 2, out.err);
  assert.match(lines[0]!, /^grantpool: cannot use the data directory .*file\/data: ENOTDIR/);
  assert.match(lines[1]!, /^ {2}fix: set GRANTPOOL_DATA_DIR to a directory/);
});

test('an unexpected error is a generic line without its text, then its stack without secrets, and a non-zero exit', async () => {
  const dir = await tempDir();
  const secret = 'ya29.a0AfB_cliLeakedAccessToken555';
  // A bug in the output path: writing the account table throws.
  const out = capture(() => {
    throw new TypeError(`Cannot read properties of undefined (reading '${secret}')`);
  });
  const code = await main(['accounts', 'list'], out, { GRANTPOOL_DATA_DIR: dir });
  assert.equal(code, 1);
  const [first, ...details] = out.err.trimEnd().split('\n');
  assert.equal(first, 'grantpool: the command failed with an unexpected error; the details below are for a bug report');
  assert.match(details[0]!, /^ {2}TypeError: Cannot read properties of undefined \(reading '\[redacted\]'\)$/);
  assert.ok(details.slice(1).every((l) => /^ {2}at /.test(l)), details.join('\n'));
  assert.ok(details.some((l) => /cli-errors\.test\.ts/.test(l)), 'the stack says where it was thrown');
  assert.doesNotMatch(out.err, /ya29\./);
});
