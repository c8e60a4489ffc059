// The Claude pass-through adapter: forwards Claude on Vertex AI's answer to
// the Anthropic door's client as Anthropic sent it (the JSON message, or the
// SSE stream chunk by chunk, never parsed or re-serialised), with the token
// usage read from its raw text. Errors: Anthropic's own (the model's 4xx)
// pass as they are; Vertex's (Google's shape, e.g. a Model Garden refusal)
// are put in Anthropic's shape, as are the gateway's own.
import type { ServerResponse } from 'node:http';
import { anthropicFromVertexError, isAnthropicError, messageUsage, streamUsage } from '../anthropic/vertex-claude.ts';
import type { ErrorShaper } from './answer.ts';
import type { AttemptSpec } from './attempts.ts';
import type { EngineDeps } from './deps.ts';
import type { Track } from './exchange.ts';
import { forwardRaw, type UsageReader } from './raw.ts';

export interface ClaudeForward {
  spec: AttemptSpec;
  track: Track;
  errorBody: ErrorShaper;
  /** A Messages stream (streamRawPredict): forwarded event by event. */
  sse: boolean;
  /** A generate request (quota protection counts it; count tokens does not). */
  counts: boolean;
}

/** Usage in a Messages answer, read from its raw text (as the check decoded it, when it did). */
const CLAUDE_USAGE: UsageReader = {
  whole: (body, text) => messageUsage(typeof text === 'string' ? text : body.toString('utf8')),
  stream: (head, tail) => streamUsage(Buffer.concat(head).toString('utf8'), tail),
};

/** Anthropic's error event, for a stream that broke after it started. */
function streamError(_status: number, message: string): string {
  return `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'api_error', message } })}\n\n`;
}

/** Sends one Anthropic request to Claude on Vertex AI and forwards the answer as it is. */
export function forwardClaude(deps: EngineDeps, res: ServerResponse, f: ClaudeForward): Promise<unknown> {
  return forwardRaw(deps, res, {
    ...f,
    // count tokens is never streamed, and its answer carries no usage.
    usage: f.counts ? CLAUDE_USAGE : undefined,
    streamError,
    reshapeClientError: (status, text) => (isAnthropicError(text) ? null : anthropicFromVertexError(status, text)),
  });
}
