// How one upstream answer ended, in the pool's terms (UpstreamOutcome), read
// from Google's error body: 401 -> unauthorized; 429 -> rate_limited until
// RetryInfo.retryDelay, the next midnight in America/Los_Angeles for a daily
// quota, or a short default; 403 PERMISSION_DENIED -> forbidden with Google's
// message and the activation URL; 5xx, timeouts and resets -> server_error;
// any other 4xx -> client_error (the request's fault, passed back to the client).
import { nextQuotaResetMs } from '../pool/quota.ts';
import type { LaneService, UpstreamOutcome } from '../pool/types.ts';
import { projectErrorReason, vertexLaneError, type ProjectErrorAccount } from '../projects/project-errors.ts';
import { oneLine } from '../util/text.ts';

/** Cooldown after a 429 that says nothing about when to retry. */
export const DEFAULT_RATE_LIMIT_COOLDOWN_MS = 30_000;

export interface GoogleErrorInfo {
  code: number | null;
  message: string;
  status: string | null;
  details: Record<string, unknown>[];
}

/** Reads Google's `{"error":{code,message,status,details}}` body (also the `[{...}]` form); tolerant of anything else. */
export function parseGoogleError(body: string): GoogleErrorInfo {
  const empty: GoogleErrorInfo = { code: null, message: '', status: null, details: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    // A body cut short (the gateway keeps the first MiB of an error): its message and status, as far as they go.
    const message = /"message"\s*:\s*"((?:[^"\\]|\\.){0,500})/.exec(body)?.[1];
    const status = /"status"\s*:\s*"([A-Z_]+)"/.exec(body)?.[1] ?? null;
    if (message !== undefined) return { ...empty, message: message.replace(/\\(.)/g, '$1'), status };
    return { ...empty, message: body.trim().slice(0, 500) };
  }
  if (Array.isArray(parsed)) parsed = parsed[0];
  const err = (parsed as { error?: unknown } | null)?.error;
  if (typeof err !== 'object' || err === null) {
    return { ...empty, message: typeof err === 'string' ? err : body.trim().slice(0, 500) };
  }
  const e = err as Record<string, unknown>;
  return {
    code: typeof e.code === 'number' ? e.code : null,
    message: typeof e.message === 'string' ? e.message : '',
    status: typeof e.status === 'string' ? e.status : null,
    details: Array.isArray(e.details) ? e.details.filter((d): d is Record<string, unknown> => typeof d === 'object' && d !== null) : [],
  };
}

function detail(info: GoogleErrorInfo, type: string): Record<string, unknown> | undefined {
  return info.details.find((d) => d['@type'] === `type.googleapis.com/google.rpc.${type}`);
}

/** "37s", "1.5s", "0.250s" (google.protobuf.Duration JSON) in ms; null when unreadable. */
export function parseDuration(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  const m = /^\s*(\d+(?:\.\d+)?)s\s*$/.exec(value);
  return m ? Math.round(Number(m[1]) * 1000) : null;
}

/** The next midnight in America/Los_Angeles after `nowMs` (when Gemini daily quotas reset). */
export const nextPacificMidnight = nextQuotaResetMs;

function isDailyQuota(info: GoogleErrorInfo): boolean {
  const qf = detail(info, 'QuotaFailure');
  const violations = Array.isArray(qf?.violations) ? (qf.violations as Record<string, unknown>[]) : [];
  for (const v of violations) {
    const id = `${String(v?.quotaId ?? '')} ${String(v?.quotaMetric ?? '')}`;
    if (/PerDay|per_day|daily/i.test(id)) return true;
  }
  const ei = detail(info, 'ErrorInfo');
  const limit = (ei?.metadata as Record<string, unknown> | undefined)?.quota_limit;
  if (typeof limit === 'string' && /PerDay/i.test(limit)) return true;
  return /per day/i.test(info.message);
}

/** google.rpc.ErrorInfo reasons of a 403 that are about the account's project, not the request. */
const ACCOUNT_LEVEL_403 = new Set([
  'SERVICE_DISABLED',
  'API_DISABLED',
  'BILLING_DISABLED',
  'CONSUMER_SUSPENDED',
  'CONSUMER_INVALID',
  'USER_PROJECT_DENIED',
  'ACCESS_TOKEN_SCOPE_INSUFFICIENT',
  'IAM_PERMISSION_DENIED',
]);

export interface ClassifyOptions {
  /** Google API pass-through: a 403 is the route's business, not the account's (client_error). */
  passthrough?: boolean;
  /** The account the attempt used: a 403 about its project gets a reason naming the project and the fix. */
  account?: ProjectErrorAccount;
  /** The service called (default: the Gemini API). */
  service?: LaneService;
}

/** Classifies an upstream HTTP answer. `body` is its text (only read for non-2xx answers). */
export function classifyUpstream(status: number, body: string, nowMs: number, opts: ClassifyOptions = {}): UpstreamOutcome {
  if (status >= 200 && status < 300) return { kind: 'ok' };
  const info = status >= 400 ? parseGoogleError(body) : { code: null, message: '', status: null, details: [] };
  if (status === 401) return { kind: 'unauthorized' };
  if (status === 429) {
    const retry = parseDuration(detail(info, 'RetryInfo')?.retryDelay);
    const daily = isDailyQuota(info);
    let untilMs: number;
    let why: string;
    if (daily) {
      untilMs = Math.max(nextPacificMidnight(nowMs), nowMs + (retry ?? 0));
      why = 'daily quota exhausted';
    } else if (retry !== null) {
      untilMs = nowMs + retry;
      why = `rate limited, retry in ${Math.ceil(retry / 1000)}s`;
    } else {
      untilMs = nowMs + DEFAULT_RATE_LIMIT_COOLDOWN_MS;
      why = 'rate limited';
    }
    return { kind: 'rate_limited', untilMs, reason: oneLine(info.message ? `${why}: ${info.message}` : why, 300) };
  }
  if (status === 403 && !opts.passthrough) {
    const ei = detail(info, 'ErrorInfo');
    const meta = (ei?.metadata ?? {}) as Record<string, unknown>;
    const reasonCode = typeof ei?.reason === 'string' ? ei.reason : info.status ?? 'PERMISSION_DENIED';
    if (opts.service === 'vertex') {
      // Vertex AI: a 403 about the project takes the account's Vertex lane away, nothing else
      const lane = vertexLaneError({ reason: reasonCode, message: info.message, metadata: meta }, opts.account);
      if (lane) return { kind: 'forbidden', reason: lane.reason, vertexState: lane.state };
      return { kind: 'client_error' };
    }
    // Only a 403 about the account itself takes it out of the proxy. A 403
    // about something the request names (a file or cached content of another
    // project) goes back to the client and leaves the pool alone.
    if (!ACCOUNT_LEVEL_403.has(reasonCode) && typeof meta.activationUrl !== 'string') return { kind: 'client_error' };
    const projectReason = projectErrorReason({ reason: reasonCode, message: info.message, metadata: meta }, opts.account);
    if (projectReason) return { kind: 'forbidden', reason: projectReason };
    let url = typeof meta.activationUrl === 'string' ? meta.activationUrl : null;
    if (!url) {
      const help = detail(info, 'Help');
      const link = Array.isArray(help?.links) ? (help.links as Record<string, unknown>[])[0] : undefined;
      if (typeof link?.url === 'string') url = link.url;
    }
    let reason = `${reasonCode}: ${oneLine(info.message || 'permission denied', 500)}`;
    if (url && !reason.includes(url)) reason += ` (activate: ${url})`;
    return { kind: 'forbidden', reason };
  }
  if (status >= 500) {
    return { kind: 'server_error', reason: oneLine(`upstream ${status}${info.message ? `: ${info.message}` : ''}`, 300) };
  }
  return { kind: 'client_error' };
}

/** A network failure (connect error, reset, timeout) as an outcome. */
export function classifyNetworkError(err: unknown): UpstreamOutcome {
  return { kind: 'server_error', reason: describeNetworkError(err) };
}

/** A short, secret-free description of a network error from undici or node:net. */
export function describeNetworkError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } } | null;
  const code = e?.code ?? e?.cause?.code;
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
      return 'upstream timeout: no response headers within the first-byte timeout';
    case 'GP_FIRST_DATA_TIMEOUT':
      return 'upstream timeout: no data within the first-byte timeout';
    case 'UND_ERR_BODY_TIMEOUT':
      return 'upstream timeout: no data within the idle timeout';
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'upstream connect timeout';
    case 'UND_ERR_SOCKET':
    case 'ECONNRESET':
      return 'upstream connection reset';
    case 'ECONNREFUSED':
      return 'upstream connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'upstream host not found';
    default:
      return oneLine(`upstream network error: ${code ?? e?.message ?? String(err)}`, 200);
  }
}

/** The message of a Google error body, for a client-facing error in another protocol's shape. */
export function upstreamMessage(status: number, body: string): string {
  const info = parseGoogleError(body);
  return info.message || `upstream answered ${status}`;
}
