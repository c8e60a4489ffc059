// Writing to the client: JSON answers in a route's error shape, the upstream
// headers a raw forward passes on, and the signal that fires when the client
// goes away.
import type { ServerResponse } from 'node:http';
import { EventEmitter } from 'node:events';
import type { UpstreamHeaders } from '../upstream-client.ts';

export type ErrorShaper = (status: number, message: string, type?: string) => unknown;

/** Sends a JSON answer; used for gateway errors in the route's protocol shape (with Retry-After when known). */
export function sendJsonBody(res: ServerResponse, status: number, body: unknown, retryAfterSeconds?: number): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  };
  if (retryAfterSeconds !== undefined) headers['retry-after'] = String(retryAfterSeconds);
  res.writeHead(status, headers);
  res.end(text);
}

/**
 * Fires 'abort' when the client goes away before its answer is complete.
 * A plain EventEmitter (undici accepts one as a signal): much cheaper per
 * request than an AbortController.
 */
export class ClientAbort extends EventEmitter {
  aborted = false;
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.emit('abort');
  }
}

/** A ClientAbort tied to the client's response. */
export function clientSignal(res: ServerResponse): ClientAbort {
  const signal = new ClientAbort();
  res.once('close', () => {
    if (!res.writableFinished) signal.abort();
  });
  return signal;
}

/** Resolves when the client has taken what was written, or has gone away. */
export function drained(res: ServerResponse): Promise<void> {
  if (!res.writableNeedDrain || res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'trailers',
  'transfer-encoding', 'upgrade', 'set-cookie', 'content-length',
]);

/** Upstream response headers a raw forward passes on. */
export function passHeaders(h: UpstreamHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k in h) {
    const v = h[k];
    if (v === undefined || HOP_BY_HOP.has(k) || k.startsWith('x-grantpool')) continue;
    out[k] = v;
  }
  return out;
}
