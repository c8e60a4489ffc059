// Reading the accounts of the PostgreSQL store in bulk.
//
// The first load, in pages: the rows counted,
// the first page read before the store opens, the others one after another in
// the background (keyset pages in id order: each is one short index scan, and
// the event loop is free between them). The store applies each row under its
// version rule, so a row changed meanwhile (and told by NOTIFY) is never
// overwritten by an older page.
//
// The catch-up (after a reconnect, and periodically): every version compared
// with those the store has seen, and only what differs read.
import type { Sql } from 'postgres';
import type { LoadProgress } from './store.ts';

export interface PgRow {
  id: string;
  data: unknown;
  version: number;
}

export interface PgLoadOptions {
  sql: Sql;
  /** Rows per page. */
  pageSize: number;
  /** Takes in one page of rows (the store parses and applies them). */
  take: (rows: PgRow[]) => void;
  /** A page failed (the database went away): said once per failure; the load tries again. */
  failed: (e: Error) => void;
  /** Wait before a failed page is tried again. */
  retryMs?: number;
}

export class PgLoad {
  private readonly o: PgLoadOptions;
  private after = '';
  private loaded = 0;
  private total = 0;
  private stopped = false;
  private finished = false;
  private finish!: () => void;
  /** Resolves when every row has been read (or the load was stopped). */
  readonly done: Promise<void>;

  constructor(opts: PgLoadOptions) {
    this.o = opts;
    this.done = new Promise((resolve) => (this.finish = resolve));
  }

  get progress(): LoadProgress {
    // Rows added meanwhile may make `loaded` pass the count taken at the start.
    return { loaded: this.loaded, total: Math.max(this.total, this.loaded) };
  }

  get isDone(): boolean {
    return this.finished;
  }

  /**
   * Counts the rows and reads the first page; the rest follows in the
   * background. A failure before the first page fails the start (and nothing
   * goes on behind it); one after it is retried in the background.
   */
  async start(): Promise<void> {
    const [c] = await this.o.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM grantpool_accounts`;
    this.total = c!.n;
    let firstPage!: () => void;
    const first = new Promise<void>((resolve) => (firstPage = resolve));
    const reading = this.read(firstPage);
    await Promise.race([first, reading]);
    void reading.then(
      () => this.end(),
      (e: Error) => {
        this.o.failed(e);
        return this.rest();
      },
    );
  }

  stop(): void {
    this.stopped = true;
    this.end();
  }

  private end(): void {
    this.finished = true;
    this.finish();
  }

  /**
   * Reads the rows after the last one read, to the end, with one cursor
   * (pages of pageSize rows): each page is taken in as it arrives and dropped,
   * so the driver's rows die young (separate keyset queries kept each page
   * alive long enough to reach V8's old generation: ~100 MB of garbage there
   * for 100,000 accounts).
   */
  private async read(onPage: () => void): Promise<void> {
    await this.o.sql<PgRow[]>`
      SELECT id, data, version::float8 AS version FROM grantpool_accounts
      WHERE id > ${this.after} ORDER BY id`.cursor(this.o.pageSize, (rows) => {
      if (this.stopped) return this.o.sql.CLOSE;
      this.o.take(rows);
      this.loaded += rows.length;
      if (rows.length > 0) this.after = rows[rows.length - 1]!.id;
      onPage();
      return undefined;
    });
    onPage();
  }

  private async rest(): Promise<void> {
    while (!this.stopped) {
      await new Promise((r) => setTimeout(r, this.o.retryMs ?? 1000).unref());
      if (this.stopped) break;
      try {
        await this.read(() => {});
        break;
      } catch (e) {
        this.o.failed(e as Error);
      }
    }
    this.end();
  }
}

/**
 * The newest version a store has seen of each account id: of the accounts it
 * holds (keyed by the account's own id string, so the id is kept once) and of
 * those it saw removed. Plain numbers, no object per account (an object of
 * version and flag cost ~40 bytes each: ~4 MB for 100,000 accounts).
 */
export class SeenVersions {
  /** Version of each account held. */
  readonly present = new Map<string, number>();
  private readonly removed = new Map<string, number>();
  /** Goes up whenever an id starts or stops being held (the catch-up's count of matches holds only if none did meanwhile). */
  memberships = 0;

  /** The newest version seen of this id (held or removed), or undefined if never seen. */
  version(id: string): number | undefined {
    return this.present.get(id) ?? this.removed.get(id);
  }

  /** Records `version` of `id` unless a newer one was seen. */
  note(id: string, version: number, present: boolean): void {
    const seen = this.version(id);
    if (seen !== undefined && seen > version) return;
    if (present) {
      if (!this.present.has(id)) this.memberships++;
      this.present.set(id, version);
      this.removed.delete(id);
    } else {
      if (this.present.delete(id)) this.memberships++;
      this.removed.set(id, version);
    }
  }
}

/** What the catch-up found: rows newer than (or absent from) those `seen` holds, and ids `seen` holds that are gone from the table. */
export async function readChanges(
  sql: Sql,
  seen: SeenVersions,
  apply: { row: (r: PgRow) => void; removed: (id: string, version: number) => void },
): Promise<void> {
  const stale: string[] = [];
  let matched = 0;
  const held = seen.present.size;
  const memberships = seen.memberships;
  // In pages of a cursor, as the first load: one result of every row would live long enough to reach the old generation.
  // No set of the ids read: every id the store holds was in the table if as many rows matched as it holds and no id
  // started or stopped being held meanwhile (an account gained during the scan could make up for one gone).
  await sql<{ id: string; version: number }[]>`SELECT id, version::float8 AS version FROM grantpool_accounts`.cursor(1000, (rows) => {
    for (const r of rows) {
      const v = seen.present.get(r.id);
      if (v !== undefined) matched++;
      if (v === undefined || v < r.version) stale.push(r.id);
    }
  });
  const complete = matched === held && seen.memberships === memberships;
  if (stale.length) {
    const fresh = await sql<PgRow[]>`SELECT id, data, version::float8 AS version FROM grantpool_accounts WHERE id = ANY(${stale})`;
    for (const r of fresh) apply.row(r);
  }
  if (complete) return;
  // Some account held may be gone: which, from the ids in the table now.
  const inDb = new Set<string>();
  await sql<{ id: string }[]>`SELECT id FROM grantpool_accounts`.cursor(1000, (rows) => {
    for (const r of rows) inDb.add(r.id);
  });
  const missing: string[] = [];
  for (const id of seen.present.keys()) if (!inDb.has(id)) missing.push(id);
  if (missing.length === 0) return;
  const removed = await sql<{ id: string; version: number }[]>`SELECT id, version::float8 AS version FROM grantpool_removed_accounts WHERE id = ANY(${missing})`;
  for (const r of removed) apply.removed(r.id, r.version);
}
