// The client's Messages body as Claude on Vertex AI takes it, edited in its
// bytes rather than re-serialised: the top-level `model` goes (Vertex takes
// the model from the URL; for count tokens it stays, set to the Vertex model
// id) and `anthropic_version: "vertex-2023-10-16"` comes first. Every other
// member is passed on exactly as the client wrote it (numbers, escapes, key
// order, fields this gateway does not know), so thinking signatures, cache
// control and whatever Anthropic adds next reach Anthropic untouched.

export const VERTEX_ANTHROPIC_VERSION = 'vertex-2023-10-16';

/** One top-level member of a JSON object: its key and where `"key": value` starts and ends in the text. */
export interface Member {
  key: string;
  start: number;
  end: number;
}

const QUOTE = 34;
const BACKSLASH = 92;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;
const COMMA = 44;
const COLON = 58;

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

/** The index just after the string that starts (with its quote) at `i`. */
function skipString(text: string, i: number): number {
  let j = i + 1;
  for (;;) {
    const q = text.indexOf('"', j);
    if (q === -1) throw new SyntaxError('unterminated string');
    let backslashes = 0;
    for (let k = q - 1; k > i && text.charCodeAt(k) === BACKSLASH; k--) backslashes++;
    if (backslashes % 2 === 0) return q + 1;
    j = q + 1;
  }
}

/** The index just after the JSON value that starts at `i` (whitespace skipped before it). */
function skipValue(text: string, i: number): number {
  while (isSpace(text.charCodeAt(i))) i++;
  const c = text.charCodeAt(i);
  if (c === QUOTE) return skipString(text, i);
  if (c !== OPEN_BRACE && c !== OPEN_BRACKET) {
    // A number, true, false or null: up to the next delimiter.
    let j = i;
    for (; j < text.length; j++) {
      const d = text.charCodeAt(j);
      if (d === COMMA || d === CLOSE_BRACE || d === CLOSE_BRACKET || isSpace(d)) break;
    }
    if (j === i) throw new SyntaxError(`unexpected character at ${i}`);
    return j;
  }
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    const d = text.charCodeAt(j);
    if (d === QUOTE) {
      j = skipString(text, j) - 1;
    } else if (d === OPEN_BRACE || d === OPEN_BRACKET) {
      depth++;
    } else if ((d === CLOSE_BRACE || d === CLOSE_BRACKET) && --depth === 0) {
      return j + 1;
    }
  }
  throw new SyntaxError('unterminated value');
}

/** The top-level members of a JSON object text, in order (throws SyntaxError when it is not one). */
export function topLevelMembers(text: string): Member[] {
  let i = 0;
  while (isSpace(text.charCodeAt(i))) i++;
  if (text.charCodeAt(i) !== OPEN_BRACE) throw new SyntaxError('not a JSON object');
  i++;
  const members: Member[] = [];
  for (;;) {
    while (isSpace(text.charCodeAt(i))) i++;
    const c = text.charCodeAt(i);
    if (c === CLOSE_BRACE) return members;
    if (c === COMMA && members.length) {
      i++;
      continue;
    }
    if (c !== QUOTE) throw new SyntaxError(`expected a key at ${i}`);
    const start = i;
    const keyEnd = skipString(text, i);
    // A key without escapes is its text; only one with a backslash needs decoding.
    const raw = text.slice(i + 1, keyEnd - 1);
    const key = raw.includes('\\') ? (JSON.parse(text.slice(i, keyEnd)) as string) : raw;
    i = keyEnd;
    while (isSpace(text.charCodeAt(i))) i++;
    if (text.charCodeAt(i) !== COLON) throw new SyntaxError(`expected ':' at ${i}`);
    const end = skipValue(text, i + 1);
    members.push({ key, start, end });
    i = end;
  }
}

export interface VertexBodyEdit {
  /** Top-level keys to drop (every occurrence). */
  drop: readonly string[];
  /** Members to put first, as JSON values (already serialised by the caller's rules: plain strings here). */
  first: Readonly<Record<string, string>>;
}

/** The body with `drop` removed and `first` in front; the rest byte for byte as it was. */
export function editBody(raw: Buffer, edit: VertexBodyEdit): Buffer {
  return applyEdit(raw, prepared(edit));
}

interface PreparedEdit {
  drop: ReadonlySet<string>;
  /** The members put first, as JSON text. */
  head: string;
  /** `{` and the head, as UTF-8. */
  open: Buffer;
}

function prepared(edit: VertexBodyEdit): PreparedEdit {
  const head = Object.entries(edit.first).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',');
  return { drop: new Set([...edit.drop, ...Object.keys(edit.first)]), head, open: Buffer.from(`{${head}`, 'utf8') };
}

const COMMA_BYTE = 0x2c;
const CLOSE_BRACE_BYTE = 0x7d;

function applyEdit(raw: Buffer, edit: PreparedEdit): Buffer {
  const text = raw.toString('utf8');
  const members = topLevelMembers(text);
  if (text.length === raw.length) {
    // ASCII only: the text's offsets are the bytes' offsets, so the members are
    // copied from the bytes into one buffer (no string built, nothing encoded again).
    const out = Buffer.allocUnsafe(edit.open.length + raw.length + 1);
    let at = edit.open.copy(out, 0);
    for (const m of members) {
      if (edit.drop.has(m.key)) continue;
      if (at > 1) out[at++] = COMMA_BYTE;
      at += raw.copy(out, at, m.start, m.end);
    }
    out[at++] = CLOSE_BRACE_BYTE;
    return out.subarray(0, at);
  }
  let out = `{${edit.head}`;
  for (const m of members) if (!edit.drop.has(m.key)) out += `${out.length > 1 ? ',' : ''}${text.slice(m.start, m.end)}`;
  return Buffer.from(`${out}}`, 'utf8');
}

/** The edit of every Messages body (the same each time: prepared once). */
const MESSAGES_EDIT = prepared({ drop: ['model'], first: { anthropic_version: VERTEX_ANTHROPIC_VERSION } });

/** A Messages body for rawPredict / streamRawPredict: no `model`, `anthropic_version` first. */
export function vertexMessagesBody(raw: Buffer): Buffer {
  return applyEdit(raw, MESSAGES_EDIT);
}

/** A count tokens body for count-tokens:rawPredict: `model` is the Vertex model id, `anthropic_version` first. */
export function vertexCountTokensBody(raw: Buffer, vertexModel: string): Buffer {
  return editBody(raw, { drop: ['model'], first: { anthropic_version: VERTEX_ANTHROPIC_VERSION, model: vertexModel } });
}
