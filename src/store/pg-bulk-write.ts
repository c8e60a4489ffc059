// Account rows written: the inserts in one statement, the updates in another,
// each row a new version from the change sequence and a NOTIFY (one row for
// PgStore's writes; many for `grantpool store copy` into PostgreSQL, upserted
// by identity in one transaction per batch with one lock and one lookup).
import type { TransactionSql } from 'postgres';
import { AccountSchema, draftAccount, sameIdentity, type Account, type Identity } from './account.ts';
import { AccountExistsError } from './errors.ts';
import type { PgRow } from './pg-load.ts';
import { AccountEncryptedError, type Opened } from './token-cipher.ts';

/** Advisory lock keys: (class, key) pairs; the class keeps Grantpool's locks apart from anyone else's. */
const LOCK_UPSERT = 0x67707570; // "gpup"

export interface UpsertItem {
  identity: Identity;
  build: (existing: Account | null) => Account;
}

export interface UpsertBatchOptions {
  channel: string;
  /** A candidate row as read: validated, its tokens opened. */
  open: (row: PgRow) => Opened;
  /** A built account as it will be kept: validated, read-only. */
  stored: (account: Account) => Account;
  /** The row of an account as it will be written (tokens sealed, keeping those of `previous` that did not change). */
  seal: (account: Account, previous: Opened | null) => Omit<RowWrite, 'insert'>;
}

export interface RowWrite {
  id: string;
  sub: string | null;
  /** Lower-cased. */
  email: string;
  /** The account's JSON as stored (tokens sealed). */
  data: string;
  insert: boolean;
}

/**
 * Batches of up to `size` in which no two items share an identity: accounts
 * that do go to different batches, so the later one updates the earlier, as
 * one by one.
 */
export function identityBatches<T extends { identity: Identity }>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; ) {
    const batch: T[] = [];
    while (i < items.length && batch.length < size && !batch.some((b) => sameIdentity(b.identity, items[i]!.identity))) batch.push(items[i++]!);
    out.push(batch);
  }
  return out;
}

/** upsertByIdentity() for each item of a batch, in one transaction; each account with its new version. */
export async function upsertBatch(tx: TransactionSql, batch: readonly UpsertItem[], o: UpsertBatchOptions): Promise<{ account: Account; created: boolean; version: number }[]> {
  await tx`SELECT pg_advisory_xact_lock(${LOCK_UPSERT})`;
  const subs = batch.map((b) => b.identity.sub).filter((s): s is string => !!s);
  const emails = batch.map((b) => b.identity.email.toLowerCase());
  const candidates = await tx<PgRow[]>`
    SELECT id, data, version::float8 AS version FROM grantpool_accounts
    WHERE sub = ANY(${subs}) OR email_lower = ANY(${emails}) ORDER BY id FOR UPDATE`;
  const opened = candidates.map(o.open);
  const plan = batch.map((b) => {
    const found = opened.find((c) => sameIdentity({ sub: c.account.sub, email: c.account.email }, b.identity)) ?? null;
    if (found?.lock) throw new AccountEncryptedError(found.account, found.lock);
    const built = AccountSchema.parse(b.build(found ? draftAccount(found.account) : null));
    return { account: o.stored({ ...built, id: found ? found.account.id : built.id }), found };
  });
  const fresh = plan.filter((p) => !p.found).map((p) => p.account.id);
  const [taken] = fresh.length ? await tx<{ id: string }[]>`SELECT id FROM grantpool_accounts WHERE id = ANY(${fresh}) LIMIT 1` : [];
  if (taken) throw new AccountExistsError(taken.id);
  const versions = await writeRows(tx, o.channel, plan.map((p) => ({ ...o.seal(p.account, p.found), insert: !p.found })));
  return plan.map((p) => ({ account: p.account, created: !p.found, version: versions.get(p.account.id)! }));
}

/** Writes the rows and sends their notifications on `channel`; returns each id's new version. */
export async function writeRows(tx: TransactionSql, channel: string, rows: readonly RowWrite[]): Promise<Map<string, number>> {
  const cols = (list: readonly RowWrite[]) => [list.map((r) => r.id), list.map((r) => r.sub), list.map((r) => r.email), list.map((r) => r.data)] as const;
  const versions = new Map<string, number>();
  const inserts = rows.filter((r) => r.insert);
  const updates = rows.filter((r) => !r.insert);
  if (inserts.length) {
    const [ids, subs, emails, data] = cols(inserts);
    const done = await tx<{ id: string; version: number }[]>`
      INSERT INTO grantpool_accounts (id, sub, email_lower, data, version)
      SELECT u.id, u.sub, u.email, u.data::jsonb, nextval('grantpool_change_seq')
      FROM unnest(${ids}::text[], ${subs}::text[], ${emails}::text[], ${data}::text[]) WITH ORDINALITY AS u(id, sub, email, data, n) ORDER BY u.n
      RETURNING id, version::float8 AS version`;
    for (const r of done) versions.set(r.id, r.version);
    await tx`DELETE FROM grantpool_removed_accounts WHERE id = ANY(${ids}::text[])`;
  }
  if (updates.length) {
    const [ids, subs, emails, data] = cols(updates);
    const done = await tx<{ id: string; version: number }[]>`
      UPDATE grantpool_accounts a SET sub = u.sub, email_lower = u.email, data = u.data::jsonb, version = nextval('grantpool_change_seq')
      FROM unnest(${ids}::text[], ${subs}::text[], ${emails}::text[], ${data}::text[]) AS u(id, sub, email, data)
      WHERE a.id = u.id
      RETURNING a.id, a.version::float8 AS version`;
    for (const r of done) versions.set(r.id, r.version);
  }
  const ids = [...versions.keys()];
  if (ids.length) {
    await tx`SELECT pg_notify(${channel}, n.id || ' ' || n.version::bigint) FROM unnest(${ids}::text[], ${ids.map((id) => versions.get(id)!)}::float8[]) AS n(id, version)`;
  }
  return versions;
}
