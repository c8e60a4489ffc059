// What an upstream answer means, decided in one pure step: `settle` reads one
// attempt's answer and says whether to serve it, pass it back to the client
// (the request's own fault), refresh the token and retry on the same account,
// or report it to the pool (cool down, take out) and fail over to the next
// account. `exhausted` turns the failed attempts into the client's error.
import type { LaneService, NoAccountError, UpstreamOutcome } from '../../pool/types.ts';
import { classifyNetworkError, classifyUpstream } from '../upstream-errors.ts';
import { ProxyFailure } from './failure.ts';

/** How one upstream attempt answered, as far as it got. */
export type Answer =
  /** A 2xx whose body the route can use. */
  | { kind: 'usable' }
  /** A 2xx whose body cannot be used (HTML, empty or truncated JSON, `null`, an error event). */
  | { kind: 'unusable'; reason: string }
  /** A non-2xx answer and (the start of) its body. */
  | { kind: 'status'; status: number; text: string }
  /** No answer: connect error, reset, timeout. */
  | { kind: 'network'; error: unknown }
  /** A 401 was answered with a refresh, and the account could not be refreshed. */
  | { kind: 'refresh_failed' };

export type Verdict =
  | { action: 'serve' }
  /** The request's own fault: the client gets the upstream's answer; the account is fine. */
  | { action: 'pass_back'; outcome: { kind: 'client_error' } }
  /** A first 401: refresh the token once and try the same account again. */
  | { action: 'refresh' }
  /** Try the next account; `report` says whether the outcome goes to the pool (cooldown, taken out). */
  | { action: 'fail_over'; outcome: UpstreamOutcome; report: boolean; note?: string };

export interface SettleContext {
  now: number;
  /** Google API pass-through: a 403 is the route's business (passed back), not the account's. */
  passthrough?: boolean;
  /** This account was refreshed after a 401 during this request already. */
  refreshed: boolean;
  /** The account that answered: a 403 about its project names the project and the fix. */
  account?: { email: string; projectId: string | null };
  /** The service the attempt called (Vertex AI words its errors its own way). */
  service?: LaneService;
}

/** The meaning of one attempt's answer (pure). */
export function settle(answer: Answer, ctx: SettleContext): Verdict {
  switch (answer.kind) {
    case 'usable':
      return { action: 'serve' };
    case 'unusable':
      // Nothing reached the client yet: as good as a 5xx.
      return { action: 'fail_over', outcome: { kind: 'server_error', reason: answer.reason }, report: true };
    case 'network':
      return { action: 'fail_over', outcome: classifyNetworkError(answer.error), report: true };
    case 'refresh_failed':
      return {
        action: 'fail_over',
        outcome: { kind: 'unauthorized' },
        report: false,
        note: 'access token refused (401) and the account could not be refreshed',
      };
    case 'status': {
      const outcome = classifyUpstream(answer.status, answer.text, ctx.now, { passthrough: ctx.passthrough, account: ctx.account, service: ctx.service });
      if (outcome.kind === 'client_error') return { action: 'pass_back', outcome };
      if (outcome.kind === 'unauthorized' && !ctx.refreshed) return { action: 'refresh' };
      if (outcome.kind === 'ok') return { action: 'serve' };
      return { action: 'fail_over', outcome, report: true };
    }
  }
}

/** One failed attempt, for the client's error when every attempt failed. */
export interface Failure {
  email: string;
  outcome: UpstreamOutcome;
  note?: string;
  /** The lane the attempt drew on. */
  lane?: string;
}

function retryAfterFrom(untilMs: number, now: number): number {
  return Math.max(1, Math.ceil((untilMs - now) / 1000));
}

function describeFailure(f: Failure): string {
  const o = f.outcome;
  const what =
    o.kind === 'rate_limited' || o.kind === 'forbidden' || o.kind === 'server_error'
      ? o.reason
      : o.kind === 'unauthorized'
        ? (f.note ?? 'access token refused (401)')
        : o.kind;
  return `${f.email}${f.lane?.startsWith('vertex:') ? ' (Vertex AI)' : ''}: ${what}`;
}

/** The client's error when no account could serve, from what happened to each attempt (pure). */
export function exhausted(failures: Failure[], model: string, now: number, noAccount?: NoAccountError): ProxyFailure {
  if (failures.length === 0) {
    const e = noAccount!;
    return new ProxyFailure(e.status, e.code, e.message, e.retryAfterSeconds);
  }
  const summary = failures.map(describeFailure).join('; ');
  const forModel = model ? ` for model ${model}` : '';
  const limited = failures.filter((f) => f.outcome.kind === 'rate_limited');
  if (limited.length === failures.length) {
    const until = Math.min(...limited.map((f) => (f.outcome as { untilMs: number }).untilMs));
    const retry = noAccount?.retryAfterSeconds ?? retryAfterFrom(until, now);
    return new ProxyFailure(
      429,
      'rate_limited',
      `Every account tried is rate limited${forModel} (${failures.length} tried): ${summary}. Retry after ${retry}s.`,
      retry,
    );
  }
  const extra = noAccount ? ` (${noAccount.message})` : '';
  return new ProxyFailure(503, 'upstream_unavailable', `No account could serve this request${forModel} (${failures.length} tried): ${summary}${extra}`);
}
