// The PostgreSQL account store: the same AccountStore as the data directory,
// for several gateways on one database (docs/design.md, "Scale-out").
//
// - One row per account (the account file's JSON in `data`), with a version
//   from one sequence that every write advances.
// - update() and upsertByIdentity() are transactions that lock the row
//   (SELECT … FOR UPDATE; upserts also take one advisory lock, so two adds of
//   the same identity cannot both insert): no lost updates.
// - Every write sends NOTIFY grantpool_accounts '<id> <version>'; each store
//   LISTENs and applies what others wrote. A periodic catch-up (and one after
//   every reconnect) compares versions, so a gateway that was disconnected
//   misses nothing.
//
// Elsewhere: the first load and the catch-up's reads (pg-load.ts), bulk
// upserts (pg-bulk-write.ts), the refresh lock (pg-refresh-lock.ts), the
// schema (pg-migrations.ts), shared state (pg-shared-state.ts), the health
// check and the guard of every query a caller waits for (pg-health.ts), what
// /metrics shows (pg-stats.ts) and the token cipher.
import { randomBytes } from 'node:crypto';
import postgres, { type Sql, type TransactionSql } from 'postgres';
import type { Logger } from '../log/logger.ts';
import { AccountSchema, draftAccount, readOnlyAccount, usualAccount, type Account, type Identity } from './account.ts';
import { migrate } from './pg-migrations.ts';
import { KeyedQueue } from '../fsx/file-lock.ts';
import { RenewableListen, type ListenDriver } from './pg-listen.ts';
import { PgSharedState } from './pg-shared-state.ts';
import { PgUsageCounters } from './pg-usage-counters.ts';
import { identityBatches, upsertBatch, writeRows, type RowWrite, type UpsertItem } from './pg-bulk-write.ts';
import { underAdvisoryLock } from './pg-refresh-lock.ts';
import { DbHealth } from './pg-health.ts';
import { readPoolStats, type DbCounters, type DbPoolStats } from './pg-stats.ts';
import { PgLoad, readChanges, SeenVersions, type PgRow } from './pg-load.ts';
import { StoreUnavailableError } from './errors.ts';
import type { AccountChange, AccountStore, LoadProgress } from './store.ts';
import { AccountEncryptedError, keyringSealer, NO_KEYS, SealingCensus, type EncryptionReport, type TokenSealer } from './token-cipher.ts';

export type { DbCounters, DbPoolStats };

export interface PgStoreOptions {
  url: string;
  logger: Logger;
  /** Connections in the pool. Default 10. */
  max?: number;
  /** Full version comparison against the database, besides LISTEN. Default 30 s. */
  catchUpIntervalMs?: number;
  /** How often the connection is checked (for problem() and /healthz). Default 5 s. */
  probeIntervalMs?: number;
  /** How long withRefreshLock waits for another gateway's refresh. Default 30 s. */
  lockWaitMs?: number;
  /**
   * How long a query the gateway waits for may go unanswered before the
   * database counts as unreachable (a host that hangs keeps its connections
   * open and silent). Default 10 s.
   */
  answerTimeoutMs?: number;
  /** How tokens are stored (token-cipher.ts). Default: written plain, encrypted ones readable by no key (locked). */
  sealer?: TokenSealer;
  /**
   * Read the accounts in the background (the gateway): createPgStore() returns
   * after the first page of `pageSize` rows (default 1000), the rest follow
   * (loading(), loadedSoFar(), whenLoaded()). Default false.
   */
  backgroundLoad?: boolean | { pageSize?: number };
}

const CHANNEL = 'grantpool_accounts';

/** Validated like a written file (defaults filled in), then read-only. */
function stored(a: unknown, row = false): Account {
  // A row's JSON is parsed afresh by the driver for every query: nobody else holds it.
  const data: unknown = typeof a === 'string' ? JSON.parse(a) : a;
  return usualAccount(data, row || typeof a === 'string') ?? readOnlyAccount(AccountSchema.parse(structuredClone(data)));
}

export class PgStore implements AccountStore {
  private readonly sql: Sql;
  private readonly logger: Logger;
  private readonly lockWaitMs: number;
  private readonly answerTimeoutMs: number;
  /** The newest version seen per account id, and whether it exists at that version. */
  private readonly seen = new SeenVersions();
  private readonly watchers = new Set<(change: AccountChange) => void>();
  private readonly localLocks = new KeyedQueue();
  private readonly listening: RenewableListen;
  /** A pool of its own for each LISTEN (pg-listen.ts), with this store's connection settings. */
  private readonly listenDriver: ListenDriver;
  private timer: NodeJS.Timeout | null = null;
  private readonly health: DbHealth;
  private catchingUp: Promise<void> | null = null;
  /** The comparison queued behind the one under way (catchUp). */
  private catchUpNext: Promise<void> | null = null;
  private closed = false;
  private shared: PgSharedState | null = null;
  private counters: PgUsageCounters | null = null;
  private readonly sealer: TokenSealer;
  private readonly census = new SealingCensus();
  /** This gateway's connections carry this name, so the server's view of them can be told apart from other gateways'. */
  private readonly appName = `grantpool-${randomBytes(4).toString('hex')}`;
  private readonly max: number;
  private readonly pageSize: number | null;
  /** The first load while it runs, and the accounts it and the notifications read meanwhile (for loadedSoFar()). */
  private load: { pages: PgLoad; accounts: Map<string, Account> } | null = null;
  private loadDone: Promise<void> = Promise.resolve();
  readonly stats: DbCounters = { queries: 0, errors: 0, refreshLocksHeld: 0, refreshLockWaiters: 0 };

  constructor(opts: PgStoreOptions) {
    this.logger = opts.logger;
    this.lockWaitMs = opts.lockWaitMs ?? 30_000;
    this.answerTimeoutMs = opts.answerTimeoutMs ?? 10_000;
    this.sealer = opts.sealer ?? keyringSealer(NO_KEYS);
    this.max = opts.max ?? 10;
    const bg = opts.backgroundLoad === true ? {} : opts.backgroundLoad || null;
    this.pageSize = bg ? Math.max(1, bg.pageSize ?? 1000) : null;
    const options = {
      onnotice: () => {},
      debug: () => void this.stats.queries++,
      connect_timeout: 10,
      // Session settings: a statement that waits for a row lock longer than this fails instead of hanging.
      connection: { application_name: this.appName, lock_timeout: 30_000 },
    };
    this.sql = postgres(opts.url, { ...options, max: this.max });
    this.listenDriver = () => postgres(opts.url, { ...options, max: 1 });
    this.listening = new RenewableListen(this.listenDriver, CHANNEL, {
      onNotify: (payload) => void this.onNotify(payload),
      // Called on every (re)connect of the listening connection: catch up on what was missed meanwhile.
      onListen: () => void this.catchUp(),
      onError: (e) => this.logger.warn({ err: { message: e.message } }, 'could not LISTEN for account changes; relying on the periodic catch-up'),
    });
    this.health = new DbHealth({
      logger: this.logger,
      stats: this.stats,
      answerTimeoutMs: this.answerTimeoutMs,
      intervalMs: opts.probeIntervalMs ?? 5000,
      connect: this.listenDriver,
      relisten: () => Promise.all([this.listening.renew(), this.shared?.renewListen()]),
      catchUp: () => this.catchUp(),
    });
    const interval = opts.catchUpIntervalMs ?? 30_000;
    if (interval > 0) {
      this.timer = setInterval(() => void this.catchUp(), interval);
      this.timer.unref();
    }
  }

  /** The state every gateway on this database shares (OAuth flows, sessions, events), on the same connections. */
  sharedState(): PgSharedState {
    return (this.shared ??= new PgSharedState(this.sql, this.logger, this.listenDriver, { guard: (q, ms) => this.health.guard(q, ms) }));
  }

  /** The usage totals every gateway on this database adds to (src/pool/shared-usage.ts batches them). */
  usageCounters(): PgUsageCounters {
    return (this.counters ??= new PgUsageCounters(this.sql, (q, ms) => this.health.guard(q, ms)));
  }

  /** Creates or migrates the schema (idempotent, safe when several gateways start together). */
  migrate(): Promise<number[]> {
    return migrate(this.sql);
  }

  /** With backgroundLoad: counts the rows, reads the first page and goes on in the background. */
  async startLoad(): Promise<void> {
    if (this.pageSize === null) return;
    const accounts = new Map<string, Account>();
    const pages = new PgLoad({
      sql: this.sql,
      pageSize: this.pageSize,
      take: (rows) => {
        for (const r of rows) this.applyRow(r);
      },
      failed: (e) => {
        this.health.unreachable(e);
        this.logger.warn({ err: { message: e.message } }, 'reading the accounts from the database failed; trying again');
      },
    });
    this.load = { pages, accounts };
    this.loadDone = pages.done.then(() => {
      this.load = null;
      // What changed before LISTEN was in place (or between two pages) is caught up by version.
      return this.catchUp();
    });
    await pages.start();
  }

  loading(): LoadProgress | null {
    const load = this.load;
    return load && !load.pages.isDone ? load.pages.progress : null;
  }

  loadedSoFar(): Account[] {
    return [...(this.load?.accounts.values() ?? [])];
  }

  whenLoaded(): Promise<void> {
    return this.loadDone;
  }

  async list(): Promise<Account[]> {
    await this.loadDone;
    // Every row: its time grows with the pool (store copy, the CLI, lookups by email), so a longer deadline.
    const rows = await this.health.guard(() => this.sql<PgRow[]>`SELECT id, data, version::float8 AS version FROM grantpool_accounts ORDER BY id`, null);
    const out: Account[] = [];
    for (const r of rows) {
      const account = this.parse(r);
      if (!account) continue;
      this.seen.note(ownId(r.id, account), r.version, true);
      out.push(account);
    }
    return out;
  }

  async get(id: string): Promise<Account | null> {
    const [r] = await this.health.guard(() => this.sql<PgRow[]>`SELECT id, data, version::float8 AS version FROM grantpool_accounts WHERE id = ${id}`);
    return r ? this.parse(r) : null;
  }

  async update(id: string, change: (current: Account) => Account | null): Promise<Account | null> {
    this.assertOpen();
    const result = await this.health.guard(() => this.sql.begin(async (tx) => {
      const [r] = await tx<PgRow[]>`SELECT id, data, version::float8 AS version FROM grantpool_accounts WHERE id = ${id} FOR UPDATE`;
      if (!r) return null;
      const opened = this.open(r.id, stored(r.data, true));
      const current = opened.account;
      if (opened.lock) throw new AccountEncryptedError(current, opened.lock);
      const next = change(draftAccount(current));
      if (next === null) return { account: current, version: null };
      const account = stored({ ...next, id });
      const version = await this.write(tx, account, 'update', opened);
      return { account, version };
    }));
    if (!result) return null;
    if (result.version !== null) this.applied(id, result.version, result.account);
    return result.account;
  }

  upsertByIdentity(identity: Identity, build: (existing: Account | null) => Account): Promise<{ account: Account; created: boolean }> {
    return this.upsertManyByIdentity([{ identity, build }]).then(([r]) => r!);
  }

  /**
   * upsertByIdentity() for many accounts at once (`grantpool store copy`):
   * one transaction per batch of up to 1,000, one lock and one lookup of the
   * identities (pg-bulk-write.ts).
   */
  async upsertManyByIdentity(items: readonly UpsertItem[]): Promise<{ account: Account; created: boolean }[]> {
    this.assertOpen();
    const out: { account: Account; created: boolean }[] = [];
    for (const batch of identityBatches(items, 1000)) {
      const done = await this.health.guard(() => this.sql.begin((tx) => upsertBatch(tx, batch, {
        channel: CHANNEL,
        open: (r) => this.open(r.id, stored(r.data, true)),
        stored: (a) => stored(a),
        seal: (a, found) => this.sealRow(a, found),
      })));
      for (const d of done) {
        this.applied(d.account.id, d.version, d.account);
        out.push({ account: d.account, created: d.created });
      }
    }
    return out;
  }

  async remove(id: string): Promise<boolean> {
    this.assertOpen();
    const version = await this.health.guard(() => this.sql.begin(async (tx) => {
      const gone = await tx`DELETE FROM grantpool_accounts WHERE id = ${id} RETURNING id`;
      if (gone.length === 0) return null;
      const [v] = await tx<{ version: number }[]>`
        INSERT INTO grantpool_removed_accounts (id, version) VALUES (${id}, nextval('grantpool_change_seq'))
        ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, removed_at = now()
        RETURNING version::float8 AS version`;
      await tx`SELECT pg_notify(${CHANNEL}, ${`${id} ${v!.version}`})`;
      return v!.version;
    }));
    if (version === null) return false;
    this.applied(id, version, null);
    return true;
  }

  watch(onChange: (change: AccountChange) => void): () => void {
    this.watchers.add(onChange);
    if (!this.closed) void this.listening.start();
    return () => {
      this.watchers.delete(onChange);
    };
  }

  withRefreshLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    // Callers in this process queue locally; only one of them at a time holds a connection for the lock.
    return this.localLocks.run(id, () =>
      underAdvisoryLock(this.sql, id, fn, {
        lockWaitMs: this.lockWaitMs,
        answerTimeoutMs: this.answerTimeoutMs,
        stats: this.stats,
        // The error that made it down: told again, it changes nothing and logs nothing new.
        down: () => this.health.downBecause(),
        unreachable: (e) => {
          // Refreshing without the cross-gateway lock (this process still refreshes each account
          // once at a time) beats serving nothing. Google keeps the refresh token.
          this.health.unreachable(e);
          this.logger.warn({ account_id: id, err: { message: e.message } }, 'Database unreachable: refreshing without the cross-gateway lock');
        },
      }),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.load?.pages.stop();
    if (this.timer) clearInterval(this.timer);
    this.health.close();
    this.watchers.clear();
    await this.shared?.close();
    await this.listening.stop();
    await this.sql.end({ timeout: 5 });
  }

  /** The server's view of this gateway's connections (one query; for /metrics). */
  poolStats(): Promise<DbPoolStats> {
    return readPoolStats(this.sql, this.appName, this.max);
  }

  /** What is wrong with the database connection, or null (shown by /healthz and /api/status). */
  problem(): string | null {
    const locked = this.census.problem();
    const down = this.health.problem();
    return down && locked ? `${down}; ${locked}` : (down ?? locked);
  }

  /** How the tokens of the accounts are stored (/api/status, doctor). */
  encryption(): EncryptionReport {
    return this.census.report(this.sealer.keyring, this.seen.present.size);
  }

  /** Checks the connection now; after an outage, LISTENs again and catches up on what was missed. */
  check(): Promise<void> {
    return this.health.check();
  }

  /**
   * Compares every version with the database and applies the differences (after a reconnect, and periodically).
   * Resolves after a comparison that began after the call: one already under way may have read past a change
   * made since, so callers during it share one more that follows it.
   */
  catchUp(): Promise<void> {
    // During the first load the pages read every row; one catch-up follows it.
    if (this.closed || this.watchers.size === 0 || this.load) return Promise.resolve();
    if (this.catchingUp) {
      return (this.catchUpNext ??= this.catchingUp.then(() => {
        this.catchUpNext = null;
        return this.catchUp();
      }));
    }
    return (this.catchingUp = this.compareAll()
      .catch((e: Error) => this.logger.warn({ err: { message: e.message } }, 'account catch-up with the database failed; will retry'))
      .finally(() => (this.catchingUp = null)));
  }

  private compareAll(): Promise<void> {
    return readChanges(this.sql, this.seen, {
      row: (r) => this.applyRow(r),
      removed: (id, version) => this.applied(id, version, null),
    });
  }

  private async onNotify(payload: string): Promise<void> {
    const [id, v] = payload.split(' ');
    const version = Number(v);
    if (!id || !Number.isFinite(version)) return;
    if ((this.seen.version(id) ?? -1) >= version) return; // our own write, or already caught up
    try {
      const [r] = await this.sql<PgRow[]>`SELECT id, data, version::float8 AS version FROM grantpool_accounts WHERE id = ${id}`;
      if (r) this.applyRow(r);
      else this.applied(id, version, null);
    } catch (e) {
      this.logger.warn({ account_id: id, err: { message: (e as Error).message } }, 'could not read a changed account; the catch-up will');
    }
  }

  /** Writes one account row (insert or update) and its notification; returns the new version. */
  private async write(tx: TransactionSql, account: Account, how: 'insert' | 'update', previous: { stored: Account; account: Account } | null = null): Promise<number> {
    const versions = await writeRows(tx, CHANNEL, [{ ...this.sealRow(account, previous), insert: how === 'insert' }]);
    return versions.get(account.id)!;
  }

  /** The row of an account as stored: its tokens sealed (and the census told), its identity columns. */
  private sealRow(account: Account, previous: { stored: Account; account: Account } | null): Omit<RowWrite, 'insert'> {
    const sealed = this.sealer.seal(account, previous && { stored: previous.stored, plain: previous.account });
    this.census.note(account.id, this.sealer.open(sealed));
    return { id: account.id, sub: account.sub, email: account.email.toLowerCase(), data: JSON.stringify(sealed) };
  }

  /** A change this store made or learned of: remembered, and told to the watchers when it is news. */
  private applied(id: string, version: number, account: Account | null): void {
    const seen = this.seen.version(id);
    if (seen !== undefined && seen >= version) return;
    if (!account) this.census.note(id, null);
    const key = ownId(id, account);
    this.seen.note(key, version, account !== null);
    const load = this.load;
    if (load) {
      if (account) load.accounts.set(key, account);
      else load.accounts.delete(id);
    }
    // Never seen before while the first load runs: read by it, or at least there as it reads.
    const change: AccountChange = load && seen === undefined && account ? { id: key, account, initial: true } : { id: key, account };
    for (const w of [...this.watchers]) {
      try {
        w(change);
      } catch {
        // a watcher's failure is its own business
      }
    }
  }

  /** Decrypts the tokens of a stored account (a locked one is said once, loudly). */
  private open(id: string, account: Account) {
    const opened = this.sealer.open(account);
    if (opened.lock && this.census.lockOf(id)?.reason !== opened.lock.reason) {
      this.logger.error({ id, email: account.email, key_id: opened.lock.keyId }, `Account ${account.email} (${id}) is ${opened.lock.reason}: it serves nothing and its row is left unchanged`);
    }
    this.census.note(id, opened);
    return opened;
  }

  /** A row read from the database, applied under the version rule (an invalid one is skipped). */
  private applyRow(r: PgRow): void {
    const account = this.parse(r);
    if (account) this.applied(r.id, r.version, account);
  }

  private parse(r: PgRow): Account | null {
    try {
      return this.open(r.id, stored(r.data, true)).account;
    } catch (e) {
      this.logger.error({ account_id: r.id, err: { message: (e as Error).message } }, 'An account row in the database is not a valid account; skipped');
      return null;
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreUnavailableError('the account store is closed');
  }
}

/** Connects, creates or migrates the schema, and returns the store. */
export async function createPgStore(opts: PgStoreOptions): Promise<PgStore> {
  const store = new PgStore(opts);
  try {
    await store.migrate();
    await store.startLoad();
  } catch (e) {
    await store.close().catch(() => {});
    throw new StoreUnavailableError(`could not open the database (${(e as Error).message})`, {
      cause: e,
      fix: 'check that the PostgreSQL server of GRANTPOOL_DATABASE_URL (or database_url) runs and accepts this user',
    });
  }
  return store;
}

/** The id string to keep for a row: the account's own (the row's id column is another copy of the same text). */
function ownId(id: string, account: Account | null): string {
  return account !== null && account.id === id ? account.id : id;
}
