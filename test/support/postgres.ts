// A real PostgreSQL server for tests: Debian's `postgresql` package, a fresh
// cluster (initdb) in a temp dir on a free loopback port, started and stopped
// by the test itself. initdb refuses root, so as root the cluster belongs to
// the `postgres` user (which the package creates). When no server binaries
// are installed, `findPostgres()` says why and the tests skip with that text.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './stack.ts';

export interface PostgresBinaries {
  bin: string;
  /** Run the server tools as this user (when we are root). */
  user: { name: string; uid: number; gid: number } | null;
}

export function findPostgres(): PostgresBinaries | string {
  const roots = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a)) : [];
  const bin = roots.map((v) => `/usr/lib/postgresql/${v}/bin`).find((d) => existsSync(join(d, 'pg_ctl')) && existsSync(join(d, 'initdb')));
  if (!bin) return 'PostgreSQL server binaries not found (install the Debian package `postgresql`; .ci/run does)';
  if (userInfo().uid !== 0) return { bin, user: null };
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0) return 'running as root and there is no `postgres` user to own the test cluster (initdb refuses root)';
  return { bin, user: { name: 'postgres', uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) } };
}

export interface TestPostgres {
  /** postgres://… for the `grantpool` superuser on database `postgres`. */
  url: string;
  port: number;
  /** A fresh database on this server; returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** The postmaster's PID (for kill tests). */
  pid(): number;
  stop(): void;
  start(): void;
  /**
   * Freezes the server (SIGSTOP to the postmaster and every backend): connections stay open,
   * new ones are accepted by the kernel, and nothing answers, as a database host that hangs.
   */
  pause(): void;
  /** Lets a paused server go on (SIGCONT). */
  resume(): void;
  /** Stop and remove the cluster. */
  destroy(): void;
}

/** `settings`: more postgresql.conf lines (e.g. shared_preload_libraries for the benchmark's pg_stat_statements). */
export async function startPostgres(found: PostgresBinaries, opts: { settings?: string[] } = {}): Promise<TestPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'grantpool-pg-'));
  const data = join(dir, 'data');
  const port = await freePort();
  if (found.user) {
    chownSync(dir, found.user.uid, found.user.gid);
    chmodSync(dir, 0o700);
  }
  const run = (tool: string, args: string[]) => {
    const cmd = join(found.bin, tool);
    const [file, argv] = found.user ? ['runuser', ['-u', found.user.name, '--', cmd, ...args]] : [cmd, args];
    execFileSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir, timeout: 60_000 });
  };
  run('initdb', ['-D', data, '-U', 'grantpool', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  writeFileSync(
    join(data, 'postgresql.auto.conf'),
    [`port = ${port}`, `listen_addresses = '127.0.0.1'`, `unix_socket_directories = '${dir}'`, 'fsync = off', 'max_connections = 200', ...(opts.settings ?? []), ''].join('\n'),
  );
  if (found.user) chownSync(join(data, 'postgresql.auto.conf'), found.user.uid, found.user.gid);
  const start = () => run('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start']);
  const stop = () => {
    if (existsSync(join(data, 'postmaster.pid'))) run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
  };
  start();
  const url = `postgres://grantpool@127.0.0.1:${port}/postgres`;
  let n = 0;
  const pidOf = () => Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const signalServer = (signal: NodeJS.Signals) => {
    const postmaster = pidOf();
    // The postmaster first: stopped, it starts no backend that the loop would miss.
    const order = signal === 'SIGSTOP' ? [postmaster, ...childrenOf(postmaster)] : [...childrenOf(postmaster), postmaster];
    for (const pid of order) process.kill(pid, signal);
  };
  return {
    url,
    port,
    async createDatabase(name: string) {
      const db = `${name.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${++n}`;
      run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'grantpool', '-d', 'postgres', '-qc', `CREATE DATABASE ${db}`]);
      return `postgres://grantpool@127.0.0.1:${port}/${db}`;
    },
    pid: pidOf,
    stop,
    start,
    pause: () => signalServer('SIGSTOP'),
    resume: () => signalServer('SIGCONT'),
    destroy() {
      try {
        stop();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** The processes whose parent is `pid` (Linux: /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
