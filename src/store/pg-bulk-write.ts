// Many account rows written in one transaction with a handful of statements
// (`grantpool store copy` into PostgreSQL): the inserts in one statement, the
// updates in another, each row a new version from the change sequence and a
// NOTIFY, as PgStore writes one row.
import type { TransactionSql } from 'postgres';

export interface RowWrite {
  id: string;
  sub: string | null;
  /** Lower-cased. */
  email: string;
  /** The account's JSON as stored (tokens sealed). */
  data: string;
  insert: boolean;
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
