// Runs the whole suite with Node's test runner on the project's Node.
// Usage: npm test [-- <file or folder>...]; `npm test -- --clients` runs only the real clients (test/clients).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'support' ? [] : find(p);
    return p.endsWith('.test.ts') ? [p] : [];
  });
}
const args = process.argv.slice(2).map((a) => (a === '--clients' ? join('test', 'clients') : a));
const files = args.length
  ? args.flatMap((a) => (statSync(a, { throwIfNoEntry: false })?.isDirectory() ? find(a).sort() : [a]))
  : find('test').sort();
const r = spawnSync(process.execPath, [
  '--test', '--test-reporter=spec', '--test-reporter-destination=stdout',
  '--test-reporter=./scripts/summary-reporter.js', '--test-reporter-destination=stdout',
  '--test-concurrency=2', '--test-timeout=120000', ...files,
], { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } });
process.exit(r.status ?? 1);
