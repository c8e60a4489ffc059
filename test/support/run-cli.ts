// Runs the real `grantpool` launcher as a child process with the given
// environment (stdin closed) and collects what it printed.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export const BIN = join(import.meta.dirname, '..', '..', 'bin', 'grantpool.js');

export function runCli(args: string[], env: Record<string, string>, node = process.execPath): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(node, [BIN, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  child.stdin.end();
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err })));
}
