#!/usr/bin/env -S MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=131072 node --max-semi-space-size=4 --no-concurrent-recompilation --heap-growing-percent=50 --expose-gc
// Launcher: Grantpool runs its TypeScript sources directly on Node >= 22.18
// (type stripping). An older `node` on PATH hands over to the project's own
// Node 24 from node_modules (the `node` devDependency).
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import module from 'node:module';
import { NODE_ENV, NODE_FLAGS } from './node-flags.js';

const [major, minor] = process.versions.node.split('.').map(Number);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (major < 22 || (major === 22 && minor < 18)) {
  const local = join(root, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(local)) {
    console.error(`grantpool: Node ${process.versions.node} is too old (need >= 22.18); run \`npm install\` in ${root} first`);
    process.exit(1);
  }
  const child = spawn(local, [...NODE_FLAGS, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, ...NODE_ENV } });
  // Signals reach the real process, so that Ctrl-C and `docker stop` shut the gateway down cleanly.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1)));
} else {
  // Compiled code is cached between starts (faster start, less memory: the type stripper stays unloaded).
  module.enableCompileCache?.();
  const { main } = await import('../src/cli/main.ts');
  process.exitCode = await main(process.argv.slice(2));
}
