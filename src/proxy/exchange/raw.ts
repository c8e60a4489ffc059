// The raw adapter: forwards an upstream answer as it is (Gemini native, Google
// API pass-through, Claude on Vertex AI): status, content headers and bytes,
// chunks as they arrive, never parsed or re-serialised. Token usage is read
// from the raw text by the route's UsageReader.
import type { ServerResponse } from 'node:http';
import { findUsage, Tail, usageOf, type Usage } from '../sse.ts';
import { describeNetworkError, upstreamMessage } from '../upstream-errors.ts';
import { passHeaders, sendJsonBody, type ErrorShaper } from './answer.ts';
import type { AttemptSpec, Opened } from './attempts.ts';
import { pump } from './body-io.ts';
import type { EngineDeps } from './deps.ts';
import { okReport, runExchange, type Served, type Track } from './exchange.ts';

export interface RawForward {
  spec: AttemptSpec;
  track: Track;
  errorBody: ErrorShaper;
  /** The answer is an SSE stream (mid-stream failures end it with an error event). */
  sse: boolean;
  /** Error event text for an SSE stream that broke after it started. */
  streamError?: (status: number, message: string) => string;
  /** Reads the token usage from the answer; absent: none is reported. */
  usage?: UsageReader;
  /**
   * An upstream 4xx in a shape the client does not read: the JSON body to send
   * instead, or null to pass it on as it is. Absent: always as it is.
   */
  reshapeClientError?: (status: number, text: string) => unknown;
  /** A generate request: quota protection counts it (count-tokens, embeddings and lists are not). */
  counts: boolean;
}

/** Reads token usage from a forwarded answer's raw bytes. */
export interface UsageReader {
  /** A whole answer; `parsed` is what the route's check parsed of it, when it did. */
  whole(body: Buffer, parsed?: unknown): Usage | null;
  /** A stream: its head (the first chunks, as sent) and the text of its last bytes. */
  stream(head: readonly Buffer[], tail: string): Usage | null;
}

/**
 * Usage in a Gemini answer: from the answer the check parsed (geminiJson), or,
 * when there is none, from the text: usageMetadata sits near the end of a
 * whole answer, so its tail is searched first.
 */
export const GEMINI_USAGE: UsageReader = {
  whole(body, parsed) {
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return usageOf(parsed as Record<string, unknown>);
    const TAIL = 8192;
    if (body.length > TAIL) {
      const u = findUsage(body.subarray(body.length - TAIL).toString('utf8'));
      if (u) return u;
    }
    return findUsage(body.toString('utf8'));
  },
  stream: (_head, tail) => findUsage(tail),
};

/** A whole answer or a passed-back 4xx is served at once; a stream in serveStream. */
function serveRaw(deps: EngineDeps, res: ServerResponse, f: RawForward, opened: Opened): Served | Promise<Served> {
  if (opened.kind === 'client_error') {
    const reshaped = f.reshapeClientError?.(opened.status, opened.text) ?? null;
    if (reshaped !== null) {
      sendJsonBody(res, opened.status, reshaped);
    } else {
      const headers = passHeaders(opened.headers);
      headers['content-length'] = String(Buffer.byteLength(opened.text));
      res.writeHead(opened.status, headers);
      res.end(opened.text);
    }
    return { status: opened.status, error: upstreamMessage(opened.status, opened.text).slice(0, 300), report: { kind: 'client_error' } };
  }
  if (opened.kind === 'ok') {
    const headers = passHeaders(opened.headers);
    headers['content-length'] = String(opened.full.length);
    const firstByteAt = deps.clock.now();
    res.writeHead(opened.status, headers);
    res.end(opened.full);
    const usage = f.usage ? f.usage.whole(opened.full, opened.value) : null;
    return { status: opened.status, firstByteAt, usage, report: okReport(usage, f.counts) };
  }
  return serveStream(deps, res, f, opened);
}

async function serveStream(deps: EngineDeps, res: ServerResponse, f: RawForward, opened: Opened & { kind: 'stream' }): Promise<Served> {
  const headers = passHeaders(opened.headers);
  if (f.sse) {
    headers['cache-control'] = 'no-cache';
    headers['x-accel-buffering'] = 'no';
  }
  res.writeHead(opened.status, headers);
  const firstByteAt = deps.clock.now();
  const tail = f.usage ? new Tail() : null;
  for (const c of opened.head.chunks) {
    tail?.push(c);
    res.write(c);
  }
  const usageNow = () => (tail ? f.usage!.stream(opened.head.chunks, tail.text()) : null);
  try {
    await pump(opened.body, res, (c) => {
      tail?.push(c);
      return res.write(c);
    });
  } catch (e) {
    if (f.spec.signal.aborted) {
      const usage = usageNow();
      return { status: opened.status, error: 'client disconnected', firstByteAt, usage, report: okReport(usage, f.counts) };
    }
    const reason = describeNetworkError(e);
    deps.logger.warn({ account: opened.lease.email, model: f.spec.model, reason }, 'Upstream stream broke after it started');
    if (f.sse && f.streamError) {
      res.end(f.streamError(503, `The upstream stream broke after the answer started (${reason}); the answer is incomplete.`));
    } else {
      res.destroy();
    }
    return { status: 502, error: `${reason} after the answer started`, firstByteAt, report: { kind: 'server_error', reason } };
  }
  res.end();
  const usage = usageNow();
  return { status: opened.status, firstByteAt, usage, report: okReport(usage, f.counts) };
}

/** Forwards one request's upstream answer as it is (resolves when the exchange has ended). */
export function forwardRaw(deps: EngineDeps, res: ServerResponse, f: RawForward): Promise<unknown> {
  // Not async, here and in the adapters above it: each async layer is one more promise and turn per request.
  return runExchange(deps, res, f.track, { spec: f.spec, errorBody: f.errorBody, serve: (opened) => serveRaw(deps, res, f, opened) });
}
