// One shared undici Agent with keep-alive for every upstream call (Gemini API
// and the Google API pass-through). Timeouts are per request: time to the
// response headers (first byte) and the longest silence between two body
// chunks (idle); there is no total timeout, so long streams are fine.
//
// Two ways to call: `request` hands back the body as a stream (streaming
// answers are forwarded as they arrive); `requestFull` collects the whole
// answer straight from undici's handler callbacks, with no stream in between
// (non-streaming answers: the hot path, ~4 µs cheaper per request).
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

export type UpstreamHeaders = Record<string, string | string[] | undefined>;

/** A whole upstream answer. */
export interface UpstreamAnswer {
  statusCode: number;
  headers: UpstreamHeaders;
  body: Buffer;
}

export interface UpstreamClient {
  request(req: UpstreamRequest): Promise<UpstreamResponse>;
  /**
   * The whole answer; rejects when a 2xx body is larger than `limit` bytes.
   * Of a non-2xx body only the first `errorLimit` bytes are kept (the rest is
   * read and dropped), so a huge error answer is still classified by its status.
   */
  requestFull(req: UpstreamRequest, limit: number, errorLimit?: number): Promise<UpstreamAnswer>;
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
      return agent.request({ ...dispatchOptions(req), signal: req.signal });
    },
    requestFull(req, limit, errorLimit = limit) {
      return new Promise((resolve, reject) => {
        const signal = req.signal;
        let controller: Dispatcher.DispatchController | null = null;
        let cancelled: Error | null = null;
        const onAbort = () => {
          cancelled = abortError();
          controller?.abort(cancelled);
        };
        if (signal) {
          if ((signal as { aborted?: boolean }).aborted) return reject(abortError());
          if ('addEventListener' in signal) signal.addEventListener('abort', onAbort, { once: true });
          else signal.once('abort', onAbort);
        }
        const done = () => {
          if (!signal) return;
          if ('removeEventListener' in signal) signal.removeEventListener('abort', onAbort);
          else signal.off('abort', onAbort);
        };
        let statusCode = 0;
        let headers: UpstreamHeaders = {};
        const chunks: Buffer[] = [];
        let size = 0;
        const handler: Dispatcher.DispatchHandler = {
          onRequestStart(c) {
            controller = c;
            if (cancelled) c.abort(cancelled);
          },
          onResponseStart(_c, status, h) {
            statusCode = status;
            headers = h;
          },
          onResponseData(c, chunk) {
            if (statusCode < 200 || statusCode >= 300) {
              const room = errorLimit - size;
              if (room <= 0) return;
              const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
              chunks.push(kept);
              size += kept.length;
              return;
            }
            size += chunk.length;
            if (size > limit) c.abort(new Error(`upstream answer is larger than ${limit} bytes`));
            else chunks.push(chunk);
          },
          onResponseEnd() {
            done();
            resolve({ statusCode, headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) });
          },
          onResponseError(_c, err) {
            done();
            reject(err);
          },
        };
        try {
          agent.dispatch(dispatchOptions(req), handler);
        } catch (e) {
          done();
          reject(e);
        }
      });
    },
    close() {
      return agent.close();
    },
  };
}

function dispatchOptions(req: UpstreamRequest): Dispatcher.DispatchOptions {
  return {
    origin: req.origin,
    path: req.path,
    method: req.method as Dispatcher.HttpMethod,
    headers: req.headers,
    body: req.body ?? null,
    headersTimeout: req.firstByteTimeoutMs,
    bodyTimeout: req.idleTimeoutMs,
  };
}

/** The error for a request whose client went away (name AbortError). */
export function abortError(): Error {
  const e = new Error('client disconnected');
  e.name = 'AbortError';
  return e;
}

const baseCache = new Map<string, { origin: string; prefix: string }>();
/** Origin and path prefix of an upstream base URL (cached: URL parsing is not free). */
export function baseOf(url: string): { origin: string; prefix: string } {
  let b = baseCache.get(url);
  if (!b) {
    const u = new URL(url);
    b = { origin: u.origin, prefix: u.pathname.replace(/\/+$/, '') };
    if (baseCache.size > 16) baseCache.clear();
    baseCache.set(url, b);
  }
  return b;
}
