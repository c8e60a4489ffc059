// The Claude pass-through adapter: forwards Claude on Vertex AI's answer to
// the Anthropic door's client as Anthropic sent it (the JSON message, or the
// SSE stream chunk by chunk, never parsed or re-serialised), with the token
// usage read from its raw text. Errors: Anthropic's own (the model's 4xx)
// pass as they are; Vertex's (Google's shape, e.g. a Model Garden refusal)
// are put in Anthropic's shape, as are the gateway's own.
import type { ServerResponse } from 'node:http';
import { anthropicFromVertexError, isAnthropicError, messageUsage, streamUsage } from '../anthropic/vertex-claude.ts';
import { Tail } from '../sse.ts';
import { describeNetworkError, upstreamMessage } from '../upstream-errors.ts';
import { passHeaders, sendJsonBody, type ErrorShaper } from './answer.ts';
import type { AttemptSpec, Opened } from './attempts.ts';
import { pump } from './body-io.ts';
import type { EngineDeps } from './deps.ts';
import { okReport, runExchange, type Served, type Track } from './exchange.ts';

export interface ClaudeForward {
  spec: AttemptSpec;
  track: Track;
  errorBody: ErrorShaper;
  /** A Messages stream (streamRawPredict): forwarded event by event. */
  sse: boolean;
  /** A generate request (quota protection counts it; count tokens does not). */
  counts: boolean;
}

/** Anthropic's error event, for a stream that broke after it started. */
function streamError(message: string): string {
  return `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'api_error', message } })}\n\n`;
}

async function serveClaude(deps: EngineDeps, res: ServerResponse, f: ClaudeForward, opened: Opened): Promise<Served> {
  if (opened.kind === 'client_error') {
    const error = upstreamMessage(opened.status, opened.text).slice(0, 300);
    if (isAnthropicError(opened.text)) {
      const headers = passHeaders(opened.headers);
      headers['content-length'] = String(Buffer.byteLength(opened.text));
      res.writeHead(opened.status, headers);
      res.end(opened.text);
    } else {
      sendJsonBody(res, opened.status, anthropicFromVertexError(opened.status, opened.text));
    }
    return { status: opened.status, error, report: { kind: 'client_error' } };
  }
  if (opened.kind === 'ok') {
    const headers = passHeaders(opened.headers);
    headers['content-length'] = String(opened.full.length);
    const firstByteAt = deps.clock.now();
    res.writeHead(opened.status, headers);
    res.end(opened.full);
    const usage = f.counts ? messageUsage(opened.full.toString('utf8')) : null;
    return { status: opened.status, firstByteAt, usage, report: okReport(usage, f.counts) };
  }
  const headers = passHeaders(opened.headers);
  if (f.sse) {
    headers['cache-control'] = 'no-cache';
    headers['x-accel-buffering'] = 'no';
  }
  res.writeHead(opened.status, headers);
  const firstByteAt = deps.clock.now();
  const head = Buffer.concat(opened.head.chunks).toString('utf8');
  const tail = new Tail();
  for (const c of opened.head.chunks) {
    tail.push(c);
    res.write(c);
  }
  const usageNow = () => streamUsage(head, tail.text());
  try {
    await pump(opened.body, res, (c) => {
      tail.push(c);
      return res.write(c);
    });
  } catch (e) {
    if (f.spec.signal.aborted) {
      const usage = usageNow();
      return { status: opened.status, error: 'client disconnected', firstByteAt, usage, report: okReport(usage, f.counts) };
    }
    const reason = describeNetworkError(e);
    deps.logger.warn({ account: opened.lease.email, model: f.spec.model, reason }, 'Upstream stream broke after it started');
    if (f.sse) res.end(streamError(`The upstream stream broke after the answer started (${reason}); the answer is incomplete.`));
    else res.destroy();
    return { status: 502, error: `${reason} after the answer started`, firstByteAt, report: { kind: 'server_error', reason } };
  }
  res.end();
  const usage = usageNow();
  return { status: opened.status, firstByteAt, usage, report: okReport(usage, f.counts) };
}

/** Sends one Anthropic request to Claude on Vertex AI and forwards the answer as it is. */
export async function forwardClaude(deps: EngineDeps, res: ServerResponse, f: ClaudeForward): Promise<void> {
  await runExchange(deps, res, f.track, { spec: f.spec, errorBody: f.errorBody, serve: (opened) => serveClaude(deps, res, f, opened) });
}
