// Small helpers for reading requests and writing answers on node:http.
import { describeJsonError } from '../util/json.ts';
import { GatewayError, type ErrorCode, type GatewayErrorOptions } from '../util/errors.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isUtf8 } from 'node:buffer';

/** An answer the gateway gives about a request: a GatewayError with the status first. */
export class HttpError extends GatewayError {
  constructor(status: number, code: ErrorCode, message: string, opts: Omit<GatewayErrorOptions, 'status'> = {}) {
    super(code, message, { ...opts, status });
  }
}

/** 400: the request is wrong (bad JSON, a missing field, a value the protocol does not allow). */
export class BadRequest extends HttpError {
  constructor(message: string, code: ErrorCode = 'invalid_request', opts: Omit<GatewayErrorOptions, 'status'> = {}) {
    super(400, code, message, opts);
  }
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, 'body_too_large', `request body is larger than the limit of ${limit} bytes`);
}

/** Longest silence while a body is arriving, unless the server set another for the request. */
export const DEFAULT_BODY_IDLE_TIMEOUT_MS = 30_000;
/** Where the server's body deadline sits on a request (a property: cheaper per request than a WeakMap entry). */
const BODY_IDLE_TIMEOUT = Symbol('grantpool.bodyIdleTimeoutMs');

/** The server's body deadline for one request (read by readBody). */
export function setBodyIdleTimeout(req: IncomingMessage, ms: number): void {
  (req as IncomingMessage & { [BODY_IDLE_TIMEOUT]?: number })[BODY_IDLE_TIMEOUT] = ms;
}

/**
 * Reads a request body of at most `limit` bytes (413 beyond, the rest drained).
 * A body that stops arriving for the body deadline is a 408 and its bytes are let go.
 * Event based: cheaper than async iteration on the hot path.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      reject(tooLarge(limit));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    let idle: NodeJS.Timeout | null = null;
    // Errors are built only when needed (an Error captures a stack trace).
    const fail = (make: () => HttpError) => {
      if (settled) return;
      settled = true;
      if (idle) clearTimeout(idle);
      chunks.length = 0;
      reject(make());
    };
    if (!req.complete) {
      const idleMs = (req as IncomingMessage & { [BODY_IDLE_TIMEOUT]?: number })[BODY_IDLE_TIMEOUT] ?? DEFAULT_BODY_IDLE_TIMEOUT_MS;
      idle = setTimeout(
        () => fail(() => new HttpError(408, 'request_timeout', `the request body stopped arriving (nothing for ${idleMs / 1000} s); send it without pauses`)),
        idleMs,
      );
      idle.unref();
    }
    req.on('data', (c: Buffer) => {
      if (settled) return;
      idle?.refresh();
      size += c.length;
      if (size > limit) fail(() => tooLarge(limit));
      else chunks.push(c);
    });
    req.once('end', () => {
      if (settled) return;
      settled = true;
      if (idle) clearTimeout(idle);
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    req.once('error', () => fail(() => new BadRequest('the request body could not be read', 'body_read_error')));
    req.once('close', () => fail(() => new BadRequest('the client closed the connection before the body was complete', 'body_read_error')));
  });
}

/** Reads a JSON request body, keeping the raw bytes; errors are HttpError 400/413. */
export async function readJsonWithRaw(req: IncomingMessage, limit: number): Promise<{ raw: Buffer; body: unknown }> {
  const raw = await readBody(req, limit);
  if (raw.length === 0) throw new BadRequest('request body is empty; expected a JSON object', 'invalid_json');
  // Checked, then decoded (cheaper than a fatal TextDecoder); a leading byte order mark is dropped, as TextDecoder did.
  if (!isUtf8(raw)) throw new BadRequest('request body is not valid UTF-8', 'invalid_utf8');
  const bom = raw.length >= 3 && raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf;
  const text = raw.toString('utf8', bom ? 3 : 0);
  try {
    return { raw, body: JSON.parse(text) };
  } catch (e) {
    throw new BadRequest(`request body is ${describeJsonError(e)}`, 'invalid_json', { cause: e });
  }
}

/** Reads and parses a JSON body; an empty body, bad UTF-8 or bad JSON is a 400 with a clear message. */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  return (await readJsonWithRaw(req, limit)).body;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

export function sendHtml(res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    ...headers,
  });
  res.end(html);
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}
