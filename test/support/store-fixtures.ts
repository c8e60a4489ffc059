// Shared helpers for the file store tests: temp data dirs, accounts, a log
// capture, and child processes running test/support/store-child.ts.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Account } from '../../src/store/account.ts';
import { fakeAccount } from './fake-accounts.ts';

export const CHILD_SCRIPT = fileURLToPath(new URL('./store-child.ts', import.meta.url));

export async function tempDataDir(): Promise<{ dataDir: string; cleanup: () => Promise<void> }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'grantpool-store-'));
  return { dataDir, cleanup: () => rm(dataDir, { recursive: true, force: true }) };
}

/** An account as the store would write it (the pool tests' fakeAccount, with a plain OpenID scope). */
export function makeAccount(id: string, overrides: Partial<Account> & Record<string, unknown> = {}): Account {
  return fakeAccount(id, { scope: 'openid email', clientId: 'client.apps.googleusercontent.com', ...overrides });
}

/** A pino logger whose JSON lines are collected (shared with the pool tests). */
export { captureLog as captureLogger } from './fake-accounts.ts';

/** Node's compile cache makes the many short-lived children of the kill test start about twice as fast. */
const COMPILE_CACHE = join(tmpdir(), 'grantpool-test-compile-cache');

export function startChild(args: string[]): ChildProcess {
  return spawn(process.execPath, [CHILD_SCRIPT, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_COMPILE_CACHE: COMPILE_CACHE },
  });
}

/** Runs the child script to completion; rejects on a non-zero exit with its stderr. */
export function runChild(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = startChild(args);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve(out);
      else reject(new Error(`store child ${args[0]} exited with ${code ?? signal}: ${err}`));
    });
  });
}

/** Resolves when `child` prints a line equal to `line`. */
export function waitForLine(child: ChildProcess, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += String(d);
      if (buf.split('\n').includes(line)) {
        child.stdout!.off('data', onData);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code, signal) => reject(new Error(`child exited (${code ?? signal}) before printing "${line}"`)));
  });
}

export function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
