// Terminal output: aligned tables, colour only on a terminal; and the one
// mapping from a failed command's error to what the user reads.
import type { AccountState } from '../pool/types.ts';
import { describeForLog, isGatewayError } from '../util/errors.ts';

export interface Out {
  write(text: string): void;
  error(text: string): void;
  color: boolean;
}

export const processOut: Out = {
  write: (t) => process.stdout.write(t),
  error: (t) => process.stderr.write(t),
  color: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR,
};

/**
 * Prints why a command failed and returns its exit code (1). A GatewayError
 * is one line (`grantpool: <message>`) plus its fix; anything else is a bug:
 * a generic line, then its stack (the CLI's log; scrubbed of anything
 * token-shaped) for a bug report.
 */
export function reportCliError(out: Out, e: unknown, prefix = ''): number {
  if (isGatewayError(e)) {
    const fix = e.fix && !e.message.includes(e.fix) ? `\n  fix: ${e.fix}` : '';
    out.error(`grantpool: ${prefix}${e.message}${fix}\n`);
    return 1;
  }
  const err = describeForLog(e);
  const details = (err.stack ?? `${err.name}: ${err.message}`).split('\n').map((l) => `  ${l.trim()}`).join('\n');
  out.error(`grantpool: ${prefix}the command failed with an unexpected error; the details below are for a bug report\n${details}\n`);
  return 1;
}

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, gray: 90, bold: 1 } as const;
export function paint(out: Out, color: keyof typeof CODES, text: string): string {
  return out.color ? `\x1b[${CODES[color]}m${text}\x1b[0m` : text;
}

/** Visible width (colour codes excluded). */
function width(s: string): number {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '').length;
}

export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => width(r[i] ?? ''))));
  return rows
    .map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell + ' '.repeat(widths[i]! - width(cell)))).join('  ').trimEnd())
    .join('\n') + '\n';
}

export function formatTime(unixSeconds: number | null | undefined): string {
  if (!unixSeconds) return '-';
  return new Date(unixSeconds * 1000).toISOString().replace('T', ' ').slice(0, 16) + 'Z';
}

/** The same state words and reasons as the dashboard. */
export function describeState(out: Out, s: AccountState): { word: string; detail: string } {
  switch (s.state) {
    case 'active':
      return { word: paint(out, 'green', 'active'), detail: '' };
    case 'refreshing':
      return { word: paint(out, 'blue', 'refreshing'), detail: '' };
    case 'cooling_down':
      return { word: paint(out, 'yellow', 'cooling down'), detail: `until ${formatTime(s.until)}${s.model ? ` for ${s.model}` : ''}: ${s.reason}` };
    case 'quota_protected':
      return { word: paint(out, 'yellow', 'quota-protected'), detail: `for ${s.model} until ${formatTime(s.until)}` };
    case 'proxy_disabled':
      return { word: paint(out, 'magenta', 'proxy-disabled'), detail: s.reason };
    case 'disabled':
      return { word: paint(out, 'red', 'disabled'), detail: s.reason };
  }
}
