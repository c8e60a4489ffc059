// Child processes of the benchmark (upstream, baseline proxy, gateway) with a
// small request/answer protocol over the IPC channel.
import { fork, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { round } from './stats.ts';

export interface Child {
  proc: ChildProcess;
  /** The child's first message ({type:'ready', ...}). */
  ready: Record<string, unknown>;
  ask<T = Record<string, unknown>>(type: string, fields?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  /** Waits for a message with this type and id (for answers that come later, e.g. `reloaded`). */
  waitFor<T = Record<string, unknown>>(type: string, id: number, timeoutMs?: number): Promise<T>;
  stop(): Promise<void>;
}

let nextId = 1;

export async function startChild(
  file: string,
  opts: { args?: string[]; env?: Record<string, string | undefined>; execArgv?: string[]; logFile?: string; readyTimeoutMs?: number } = {},
): Promise<Child> {
  const fd = opts.logFile ? openSync(opts.logFile, 'a') : 'ignore';
  const proc = fork(file, opts.args ?? [], {
    execPath: process.execPath,
    execArgv: opts.execArgv ?? [],
    env: opts.env ?? process.env,
    stdio: ['ignore', fd, fd, 'ipc'],
    serialization: 'advanced',
  });
  if (typeof fd === 'number') closeSync(fd);
  const waiting = new Map<string, (m: Record<string, unknown>) => void>();
  const early = new Map<string, Record<string, unknown>>();
  proc.on('message', (m: Record<string, unknown>) => {
    const key = `${m.type}:${m.id ?? ''}`;
    const w = waiting.get(key);
    if (w) {
      waiting.delete(key);
      w(m);
    } else early.set(key, m);
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));

  function waitFor<T>(type: string, id: number | '', timeoutMs = 60_000): Promise<T> {
    const key = `${type}:${id}`;
    const got = early.get(key);
    if (got) {
      early.delete(key);
      return Promise.resolve(got as T);
    }
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.delete(key);
        reject(new Error(`${file}: no "${type}" message within ${timeoutMs} ms`));
      }, timeoutMs);
      waiting.set(key, (m) => {
        clearTimeout(timer);
        resolve(m as T);
      });
      void exited.then((code) => {
        if (waiting.has(key)) {
          clearTimeout(timer);
          waiting.delete(key);
          reject(new Error(`${file} exited (code ${code}) before sending "${type}"${opts.logFile ? `; see ${opts.logFile}` : ''}`));
        }
      });
    });
  }

  const ready = await waitFor<Record<string, unknown>>('ready', '', opts.readyTimeoutMs ?? 60_000);
  const child: Child = {
    proc,
    ready,
    async ask<T>(type: string, fields: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<T> {
      const id = nextId++;
      const answerType = { stats: 'stats', 'gc-mem': 'gc-mem', 'sample-stop': 'sample', 'reload-mark': 'marked', 'select-bench': 'select-bench', 'account-state': 'account-state', idle: 'idle', settled: 'settled', 'stream-stats': 'stream-stats', close: 'closed' }[type] ?? 'ok';
      const p = waitFor<T>(answerType, id, timeoutMs);
      proc.send({ type, id, ...fields });
      return p;
    },
    waitFor: (type, id, timeoutMs) => waitFor(type, id, timeoutMs),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.send({ type: 'close', id: nextId++ });
      const t = setTimeout(() => proc.kill('SIGTERM'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
  return child;
}

export interface Resident {
  /** Pages of the node executable (file-backed, the same for any Node process). */
  nodeBinary: number;
  /** malloc's main heap ([heap]). */
  mallocHeap: number;
  /** Anonymous mappings: V8's heap, buffers, thread stacks, other malloc arenas. */
  anonymous: number;
  other: number;
  /** Anonymous mappings grouped by mapping size (V8 pages, thread stacks, malloc's mmaps...), most resident first. */
  anonymousBySize: { size: number; count: number; rss: number }[];
}

/** "node binary / malloc heap / anonymous" in MB, as the memory rows print it. */
export function residentSplit(r: Resident): string {
  const mb = (n: number) => round(n / (1024 * 1024), 1);
  return `${mb(r.nodeBinary)} / ${mb(r.mallocHeap)} / ${mb(r.anonymous)}`;
}

/** Where a child's resident memory is, read from /proc/<pid>/smaps (Linux; null elsewhere). */
export function residentBreakdown(pid: number): Resident | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return null;
  }
  const out: Resident = { nodeBinary: 0, mallocHeap: 0, anonymous: 0, other: 0, anonymousBySize: [] };
  const bySize = new Map<number, { size: number; count: number; rss: number }>();
  let kind: 'nodeBinary' | 'mallocHeap' | 'anonymous' | 'other' = 'other';
  let size = 0;
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      const name = m[3] ?? '';
      size = parseInt(m[2]!, 16) - parseInt(m[1]!, 16);
      kind = name === process.execPath ? 'nodeBinary' : name === '[heap]' ? 'mallocHeap' : name === '' ? 'anonymous' : 'other';
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    if (!r) continue;
    const rss = Number(r[1]) * 1024;
    out[kind] += rss;
    if (kind !== 'anonymous') continue;
    const g = bySize.get(size) ?? { size, count: 0, rss: 0 };
    g.count++;
    g.rss += rss;
    bySize.set(size, g);
  }
  out.anonymousBySize = [...bySize.values()].sort((a, b) => b.rss - a.rss).slice(0, 20);
  return out;
}
