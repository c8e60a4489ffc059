// The PostgreSQL schema, as numbered migrations. Each is applied once, in
// order, inside one transaction, under an advisory lock, so two gateways that
// start together neither apply one twice nor see a half-made schema. A
// migration, once released, is never edited: a change is a new entry.
import type { Sql } from 'postgres';

export const MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'accounts',
    sql: `
      CREATE SEQUENCE grantpool_change_seq;
      CREATE TABLE grantpool_accounts (
        id          text PRIMARY KEY,
        sub         text,
        email_lower text NOT NULL,
        data        jsonb NOT NULL,
        version     bigint NOT NULL
      );
      CREATE INDEX grantpool_accounts_sub ON grantpool_accounts (sub);
      CREATE INDEX grantpool_accounts_email ON grantpool_accounts (email_lower);
      CREATE TABLE grantpool_removed_accounts (
        id         text PRIMARY KEY,
        version    bigint NOT NULL,
        removed_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 2,
    name: 'shared state',
    sql: `
      CREATE TABLE grantpool_kv (
        ns         text NOT NULL,
        key        text NOT NULL,
        value      jsonb NOT NULL,
        expires_at bigint NOT NULL,
        PRIMARY KEY (ns, key)
      );
      CREATE INDEX grantpool_kv_expiry ON grantpool_kv (expires_at);
    `,
  },
  {
    version: 3,
    name: 'usage counts',
    // xid: the transaction that last changed the row, so a reader can ask for
    // every row changed since the oldest transaction it could not see yet.
    sql: `
      CREATE TABLE grantpool_usage (
        day        text NOT NULL,
        account_id text NOT NULL,
        model      text NOT NULL,
        requests   bigint NOT NULL DEFAULT 0,
        tokens_in  bigint NOT NULL DEFAULT 0,
        tokens_out bigint NOT NULL DEFAULT 0,
        xid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
        PRIMARY KEY (day, account_id, model)
      );
      CREATE INDEX grantpool_usage_xid ON grantpool_usage (xid);
      CREATE TABLE grantpool_usage_batches (
        id text PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
];

/** The advisory lock key that serialises migrations (any constant unique to Grantpool). */
const MIGRATION_LOCK = 0x67706d67; // "gpmg"

/** Applies the migrations not yet applied; returns the versions it applied. */
export async function migrate(sql: Sql): Promise<number[]> {
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx`CREATE TABLE IF NOT EXISTS grantpool_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;
    const done = new Set((await tx<{ version: number }[]>`SELECT version FROM grantpool_migrations`).map((r) => r.version));
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await tx.unsafe(m.sql);
      await tx`INSERT INTO grantpool_migrations (version, name) VALUES (${m.version}, ${m.name})`;
      applied.push(m.version);
    }
    return applied;
  });
}
