// Receiving one security event token: verify it, handle its `jti` once
// (across restarts and gateways: the store's persistent key-value map), apply
// the decisions of events.ts to the accounts (disable through the pool, at
// once and persistently, as invalid_grant does; record the event on the
// account), log what happened by account, and keep a short list of what was
// received for `grantpool risc status`. Never logs a token.
import { AccountEncryptedError } from '../store/token-cipher.ts';
import type { Account } from '../store/account.ts';
import type { AccountStore } from '../store/store.ts';
import type { SharedKv } from '../store/shared-state.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../log/logger.ts';
import type { JWTPayload } from 'jose';
import { RiscError } from './errors.ts';
import { decide, parseSecurityEventToken, withSecurityEvent, type Decision, type SecurityEventItem } from './events.ts';

/** Namespaces in the persistent key-value map. */
const JTI_NS = 'risc-jti';
const LOG_NS = 'risc';
const LOG_KEY = 'received';
/** A handled `jti` is remembered this long (Google redelivers for a limited time). */
const JTI_KEEP_MS = 14 * 24 * 3600 * 1000;
/** A claim left by a gateway that died while applying is taken over after this. */
const CLAIM_STALE_MS = 120_000;
/** Received events listed by `grantpool risc status`. */
const LOG_SIZE = 50;
const LOG_KEEP_MS = 30 * 24 * 3600 * 1000;

export interface ReceiverDeps {
  verifier: { verify(token: string, audiences: readonly string[]): Promise<JWTPayload> };
  /** The OAuth client ids a token may be addressed to. */
  audiences: () => string[];
  /** Persistent and shared by the gateways of one store. */
  kv: SharedKv;
  /** The accounts as the pool holds them (with their usable refresh tokens). */
  accounts: () => Account[];
  /**
   * Resolves once every account is read (a large pool is read in the
   * background after the start): an event is matched against all of them,
   * never against the part read so far.
   */
  ready?: () => Promise<void>;
  /** How long a delivery waits for that before it is answered 503 (Google delivers it again). Default 20 s. */
  readyWaitMs?: number;
  /** Disables an account at once and persistently (the pool's disable); null when nothing was disabled. */
  disable: (id: string, reason: string) => Promise<Account | null>;
  store: AccountStore;
  clock: Clock;
  logger: Logger;
}

/** One received token as `grantpool risc status` lists it (no token, no token identifier). */
export interface ReceivedEntry {
  jti: string;
  received_at: number;
  events: { event: string; reason: string | null; accounts: { id: string; email: string; disabled: boolean }[]; note: string | null }[];
}

interface JtiClaim {
  state: 'applying' | 'done';
  at: number;
}

export type ReceiveOutcome = { status: 'handled'; entry: ReceivedEntry } | { status: 'duplicate'; jti: string };

/** Handles one token; throws RiscError (400: invalid; 503: try again later). */
export async function receiveSecurityEvent(deps: ReceiverDeps, token: string): Promise<ReceiveOutcome> {
  if (deps.ready) await accountsRead(deps.ready(), deps.readyWaitMs ?? READY_WAIT_MS);
  const payload = await deps.verifier.verify(token, deps.audiences());
  const set = parseSecurityEventToken(payload);
  const { kv, clock, logger } = deps;
  const now = clock.now();
  let claimed: 'claimed' | 'done' | 'busy';
  try {
    claimed = await kv.update<JtiClaim, 'claimed' | 'done' | 'busy'>(JTI_NS, set.jti, (cur) =>
      cur?.state === 'done'
        ? { result: 'done' }
        : cur && now - cur.at < CLAIM_STALE_MS
          ? { result: 'busy' }
          : { value: { state: 'applying', at: now }, expiresAtMs: now + JTI_KEEP_MS, result: 'claimed' },
    );
  } catch (err) {
    logger.error({ jti: set.jti, err: { message: (err as Error).message } }, `Could not record security event ${set.jti} as received; Google will deliver it again`);
    throw new RiscError('risc_apply_failed', 'the event could not be recorded now (the data directory or the database cannot be written); deliver it again later', {
      status: 503,
      retryAfterSeconds: 60,
      cause: err,
    });
  }
  if (claimed === 'busy') {
    // Another delivery of this token is being applied; if it fails, its claim is gone and this one must not have been acknowledged.
    logger.info({ jti: set.jti }, `Security event ${set.jti} is being applied by another delivery; asked Google to deliver it again`);
    throw new RiscError('risc_apply_failed', 'this event is being applied by another delivery right now; deliver it again later', { status: 503, retryAfterSeconds: 30 });
  }
  if (claimed === 'done') {
    logger.info({ jti: set.jti, events: set.events.map((e) => e.name) }, `Security event ${set.jti} was handled before; not again`);
    return { status: 'duplicate', jti: set.jti };
  }
  let entry: ReceivedEntry;
  try {
    entry = { jti: set.jti, received_at: Math.floor(now / 1000), events: [] };
    for (const e of set.events) entry.events.push(await applyEvent(deps, set.jti, e));
  } catch (err) {
    await kv.delete(JTI_NS, set.jti).catch(() => {});
    logger.error({ jti: set.jti, err: { message: (err as Error).message } }, `Could not apply security event ${set.jti}; Google will deliver it again`);
    throw new RiscError('risc_apply_failed', 'the event could not be applied to the accounts now (the store could not be written); deliver it again later', {
      status: 503,
      retryAfterSeconds: 60,
      cause: err,
    });
  }
  // Applied: a failure to mark it done leaves the claim, which a redelivery after 2 minutes takes over (applying again is harmless).
  await kv
    .set(JTI_NS, set.jti, { state: 'done', at: now } satisfies JtiClaim, now + JTI_KEEP_MS)
    .catch((err: Error) => logger.warn({ jti: set.jti, err: { message: err.message } }, `Could not mark security event ${set.jti} as handled`));
  await kv
    .update<ReceivedEntry[], void>(LOG_NS, LOG_KEY, (list) => ({ value: [entry, ...(list ?? [])].slice(0, LOG_SIZE), expiresAtMs: now + LOG_KEEP_MS, result: undefined }))
    .catch((err: Error) => logger.warn({ jti: set.jti, err: { message: err.message } }, 'Could not keep the security event in the list of received events'));
  return { status: 'handled', entry };
}

const READY_WAIT_MS = 20_000;

/** Waits (bounded) until every account is read; a 503 when that takes too long (e.g. the database is down). */
async function accountsRead(ready: Promise<void>, waitMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), waitMs);
  });
  const outcome = await Promise.race([ready.then(() => 'read' as const), late]).finally(() => clearTimeout(timer));
  if (outcome === 'late')
    throw new RiscError('risc_apply_failed', 'the gateway is still reading its accounts (just started); deliver the event again later', { status: 503, retryAfterSeconds: 30 });
}

/** What `GET /api/risc` and `grantpool risc status` show about the receiver. */
export interface ReceiverStatus {
  /** Where Google should push (`<public url>/risc`). */
  receiver_url: string;
  config_url: string;
  /** The RISC issuer, once a token was checked. */
  issuer: string | null;
  /** The OAuth client ids a token may be addressed to. */
  audiences: string[];
  /** The tokens received lately, newest first. */
  received: ReceivedEntry[];
}

/** The tokens received lately (newest first). */
export async function receivedEvents(kv: SharedKv): Promise<ReceivedEntry[]> {
  return (await kv.get<ReceivedEntry[]>(LOG_NS, LOG_KEY)) ?? [];
}

async function applyEvent(deps: ReceiverDeps, jti: string, e: SecurityEventItem): Promise<ReceivedEntry['events'][number]> {
  const { logger, clock } = deps;
  const out: ReceivedEntry['events'][number] = { event: e.name, reason: e.reason, accounts: [], note: null };
  if (e.effect === 'log') {
    logger.info({ jti, event: e.name, state: e.state }, `Security event stream verification received${e.state ? ` (state "${e.state}")` : ''}`);
    out.note = e.state ? `state "${e.state}"` : 'verification';
    return out;
  }
  if (e.effect === 'ignore') {
    logger.info({ jti, event: e.uri.slice(0, 200) }, `Security event of a type this gateway does not act on (${e.name}); ignored`);
    out.note = 'event type not acted on';
    return out;
  }
  const decisions = decide(e, deps.accounts(), clock.now());
  if (decisions.length === 0) {
    const why = e.subject ? 'it names no account of this gateway' : `its subject cannot be used (${e.subjectProblem})`;
    logger.info({ jti, event: e.name, subject: e.subject?.by ?? null }, `Security event ${e.name} changes nothing: ${why}`);
    out.note = why;
    return out;
  }
  for (const d of decisions) {
    const a = d.account;
    try {
      out.accounts.push({ id: a.id, email: a.email, disabled: await applyDecision(deps, jti, e, d) });
    } catch (err) {
      // Tokens sealed with a key this gateway lacks: it may not write the account; the others are handled.
      if (!(err instanceof AccountEncryptedError)) throw err;
      logger.error(
        { account_id: a.id, email: a.email, jti, event: e.name, err: { message: err.message } },
        `Google sent ${e.name} for ${a.email}, whose tokens are encrypted with a key this gateway does not have; the account is left as it is (a gateway with the key, or re-adding the account, deals with it)`,
      );
      out.accounts.push({ id: a.id, email: a.email, disabled: false });
    }
  }
  return out;
}

/** Disables (when the event says so) and records the event on one account; whether it was disabled now. */
async function applyDecision(deps: ReceiverDeps, jti: string, e: SecurityEventItem, d: Decision): Promise<boolean> {
  const { logger } = deps;
  const a = d.account;
  let disabled = false;
  if (d.disable) {
    disabled = (await deps.disable(a.id, d.disable)) !== null;
    logger.warn(
      { account_id: a.id, email: a.email, jti, event: e.name, reason: e.reason, disabled },
      disabled
        ? `Disabling account ${a.email}: Google sent ${e.name}${e.reason ? ` (${e.reason})` : ''}; re-add it to use it again`
        : `Google sent ${e.name} for ${a.email}, which was re-added meanwhile; left as it is`,
    );
  } else {
    logger.warn(
      { account_id: a.id, email: a.email, jti, event: e.name, reason: e.reason },
      `Google sent ${e.name}${e.reason ? ` (${e.reason})` : ''} for ${a.email}${a.disabled ? ' (already disabled)' : ''}; recorded on the account`,
    );
  }
  await deps.store.update(a.id, (cur) => ({ ...cur, security_events: withSecurityEvent(cur, d.record) }));
  return disabled;
}
