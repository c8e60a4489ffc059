// Session affinity keys: which account a conversation stays on. Clients name
// their conversation in different places; the first one present wins:
//   X-Grantpool-Session          any client (set it yourself)
//   session_id                   Codex CLI (its conversation id; also sent as prompt_cache_key)
//   x-session-id                 opencode
//   x-session-affinity           opencode
//   body: prompt_cache_key, user, safety_identifier (OpenAI), metadata.user_id (Anthropic; Claude Code
//   puts its session id there) — read by the doors and passed in as `fromBody`.
import type { IncomingHttpHeaders } from 'node:http';

export const SESSION_HEADERS = ['x-grantpool-session', 'session_id', 'x-session-id', 'x-session-affinity'] as const;

/** Longer keys are cut (a key only has to tell conversations apart). */
const MAX_KEY_CHARS = 256;

export function sessionKeyOf(headers: IncomingHttpHeaders, fromBody?: string): string | undefined {
  for (const name of SESSION_HEADERS) {
    const v = headers[name];
    const s = typeof v === 'string' ? v.trim() : Array.isArray(v) ? v[0]?.trim() : undefined;
    if (s) return s.slice(0, MAX_KEY_CHARS);
  }
  const b = fromBody?.trim();
  return b ? b.slice(0, MAX_KEY_CHARS) : undefined;
}
