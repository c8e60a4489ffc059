// Whether this gateway's database can be used, and the guard every query a
// caller waits for goes through. The health check runs every few seconds on a
// connection of its own (it measures the database, not how busy the pool is;
// one that went silent is dropped for a new one) and has the same deadline as
// the queries (pg-answer.ts). While the database is down, guarded queries are
// refused at once and the next check is started; the check that finds it back
// lets the store LISTEN again and catch up before it reports healthy.
import type { Sql } from 'postgres';
import type { Logger } from '../log/logger.ts';
import { StoreUnavailableError } from './errors.ts';
import { answeredWithin, NoAnswerError } from './pg-answer.ts';
import type { DbCounters } from './pg-stats.ts';

const DB_FIX = 'check that PostgreSQL is running and answering and that GRANTPOOL_DATABASE_URL points at it, then try again';

export interface DbHealthOptions {
  logger: Logger;
  stats: DbCounters;
  /** The deadline of a query a caller waits for, and of the check. */
  answerTimeoutMs: number;
  intervalMs: number;
  /** A new pool of one connection, for the check. */
  connect: () => Sql;
  /** After an outage, before it counts as healthy: LISTEN again (bounded by the caller). */
  relisten: () => Promise<unknown>;
  /** After an outage, once healthy: catch up on what was missed (waited for at most answerTimeoutMs). */
  catchUp: () => Promise<void>;
}

export class DbHealth {
  private readonly o: DbHealthOptions;
  /** For reads whose time grows with the data (every account, the usage history). */
  private readonly bulkDeadlineMs: number;
  private readonly timer: NodeJS.Timeout;
  private checking: Promise<void> | null = null;
  private probeSql: Sql | null = null;
  /** Why the database cannot be used right now (null while it can), and the error that said so. */
  private down: string | null = null;
  private downError = '';

  constructor(o: DbHealthOptions) {
    this.o = o;
    this.bulkDeadlineMs = 6 * o.answerTimeoutMs;
    this.timer = setInterval(() => void this.check(), o.intervalMs);
    this.timer.unref();
  }

  /** Why the database cannot be used now, or null. */
  problem(): string | null {
    return this.down;
  }

  /** The error that made the database count as down, or null while it is up. */
  downBecause(): string | null {
    return this.down === null ? null : this.downError;
  }

  /** Checks the connection now; after an outage, LISTENs again and catches up on what was missed. */
  check(): Promise<void> {
    // One check at a time: a second one while the first renews would renew again.
    return (this.checking ??= this.checkOnce().finally(() => (this.checking = null)));
  }

  /**
   * A query the caller waits for: refused at once while the database is known
   * to be unreachable (the next check is started, so that its return is seen
   * without delay), and bounded by answerTimeoutMs (`deadlineMs` null: a bulk
   * read, bounded by six times that). Not reaching the database becomes a
   * clear 503.
   */
  async guard<T>(query: () => Promise<T>, deadlineMs: number | null = this.o.answerTimeoutMs): Promise<T> {
    if (deadlineMs === null) deadlineMs = this.bulkDeadlineMs;
    if (this.down) {
      void this.check();
      throw new StoreUnavailableError(`the account database is unreachable (${this.downError}); nothing was changed`, { fix: DB_FIX });
    }
    try {
      return await answeredWithin(query(), deadlineMs);
    } catch (e) {
      if (e instanceof NoAnswerError) {
        this.unreachable(e);
        throw new StoreUnavailableError(`the account database did not answer within ${deadlineMs / 1000} s; a change sent may still be made when it answers`, { fix: DB_FIX, cause: e });
      }
      if (!isConnectionError(e)) throw e;
      this.unreachable(e as Error);
      throw new StoreUnavailableError(`the account database is unreachable (${(e as Error).message}); nothing was changed`, { fix: DB_FIX, cause: e });
    }
  }

  /**
   * A query could not reach the database. One without an answer may only have
   * waited for one of the pool's busy connections: the check, on a connection
   * of its own, decides whether the database is down. Anything else says so.
   */
  unreachable(e: Error): void {
    if (e instanceof NoAnswerError) void this.check();
    else this.failed(e);
  }

  close(): void {
    clearInterval(this.timer);
    void this.probeSql?.end({ timeout: 1 }).catch(() => {});
  }

  private async checkOnce(): Promise<void> {
    try {
      const probe = (this.probeSql ??= this.o.connect());
      try {
        await answeredWithin(probe`SELECT 1`.execute(), this.o.answerTimeoutMs);
      } catch (e) {
        this.probeSql = null;
        void probe.end({ timeout: 0 }).catch(() => {});
        throw e;
      }
      if (this.down) {
        this.o.logger.info('Database reachable again; catching up on account changes');
        // Before reporting healthy: the driver's own LISTEN again may have given up while the database was down.
        await this.o.relisten();
        this.down = null;
        // Bounded: a catch-up that the database leaves unanswered must not hold up the next checks.
        await answeredWithin(this.o.catchUp(), this.o.answerTimeoutMs).catch(() => {});
      }
    } catch (e) {
      this.failed(e as Error);
    }
  }

  private failed(e: Error): void {
    this.o.stats.errors++;
    const why = `database unreachable: ${e.message}`;
    if (this.down !== why) this.o.logger.warn({ err: { message: e.message } }, 'Database unreachable: serving with the accounts in memory');
    this.down = why;
    this.downError = e.message;
  }
}

/** The database could not be reached or went away (as opposed to a query the database refused). */
function isConnectionError(e: unknown): boolean {
  const code = String((e as { code?: unknown })?.code ?? '');
  return /^E[A-Z]+$/.test(code) || /^CONNECT/.test(code) || /^08/.test(code) || /^57P0[1-3]$/.test(code);
}
