// Baseline (b): the practical floor for any Node.js proxy. A plain node:http
// server that forwards every request to the upstream with one keep-alive
// undici Agent (like the gateway's), streaming both bodies, parsing nothing.
// Runs as a child process of bench/run.ts; argv[2] is the upstream URL.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, type Dispatcher } from 'undici';
import { startProfile, stopProfile } from './child-profiler.ts';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'content-length', 'upgrade', 'te', 'trailer']);

function forwardHeaders(h: IncomingMessage['headers'] | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k in h) {
    const v = h[k];
    if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  }
  return out;
}

export async function startPassthrough(upstream: string): Promise<{ url: string; close(): Promise<void> }> {
  const origin = new URL(upstream).origin;
  const agent = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, pipelining: 1 });
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
    const method = (req.method ?? 'GET') as Dispatcher.HttpMethod;
    const hasBody = method !== 'GET' && method !== 'HEAD';
    agent
      .request({ origin, path: req.url ?? '/', method, headers: forwardHeaders(req.headers), body: hasBody ? req : null })
      .then((r) => {
        res.writeHead(r.statusCode, forwardHeaders(r.headers));
        r.body.on('error', () => res.destroy());
        r.body.pipe(res);
      })
      .catch(() => {
        if (!res.headersSent) res.writeHead(502).end();
        else res.destroy();
      });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await agent.close();
    },
  };
}

if (import.meta.main && process.send) {
  const p = await startPassthrough(process.argv[2]!);
  process.on('message', async (m: { type: string; id?: number; intervalUs?: number; path?: string }) => {
    if (m.type === 'profile-start') {
      await startProfile(m.intervalUs ?? 200);
      process.send!({ type: 'ok', id: m.id });
    }
    if (m.type === 'profile-stop') {
      await stopProfile(String(m.path));
      process.send!({ type: 'ok', id: m.id });
    }
    if (m.type === 'stats') process.send!({ type: 'stats', id: m.id, mem: process.memoryUsage(), cpu: process.cpuUsage() });
    if (m.type === 'close') void p.close().then(() => process.exit(0));
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready', url: p.url });
}
