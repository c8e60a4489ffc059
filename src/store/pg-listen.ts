// A LISTEN that can be renewed after an outage. The driver LISTENs again on
// its own when the listening connection closes, but when the database is
// still down at that moment its retries back off (to 20 s apart) or stop, and
// nothing says so: NOTIFYs sent after the database is back are lost meanwhile.
// renew() does not depend on that: it drops the old subscription with its
// connection and LISTENs on a fresh one.
// - Each subscription has a generation; events and (re)connect callbacks of
//   an older one (late, or from the driver's own retry) are ignored.
// - `wanted` is false once stop() is called: a renew still in flight then
//   ends its subscription instead of keeping it.
import type { Sql } from 'postgres';

/** Makes a connection pool of its own for one subscription (ended with it). */
export type ListenDriver = () => Sql;

export interface ListenHandlers {
  onNotify(payload: string): void;
  /** After every (re)subscription, the driver's own included: catch up on what was missed. */
  onListen?(): void;
  /** The subscription failed (the database is unreachable, or refused LISTEN). */
  onError?(e: Error): void;
}

/** How long renew() waits for the new subscription before it returns anyway. */
const RENEW_WAIT_MS = 5000;

export class RenewableListen {
  private readonly connect: ListenDriver;
  private readonly channel: string;
  private readonly handlers: ListenHandlers;
  private generation = 0;
  private wanted = false;
  private driver: Sql | null = null;
  private subscribed: Promise<void> | null = null;

  constructor(connect: ListenDriver, channel: string, handlers: ListenHandlers) {
    this.connect = connect;
    this.channel = channel;
    this.handlers = handlers;
  }

  /** Starts listening; while listening, a second call returns the same subscription. */
  start(): Promise<void> {
    this.wanted = true;
    return (this.subscribed ??= this.subscribe());
  }

  /** A fresh subscription in place of the current one (none if stopped or never started); resolves once it listens, fails, or after 5 s. */
  async renew(): Promise<void> {
    if (!this.wanted) return;
    void this.drop();
    const subscribed = (this.subscribed = this.subscribe());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([subscribed, new Promise((r) => (timer = setTimeout(r, RENEW_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /** Resolves once the current subscription listens (or failed). */
  ready(): Promise<void> {
    return this.subscribed ?? Promise.resolve();
  }

  async stop(): Promise<void> {
    this.wanted = false;
    await this.drop();
  }

  private subscribe(): Promise<void> {
    const generation = ++this.generation;
    const driver = (this.driver = this.connect());
    const current = () => this.wanted && generation === this.generation;
    return driver
      .listen(
        this.channel,
        (payload) => {
          if (current()) this.handlers.onNotify(payload);
        },
        () => {
          if (current()) this.handlers.onListen?.();
        },
      )
      .then(
        () => {
          // stop() or another renew() came first: this connection was ended; make sure.
          if (!current()) void driver.end({ timeout: 0 }).catch(() => {});
        },
        (e: Error) => {
          if (current()) this.handlers.onError?.(e);
        },
      );
  }

  /** Ends the current subscription and its connection; what it still delivers is ignored. */
  private drop(): Promise<void> {
    this.generation++;
    const driver = this.driver;
    this.driver = null;
    this.subscribed = null;
    return driver ? driver.end({ timeout: 0 }).then(() => {}, () => {}) : Promise.resolve();
  }
}
