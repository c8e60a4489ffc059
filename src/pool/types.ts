// The contract between the token pool and its users (the proxy, the management
// API) and its inputs (the OAuth client that refreshes tokens).
import { GatewayError, type NoAccountCode } from '../util/errors.ts';
import type { LaneService } from './lanes.ts';

export type { LaneService } from './lanes.ts';

/** Which account the proxy may use for one upstream attempt. */
export interface AcquireRequest {
  /** Upstream (Gemini) model name, after aliases; '' for the Google API pass-through. */
  model: string;
  /** Session affinity key (X-Grantpool-Session, Anthropic metadata.user_id, OpenAI user / prompt_cache_key). */
  sessionKey?: string;
  /** Scopes the route needs; an account must have at least one of them. Empty: any account. */
  anyOfScopes?: readonly string[];
  /**
   * The services the request may use, in order of preference (default
   * `['gemini_api']`): the pool leases an account through a usable lane of the
   * first service that has one, then tries the next service.
   */
  services?: readonly LaneService[];
  /** Scopes per service; an entry replaces `anyOfScopes` for that service (e.g. cloud-platform for Vertex AI). */
  scopesByService?: Readonly<Partial<Record<LaneService, readonly string[]>>>;
  /** Pin one account by id or email (X-Grantpool-Account). */
  pinned?: string;
  /** Accounts already tried by this request (on every service). */
  exclude?: ReadonlySet<string>;
  /** Accounts already tried on one service (e.g. after a 429 on its Gemini API lane it may still serve through its Vertex lane). */
  excludeOn?: Readonly<Partial<Record<LaneService, ReadonlySet<string>>>>;
}

export interface Lease {
  accountId: string;
  email: string;
  projectId: string | null;
  accessToken: string;
  /** The service this lease is for: the upstream to call with it. */
  service: LaneService;
  /** The quota it draws on: `gemini_api:<project>`, `gemini_api:client:<client id>` or `vertex:<project>`. */
  lane: string;
}

/** How an upstream attempt ended, as the pool needs to know it. */
export type UpstreamOutcome =
  | {
      kind: 'ok';
      tokensIn?: number;
      tokensOut?: number;
      /**
       * Whether this was a generate request that counts against the daily quota
       * (quota protection, usage `requests`). Default true. count-tokens,
       * embeddings and model lists pass false: their tokens are still recorded.
       */
      counts?: boolean;
    }
  /** 401 UNAUTHENTICATED */
  | { kind: 'unauthorized' }
  /** 429 RESOURCE_EXHAUSTED; `untilMs` is when Google says the account may try again (absolute time). */
  | { kind: 'rate_limited'; untilMs: number; reason: string }
  /**
   * 403 PERMISSION_DENIED / SERVICE_DISABLED etc.: taken out of the proxy with
   * this reason. On a Vertex lease, `vertexState` says what it means for the
   * account's Vertex lane (taken away: `project.vertex_ai` becomes that
   * state); its Gemini API lane stays.
   */
  | { kind: 'forbidden'; reason: string; vertexState?: 'disabled' | 'denied' }
  /** 5xx, timeout, connection reset. */
  | { kind: 'server_error'; reason: string }
  /** 4xx caused by the request itself (400, 404): the account is fine. */
  | { kind: 'client_error' };

/** Why no account can serve a request. `status` is what the client gets. */
export class NoAccountError extends GatewayError {
  declare readonly status: 429 | 503 | 400 | 404;
  /** Seconds, for Retry-After (set when every candidate is cooling down). */
  declare readonly retryAfterSeconds?: number;
  declare readonly code: NoAccountCode;
  constructor(code: NoAccountCode, message: string, status: NoAccountError['status'], retryAfterSeconds?: number) {
    super(code, message, { status, retryAfterSeconds });
  }
}

/** The live state of one account, as the API, CLI and dashboard show it. */
export type AccountState =
  | { state: 'active' }
  | { state: 'refreshing' }
  | { state: 'cooling_down'; until: number; reason: string; model?: string }
  | { state: 'quota_protected'; model: string; until: number }
  | { state: 'proxy_disabled'; reason: string }
  | { state: 'disabled'; reason: string };

/** What the proxy asks of the pool. */
export interface TokenPool {
  /** An access token that is valid now. Throws NoAccountError when nothing can serve. */
  acquire(req: AcquireRequest): Promise<Lease>;
  /** Report how an attempt with this lease ended (cooldowns, usage, proxy_disabled). */
  report(lease: Lease, model: string, outcome: UpstreamOutcome): void;
  /**
   * After an upstream 401: refresh this account once (shared with concurrent
   * callers) and return a fresh lease, or null when the account can no longer
   * serve (e.g. the refresh said invalid_grant and it was disabled).
   */
  refreshAfterUnauthorized(lease: Lease): Promise<Lease | null>;
  /** Whether any account in rotation (not disabled, not taken out of the proxy) has a lane of this service (e.g. Vertex AI for Claude). */
  canServe(service: LaneService): boolean;
}

/** A lane cooling down for a model after a 429 (shared between gateways on one store). */
export interface LaneCooldown {
  lane: string;
  model: string;
  /** Absolute time (ms) until which the lane waits. */
  untilMs: number;
  reason: string;
}
