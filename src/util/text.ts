/** `s` cut to at most `max` characters, the last one an ellipsis when it was cut. */
export function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** `s` on one line (runs of white space as one space, trimmed), then truncated to `max`. */
export function oneLine(s: string, max: number): string {
  return truncate(s.replace(/\s+/g, ' ').trim(), max);
}
