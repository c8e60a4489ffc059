// Real coding-agent CLIs (Codex, Claude Code, Gemini CLI, opencode) for the
// test/clients suite: installed at pinned versions into a cache folder under
// the OS temp dir (never the project's dependencies), run headless in a
// temporary HOME with a hard timeout, with a recorder in front of the gateway
// that keeps what each client sends (and what the gateway answered).
import { spawn, spawnSync } from 'node:child_process';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const CLIENT_CACHE = join(tmpdir(), 'grantpool-clients');

export interface Installed {
  /** Path of the client's bin script, or null when it could not be installed. */
  bin: string | null;
  /** Why not, when bin is null. */
  reason: string;
}

/**
 * Installs `pkg@version` into <tmp>/grantpool-clients/<name>@<version> with npm (reused when already there).
 * Never throws: a failed install (no registry, a download that fails) gives a reason to skip with.
 */
export function ensureClient(name: string, pkg: string, version: string, binName: string): Installed {
  const prefix = join(CLIENT_CACHE, `${name}@${version}`);
  const bin = join(prefix, 'node_modules', '.bin', binName);
  const marker = join(prefix, '.installed');
  if (existsSync(marker) && existsSync(bin)) return { bin, reason: '' };
  mkdirSync(prefix, { recursive: true });
  const npmCli = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  const npm = existsSync(npmCli) ? [process.execPath, npmCli] : ['npm'];
  const r = spawnSync(npm[0]!, [...npm.slice(1), 'install', '--no-audit', '--no-fund', '--no-save', '--prefix', prefix, `${pkg}@${version}`], {
    encoding: 'utf8',
    timeout: 240_000,
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });
  if (r.status !== 0 || !existsSync(bin)) {
    const tail = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n').slice(-4).join(' | ');
    return { bin: null, reason: `npm install ${pkg}@${version} into ${prefix} failed (${r.error?.message ?? `exit ${r.status}`}): ${tail}` };
  }
  writeFileSync(marker, `${pkg}@${version}\n`);
  return { bin, reason: '' };
}

export interface RunResult {
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/** Runs a client in its own process group; after `timeoutMs` the whole group is killed. */
export function runClient(
  bin: string,
  args: string[],
  opts: { cwd: string; env: Record<string, string>; timeoutMs: number; stdin?: string },
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(bin, args, { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => {});
    child.stdin.end(opts.stdin ?? '');
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, opts.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, timedOut, stdout, stderr: `${stderr}\n${err.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      killGroup(); // leftovers (MCP servers, shells) of the client
      resolve({ code, signal, timedOut, stdout, stderr });
    });
  });
}

/** A temporary HOME (and work dir) with nothing of the machine's user in it. */
export function tempHome(prefix: string): { home: string; work: string; cleanup(): void } {
  const home = mkdtempSync(join(tmpdir(), `gp-${prefix}-home-`));
  const work = join(home, 'work');
  mkdirSync(work);
  return { home, work, cleanup: () => rmSync(home, { recursive: true, force: true }) };
}

/** The environment a client runs with: PATH and the temp HOME, nothing of the caller's secrets. */
export function baseEnv(home: string, extra: Record<string, string>): Record<string, string> {
  return {
    PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
    HOME: home,
    USERPROFILE: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_CACHE_HOME: join(home, '.cache'),
    XDG_STATE_HOME: join(home, '.local', 'state'),
    TMPDIR: tmpdir(),
    TERM: 'dumb',
    NO_COLOR: '1',
    CI: '1',
    LANG: 'C.UTF-8',
    ...extra,
  };
}

export interface SeenRequest {
  method: string;
  path: string;
  /** Header names (sorted, lower case); values are not kept. */
  headers: string[];
  /** Top-level JSON body fields (sorted), or null without a JSON object body. */
  bodyFields: string[] | null;
  body: unknown;
  status: number;
}

export interface Recorder {
  url: string;
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

const VOLATILE_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'host']);

/** An HTTP recorder in front of `target`: forwards everything (streams included) and keeps what was sent and the status. */
export async function startRecorder(target: string): Promise<Recorder> {
  const seen: SeenRequest[] = [];
  const t = new URL(target);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      let body: unknown = null;
      try {
        body = raw.length ? JSON.parse(raw.toString('utf8')) : null;
      } catch {
        body = null;
      }
      const rec: SeenRequest = {
        method: req.method ?? 'GET',
        path: (req.url ?? '/').split('?')[0]!,
        headers: Object.keys(req.headers).filter((h) => !VOLATILE_HEADERS.has(h)).sort(),
        bodyFields: body && typeof body === 'object' && !Array.isArray(body) ? Object.keys(body).sort() : null,
        body,
        status: 0,
      };
      seen.push(rec);
      const headers: IncomingHttpHeaders = { ...req.headers, host: t.host };
      const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers }, (ur) => {
        rec.status = ur.statusCode ?? 0;
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', (err) => {
        rec.status = 599;
        res.writeHead(502, { 'content-type': 'text/plain' }).end(`recorder: ${err.message}`);
      });
      up.end(raw);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface GoldenEntry {
  method: string;
  path: string;
  headers: string[];
  bodyFields: string[] | null;
}

/** The distinct request shapes a client sent (for its golden file). */
export function shapes(seen: SeenRequest[]): GoldenEntry[] {
  const out = new Map<string, GoldenEntry>();
  for (const s of seen) {
    const e = { method: s.method, path: s.path, headers: s.headers, bodyFields: s.bodyFields };
    out.set(JSON.stringify(e), e);
  }
  return [...out.values()].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/**
 * test/clients/golden/<client>.json: what the pinned client sends. Written when absent or with
 * GOLDEN_UPDATE=1; otherwise compared, and the differences returned (empty when the same).
 */
export function checkGolden(file: string, client: string, version: string, entries: GoldenEntry[]): string[] {
  const next = { client, version, requests: entries };
  let previous: typeof next | null = null;
  try {
    previous = JSON.parse(readFileSync(file, 'utf8')) as typeof next;
  } catch {
    previous = null;
  }
  if (!previous || process.env.GOLDEN_UPDATE === '1') {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(next, null, 2)}\n`);
    return [];
  }
  const key = (e: GoldenEntry) => JSON.stringify(e);
  const was = new Set(previous.requests.map(key));
  const now = new Set(entries.map(key));
  return [
    ...[...now].filter((k) => !was.has(k)).map((k) => `new: ${k}`),
    ...[...was].filter((k) => !now.has(k)).map((k) => `gone: ${k}`),
  ];
}

/** Function declarations' names in a recorded Gemini request body. */
export function declaredTools(body: unknown): string[] {
  const tools = (body as { tools?: { functionDeclarations?: { name: string }[] }[] } | null)?.tools ?? [];
  return tools.flatMap((t) => (t.functionDeclarations ?? []).map((d) => d.name));
}

/** Whether a Gemini request body carries a functionResponse whose content holds `token` (the tool's output came back). */
export function toolOutputCameBack(body: Record<string, unknown>, token: string): boolean {
  const contents = (body.contents as { parts?: { functionResponse?: unknown }[] }[] | undefined) ?? [];
  return contents.some((c) => (c.parts ?? []).some((p) => p.functionResponse !== undefined && JSON.stringify(p.functionResponse).includes(token)));
}

/** A file holding a random token in `dir`, for a client's tool to read. */
export function secretFile(dir: string, name = 'secret.txt'): { path: string; token: string } {
  const token = `tok-${Math.random().toString(36).slice(2, 10)}${Date.now().toString(36)}`;
  const path = join(dir, name);
  writeFileSync(path, `${token}\n`);
  return { path, token };
}

/** Every request the gateway did not accept (non-2xx), described for an assertion message. */
export function rejected(seen: SeenRequest[]): string[] {
  return seen.filter((s) => s.status < 200 || s.status > 299).map((s) => `${s.method} ${s.path} -> ${s.status}`);
}
