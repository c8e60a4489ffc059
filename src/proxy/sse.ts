// Server-sent events from the Gemini API (`data: {...}\r\n\r\n`), read
// incrementally, and cheap helpers that find the token usage in raw bytes
// without parsing or re-serialising whole answers.

/**
 * Incremental SSE reader: `push` bytes as they arrive, `onData` gets the data
 * of each complete event (multi-line data joined with \n). Accepts \r\n, \n and \r.
 */
export class SseReader {
  private buffer = '';
  private readonly decoder = new TextDecoder('utf-8');
  private readonly onData: (data: string) => void;

  constructor(onData: (data: string) => void) {
    this.onData = onData;
  }

  push(chunk: Uint8Array): void {
    this.buffer += this.decoder.decode(chunk, { stream: true });
    this.drain();
  }

  /** Flushes a last event that was not followed by a blank line. */
  end(): void {
    this.buffer += this.decoder.decode();
    this.drain();
    if (this.buffer.trim()) this.emit(this.buffer);
    this.buffer = '';
    this.scanned = 0;
  }

  /** Where the search for the next blank line resumes (what was searched before holds none). */
  private scanned = 0;
  /** The blank line that ends an event (any of the three line endings); one per reader, made once. */
  private readonly eventEnd = /\r\n\r\n|\n\n|\r\r/g;

  private drain(): void {
    const buf = this.buffer;
    let start = 0;
    const re = this.eventEnd;
    re.lastIndex = Math.max(0, this.scanned - 3);
    for (;;) {
      const m = re.exec(buf);
      if (!m) break;
      this.emit(buf.slice(start, m.index));
      start = m.index + m[0].length;
    }
    this.buffer = start === 0 ? buf : buf.slice(start);
    this.scanned = this.buffer.length;
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
