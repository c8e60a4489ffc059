// A local stand-in for Vertex AI ({location}-aiplatform.googleapis.com), as
// strict as Google about what a gateway can get wrong:
// - `POST /v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}`
//   and nothing else (404 otherwise);
// - a bearer token checked by introspection (the OIDC stand-in's tokenInfo, or
//   tokens added here) with the cloud-platform scope (401 / 403
//   ACCESS_TOKEN_SCOPE_INSUFFICIENT otherwise);
// - the project in the URL (id or number) must be one the token's user may use
//   (403 PERMISSION_DENIED, IAM_PERMISSION_DENIED) with aiplatform.googleapis.com
//   enabled (403 SERVICE_DISABLED with the activation URL), the same directory
//   the Resource Manager / Service Usage stand-in keeps (cloud-projects.ts);
// - per project (and model) quotas and scripted failures: 429
//   RESOURCE_EXHAUSTED in Vertex's words (array-wrapped on streamRawPredict,
//   as Vertex answers there), 401, 5xx, connection resets;
// - publisher `google`: generateContent, streamGenerateContent (?alt=sse),
//   countTokens, with `role` required on every content (400 INVALID_ARGUMENT),
//   answered by an inner Gemini stand-in (`vertex.google`: script it like the
//   Gemini stand-in; its strictness about schemas and thought signatures applies);
// - publisher `anthropic`: rawPredict / streamRawPredict (Anthropic's
//   Messages API: `anthropic_version: "vertex-2023-10-16"` in the body, no
//   `model`, betas in `anthropic-beta`) and `count-tokens:rawPredict` (with
//   `model` in the body), see vertex-anthropic.ts.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { googleError, startGeminiUpstream, type GeminiModelInfo, type GeminiUpstream } from './gemini-upstream.ts';
import {
  AnthropicApiError, VERTEX_COUNT_TOKENS_BETAS, VERTEX_MESSAGE_BETAS, anthropicErrorBody, cacheUsage, checkBetas,
  checkCountTokensRequest, checkMessagesRequest, inputTokens, lastUserText, parseBetas, renderContent, estimateTokens,
  stopReason, streamEvents, type ClaudeAnswer, type ClaudeModelInfo, type ClaudeReply, type SignatureBook,
} from './vertex-anthropic.ts';
import { listenLoopback } from './listen.ts';

export type { ClaudeAnswer, ClaudeBlock, ClaudeModelInfo, ClaudeReply } from './vertex-anthropic.ts';

export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
export const AIPLATFORM = 'aiplatform.googleapis.com';

export interface VertexTokenInfo {
  email: string;
  scopes: string[];
}

/** Who may use which project, and what is enabled there (cloud-projects.ts answers both). */
export interface VertexDirectory {
  canUse(email: string, project: string): boolean;
  isEnabled(project: string, service: string): boolean;
}

export const DEFAULT_CLAUDE_MODELS: ClaudeModelInfo[] = [
  { id: 'claude-opus-5-5', midConversationSystem: true, maxOutputTokens: 128000 },
  { id: 'claude-sonnet-5-5', midConversationSystem: true, maxOutputTokens: 128000 },
  { id: 'claude-fable-5-2', midConversationSystem: true, maxOutputTokens: 64000 },
  { id: 'claude-opus-5', midConversationSystem: true, maxOutputTokens: 128000 },
  { id: 'claude-sonnet-5', midConversationSystem: true, maxOutputTokens: 64000 },
  { id: 'claude-opus-4-8', midConversationSystem: true, maxOutputTokens: 128000 },
  { id: 'claude-sonnet-4-6', maxOutputTokens: 64000 },
  { id: 'claude-opus-4-5@20251101', maxOutputTokens: 64000 },
  { id: 'claude-sonnet-4-5@20250929', maxOutputTokens: 64000 },
  { id: 'claude-haiku-4-5@20251001', maxOutputTokens: 64000 },
  { id: 'claude-opus-4-1@20250805', maxOutputTokens: 32000 },
  { id: 'claude-sonnet-4@20250514', maxOutputTokens: 64000 },
  { id: 'claude-3-5-haiku@20241022', maxOutputTokens: 8192 },
];

export type VertexFailureKind =
  /** 401 UNAUTHENTICATED (as for an expired access token). */
  | 'unauthorized'
  /** 429 RESOURCE_EXHAUSTED, Vertex's quota message (no RetryInfo, as Vertex sends none). */
  | 'rate_limited'
  /** 529 overloaded_error in Anthropic's shape (the model is overloaded). */
  | 'overloaded'
  /** 500 INTERNAL. */
  | 'server_error'
  /** 503 UNAVAILABLE. */
  | 'unavailable'
  /** The connection is destroyed before any response byte. */
  | 'reset'
  /** streamRawPredict: `afterEvents` events, then `event: error` (overloaded_error) and the end of the stream. */
  | 'error_mid_stream'
  /** streamRawPredict: `afterEvents` events, then the connection is destroyed. */
  | 'reset_mid_stream';

export interface VertexFailureOptions {
  times?: number;
  /** Only requests for this project (id as in the URL). */
  project?: string;
  /** Only requests for this model. */
  model?: string;
  /** Only this publisher. */
  publisher?: 'google' | 'anthropic';
  afterEvents?: number;
  message?: string;
}

export interface VertexRecordedRequest {
  time: number;
  method: string;
  path: string;
  query: Record<string, string>;
  project: string | null;
  location: string | null;
  publisher: string | null;
  model: string | null;
  /** rawPredict | streamRawPredict | generateContent | streamGenerateContent | countTokens | ... */
  action: string | null;
  token: string | null;
  /** The token's user, once introspected. */
  email: string | null;
  userProject: string | null;
  /** True when the request carried an API key (x-api-key, x-goog-api-key, ?key=): a gateway must never forward one. */
  sentApiKey: boolean;
  headers: IncomingMessage['headers'];
  /** The body as sent, byte for byte (to check pass-through). */
  rawBody: string;
  /** The error message answered, if any. */
  error?: string;
  body: unknown;
  status: number;
}

export interface VertexUpstreamOptions {
  /** Token introspection (e.g. the OIDC stand-in's tokenInfo); without it, tokens added with addToken. */
  tokenInfo?: (token: string) => Promise<VertexTokenInfo | null>;
  /** The project directory (e.g. the cloud-projects stand-in); without it, projects added with addProject. */
  directory?: VertexDirectory;
  /** Locations served (default: global and the regions Claude is offered in). */
  locations?: string[];
  claudeModels?: ClaudeModelInfo[];
  /** Gemini models of the inner Gemini stand-in (default: its line-up). */
  googleModels?: GeminiModelInfo[];
  /** Betas accepted in `anthropic-beta` (default: the ones Vertex accepts). */
  messageBetas?: string[];
  countTokensBetas?: string[];
  /** Top-level Messages fields to accept beyond today's (to show unknown fields pass through a gateway). */
  extraMessageFields?: string[];
  /** Characters per streamed delta (default 24). */
  streamChunkChars?: number;
  /** Keep a record of requests (default true; the benchmark turns it off). */
  record?: boolean;
}

export interface VertexUpstream {
  /** Base URL (use as GRANTPOOL_VERTEX_BASE_URL): requests go to `${url}/v1/projects/...`. */
  readonly url: string;
  readonly requests: VertexRecordedRequest[];
  /** The inner Gemini stand-in answering publisher `google` (script it, read its requests). */
  readonly google: GeminiUpstream;
  /** Without `tokenInfo`: accept this token for `email` (scopes default to cloud-platform). */
  addToken(token: string, email: string, scopes?: string[]): void;
  revokeToken(token: string): void;
  /** Without `directory`: a project `users` may use, Vertex AI enabled unless `vertex: false`. */
  addProject(project: string, opts: { users: string[]; vertex?: boolean }): void;
  /** Model Garden: `project` may not use this Claude model (400 FAILED_PRECONDITION). */
  denyModel(project: string, model: string): void;
  /** Answers for the next Anthropic requests, in order (a function answers from the request body). */
  script(...answers: (ClaudeAnswer | ClaudeReply)[]): void;
  /** The Anthropic answer when nothing is scripted (default: an echo of the last user text). */
  setDefaultAnswer(answer: ClaudeAnswer | ClaudeReply | null): void;
  /** A text answer of `chars` characters for every unscripted Anthropic request (benchmark); 0 turns it off. */
  setLargeAnswer(chars: number, chunkChars?: number): void;
  failNext(kind: VertexFailureKind, opts?: VertexFailureOptions): void;
  clearFailures(): void;
  /** Requests `project` may still make for `model` ('*': every model) before 429 RESOURCE_EXHAUSTED. */
  setProjectQuota(project: string, model: string, requests: number): void;
  /** Generate requests served per project (both publishers). */
  readonly servedByProject: ReadonlyMap<string, number>;
  /** Thinking signatures issued so far (signature -> thinking text). */
  readonly signatures: ReadonlyMap<string, string>;
  readonly inFlight: number;
  clearRequests(): void;
  close(): Promise<void>;
}

const PATH = /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/([^/]+)\/models\/([^/:]+):([A-Za-z]+)$/;
const DEFAULT_LOCATIONS = ['global', 'us', 'eu', 'us-east5', 'us-central1', 'europe-west1', 'europe-west4', 'asia-southeast1', 'asia-east1'];
const SYSTEM_PARAMS = new Set(['alt', '$alt', 'fields', '$fields', 'prettyPrint', '$prettyPrint', 'quotaUser', '$.xgafv', 'key']);
const MSG_UNAUTHENTICATED =
  'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';
const MSG_MISSING_CREDENTIAL =
  'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';
const GEMINI_DOCS = 'https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/gemini';

interface GoogleErr {
  status: number;
  body: { error: Record<string, unknown> };
}

function rpcMethod(action: string): string {
  const name = action.charAt(0).toUpperCase() + action.slice(1);
  return `google.cloud.aiplatform.v1.PredictionService.${name}`;
}

function unauthenticated(message: string, action: string): GoogleErr {
  return {
    status: 401,
    body: googleError(401, message, [
      { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'ACCESS_TOKEN_TYPE_UNSUPPORTED', metadata: { service: AIPLATFORM, method: rpcMethod(action) } },
    ]),
  };
}

function serviceDisabled(project: string): GoogleErr {
  const activationUrl = `https://console.developers.google.com/apis/api/${AIPLATFORM}/overview?project=${project}`;
  return {
    status: 403,
    body: googleError(
      403,
      `Vertex AI API has not been used in project ${project} before or it is disabled. Enable it by visiting ${activationUrl} then retry. If you enabled this API recently, wait a few minutes for the action to propagate to our systems and retry.`,
      [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'SERVICE_DISABLED',
          domain: 'googleapis.com',
          metadata: { service: AIPLATFORM, consumer: `projects/${project}`, activationUrl, serviceTitle: 'Vertex AI API', containerInfo: project },
        },
        { '@type': 'type.googleapis.com/google.rpc.LocalizedMessage', locale: 'en-US', message: `Vertex AI API has not been used in project ${project} before or it is disabled.` },
        { '@type': 'type.googleapis.com/google.rpc.Help', links: [{ description: 'Google developers console API activation', url: activationUrl }] },
      ],
    ),
  };
}

function permissionDenied(resource: string): GoogleErr {
  return {
    status: 403,
    body: googleError(403, `Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/${resource}' (or it may not exist).`, [
      {
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: 'IAM_PERMISSION_DENIED',
        domain: 'aiplatform.googleapis.com',
        metadata: { permission: 'aiplatform.endpoints.predict', resource },
      },
    ]),
  };
}

function quotaExceeded(publisher: string, model: string, message?: string): GoogleErr {
  const base = publisher === 'anthropic' ? `anthropic-${model.split('@')[0]}` : model;
  return {
    status: 429,
    body: googleError(
      429,
      message ??
        (publisher === 'anthropic'
          ? `Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base model: ${base}. Please submit a quota increase request. https://cloud.google.com/vertex-ai/docs/generative-ai/quotas-genai.`
          : 'Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.'),
    ),
  };
}

export async function startVertexUpstream(options: VertexUpstreamOptions = {}): Promise<VertexUpstream> {
  const record = options.record ?? true;
  const requests: VertexRecordedRequest[] = [];
  const tokens = new Map<string, VertexTokenInfo>();
  const revoked = new Set<string>();
  const ownProjects = new Map<string, { users: Set<string>; vertex: boolean }>();
  const denied = new Set<string>();
  const failures: { kind: VertexFailureKind; opts: VertexFailureOptions; left: number }[] = [];
  const quotas = new Map<string, number>();
  const servedByProject = new Map<string, number>();
  const scripts: (ClaudeAnswer | ClaudeReply)[] = [];
  let defaultAnswer: ClaudeAnswer | ClaudeReply | null = null;
  let large: { text: string; chunkChars: number } | null = null;
  const signatures: SignatureBook = new Map();
  const promptCache = new Set<string>();
  const claudeModels = options.claudeModels ?? DEFAULT_CLAUDE_MODELS;
  const locations = new Set(options.locations ?? DEFAULT_LOCATIONS);
  const messageBetas = new Set(options.messageBetas ?? VERTEX_MESSAGE_BETAS);
  const countBetas = new Set(options.countTokensBetas ?? VERTEX_COUNT_TOKENS_BETAS);
  const extraFields = new Set(options.extraMessageFields ?? []);
  const chunkChars = options.streamChunkChars ?? 24;
  let inFlight = 0;
  let messageCounter = 0;

  // Publisher google is answered by a Gemini stand-in behind this one.
  const innerToken = `vertex-inner-${randomBytes(8).toString('hex')}`;
  const google = await startGeminiUpstream({ tokens: [innerToken], models: options.googleModels, record });
  const googleModels = new Set<string>();
  {
    const r = await fetch(`${google.url}/v1beta/models?pageSize=1000`, { headers: { authorization: `Bearer ${innerToken}` } });
    for (const m of ((await r.json()) as { models: { name: string }[] }).models) googleModels.add(m.name.replace(/^models\//, ''));
    google.clearRequests();
  }

  const directory: VertexDirectory = options.directory ?? {
    canUse: (email, project) => ownProjects.get(project)?.users.has(email.toLowerCase()) ?? false,
    isEnabled: (project, service) => service === AIPLATFORM && (ownProjects.get(project)?.vertex ?? false),
  };
  const tokenInfo = options.tokenInfo ?? (async (t: string) => tokens.get(t) ?? null);

  function takeFailure(project: string, model: string, publisher: string): (typeof failures)[number] | null {
    const i = failures.findIndex(
      (f) => (!f.opts.project || f.opts.project === project) && (!f.opts.model || f.opts.model === model) && (!f.opts.publisher || f.opts.publisher === publisher),
    );
    if (i === -1) return null;
    const f = failures[i]!;
    if (--f.left <= 0) failures.splice(i, 1);
    return f;
  }

  function sendGoogle(res: ServerResponse, err: GoogleErr, wrap: boolean): number {
    const rec = recordOf.get(res);
    if (rec) rec.error = String(err.body.error.message);
    // Vertex wraps errors in a one-element array on its streaming methods.
    const text = JSON.stringify(wrap ? [err.body] : err.body, null, 2);
    res.writeHead(err.status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
    return err.status;
  }

  function sendJson(res: ServerResponse, status: number, body: unknown): number {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'request-id': requestIdHeader() });
    res.end(text);
    return status;
  }

  function requestIdHeader(): string {
    return `req_vrtx_011C${randomBytes(12).toString('base64url')}`;
  }

  function sendAnthropicError(res: ServerResponse, e: AnthropicApiError, rec: VertexRecordedRequest): number {
    rec.error = `${e.type}: ${e.message}`;
    return sendJson(res, e.status, anthropicErrorBody(e.type, e.message));
  }

  async function handle(req: IncomingMessage, res: ServerResponse, rec: VertexRecordedRequest): Promise<number> {
    const chunks: Buffer[] = [];
    for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://vertex');
    const m = PATH.exec(url.pathname);
    const auth = req.headers.authorization;
    const token = auth && /^Bearer /i.test(auth) ? auth.slice(7).trim() : null;
    rec.path = url.pathname;
    rec.query = Object.fromEntries(url.searchParams);
    rec.token = token;
    rec.rawBody = raw;
    rec.userProject = typeof req.headers['x-goog-user-project'] === 'string' ? req.headers['x-goog-user-project'] : null;
    rec.sentApiKey = req.headers['x-api-key'] !== undefined || req.headers['x-goog-api-key'] !== undefined || url.searchParams.has('key');
    try {
      rec.body = raw ? JSON.parse(raw) : null;
    } catch {
      rec.body = raw;
    }
    if (!m) return sendGoogle(res, { status: 404, body: googleError(404, 'Method not found.') }, false);
    const [, projectRef, location, publisher, model, action] = m.map((x) => (x === undefined ? x : decodeURIComponent(x))) as [string, string, string, string, string, string];
    Object.assign(rec, { project: projectRef, location, publisher, model, action });
    const streaming = action === 'streamRawPredict';
    if (req.method !== 'POST') return sendGoogle(res, { status: 404, body: googleError(404, 'Method not found.') }, false);

    // Authentication and scope come first, as Google's front end checks them.
    if (!token) return sendGoogle(res, unauthenticated(MSG_MISSING_CREDENTIAL, action), streaming);
    const info = revoked.has(token) ? null : await tokenInfo(token);
    if (!info) return sendGoogle(res, unauthenticated(MSG_UNAUTHENTICATED, action), streaming);
    const email = info.email.toLowerCase();
    rec.email = email;
    if (!info.scopes.includes(CLOUD_PLATFORM_SCOPE)) {
      return sendGoogle(res, {
        status: 403,
        body: googleError(403, 'Request had insufficient authentication scopes.', [
          { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'ACCESS_TOKEN_SCOPE_INSUFFICIENT', domain: 'googleapis.com', metadata: { service: AIPLATFORM, method: rpcMethod(action) } },
        ]),
      }, streaming);
    }
    const resource = `projects/${projectRef}/locations/${location}/publishers/${publisher}/models/${model}`;
    if (!directory.canUse(email, projectRef)) return sendGoogle(res, permissionDenied(resource), streaming);
    if (rec.userProject && !directory.canUse(email, rec.userProject)) return sendGoogle(res, permissionDenied(resource), streaming);
    if (!directory.isEnabled(projectRef, AIPLATFORM)) return sendGoogle(res, serviceDisabled(projectRef), streaming);
    if (!locations.has(location)) {
      return sendGoogle(res, { status: 400, body: googleError(400, `Location ${location} is not supported. Supported locations: ${[...locations].join(', ')}.`) }, streaming);
    }
    for (const name of url.searchParams.keys()) {
      if (SYSTEM_PARAMS.has(name)) continue;
      return sendGoogle(res, { status: 400, body: googleError(400, `Invalid JSON payload received. Unknown name "${name}": Cannot bind query parameter. Field '${name}' could not be found in request message.`) }, streaming);
    }

    if (publisher === 'anthropic') return anthropic(req, res, rec, { project: projectRef, location, model, action, resource, raw });
    if (publisher === 'google') return gemini(req, res, rec, { project: projectRef, model, action, resource, raw, url });
    return sendGoogle(res, { status: 404, body: googleError(404, `Publisher Model \`${resource}\` not found.`) }, streaming);
  }

  /** Per project and model quota, and the scripted failure for this request (null: go on). */
  function meter(project: string, model: string, publisher: string): GoogleErr | null {
    const key = quotas.has(`${project}\u0000${model}`) ? `${project}\u0000${model}` : quotas.has(`${project}\u0000*`) ? `${project}\u0000*` : null;
    if (key) {
      const left = quotas.get(key)!;
      if (left <= 0) return quotaExceeded(publisher, model);
      quotas.set(key, left - 1);
    }
    servedByProject.set(project, (servedByProject.get(project) ?? 0) + 1);
    return null;
  }

  /** A scripted failure answered before the body is looked at; 'pass' when the request goes on, with a mid-stream kind possibly pending. */
  function failBefore(res: ServerResponse, f: (typeof failures)[number] | null, publisher: string, model: string, wrap: boolean): number | 'pass' {
    if (!f) return 'pass';
    switch (f.kind) {
      case 'unauthorized':
        return sendGoogle(res, unauthenticated(f.opts.message ?? MSG_UNAUTHENTICATED, 'rawPredict'), wrap);
      case 'rate_limited':
        return sendGoogle(res, quotaExceeded(publisher, model, f.opts.message), wrap);
      case 'overloaded':
        return sendJson(res, 529, anthropicErrorBody('overloaded_error', f.opts.message ?? 'Overloaded'));
      case 'server_error':
        return sendGoogle(res, { status: 500, body: googleError(500, f.opts.message ?? 'Internal error encountered.') }, wrap);
      case 'unavailable':
        return sendGoogle(res, { status: 503, body: googleError(503, f.opts.message ?? 'The service is currently unavailable.') }, wrap);
      case 'reset':
        res.socket?.destroy();
        return 0;
      default:
        return 'pass';
    }
  }

  function pickAnswer(body: Record<string, unknown>): { answer: ClaudeAnswer; size: number } {
    const next = scripts.shift() ?? null;
    const chosen = next ?? (large ? null : defaultAnswer);
    if (chosen) {
      const a = typeof chosen === 'function' ? chosen(body) : chosen;
      return { answer: a, size: a.chunkChars ?? chunkChars };
    }
    if (large) return { answer: { content: [{ type: 'text', text: large.text }] }, size: large.chunkChars };
    return { answer: { content: [{ type: 'text', text: `Echo: ${lastUserText(body).slice(0, 200)}` }] }, size: chunkChars };
  }

  async function anthropic(
    req: IncomingMessage,
    res: ServerResponse,
    _rec: VertexRecordedRequest,
    c: { project: string; location: string; model: string; action: string; resource: string; raw: string },
  ): Promise<number> {
    const streaming = c.action === 'streamRawPredict';
    const betas = parseBetas(req.headers['anthropic-beta']);
    let parsed: unknown;
    try {
      parsed = c.raw ? JSON.parse(c.raw) : undefined;
    } catch (e) {
      return sendGoogle(res, { status: 400, body: googleError(400, `Invalid JSON payload received. ${(e as Error).message}`) }, streaming);
    }
    if (c.model === 'count-tokens') {
      if (c.action !== 'rawPredict') return sendGoogle(res, { status: 404, body: googleError(404, `Publisher Model \`${c.resource}\` not found.`) }, false);
      try {
        checkBetas(betas, countBetas);
        const { body, model } = checkCountTokensRequest(parsed, { betas, signatures, extraFields }, claudeModels);
        if (denied.has(`${c.project}\u0000${model.id}`)) return sendGoogle(res, notAllowed(c.project, c.resource.replace('count-tokens', model.id)), false);
        return sendJson(res, 200, { input_tokens: inputTokens(body) });
      } catch (e) {
        if (e instanceof AnthropicApiError) return sendAnthropicError(res, e, _rec);
        throw e;
      }
    }
    if (c.action !== 'rawPredict' && c.action !== 'streamRawPredict') {
      return sendGoogle(res, { status: 400, body: googleError(400, `Publisher model ${c.model} does not support ${c.action}; use rawPredict or streamRawPredict.`) }, false);
    }
    const info = claudeModels.find((m) => m.id === c.model);
    if (!info) return sendGoogle(res, { status: 404, body: googleError(404, `Publisher Model \`${c.resource}\` not found.`) }, streaming);
    if (denied.has(`${c.project}\u0000${c.model}`)) return sendGoogle(res, notAllowed(c.project, c.resource), streaming);
    const failure = takeFailure(c.project, c.model, 'anthropic');
    const early = failBefore(res, failure, 'anthropic', c.model, streaming);
    if (early !== 'pass') return early;
    const quota = meter(c.project, c.model, 'anthropic');
    if (quota) return sendGoogle(res, quota, streaming);

    let body: Record<string, unknown>;
    try {
      checkBetas(betas, messageBetas);
      body = checkMessagesRequest(parsed, { betas, model: info, signatures, extraFields });
      const wantsStream = body.stream === true;
      if (wantsStream !== streaming) {
        throw new AnthropicApiError(400, 'invalid_request_error', streaming ? 'stream: streamRawPredict requires `"stream": true`' : 'stream: rawPredict does not stream; use streamRawPredict');
      }
    } catch (e) {
      if (e instanceof AnthropicApiError) return sendAnthropicError(res, e, _rec);
      throw e;
    }

    const { answer, size } = pickAnswer(body);
    const content = renderContent(answer, body, signatures);
    const cache = cacheUsage(body, promptCache, c.project);
    const input = answer.usage?.input_tokens ?? Math.max(1, inputTokens(body) - cache.cache_read_input_tokens - cache.cache_creation_input_tokens);
    const output = answer.usage?.output_tokens ?? Math.max(1, estimateTokens(content));
    const message: Record<string, unknown> = {
      id: `msg_vrtx_01${randomBytes(12).toString('base64url')}${(++messageCounter).toString(36)}`,
      type: 'message',
      role: 'assistant',
      model: c.model.replace('@', '-'),
      content,
      stop_reason: stopReason(answer, content),
      stop_sequence: null,
      usage: { input_tokens: input, ...cache, output_tokens: output },
    };
    if (!streaming) return sendJson(res, 200, message);

    const events = streamEvents(message, content, size);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'request-id': requestIdHeader() });
    const breakAfter = failure && (failure.kind === 'error_mid_stream' || failure.kind === 'reset_mid_stream') ? (failure.opts.afterEvents ?? 2) : -1;
    for (let i = 0; i < events.length; i++) {
      if (i === breakAfter) {
        if (failure!.kind === 'reset_mid_stream') {
          await new Promise((r) => setTimeout(r, 5));
          res.socket?.destroy();
          return 200;
        }
        res.end(`event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: failure!.opts.message ?? 'Overloaded' } })}\n\n`);
        return 200;
      }
      const [name, data] = events[i]!;
      if (!res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`)) await new Promise<void>((r) => res.once('drain', () => r()));
      if (res.destroyed) return 200;
    }
    res.end();
    return 200;
  }

  function notAllowed(project: string, resource: string): GoogleErr {
    return {
      status: 400,
      body: { error: { code: 400, message: `Project \`${project}\` is not allowed to use Publisher Model \`${resource}\``, status: 'FAILED_PRECONDITION' } },
    };
  }

  async function gemini(
    req: IncomingMessage,
    res: ServerResponse,
    _rec: VertexRecordedRequest,
    c: { project: string; model: string; action: string; resource: string; raw: string; url: URL },
  ): Promise<number> {
    if (!['generateContent', 'streamGenerateContent', 'countTokens'].includes(c.action)) {
      return sendGoogle(res, { status: 400, body: googleError(400, `* ${c.action} is not supported by the stand-in.\n`) }, false);
    }
    if (!googleModels.has(c.model)) return sendGoogle(res, { status: 404, body: googleError(404, `Publisher Model \`${c.resource}\` not found.`) }, false);
    let parsed: unknown;
    try {
      parsed = c.raw ? JSON.parse(c.raw) : {};
    } catch (e) {
      return sendGoogle(res, { status: 400, body: googleError(400, `Invalid JSON payload received. ${(e as Error).message}`) }, false);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      return sendGoogle(res, { status: 400, body: googleError(400, 'Invalid JSON payload received. Expected an object.') }, false);
    }
    const body = { ...(parsed as Record<string, unknown>) };
    // Vertex requires a role on every content (the Gemini API does not).
    const contents = Array.isArray(body.contents) ? (body.contents as unknown[]) : [];
    if (contents.some((ct) => typeof ct !== 'object' || ct === null || !['user', 'model'].includes(String((ct as Record<string, unknown>).role)))) {
      return sendGoogle(res, { status: 400, body: googleError(400, `Unable to submit request because Please use a valid role: user, model.. Learn more: ${GEMINI_DOCS}`) }, false);
    }
    if (body.labels !== undefined) {
      const labels = body.labels;
      if (typeof labels !== 'object' || labels === null || Object.values(labels).some((v) => typeof v !== 'string')) {
        return sendGoogle(res, { status: 400, body: googleError(400, "Invalid value at 'labels'") }, false);
      }
      delete body.labels;
    }
    let target: string;
    let forward: unknown = body;
    if (c.action === 'countTokens') {
      for (const k of Object.keys(body)) {
        if (!['contents', 'systemInstruction', 'system_instruction', 'tools', 'generationConfig', 'generation_config', 'model', 'instances'].includes(k)) {
          return sendGoogle(res, { status: 400, body: googleError(400, `Invalid JSON payload received. Unknown name "${k}": Cannot find field.`) }, false);
        }
      }
      const { model: _m, instances: _i, ...rest } = body;
      forward = { generateContentRequest: { model: `models/${c.model}`, ...rest } };
      target = `${google.url}/v1beta/models/${encodeURIComponent(c.model)}:countTokens`;
    } else {
      const failure = takeFailure(c.project, c.model, 'google');
      const early = failBefore(res, failure, 'google', c.model, false);
      if (early !== 'pass') return early;
      const quota = meter(c.project, c.model, 'google');
      if (quota) return sendGoogle(res, quota, false);
      target = `${google.url}/v1beta/models/${encodeURIComponent(c.model)}:${c.action}${c.url.search}`;
    }
    const upstream = await fetch(target, {
      method: 'POST',
      headers: { authorization: `Bearer ${innerToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(forward),
    });
    if (c.action === 'countTokens' && upstream.ok) {
      const counted = (await upstream.json()) as Record<string, unknown>;
      return sendJson(res, 200, { totalTokens: counted.totalTokens, totalBillableCharacters: Number(counted.totalTokens) * 4, promptTokensDetails: counted.promptTokensDetails });
    }
    res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
    if (upstream.body) {
      for await (const chunk of upstream.body as unknown as AsyncIterable<Uint8Array>) {
        if (!res.write(chunk)) await new Promise<void>((r) => res.once('drain', () => r()));
        if (res.destroyed) return upstream.status;
      }
    }
    res.end();
    return upstream.status;
  }

  const recordOf = new WeakMap<ServerResponse, VertexRecordedRequest>();
  const server: Server = createServer((req, res) => {
    inFlight++;
    const rec: VertexRecordedRequest = {
      time: Date.now(), method: req.method ?? 'GET', path: '', query: {}, project: null, location: null, publisher: null, model: null,
      action: null, token: null, email: null, userProject: null, sentApiKey: false, headers: req.headers, rawBody: '', body: null, status: 0,
    };
    if (record) requests.push(rec);
    recordOf.set(res, rec);
    let counted = true;
    res.on('close', () => {
      if (counted) {
        counted = false;
        inFlight--;
      }
    });
    handle(req, res, rec)
      .then((s) => (rec.status = s))
      .catch((e) => {
        rec.status = 500;
        if (!res.headersSent) sendGoogle(res, { status: 500, body: googleError(500, `stand-in failure: ${(e as Error).message}`) }, false);
        else res.destroy();
      });
  });
  server.keepAliveTimeout = 60_000;
  const listening = await listenLoopback(server);

  return {
    url: listening.url,
    requests,
    google,
    addToken(token, email, scopes = [CLOUD_PLATFORM_SCOPE]) {
      revoked.delete(token);
      tokens.set(token, { email, scopes });
    },
    revokeToken(token) {
      tokens.delete(token);
      revoked.add(token);
    },
    addProject(project, o) {
      ownProjects.set(project, { users: new Set(o.users.map((u) => u.toLowerCase())), vertex: o.vertex ?? true });
    },
    denyModel(project, model) {
      denied.add(`${project}\u0000${model}`);
    },
    script(...answers) {
      scripts.push(...answers);
    },
    setDefaultAnswer(answer) {
      defaultAnswer = answer;
    },
    setLargeAnswer(chars, size = 1024) {
      large = chars > 0 ? { text: 'x'.repeat(chars), chunkChars: size } : null;
    },
    failNext(kind, opts = {}) {
      if ((opts.times ?? 1) > 0) failures.push({ kind, opts, left: opts.times ?? 1 });
    },
    clearFailures() {
      failures.length = 0;
    },
    setProjectQuota(project, model, n) {
      quotas.set(`${project}\u0000${model}`, n);
    },
    servedByProject,
    signatures,
    get inFlight() {
      return inFlight;
    },
    clearRequests() {
      requests.length = 0;
      google.clearRequests();
    },
    async close() {
      await listening.close();
      await google.close();
    },
  };
}
