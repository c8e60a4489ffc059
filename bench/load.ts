// Load generation: autocannon with a fixed number of requests, recording the
// exact latency of every response (autocannon's own histogram rounds to whole
// milliseconds, too coarse for sub-millisecond targets), and a streaming
// client that times the first and the last byte of each answer.
import autocannon from 'autocannon';
import { Agent, request as httpRequest } from 'node:http';
import { performance } from 'node:perf_hooks';

export interface Target {
  /** Label in the report. */
  name: string;
  /** Base URL (http://127.0.0.1:port). */
  url: string;
  path: string;
  body: string;
  headers: Record<string, string>;
}

export interface CannonResult {
  latencies: number[];
  ok: number;
  failed: number;
  elapsedMs: number;
  rps: number;
  statuses: Record<string, number>;
}

/** Sends `amount` requests over `connections` keep-alive connections. */
export async function cannon(t: Target, opts: { connections: number; amount: number; timeoutSec?: number }): Promise<CannonResult> {
  const latencies: number[] = [];
  let ok = 0;
  let failed = 0;
  const statuses: Record<string, number> = {};
  const instance = autocannon({
    url: t.url + t.path,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...t.headers },
    body: t.body,
    connections: opts.connections,
    amount: opts.amount,
    timeout: opts.timeoutSec ?? 30,
    skipAggregateResult: true,
  });
  let lastAt = 0;
  instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    lastAt = performance.now();
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (status >= 200 && status < 300) {
      ok++;
      latencies.push(ms);
    } else failed++;
  });
  instance.on('reqError', () => {
    failed++;
  });
  const t0 = performance.now();
  await instance;
  // autocannon finishes on its next 1-second tick; the run ended with the last answer.
  const elapsedMs = (lastAt || performance.now()) - t0;
  return { latencies, ok, failed, elapsedMs, rps: (ok / elapsedMs) * 1000, statuses };
}

export interface StreamTiming {
  status: number;
  /** ms from sending the request to the first body byte. */
  ttfb: number;
  /** ms from sending the request to the end of the body. */
  ttlb: number;
  bytes: number;
  chunks: number;
  body?: string;
}

export function keepAliveAgent(): Agent {
  return new Agent({ keepAlive: true, maxSockets: 1 });
}

/**
 * One request, timing the first and last body byte. `pauseAfterFirstMs`: stop
 * reading after the first chunk for that long (a slow client), with
 * `duringPause` called while paused.
 */
export function timedRequest(
  t: Target,
  agent: Agent,
  opts: { keepBody?: boolean; pauseAfterFirstMs?: number; duringPause?: () => Promise<void> } = {},
): Promise<StreamTiming> {
  return new Promise((resolve, reject) => {
    const u = new URL(t.url + t.path);
    const body = Buffer.from(t.body);
    const req = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': body.length, ...t.headers },
      },
      (res) => {
        let ttfb = -1;
        let bytes = 0;
        let chunks = 0;
        const parts: Buffer[] = [];
        let paused = false;
        res.on('data', (c: Buffer) => {
          if (ttfb < 0) ttfb = performance.now() - t0;
          bytes += c.length;
          chunks++;
          if (opts.keepBody) parts.push(c);
          if (!paused && opts.pauseAfterFirstMs) {
            paused = true;
            res.pause();
            setTimeout(() => {
              const resume = () => res.resume();
              (opts.duringPause ? opts.duringPause() : Promise.resolve()).then(resume, resume);
            }, opts.pauseAfterFirstMs);
          }
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            ttfb,
            ttlb: performance.now() - t0,
            bytes,
            chunks,
            body: opts.keepBody ? Buffer.concat(parts).toString('utf8') : undefined,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    const t0 = performance.now();
    req.end(body);
  });
}

/**
 * `n` requests at the same instant on `n` connections opened beforehand (with
 * GET `warmPath`), so that connection set-up (and the kernel's SYN backlog)
 * is not part of what is measured. With several targets, request i goes to
 * target i mod k (round-robin, as a load balancer spreads them).
 */
export async function burst(
  target: Target | Target[],
  n: number,
  warmPath: string,
): Promise<{ latencies: number[]; ok: number; failed: number; statuses: Record<string, number> }> {
  const targets = Array.isArray(target) ? target : [target];
  const share = (k: number) => Math.floor(n / targets.length) + (k < n % targets.length ? 1 : 0);
  const agents = targets.map((_, k) => new Agent({ keepAlive: true, maxSockets: share(k), maxFreeSockets: share(k) }));
  await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const t = targets[i % targets.length]!;
      const u = new URL(t.url);
      return new Promise<void>((resolve, reject) => {
        const req = httpRequest({ host: u.hostname, port: u.port, path: warmPath, method: 'GET', agent: agents[i % targets.length], headers: t.headers }, (res) => {
          res.resume();
          res.on('end', () => resolve());
        });
        req.on('error', reject);
        req.end();
      });
    }),
  );
  const results = await Promise.all(Array.from({ length: n }, (_, i) => timedRequest(targets[i % targets.length]!, agents[i % targets.length]!).catch(() => null)));
  for (const a of agents) a.destroy();
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  for (const r of results) {
    const key = String(r?.status ?? 'error');
    statuses[key] = (statuses[key] ?? 0) + 1;
    if (r && r.status >= 200 && r.status < 300) {
      ok++;
      latencies.push(r.ttlb);
    } else failed++;
  }
  return { latencies, ok, failed, statuses };
}
