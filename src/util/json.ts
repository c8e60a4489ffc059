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
