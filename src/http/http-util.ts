// Small helpers for reading requests and writing answers on node:http.
import { describeJsonError } from '../util/json.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  /** What the user can do about it, when there is something. */
  readonly fix?: string;
  constructor(status: number, code: string, message: string, fix?: string) {
    super(message);
    this.status = status;
    this.code = code;
    if (fix) this.fix = fix;
  }
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, 'body_too_large', `request body is larger than the limit of ${limit} bytes`);
}

/**
 * Reads a request body of at most `limit` bytes (413 beyond, the rest drained).
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
    // Errors are built only when needed (an Error captures a stack trace).
    const fail = (make: () => HttpError) => {
      if (settled) return;
      settled = true;
      chunks.length = 0;
      reject(make());
    };
    req.on('data', (c: Buffer) => {
      if (settled) return;
      size += c.length;
      if (size > limit) fail(() => tooLarge(limit));
      else chunks.push(c);
    });
    req.once('end', () => {
      if (settled) return;
      settled = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    req.once('error', () => fail(() => new HttpError(400, 'body_read_error', 'the request body could not be read')));
    req.once('close', () => fail(() => new HttpError(400, 'body_read_error', 'the client closed the connection before the body was complete')));
  });
}

/** Reads a JSON request body, keeping the raw bytes; errors are HttpError 400/413. */
export async function readJsonWithRaw(req: IncomingMessage, limit: number): Promise<{ raw: Buffer; body: unknown }> {
  const raw = await readBody(req, limit);
  if (raw.length === 0) throw new HttpError(400, 'invalid_json', 'request body is empty; expected a JSON object');
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw new HttpError(400, 'invalid_utf8', 'request body is not valid UTF-8');
  }
  try {
    return { raw, body: JSON.parse(text) };
  } catch (e) {
    throw new HttpError(400, 'invalid_json', `request body is ${describeJsonError(e)}`);
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
