// JSON syntax errors described without the snippet of input V8 puts in its
// message (the input may be a secret: a config file, a client secret, a body).

/** "not valid JSON (line 3 column 7)" and the like. */
export function describeJsonError(e: unknown): string {
  const msg = e instanceof Error ? e.message : '';
  const lineCol = /\(line (\d+) column (\d+)\)/.exec(msg);
  if (lineCol) return `not valid JSON (line ${lineCol[1]} column ${lineCol[2]})`;
  const pos = /at position (\d+)/.exec(msg);
  if (pos) return `not valid JSON (at position ${pos[1]})`;
  if (/end of JSON input/.test(msg)) return 'not valid JSON (ends too early)';
  return 'not valid JSON';
}

/**
 * Whether a parsed JSON value nests arrays and objects deeper than `max`
 * levels (`{}` is one level). Bounded recursion: it never descends past `max`,
 * so it cannot overflow the stack that a deeper value would overflow later
 * (JSON.stringify and every recursive walk).
 */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  return deeper(value, max);
}

function deeper(value: unknown, left: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (left <= 0) return true;
  if (Array.isArray(value)) {
    for (const v of value) if (typeof v === 'object' && v !== null && deeper(v, left - 1)) return true;
    return false;
  }
  for (const k in value) {
    const v = (value as Record<string, unknown>)[k];
    if (typeof v === 'object' && v !== null && deeper(v, left - 1)) return true;
  }
  return false;
}
