// One account file: its name, its text, and reading it back with reasons that
// are safe to log (never a piece of the file's content, which holds tokens).
import { describeJsonError } from '../util/json.ts';
import { GatewayError } from '../util/errors.ts';
import { AccountSchema, readOnlyAccount, usualAccount, type Account } from './account.ts';
import type { z } from 'zod';

export const ACCOUNT_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const ACCOUNT_FILE_RE = /^([A-Za-z0-9_-]{1,64})\.json$/;

export function isAccountId(id: string): boolean {
  return ACCOUNT_ID_RE.test(id);
}

export function accountFileName(id: string): string {
  return `${id}.json`;
}

/** The account id of an account file name, or null for any other entry of the folder. */
export function accountIdOfFileName(name: string): string | null {
  const m = ACCOUNT_FILE_RE.exec(name);
  return m ? m[1]! : null;
}

/** The stored text: pretty JSON (2 spaces) with a final newline. */
export function formatAccount(account: Account): string {
  return `${JSON.stringify(account, null, 2)}\n`;
}

export type ParsedAccountFile =
  | { ok: true; account: Account }
  | { ok: false; reason: string };


/** The zod issues as "path: message" (zod's messages say what was expected, not the value). */
export function describeSchemaError(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}

/** Parses and validates the text of `<id>.json`. */
export function parseAccountFile(text: string, id: string): ParsedAccountFile {
  if (text.trim() === '') return { ok: false, reason: 'empty file' };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    return { ok: false, reason: describeJsonError(e) };
  }
  let account = usualAccount(data, true);
  if (!account) {
    const result = AccountSchema.safeParse(data);
    if (!result.success) return { ok: false, reason: describeSchemaError(result.error) };
    account = readOnlyAccount(result.data);
  }
  if (account.id !== id) return { ok: false, reason: `id: "${account.id}" does not match the file name ${accountFileName(id)}` };
  return { ok: true, account };
}

export class InvalidAccountError extends GatewayError {
  constructor(reason: string, opts: { cause?: unknown } = {}) {
    super('invalid_account', `invalid account: ${reason}`, { status: 400, cause: opts.cause });
  }
}

/** Validates an account about to be written (defaults filled in, unknown fields kept); the result is read-only. */
export function validateAccount(candidate: unknown): Account {
  // A JSON round trip first, so that what is compared and cached is exactly what a reader gets back.
  let plain: unknown;
  try {
    plain = JSON.parse(JSON.stringify(candidate));
  } catch {
    throw new InvalidAccountError('not representable as JSON');
  }
  const usual = usualAccount(plain, true);
  if (usual) return usual;
  const result = AccountSchema.safeParse(plain);
  if (!result.success) throw new InvalidAccountError(describeSchemaError(result.error));
  return readOnlyAccount(result.data);
}
