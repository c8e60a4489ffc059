// Is a 2xx upstream answer usable? Pure judges of a whole body or a stream's
// head, run before anything is sent to the client: an unusable answer (an
// HTML page, empty or truncated JSON, `null`, an error event) is treated like
// a 5xx, so the request fails over to another account.
import type { UpstreamHeaders } from '../upstream-client.ts';
import { MAX_SSE_EVENT_BYTES } from '../sse.ts';
import type { Checked } from './attempts.ts';
import type { StreamHead } from './body-io.ts';
import { isObj } from '../translate-util.ts';

function errorText(e: unknown): string {
  const m = isObj(e) ? e.message : e;
  return typeof m === 'string' && m ? m.slice(0, 300) : 'unknown';
}

function contentType(headers: UpstreamHeaders): string {
  const v = headers['content-type'];
  return (Array.isArray(v) ? v[0] : v ?? '').toLowerCase();
}

/** What an unparsable or non-object answer looks like, for the reason. */
function describeBroken(text: string, headers: UpstreamHeaders): string {
  const t = text.trim();
  if (!t) return 'upstream answered 200 with an empty body';
  if (t === 'null') return 'upstream answered 200 with JSON null';
  if (t[0] === '<' || contentType(headers).includes('html')) return 'upstream answered 200 with an HTML page, not JSON';
  return 'upstream answered 200 with a body that is not a JSON object (invalid or truncated)';
}

/** One Gemini answer (generateContent, countTokens, embeddings, a model list page): a JSON object without `error`. */
export function geminiJson(body: Buffer, headers: UpstreamHeaders): Checked {
  const text = body.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: describeBroken(text, headers) };
  }
  if (!isObj(value)) return { ok: false, reason: describeBroken(text, headers) };
  if (value.error !== undefined) return { ok: false, reason: `upstream error: ${errorText(value.error)}` };
  return { ok: true, value };
}

/** One streamed Gemini event: why it cannot be used, or null. */
export function geminiEventProblem(data: string): string | null {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return 'upstream sent an event that is not JSON';
  }
  if (!isObj(value)) return 'upstream sent an event that is not a JSON object';
  if (value.error !== undefined) return `upstream error: ${errorText(value.error)}`;
  return null;
}

/** The head of a Gemini SSE stream: its first event must be a usable chunk. */
export function geminiSseHead(head: StreamHead): Checked {
  if (head.overflow) return { ok: false, reason: `upstream sent an event larger than ${MAX_SSE_EVENT_BYTES} bytes` };
  if (head.firstEvent === null) return { ok: false, reason: 'upstream ended the stream without any data' };
  const problem = geminiEventProblem(head.firstEvent);
  return problem ? { ok: false, reason: problem } : { ok: true };
}

function firstNonSpace(head: StreamHead): string | null {
  for (const c of head.chunks) {
    const m = /\S/.exec(c.toString('latin1'));
    if (m) return m[0];
  }
  return null;
}

/** The head of a Gemini stream without ?alt=sse: a JSON array. */
export function geminiArrayHead(head: StreamHead): Checked {
  const first = firstNonSpace(head);
  if (first === '[') return { ok: true };
  return { ok: false, reason: first === null ? 'upstream ended the stream without any data' : 'upstream stream is not a JSON array' };
}

/**
 * The head of a Google API answer (pass-through): an answer that says it is
 * JSON must not be empty, markup or `null`, and an HTML page is broken unless
 * the client asked for HTML (a portal or proxy error page, not a Google API).
 */
export function passthroughHead(method: string, accept: string): (head: StreamHead, headers: UpstreamHeaders, status: number) => Checked {
  const wantsHtml = /text\/html/i.test(accept);
  return (head, headers, status) => {
    if (method === 'HEAD' || status === 204 || status === 205) return { ok: true };
    const type = contentType(headers);
    if (type.includes('html') && !wantsHtml) return { ok: false, reason: `upstream answered ${status} with an HTML page` };
    if (/[/+]json\b/.test(type)) {
      // Only what is surely broken: some Google APIs prefix JSON (`)]}'`), so the start is not checked further.
      const first = firstNonSpace(head);
      if (first === null) return { ok: false, reason: `upstream answered ${status} with an empty JSON body` };
      if (first === '<') return { ok: false, reason: `upstream answered ${status} with a body that is not JSON (markup)` };
      // No JSON document that starts with `null` is anything but `null`.
      if (Buffer.concat(head.chunks).subarray(0, 64).toString('latin1').trimStart().startsWith('null')) {
        return { ok: false, reason: `upstream answered ${status} with JSON null` };
      }
    }
    return { ok: true };
  };
}
