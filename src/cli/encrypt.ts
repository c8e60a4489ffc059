// `grantpool encrypt`, `grantpool encrypt --rotate [--new-key K]` and
// `grantpool decrypt` (docs/security.md): convert the tokens of the configured
// store (data directory or PostgreSQL) in place. Each account is one update
// under the store's usual write lock (an atomic file write, or a transaction),
// so a crash leaves every account either as it was or converted, and running
// the command again converts only what is left.
import { keyArgument } from '../config/encryption-keys.ts';
import { openAccountStore } from '../store/open-store.ts';
import { convertTokens, createKeyring, keyId, type Keyring } from '../store/token-cipher.ts';
import { describeLocation } from '../store/open-store.ts';
import { CliError, type CliContext } from './context.ts';
import type { Out } from './output.ts';

export type ConvertMode = 'encrypt' | 'rotate' | 'decrypt';

const KEY_FIX = 'set GRANTPOOL_ENCRYPTION_KEY (a 32-byte key, base64: `openssl rand -base64 32`) or encryption_key_file in config.json';

export async function convertCommand(ctx: CliContext, out: Out, mode: ConvertMode, opts: { newKey?: string } = {}): Promise<number> {
  if (opts.newKey !== undefined && mode !== 'rotate') throw new CliError('--new-key goes with `grantpool encrypt --rotate`');
  const config = await ctx.config();
  const keys = await ctx.keys();
  for (const w of keys.warnings) out.error(`warning: ${w}\n`);
  const readable: Keyring = createKeyring(keys.current, keys.old);
  let target: { id: string; key: Buffer } | null = readable.current;
  if (opts.newKey !== undefined) {
    const key = await keyArgument(opts.newKey, '--new-key');
    target = { id: keyId(key), key };
  }
  if (mode !== 'decrypt' && !target) {
    throw new CliError(`no encryption key is configured, so there is nothing to ${mode === 'rotate' ? 'rotate to' : 'encrypt with'}`, {
      fix: mode === 'rotate' ? `give the new key with --new-key <base64 | @file>, or ${KEY_FIX}` : KEY_FIX,
    });
  }
  if (mode === 'decrypt' && readable.readable.size === 0) {
    throw new CliError('no encryption key is configured, so nothing can be decrypted', { fix: KEY_FIX });
  }

  const location = config.database_url ?? config.data_dir;
  const store = await openAccountStore({ dataDir: config.data_dir, databaseUrl: config.database_url }, ctx.logger, 'raw');
  let converted = 0;
  let already = 0;
  const failed: string[] = [];
  try {
    for (const account of await store.list()) {
      const outcome: { failure: string | null } = { failure: null };
      const after = await store.update(account.id, (stored) => {
        const r = convertTokens(stored, mode, readable, target);
        if ('failed' in r) {
          outcome.failure = r.failed;
          return null;
        }
        return r.account;
      });
      if (outcome.failure) failed.push(`${account.email} (${account.id}): ${outcome.failure}`);
      else if (!after) continue; // removed meanwhile
      else if (after === account || JSON.stringify(after.token) === JSON.stringify(account.token)) already++;
      else converted++;
    }
  } finally {
    await store.close();
  }
  const verb = mode === 'encrypt' ? 'encrypted' : mode === 'rotate' ? 're-encrypted' : 'decrypted';
  const with_ = target && mode !== 'decrypt' ? ` with key id ${target.id}` : '';
  const state = mode === 'decrypt' ? 'plain' : mode === 'rotate' ? `under key id ${target!.id}` : 'encrypted';
  out.write(`${verb} ${converted} account${converted === 1 ? '' : 's'}${with_} in ${describeLocation(location)} (${already} already ${state}${failed.length ? `, ${failed.length} failed` : ''})\n`);
  for (const f of failed) out.error(`  cannot convert ${f}\n`);
  if (mode === 'rotate' && opts.newKey !== undefined) {
    out.write(`next: make key id ${target!.id} the gateway's key (GRANTPOOL_ENCRYPTION_KEY or encryption_key_file) and keep the old one in encryption_old_key_files until every gateway runs with the new one\n`);
  }
  if (mode === 'decrypt') out.write('next: remove the key from the configuration (GRANTPOOL_ENCRYPTION_KEY, encryption_key_file), or the next writes encrypt the tokens again\n');
  if (failed.length) {
    throw new CliError(`${failed.length} account${failed.length === 1 ? '' : 's'} could not be converted and ${failed.length === 1 ? 'was' : 'were'} left as ${failed.length === 1 ? 'it was' : 'they were'}`, {
      fix: 'add the key these accounts were encrypted with to encryption_old_key_files (or GRANTPOOL_ENCRYPTION_OLD_KEYS) and run the command again',
    });
  }
  return 0;
}
