// What the management API needs from the rest of the gateway. The gateway
// provides it (src/app/gateway.ts); tests can provide fakes.
import type { IncomingMessage } from 'node:http';
import type { Account } from '../store/account.ts';
import type { AccountStore } from '../store/store.ts';
import type { AccountState } from '../pool/types.ts';
import type { AccountLane, AccountLaneState } from '../pool/lanes.ts';
import type { ResolvedConfig } from '../config/load.ts';
import type { ProjectService } from '../projects/service.ts';
import type { ReceiverStatus } from '../risc/receiver.ts';

export interface AddResult {
  account: unknown;
  created: boolean;
  reenabled: boolean;
  missing_scopes: string[];
}

export interface OAuthStatus {
  configured: boolean;
  problem: string | null;
  fix: string | null;
  clients: { client_id: string; failing: boolean; error: string | null; fix: string | null; since: number | null }[];
}

import type { RequestLogEntry } from '../proxy/request-log.ts';

export type { UsageRow } from '../pool/pool.ts';
import type { UsageRow } from '../pool/pool.ts';

export interface ApiDeps {
  config: () => ResolvedConfig;
  version: string;
  listenUrl: () => string;
  store: AccountStore;
  /**
   * Every account as the running pool last saw it (no I/O; the pool hears every
   * change the store announces, its own writes before they return): what
   * GET /api/accounts and /api/status list. Without it they ask store.list(),
   * which on files stats every account file and on PostgreSQL reads every row.
   */
  accounts?: () => Account[];
  /** Checks the admin bearer token or the dashboard session (with CSRF on mutations). */
  authenticate: (req: IncomingMessage) => AuthAnswer | Promise<AuthAnswer>;
  accountState: (account: Account) => AccountState;
  /** The lane (quota) an account draws on, as the running pool sees it. Default: worked out from the account alone. */
  accountLane?: (account: Account) => AccountLane;
  /** Every lane of an account (Gemini API, Vertex AI) with its state, as the running pool sees it. Default: from the account alone. */
  accountLanes?: (account: Account) => AccountLaneState[];
  usageToday: (accountId: string) => { requests: number; tokens: number };
  usageDays: (days: number) => Promise<UsageRow[]>;
  oauthStatus: () => OAuthStatus;
  /** Problems that make the gateway degraded (shown in /api/status as `problems`). */
  problems?: () => string[];
  startConsent: (loginHint?: string) => Promise<{ auth_url: string }>;
  completeConsent: (callbackUrl: string) => Promise<AddResult>;
  importRefreshToken: (refreshToken: string) => Promise<AddResult>;
  revoke: ((account: Account) => Promise<'revoked' | 'already_revoked'>) | null;
  saveClientSecret: (json: string) => Promise<{ client_id: string }>;
  requests: (filter: { account?: string; model?: string; status?: string; protocol?: string; limit?: number }) => RequestLogEntry[];
  requestsSince: (sinceMs: number) => number;
  /** Subscribe to live events (account state changes, request log entries). Returns unsubscribe. */
  subscribe: (listener: (event: { type: 'accounts' | 'request'; data: unknown }) => void) => () => void;
  /** The model aliases with the model each resolves to now (GET /api/proxy). */
  modelAliases?: () => { alias: string; target: string; model: string }[];
  /** GET /metrics: the Prometheus text and its content type. */
  metrics?: () => Promise<{ contentType: string; text: string }>;
  /** Account projects (docs/projects.md); the routes are left out without it. */
  projects?: ProjectService;
  /** Google's security events: the receiver and what it got (GET /api/risc); the route is left out without it. */
  risc?: () => Promise<ReceiverStatus>;
  /** API keys in config.json. */
  keys: {
    list: () => { id: string; label: string; prefix: string; created_at: number | null }[];
    create: (label: string) => Promise<{ id: string; label: string; key: string }>;
    revoke: (id: string) => Promise<boolean>;
  };
}

export type AuthAnswer = { ok: true } | { ok: false; status: number; message: string; retryAfterSeconds?: number };
