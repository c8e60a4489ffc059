// One shared undici Agent with keep-alive for every upstream call (Gemini API
// and the Google API pass-through). Timeouts are per request: time to the
// response headers (first byte) and the longest silence between two body
// chunks (idle); there is no total timeout, so long streams are fine.
import type { EventEmitter } from 'node:events';
import { Agent, type Dispatcher } from 'undici';

export interface UpstreamRequest {
  /** scheme://host[:port] */
  origin: string;
  /** Path with query string. */
  path: string;
  method: string;
  headers: Record<string, string>;
  body?: Buffer | string | null;
  /** Aborts the request: an AbortSignal or an EventEmitter that emits 'abort'. */
  signal?: AbortSignal | EventEmitter;
  firstByteTimeoutMs: number;
  idleTimeoutMs: number;
}

export type UpstreamResponse = Dispatcher.ResponseData;

export interface UpstreamClient {
  request(req: UpstreamRequest): Promise<UpstreamResponse>;
  close(): Promise<void>;
}

export interface UpstreamClientOptions {
  connectTimeoutMs?: number;
  /** Idle keep-alive sockets are kept this long (ms). */
  keepAliveTimeoutMs?: number;
}

export function createUpstreamClient(opts: UpstreamClientOptions = {}): UpstreamClient {
  const agent = new Agent({
    connect: { timeout: opts.connectTimeoutMs ?? 10_000 },
    keepAliveTimeout: opts.keepAliveTimeoutMs ?? 30_000,
    keepAliveMaxTimeout: 600_000,
    pipelining: 1,
  });
  return {
    request(req) {
      return agent.request({
        origin: req.origin,
        path: req.path,
        method: req.method as Dispatcher.HttpMethod,
        headers: req.headers,
        body: req.body ?? null,
        signal: req.signal,
        headersTimeout: req.firstByteTimeoutMs,
        bodyTimeout: req.idleTimeoutMs,
      });
    },
    close() {
      return agent.close();
    },
  };
}
