// Server-sent events from the Gemini API (`data: {...}\r\n\r\n`), read
// incrementally, and cheap helpers that find the token usage in raw bytes
// without parsing or re-serialising whole answers.

/**
 * The largest server-sent event accepted from the upstream (an event can hold
 * a generated image inline, base64: a few MB). An upstream that sends more
 * without a blank line is broken, and its stream is ended instead of being
 * buffered without bound.
 */
export const MAX_SSE_EVENT_BYTES = 32 * 1024 * 1024;

/**
 * Incremental SSE reader: `push` bytes as they arrive, `onData` gets the data
 * of each complete event (multi-line data joined with \n). Accepts \r\n, \n and \r.
 * An event larger than `maxEventBytes` sets `overflowed`; the reader then
 * ignores the rest of the stream.
 */
export class SseReader {
  /** The text of the event being read, in pieces (joined once, when the event ends: no quadratic copying of big events). */
  private parts: string[] = [];
  private size = 0;
  private readonly decoder = new TextDecoder('utf-8');
  private readonly onData: (data: string) => void;
  private readonly maxEventBytes: number;
  /** An event grew beyond the limit without ending (the stream is unusable from there). */
  overflowed = false;
  /** The blank line that ends an event (any of the three line endings); one per reader, made once. */
  private readonly eventEnd = /\r\n\r\n|\n\n|\r\r/g;

  constructor(onData: (data: string) => void, maxEventBytes = MAX_SSE_EVENT_BYTES) {
    this.onData = onData;
    this.maxEventBytes = maxEventBytes;
  }

  push(chunk: Uint8Array): void {
    if (this.overflowed) return;
    const text = this.decoder.decode(chunk, { stream: true });
    if (!text) return;
    // A blank line may begin in the last characters already held.
    const tail = this.tail(3);
    const re = this.eventEnd;
    re.lastIndex = 0;
    const m = re.exec(tail + text);
    if (!m) {
      this.parts.push(text);
      this.size += text.length;
      if (this.size > this.maxEventBytes) {
        this.overflowed = true;
        this.parts = [];
        this.size = 0;
      }
      return;
    }
    const from = this.size - tail.length + m.index;
    const all = this.parts.length ? this.parts.join('') + text : text;
    this.parts = [];
    this.size = 0;
    const rest = this.drain(all, from);
    if (rest) {
      this.parts.push(rest);
      this.size = rest.length;
    }
  }

  /** Flushes a last event that was not followed by a blank line. */
  end(): void {
    if (this.overflowed) return;
    const all = this.parts.join('') + this.decoder.decode();
    this.parts = [];
    this.size = 0;
    const rest = this.drain(all, 0);
    if (rest.trim()) this.emit(rest);
  }

  /** The last `n` characters held. */
  private tail(n: number): string {
    let out = '';
    for (let i = this.parts.length - 1; i >= 0 && out.length < n; i--) out = this.parts[i]! + out;
    return out.length > n ? out.slice(out.length - n) : out;
  }

  /** Emits every complete event in `buf` (the first blank line is at or after `from`); returns the rest. */
  private drain(buf: string, from: number): string {
    let start = 0;
    const re = this.eventEnd;
    re.lastIndex = from;
    for (;;) {
      const m = re.exec(buf);
      if (!m) break;
      this.emit(buf.slice(start, m.index));
      start = m.index + m[0].length;
    }
    return start === 0 ? buf : buf.slice(start);
  }

  private emit(event: string): void {
    let data: string | null = null;
    for (const line of event.split(/\r\n|\n|\r/)) {
      if (!line.startsWith('data:')) continue;
      const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
      data = data === null ? value : `${data}\n${value}`;
    }
    if (data !== null) this.onData(data);
  }
}

export interface Usage {
  tokensIn: number;
  tokensOut: number;
}

const COUNT_RE: Record<string, RegExp> = {
  promptTokenCount: /"promptTokenCount"\s*:\s*(\d+)/,
  candidatesTokenCount: /"candidatesTokenCount"\s*:\s*(\d+)/,
  thoughtsTokenCount: /"thoughtsTokenCount"\s*:\s*(\d+)/,
};

function num(text: string, name: keyof typeof COUNT_RE): number {
  const m = COUNT_RE[name]!.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Token usage from the last `usageMetadata` object in a piece of Gemini answer text (null when absent). */
export function findUsage(text: string): Usage | null {
  const at = text.lastIndexOf('"usageMetadata"');
  if (at === -1) return null;
  const start = text.indexOf('{', at);
  if (start === -1) return null;
  let depth = 0;
  let end = text.length;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 123) depth++;
    else if (c === 125 && --depth === 0) {
      end = i + 1;
      break;
    }
  }
  const obj = text.slice(start, end);
  return {
    tokensIn: num(obj, 'promptTokenCount'),
    tokensOut: num(obj, 'candidatesTokenCount') + num(obj, 'thoughtsTokenCount'),
  };
}

/** Usage from a parsed Gemini answer or chunk. */
export function usageOf(gemini: Record<string, unknown>): Usage | null {
  const u = gemini.usageMetadata as Record<string, unknown> | undefined;
  if (!u || typeof u !== 'object') return null;
  const n = (v: unknown) => (typeof v === 'number' ? v : 0);
  return { tokensIn: n(u.promptTokenCount), tokensOut: n(u.candidatesTokenCount) + n(u.thoughtsTokenCount) };
}

/**
 * Keeps the last few chunks of a forwarded answer (references, no copies) so
 * that the usage in the final event can be read when the answer ends.
 */
export class Tail {
  private chunks: Uint8Array[] = [];
  private size = 0;
  private readonly max: number;
  constructor(maxBytes = 16 * 1024) {
    this.max = maxBytes;
  }
  push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.chunks.length > 1 && this.size - this.chunks[0]!.length >= this.max) {
      this.size -= this.chunks.shift()!.length;
    }
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}
