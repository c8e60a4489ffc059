// `grantpool migrate` and `grantpool store copy`: the database schema, and
// moving every account between a data directory and a database.

import { createPgStore, PgStore } from '../store/pg-store.ts';
import type { AccountStore } from '../store/store.ts';
import { describeLocation, isDatabaseUrl, openStoreAt } from '../store/open-store.ts';
import { createKeyring, rebindValue, TOKEN_FIELDS } from '../store/token-cipher.ts';
import type { Account } from '../store/account.ts';
import { CliError, type CliContext } from './context.ts';
import type { Out } from './output.ts';

export async function migrateCommand(ctx: CliContext, out: Out): Promise<number> {
  const config = await ctx.config();
  if (!config.database_url) throw new CliError('no database is configured: set GRANTPOOL_DATABASE_URL (or database_url in config.json)');
  const store = await createPgStore({ url: config.database_url, logger: ctx.logger, catchUpIntervalMs: 0 });
  try {
    const applied = await store.migrate();
    out.write(applied.length ? `applied migrations ${applied.join(', ')} to ${describeLocation(config.database_url)}\n` : `the schema of ${describeLocation(config.database_url)} is up to date\n`);
    return 0;
  } finally {
    await store.close();
  }
}

/**
 * Copies every account (tokens and states as they are) from one store to the
 * other, upserting by Google identity: running it twice changes nothing more.
 * Tokens are copied as stored, encrypted ones encrypted (never decrypted), so
 * the copy needs no key; only an encrypted account that lands on another id
 * (the target knew the identity under another id) is re-encrypted for that id,
 * with the configured keys.
 */
export async function storeCopy(ctx: CliContext, out: Out, opts: { from?: string; to?: string }): Promise<number> {
  if (!opts.from || !opts.to) throw new CliError('usage: grantpool store copy --from <data dir or postgres:// url> --to <data dir or postgres:// url>');
  if (opts.from === opts.to) throw new CliError('--from and --to name the same store');
  if (!isDatabaseUrl(opts.from) && !isDatabaseUrl(opts.to)) out.write('note: copying between two data directories\n');
  const from = await openStoreAt(opts.from, ctx.logger, 'raw');
  try {
    const to = await openStoreAt(opts.to, ctx.logger, 'raw');
    try {
      const accounts = await from.list();
      let created = 0;
      let updated = 0;
      // The keys only matter for an encrypted account that lands on another id; a copy needs none otherwise.
      const keyring = await ctx.keys().then((k) => createKeyring(k.current, k.old), () => createKeyring(null));
      const upsert = (account: Account) => ({
        identity: { sub: account.sub, email: account.email },
        build: (found: Account | null) => (found ? rebind(account, found.id, keyring) : account),
      });
      // Into PostgreSQL: a transaction per batch; elsewhere one account at a time.
      const step = to instanceof PgStore ? 1000 : 100;
      for (let i = 0; i < accounts.length; i += step) {
        const chunk = accounts.slice(i, i + step);
        const results = to instanceof PgStore ? await to.upsertManyByIdentity(chunk.map(upsert)) : await oneByOne(to, chunk.map(upsert));
        for (const r of results) {
          if (r.created) created++;
          else updated++;
        }
        if (i + step < accounts.length) out.write(`copied ${i + step} of ${accounts.length} accounts…\n`);
      }
      out.write(`copied ${accounts.length} account${accounts.length === 1 ? '' : 's'} from ${describeLocation(opts.from)} to ${describeLocation(opts.to)} (${created} new, ${updated} updated)\n`);
      return 0;
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
}

async function oneByOne(to: AccountStore, items: Parameters<PgStore['upsertManyByIdentity']>[0]) {
  const out: { created: boolean }[] = [];
  for (const item of items) out.push(await to.upsertByIdentity(item.identity, item.build));
  return out;
}

/** The account with its encrypted tokens re-encrypted for another id (the associated data binds them to the id). */
function rebind(account: Account, toId: string, keyring: ReturnType<typeof createKeyring>): Account {
  if (toId === account.id) return account;
  const token = { ...account.token };
  try {
    for (const field of TOKEN_FIELDS) token[field] = rebindValue(keyring, account.id, toId, field, token[field]);
  } catch (e) {
    throw new CliError(`account ${account.email} is ${account.id} here and ${toId} in the target, and its tokens are ${(e as Error).message}, so they cannot be re-encrypted for the other id`, {
      fix: 'run the copy with the key configured (GRANTPOOL_ENCRYPTION_KEY or encryption_key_file), or remove the account from the target first',
    });
  }
  return { ...account, id: toId, token };
}
