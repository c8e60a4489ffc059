// config.json (docs/configuration.md): snake_case keys, validated at start. An unknown
// key or a bad value stops the start with a message naming the key.
import { z } from 'zod';

/** Vertex AI's global endpoint; a regional location uses `https://{location}-aiplatform.googleapis.com` with it (src/proxy/vertex-url.ts). */
export const DEFAULT_VERTEX_BASE_URL = 'https://aiplatform.googleapis.com';

/** Vertex AI (and Cloud Resource Manager, Service Usage) accept the cloud-platform scope (SPEC section 7). */
export const VERTEX_SCOPES = ['https://www.googleapis.com/auth/cloud-platform'];

export const DEFAULT_SCOPES = [
  'openid',
  'email',
  'profile',
  'https://www.googleapis.com/auth/cloud-platform',
  'https://www.googleapis.com/auth/generative-language.retriever',
];

/**
 * An account needs one of these to call the Gemini API (the three front doors).
 * The Gemini API accepts only the generative-language* scopes: a token with
 * cloud-platform alone gets 403 ACCESS_TOKEN_SCOPE_INSUFFICIENT (docs/projects.md#scopes).
 */
export const GEMINI_API_SCOPES = [
  'https://www.googleapis.com/auth/generative-language',
  'https://www.googleapis.com/auth/generative-language.retriever',
  'https://www.googleapis.com/auth/generative-language.tuning',
];

/**
 * Documented defaults; `model_aliases` in config.json or GRANTPOOL_MODEL_ALIASES replaces them.
 * `family:<name>` is the newest model of that family in the live model list
 * (src/proxy/model-families.ts), so the defaults never point at a retired model.
 */
export const DEFAULT_MODEL_ALIASES: Record<string, string> = {
  'claude-opus-*': 'family:pro',
  'claude-sonnet-*': 'family:flash',
  'claude-3-5-sonnet*': 'family:flash',
  'claude-3-7-sonnet*': 'family:flash',
  'claude-haiku-*': 'family:flash-lite',
  'claude-3-5-haiku*': 'family:flash-lite',
  'claude-*': 'family:flash',
  'gpt-4o-mini*': 'family:flash-lite',
  'gpt-4.1-mini*': 'family:flash-lite',
  'gpt-5-mini*': 'family:flash-lite',
  'o*-mini*': 'family:flash',
  'gpt-*': 'family:flash',
};

export const ApiKeySchema = z.strictObject({
  key: z.string().min(8),
  label: z.string().default('default'),
  created_at: z.number().int().nullable().default(null),
});

const QuotaLimitSchema = z.strictObject({
  requests_per_day: z.number().int().positive().optional(),
  tokens_per_day: z.number().int().positive().optional(),
});

export const ConfigSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(8045),
  /** External base URL; the OAuth redirect URI is `<public_url>/oauth2callback`. Default http://localhost:<port>. */
  public_url: z.string().url().nullable().default(null),
  api_keys: z.array(ApiKeySchema).default([]),
  auth_mode: z.enum(['off', 'strict', 'all_except_health', 'auto']).default('auto'),
  admin_token: z.string().min(16).nullable().default(null),
  client_secret_file: z.string().nullable().default(null),
  oauth_issuer: z.string().url().default('https://accounts.google.com'),
  scopes: z.array(z.string().min(1)).min(1).default(DEFAULT_SCOPES),
  gemini_base_url: z.string().url().default('https://generativelanguage.googleapis.com'),
  google_api_base_url: z.string().url().default('https://www.googleapis.com'),
  /** postgres://…: accounts and shared state in PostgreSQL (several gateways on one pool); null: the data directory. */
  database_url: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').nullable().default(null),
  /** Cloud Resource Manager (project discovery, docs/projects.md; https://cloud.google.com/resource-manager/reference/rest). */
  resource_manager_base_url: z.string().url().default('https://cloudresourcemanager.googleapis.com'),
  /** Service Usage (API states of a project, enabling the Gemini API, docs/projects.md; https://cloud.google.com/service-usage/docs/reference/rest). */
  service_usage_base_url: z.string().url().default('https://serviceusage.googleapis.com'),
  model_aliases: z.record(z.string(), z.string().min(1)).default(DEFAULT_MODEL_ALIASES),

  /** Vertex AI (SPEC section 8): the location in the URL (`global`, or a region such as `us-east5`). */
  vertex_location: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,62}$/, 'must be a Vertex AI location such as "global" or "us-east5"')
    .default('global'),
  /** Vertex AI's origin; with the default, a regional location uses its regional host. */
  vertex_base_url: z.string().url().default(DEFAULT_VERTEX_BASE_URL),
  /** The services a Gemini request may use, in order of preference. */
  gemini_services: z
    .array(z.enum(['gemini_api', 'vertex']))
    .min(1)
    .refine((a) => new Set(a).size === a.length, 'must not name a service twice')
    .default(['gemini_api', 'vertex']),
  /** Claude model name pattern (`*` wildcard) -> Vertex AI model id (e.g. "claude-opus-4-5@20251101"). */
  vertex_claude_models: z.record(z.string(), z.string().min(1)).default({}),
  /** A Claude request when no account can serve Vertex AI: translate to Gemini through model_aliases, or answer 503. */
  claude_fallback: z.enum(['gemini', 'none']).default('gemini'),

  /** Account selection. */
  strategy: z.enum(['round_robin', 'fill_first']).default('round_robin'),
  session_affinity: z.boolean().default(true),
  /** Refresh an access token when fewer than this many seconds remain. */
  refresh_before_seconds: z.number().int().min(30).max(3000).default(300),
  /** Transient refresh failures: exponential backoff with jitter between these bounds. */
  refresh_backoff_min_seconds: z.number().positive().default(5),
  refresh_backoff_max_seconds: z.number().positive().default(600),
  /** Cooldown after an upstream 5xx or timeout. */
  server_error_cooldown_seconds: z.number().nonnegative().default(10),

  quota_protection: z
    .strictObject({
      enabled: z.boolean().default(false),
      /** Keep an account out for a model when less than this share of its daily limit remains. */
      threshold_percent: z.number().min(0).max(100).default(10),
      limits: z.record(z.string(), QuotaLimitSchema).default({}),
    })
    .default({ enabled: false, threshold_percent: 10, limits: {} }),

  upstream: z
    .strictObject({
      connect_timeout_ms: z.number().int().positive().default(10_000),
      /**
       * Time to the answer of a non-streaming request (Google sends its
       * headers with the whole answer). Below the 300 s after which common
       * clients (Node's fetch) give up, so a stalled account fails over in time.
       */
      first_byte_timeout_ms: z.number().int().positive().default(120_000),
      /** Time to the first event of a streamed answer (it comes early); unset: 60 s, or first_byte_timeout_ms when lower. */
      stream_first_byte_timeout_ms: z.number().int().positive().optional(),
      /** Longest silence between two chunks of a streamed answer. */
      idle_timeout_ms: z.number().int().positive().default(300_000),
      /** Accounts tried for one request before giving up. */
      max_attempts: z.number().int().min(1).max(50).default(5),
    })
    .default({ connect_timeout_ms: 10_000, first_byte_timeout_ms: 120_000, idle_timeout_ms: 300_000, max_attempts: 5 }),

  /**
   * Deadlines for receiving a request (docs/configuration.md#slow-clients): a client that sends its
   * headers or body too slowly is cut off with 408. Only the request side is
   * bounded; a streamed answer may take as long as the upstream needs.
   */
  client: z
    .strictObject({
      /** Time from the connection's first byte (or the previous request) to the end of the headers. */
      headers_timeout_ms: z.number().int().positive().default(30_000),
      /** Longest silence while a request body is arriving. */
      body_idle_timeout_ms: z.number().int().positive().default(30_000),
      /** Time to receive a whole request, headers and body (a 20 MiB body needs ~170 s at 1 Mbit/s). */
      request_timeout_ms: z.number().int().positive().default(180_000),
    })
    .default({ headers_timeout_ms: 30_000, body_idle_timeout_ms: 30_000, request_timeout_ms: 180_000 }),

  /** Largest accepted request body. */
  max_body_bytes: z.number().int().positive().default(20 * 1024 * 1024),
  /** OpenAI image_url with an http(s) URL: fetched only when enabled, never from private addresses. */
  allow_remote_images: z.boolean().default(false),
  /** Keep the last N proxied requests in the request log. */
  request_log_size: z.number().int().min(0).default(1000),
  /** GET /metrics without the admin token (for a Prometheus on a trusted network). */
  metrics_public: z.boolean().default(false),
});

export type Config = z.infer<typeof ConfigSchema>;
