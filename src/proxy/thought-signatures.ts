// Gemini attaches an opaque `thoughtSignature` to response parts (always to
// the first functionCall part of a step on thinking models) and rejects a
// later request whose history drops it. OpenAI and Anthropic clients never
// send it back, so the doors remember it here, keyed by the tool call id they
// hand out, and put it back on the functionCall part when the history returns.

/** Google's documented placeholder for a function call whose signature is unknown. */
export const SKIP_THOUGHT_SIGNATURE_VALIDATOR = 'skip_thought_signature_validator';

export interface ThoughtSignatureCache {
  /** Remembers the signature Gemini sent with the part the client knows as `key`. */
  remember(key: string, signature: string): void;
  /** The signature for `key`, refreshing its place in the LRU order. */
  recall(key: string): string | undefined;
  readonly size: number;
}

/** A bounded LRU map (oldest entries are dropped first). */
export function createThoughtSignatureCache(options: { maxEntries?: number } = {}): ThoughtSignatureCache {
  const max = Math.max(1, options.maxEntries ?? 10_000);
  const map = new Map<string, string>();
  return {
    remember(key, signature) {
      if (!key || !signature) return;
      map.delete(key);
      map.set(key, signature);
      while (map.size > max) map.delete(map.keys().next().value as string);
    },
    recall(key) {
      const sig = map.get(key);
      if (sig === undefined) return undefined;
      map.delete(key);
      map.set(key, sig);
      return sig;
    },
    get size() {
      return map.size;
    },
  };
}

type Part = Record<string, unknown>;
type Content = { role?: string; parts?: Part[] };

/**
 * In each model turn whose first functionCall part still has no signature
 * (cache miss: evicted, or a gateway restart), puts Google's documented
 * placeholder there so the request is not refused outright. Mutates `contents`.
 * Returns how many placeholders were used.
 */
export function fillMissingFunctionCallSignatures(contents: Content[]): number {
  let filled = 0;
  for (const content of contents) {
    if (content.role !== 'model' || !Array.isArray(content.parts)) continue;
    const first = content.parts.find((p) => p.functionCall !== undefined);
    if (first && typeof first.thoughtSignature !== 'string') {
      first.thoughtSignature = SKIP_THOUGHT_SIGNATURE_VALIDATOR;
      filled++;
    }
  }
  return filled;
}

// --- Anthropic thinking-block signatures -----------------------------------
// The Anthropic door hands Gemini signatures to the client inside the
// `signature` of the thinking block, which Anthropic clients send back
// verbatim: `gp1.` + base64url(JSON {t?: sig of the thought part,
// n?: sig of the first non-thought part after it}).

const PREFIX = 'gp1.';

export interface ThinkingSignature {
  /** Signature that Gemini put on the thought part itself. */
  thought?: string;
  /** Signature of the first non-thought part that followed (text or functionCall). */
  next?: string;
}

export function encodeThinkingSignature(sig: ThinkingSignature): string {
  const body: Record<string, string> = {};
  if (sig.thought) body.t = sig.thought;
  if (sig.next) body.n = sig.next;
  return PREFIX + Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
}

/** Our envelope decoded, or null for a signature we did not issue (e.g. a real Claude one). */
export function decodeThinkingSignature(signature: unknown): ThinkingSignature | null {
  if (typeof signature !== 'string' || !signature.startsWith(PREFIX)) return null;
  try {
    const body = JSON.parse(Buffer.from(signature.slice(PREFIX.length), 'base64url').toString('utf8')) as unknown;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
    const b = body as Record<string, unknown>;
    const out: ThinkingSignature = {};
    if (typeof b.t === 'string' && b.t) out.thought = b.t;
    if (typeof b.n === 'string' && b.n) out.next = b.n;
    return out;
  } catch {
    return null;
  }
}

// --- Responses API reasoning items ---------------------------------------------
// The Responses door hands Gemini signatures to the client in a reasoning
// item's `encrypted_content` (which Codex sends back when it asks for
// include: ["reasoning.encrypted_content"]): `gpr1.` + base64url(JSON
// {c: {<call_id>: signature of that function call}}).

const RESPONSES_PREFIX = 'gpr1.';

export interface ResponsesSignatures {
  /** call_id -> the thoughtSignature of that functionCall part. */
  calls: Record<string, string>;
}

export function encodeResponsesSignatures(sig: ResponsesSignatures): string {
  return RESPONSES_PREFIX + Buffer.from(JSON.stringify({ c: sig.calls }), 'utf8').toString('base64url');
}

/** Our envelope decoded, or null for content we did not issue (e.g. OpenAI's own encrypted reasoning). */
export function decodeResponsesSignatures(encrypted: unknown): ResponsesSignatures | null {
  if (typeof encrypted !== 'string' || !encrypted.startsWith(RESPONSES_PREFIX)) return null;
  try {
    const body = JSON.parse(Buffer.from(encrypted.slice(RESPONSES_PREFIX.length), 'base64url').toString('utf8')) as unknown;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
    const c = (body as Record<string, unknown>).c;
    const calls: Record<string, string> = {};
    if (typeof c === 'object' && c !== null && !Array.isArray(c)) {
      for (const [k, v] of Object.entries(c)) if (typeof v === 'string' && v) calls[k] = v;
    }
    return { calls };
  } catch {
    return null;
  }
}
