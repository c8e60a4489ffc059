// A local stand-in for the public Gemini API (generativelanguage.googleapis.com),
// speaking its wire format: model listing, generateContent,
// streamGenerateContent (?alt=sse: `data: {...}\r\n\r\n` events, or a streamed
// JSON array without it), countTokens. It checks bearer tokens and
// x-goog-user-project, answers with Google's own error bodies, enforces the
// rules the real API enforces that a gateway can get wrong (thought
// signatures, the OpenAPI-subset schema fields, unknown fields, roles, the
// function call / response pairing), and can be told to fail in every way the
// real API fails (401, 429 with RetryInfo / QuotaFailure, 403
// SERVICE_DISABLED, 500, 503, connection resets, slow first byte, stalls).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { findSchemaViolation } from './gemini-schema-rules.ts';
import { listenLoopback } from './listen.ts';

// ---------------------------------------------------------------------------
// Public types

export interface GeminiModelInfo {
  name: string;
  version?: string;
  displayName?: string;
  description?: string;
  inputTokenLimit?: number;
  outputTokenLimit?: number;
  supportedGenerationMethods?: string[];
  temperature?: number;
  topP?: number;
  topK?: number;
  maxTemperature?: number;
  thinking?: boolean;
}

export type FailureKind =
  /** 401 UNAUTHENTICATED (as for an expired access token). */
  | 'unauthorized'
  /** 429 RESOURCE_EXHAUSTED with RetryInfo (default "37s") and a per-minute QuotaFailure. */
  | 'rate_limited'
  /** 429 RESOURCE_EXHAUSTED with a per-day QuotaFailure (GenerateRequestsPerDayPerProjectPerModel). */
  | 'daily_quota'
  /** 403 PERMISSION_DENIED, ErrorInfo SERVICE_DISABLED with an activationUrl. */
  | 'service_disabled'
  /** 403 PERMISSION_DENIED without SERVICE_DISABLED. */
  | 'permission_denied'
  /** 400 INVALID_ARGUMENT. */
  | 'bad_request'
  /** 500 INTERNAL. */
  | 'server_error'
  /** 503 UNAVAILABLE ("The model is overloaded"). */
  | 'unavailable'
  /** The connection is destroyed before any response byte. */
  | 'reset'
  /** Headers and `afterChunks` stream chunks (default 1) are sent, then the connection is destroyed. */
  | 'reset_mid_stream'
  /** Headers and `afterChunks` chunks are sent, then nothing more (until the client gives up). */
  | 'stall_mid_stream'
  /** The answer starts only after `delayMs` (default 1000 ms), then proceeds normally. */
  | 'slow_first_byte'
  /**
   * Exactly the answer in `opts.raw` (status, headers, body bytes): what a
   * broken front end or proxy sends (a 200 with an HTML page, truncated or
   * empty JSON, `null`, a huge error body).
   */
  | 'raw_answer';

export interface FailureOptions {
  /** How many requests fail this way (default 1; Infinity for always). */
  times?: number;
  /** rate_limited / daily_quota: RetryInfo.retryDelay ("37s"); null leaves RetryInfo out. */
  retryDelay?: string | null;
  /** slow_first_byte: delay in ms. */
  delayMs?: number;
  /** reset_mid_stream / stall_mid_stream: chunks sent before the failure. */
  afterChunks?: number;
  /** Only requests for this model fail. */
  model?: string;
  /** Overrides the error message. */
  message?: string;
  /** service_disabled: the project number in the activation URL. */
  project?: string;
  /** raw_answer: what to send. */
  raw?: { status: number; headers?: Record<string, string>; body: string | Buffer };
}

export type ScriptedPart =
  | { text: string; thought?: boolean; thoughtSignature?: boolean }
  | { functionCall: { name: string; args?: Record<string, unknown>; id?: string }; thoughtSignature?: boolean };

export interface ScriptedAnswer {
  parts: ScriptedPart[];
  finishReason?: string;
  /** Token counts to report; unset ones are estimated. */
  usage?: { promptTokenCount?: number; candidatesTokenCount?: number; thoughtsTokenCount?: number };
  /** Streaming: characters of text per chunk (default: the upstream's streamChunkChars). */
  chunkChars?: number;
  /** Streaming: stop after this many chunks until `resume` settles (to show chunks are forwarded as they arrive). */
  pauseAfterChunks?: number;
  resume?: Promise<void>;
}

/** An answer chosen when the request arrives, from its body (e.g. only when a tool's output came back). */
export type ScriptedReply = (body: Record<string, unknown>) => ScriptedAnswer;

export interface RecordedRequest {
  time: number;
  method: string;
  path: string;
  query: Record<string, string>;
  /** generateContent | streamGenerateContent | countTokens | list | get | ... */
  action: string;
  model: string | null;
  /** The bearer token sent (test data only). */
  token: string | null;
  userProject: string | null;
  /** With metering: the project the request was charged to. */
  consumerProject?: string;
  /** True when the request carried an API key (x-goog-api-key or ?key=): a gateway must never forward one. */
  sentApiKey: boolean;
  headers: IncomingMessage['headers'];
  body: unknown;
  status: number;
}

export interface GeminiUpstreamOptions {
  /** Tokens accepted from the start. */
  tokens?: Iterable<string>;
  /** Accepts tokens not added with addToken (e.g. ones the OIDC stand-in issued). */
  validateToken?: (token: string) => boolean | Promise<boolean>;
  /** Models served (default: a current Gemini line-up). */
  models?: GeminiModelInfo[];
  /** Fixed delay before every generate answer, in ms (0 = answer at once). */
  delayMs?: number;
  /** Characters of text per streamed chunk (default 40). */
  streamChunkChars?: number;
  /** Keep a record of requests (default true; the benchmark turns it off). */
  record?: boolean;
  /** Meter as Google does: per consumer project, with the token's user and scopes (see GeminiMetering). */
  metering?: GeminiMetering;
}

/**
 * Google's metering (SPEC section 7): the consumer project is
 * x-goog-user-project when present (403 USER_PROJECT_DENIED when the user may
 * not use it, SERVICE_DISABLED when the Generative Language API is off
 * there), otherwise the OAuth client's project; only generative-language*
 * scopes are accepted (403 ACCESS_TOKEN_SCOPE_INSUFFICIENT); quotas (see
 * setProjectQuota) are per project and model.
 */
export interface GeminiMetering {
  tokenInfo(token: string): Promise<{ email: string; scopes: string[] } | null>;
  clientProject: string;
  canUse(email: string, project: string): boolean;
  isEnabled(project: string, service: string): boolean;
}

export interface GeminiUpstream {
  /** Base URL, e.g. http://127.0.0.1:PORT (use as GRANTPOOL_GEMINI_BASE_URL). */
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Accept this token; with `project`, requests must send `x-goog-user-project: <project>`. */
  addToken(token: string, opts?: { project?: string | null }): void;
  /** Reject this token from now on (also when validateToken would accept it). */
  revokeToken(token: string): void;
  /** The next `times` requests with this token ('*': any token) fail this way. */
  failNext(tokenOrAny: string, kind: FailureKind, opts?: FailureOptions): void;
  /** Drop every pending failure. */
  clearFailures(): void;
  /** Queue answers for the next generate requests, in order (a function answers from the request body). */
  script(...answers: (ScriptedAnswer | ScriptedReply)[]): void;
  /** The answer used when nothing is scripted (default: an echo of the last user text). */
  setDefaultAnswer(answer: ScriptedAnswer | null): void;
  /** A text answer of `bytes` characters for every request without a script (benchmark); 0 turns it off. */
  setLargeAnswer(bytes: number, chunkChars?: number): void;
  setDelay(ms: number): void;
  /** Thought signatures issued so far. */
  readonly issuedSignatures: ReadonlySet<string>;
  /** Requests currently being answered (open streams included). */
  readonly inFlight: number;
  /**
   * With metering: generate requests `project` may still make for `model` ('*': every model)
   * before it gets 429 RESOURCE_EXHAUSTED (per minute, RetryInfo `retryDelay`, default "37s").
   */
  setProjectQuota(project: string, model: string, requests: number, retryDelay?: string): void;
  /** Generate requests served per consumer project (with metering). */
  readonly servedByProject: ReadonlyMap<string, number>;
  clearRequests(): void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Google's error bodies

const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

export function googleError(code: number, message: string, details?: unknown[]): { error: Record<string, unknown> } {
  const error: Record<string, unknown> = { code, message, status: STATUS_NAMES[code] ?? 'UNKNOWN' };
  if (details && details.length) error.details = details;
  return { error };
}

const MSG_UNAUTHENTICATED =
  'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';
const MSG_MISSING_CREDENTIAL =
  'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';
const MSG_QUOTA =
  'You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.';
/** Google's system parameters, accepted on every method. */
const SYSTEM_PARAMS = new Set([
  'alt', '$alt', 'key', 'fields', '$fields', 'prettyPrint', '$prettyPrint', 'quotaUser', '$quotaUser', 'callback',
  'upload_protocol', 'uploadType', 'access_token', '$.xgafv',
]);
const SIGNATURE_DOCS = 'https://ai.google.dev/gemini-api/docs/thought-signatures';
const DUMMY_SIGNATURES = new Set(['context_engineering_is_the_way_to_go', 'skip_thought_signature_validator']);

function unauthenticatedBody(message: string) {
  return googleError(401, message, [
    {
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
      reason: 'ACCESS_TOKEN_TYPE_UNSUPPORTED',
      metadata: { service: 'generativelanguage.googleapis.com', method: 'google.ai.generativelanguage.v1beta.GenerativeService.GenerateContent' },
    },
  ]);
}

function quotaBody(model: string, daily: boolean, retryDelay: string | null | undefined, message?: string) {
  const details: unknown[] = [
    {
      '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
      violations: [
        daily
          ? {
              quotaMetric: 'generativelanguage.googleapis.com/generate_content_requests',
              quotaId: 'GenerateRequestsPerDayPerProjectPerModel',
              quotaDimensions: { location: 'global', model },
              quotaValue: '250',
            }
          : {
              quotaMetric: 'generativelanguage.googleapis.com/generate_content_requests',
              quotaId: 'GenerateRequestsPerMinutePerProjectPerModel',
              quotaDimensions: { location: 'global', model },
              quotaValue: '10',
            },
      ],
    },
    {
      '@type': 'type.googleapis.com/google.rpc.Help',
      links: [{ description: 'Learn more about Gemini API quotas', url: 'https://ai.google.dev/gemini-api/docs/rate-limits' }],
    },
  ];
  const delay = retryDelay === undefined ? (daily ? null : '37s') : retryDelay;
  if (delay !== null) details.push({ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: delay });
  return googleError(429, message ?? MSG_QUOTA, details);
}

function serviceDisabledBody(project: string, message?: string) {
  const activationUrl = `https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/overview?project=${project}`;
  return googleError(
    403,
    message ??
      `Generative Language API has not been used in project ${project} before or it is disabled. Enable it by visiting ${activationUrl} then retry. If you enabled this API recently, wait a few minutes for the action to propagate to our systems and retry.`,
    [
      {
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: 'SERVICE_DISABLED',
        domain: 'googleapis.com',
        metadata: {
          service: 'generativelanguage.googleapis.com',
          consumer: `projects/${project}`,
          activationUrl,
          serviceTitle: 'Generative Language API',
          containerInfo: project,
        },
      },
      {
        '@type': 'type.googleapis.com/google.rpc.LocalizedMessage',
        locale: 'en-US',
        message: `Generative Language API has not been used in project ${project} before or it is disabled.`,
      },
      {
        '@type': 'type.googleapis.com/google.rpc.Help',
        links: [{ description: 'Google developers console API activation', url: activationUrl }],
      },
    ],
  );
}

function userProjectDeniedBody(project: string) {
  return googleError(
    403,
    `Caller does not have required permission to use project ${project}. Grant the caller the roles/serviceusage.serviceUsageConsumer role, or a custom role with the serviceusage.services.use permission, by visiting https://console.developers.google.com/iam-admin/iam/project?project=${project} and then retry. Propagation of the new permission may take a few minutes.`,
    [
      {
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: 'USER_PROJECT_DENIED',
        domain: 'googleapis.com',
        metadata: { consumer: `projects/${project}`, service: 'generativelanguage.googleapis.com' },
      },
    ],
  );
}

// ---------------------------------------------------------------------------
// Request validation (what the real API refuses)

class ApiError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function camel(name: string): string {
  return name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}
function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

/** Field of a proto JSON object, by lowerCamel or snake_case name. */
function field(obj: Record<string, unknown>, name: string): unknown {
  return obj[name] !== undefined ? obj[name] : obj[snake(name)];
}

const REQUEST_FIELDS = new Set([
  'model', 'contents', 'tools', 'toolConfig', 'safetySettings', 'systemInstruction', 'generationConfig', 'cachedContent',
]);
const GENERATION_CONFIG_FIELDS = new Set([
  'stopSequences', 'responseMimeType', 'responseSchema', 'responseJsonSchema', 'responseModalities', 'candidateCount',
  'maxOutputTokens', 'temperature', 'topP', 'topK', 'seed', 'presencePenalty', 'frequencyPenalty', 'responseLogprobs',
  'logprobs', 'enableEnhancedCivicAnswers', 'speechConfig', 'thinkingConfig', 'imageConfig', 'mediaResolution',
]);
const THINKING_CONFIG_FIELDS = new Set(['includeThoughts', 'thinkingBudget', 'thinkingLevel']);
const CONTENT_FIELDS = new Set(['role', 'parts']);
const PART_FIELDS = new Set([
  'text', 'inlineData', 'fileData', 'functionCall', 'functionResponse', 'executableCode', 'codeExecutionResult',
  'thought', 'thoughtSignature', 'videoMetadata', 'partMetadata',
]);
const TOOL_FIELDS = new Set([
  'functionDeclarations', 'googleSearchRetrieval', 'codeExecution', 'googleSearch', 'computerUse', 'urlContext',
  'fileSearch', 'googleMaps',
]);
const FUNCTION_DECLARATION_FIELDS = new Set([
  'name', 'description', 'parameters', 'parametersJsonSchema', 'response', 'responseJsonSchema', 'behavior',
]);
const FUNCTION_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/;

function checkFields(obj: Record<string, unknown>, known: Set<string>, at: string | null): void {
  for (const key of Object.keys(obj)) {
    if (!known.has(camel(key))) {
      throw new ApiError(400, `Invalid JSON payload received. Unknown name "${key}"${at ? ` at '${at}'` : ''}: Cannot find field.`);
    }
  }
}

function checkContent(content: unknown, at: string): void {
  if (!isObject(content)) throw new ApiError(400, `Invalid value at '${at}' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), ${JSON.stringify(content)}`);
  checkFields(content, CONTENT_FIELDS, at);
  const role = content.role;
  if (role !== undefined && role !== '' && role !== 'user' && role !== 'model') {
    throw new ApiError(400, 'Please use a valid role: user, model.');
  }
  const parts = content.parts;
  if (!Array.isArray(parts) || parts.length === 0) {
    throw new ApiError(400, `* GenerateContentRequest.${at}.parts: contents.parts must not be empty.\n`);
  }
  parts.forEach((part, i) => {
    const p = `${at}.parts[${i}]`;
    if (!isObject(part)) throw new ApiError(400, `Invalid value at '${p}' (type.googleapis.com/google.ai.generativelanguage.v1beta.Part), ${JSON.stringify(part)}`);
    checkFields(part, PART_FIELDS, p);
    const data = ['text', 'inlineData', 'fileData', 'functionCall', 'functionResponse', 'executableCode', 'codeExecutionResult'].filter(
      (k) => field(part, k) !== undefined,
    );
    if (data.length === 0) {
      throw new ApiError(400, `* GenerateContentRequest.${p}.data: required oneof field 'data' must have one initialized field\n`);
    }
    if (data.length > 1) {
      throw new ApiError(400, `Invalid JSON payload received. Oneof field 'data' is already set. Cannot set '${data[1]}'`);
    }
    const text = field(part, 'text');
    if (text !== undefined && typeof text !== 'string') throw new ApiError(400, `Invalid value at '${p}.text' (TYPE_STRING), ${JSON.stringify(text)}`);
    // A function call and a function response: a name, and an object (a Struct) for its arguments / response.
    for (const [key, wire, payload] of [['functionCall', 'function_call', 'args'], ['functionResponse', 'function_response', 'response']] as const) {
      const f = field(part, key);
      if (f === undefined) continue;
      if (!isObject(f) || typeof f.name !== 'string' || !f.name) {
        throw new ApiError(400, `* GenerateContentRequest.${p}.${wire}.name: Name cannot be empty.\n`);
      }
      if (f[payload] !== undefined && !isObject(f[payload])) {
        throw new ApiError(400, `Invalid value at '${p}.${wire}.${payload}' (type.googleapis.com/google.protobuf.Struct), ${JSON.stringify(f[payload])}`);
      }
    }
    const inline = field(part, 'inlineData');
    if (inline !== undefined) {
      if (!isObject(inline) || typeof field(inline, 'mimeType') !== 'string' || typeof inline.data !== 'string') {
        throw new ApiError(400, `* GenerateContentRequest.${p}.inline_data: mime_type and data are required\n`);
      }
      if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(inline.data)) {
        throw new ApiError(400, `Invalid value at '${p}.inline_data.data' (TYPE_BYTES), Base64 decoding failed for "${inline.data.slice(0, 40)}"`);
      }
    }
  });
}

function checkTools(tools: unknown): void {
  if (tools === undefined) return;
  if (!Array.isArray(tools)) throw new ApiError(400, `Invalid JSON payload received. Unknown name "tools": Proto field is not repeating, cannot start list.`);
  tools.forEach((tool, t) => {
    const at = `tools[${t}]`;
    if (!isObject(tool)) throw new ApiError(400, `Invalid value at '${at}' (type.googleapis.com/google.ai.generativelanguage.v1beta.Tool), ${JSON.stringify(tool)}`);
    checkFields(tool, TOOL_FIELDS, at);
    const decls = field(tool, 'functionDeclarations');
    if (decls === undefined) return;
    if (!Array.isArray(decls)) throw new ApiError(400, `Invalid value at '${at}.function_declarations'`);
    decls.forEach((decl, d) => {
      const dat = `${at}.function_declarations[${d}]`;
      if (!isObject(decl)) throw new ApiError(400, `Invalid value at '${dat}' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionDeclaration), ${JSON.stringify(decl)}`);
      checkFields(decl, FUNCTION_DECLARATION_FIELDS, dat);
      if (typeof decl.name !== 'string' || !FUNCTION_NAME.test(decl.name)) {
        throw new ApiError(
          400,
          `* GenerateContentRequest.${dat}.name: Invalid function name. Must start with a letter or an underscore. Must be a-z, A-Z, 0-9, or contain underscores, dots, colons and dashes, with a maximum length of 64.\n`,
        );
      }
      const params = field(decl, 'parameters');
      const paramsJson = field(decl, 'parametersJsonSchema');
      if (params !== undefined && params !== null && paramsJson !== undefined && paramsJson !== null) {
        throw new ApiError(400, `* GenerateContentRequest.${dat}: parameters and parameters_json_schema cannot both be set.\n`);
      }
      if (params !== undefined && params !== null) {
        const v = findSchemaViolation(params, `${dat}.parameters`);
        if (v) throw new ApiError(400, v);
      }
      const response = field(decl, 'response');
      if (response !== undefined && response !== null) {
        const v = findSchemaViolation(response, `${dat}.response`);
        if (v) throw new ApiError(400, v);
      }
      if (paramsJson !== undefined && paramsJson !== null && !isObject(paramsJson) && typeof paramsJson !== 'boolean') {
        throw new ApiError(400, `Invalid value at '${dat}.parameters_json_schema' (type.googleapis.com/google.protobuf.Value)`);
      }
    });
  });
}

function checkGenerationConfig(gc: unknown): void {
  if (gc === undefined) return;
  if (!isObject(gc)) throw new ApiError(400, `Invalid value at 'generation_config' (type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig), ${JSON.stringify(gc)}`);
  checkFields(gc, GENERATION_CONFIG_FIELDS, 'generation_config');
  const tc = field(gc, 'thinkingConfig');
  if (tc !== undefined) {
    if (!isObject(tc)) throw new ApiError(400, `Invalid value at 'generation_config.thinking_config'`);
    checkFields(tc, THINKING_CONFIG_FIELDS, 'generation_config.thinking_config');
  }
  for (const name of ['temperature', 'topP', 'presencePenalty', 'frequencyPenalty']) {
    const v = field(gc, name);
    if (v !== undefined && v !== null && typeof v !== 'number') {
      throw new ApiError(400, `Invalid value at 'generation_config.${snake(name)}' (TYPE_FLOAT), ${JSON.stringify(v)}`);
    }
  }
  for (const name of ['maxOutputTokens', 'topK', 'candidateCount', 'seed']) {
    const v = field(gc, name);
    if (v !== undefined && v !== null && !(typeof v === 'number' && Number.isInteger(v))) {
      throw new ApiError(400, `Invalid value at 'generation_config.${snake(name)}' (TYPE_INT32), ${JSON.stringify(v)}`);
    }
  }
  const stop = field(gc, 'stopSequences');
  if (stop !== undefined && (!Array.isArray(stop) || stop.length > 5 || stop.some((s) => typeof s !== 'string'))) {
    throw new ApiError(400, `* GenerateContentRequest.generation_config.stop_sequences: at most 5 stop sequences of type string are allowed\n`);
  }
  const rs = field(gc, 'responseSchema');
  if (rs !== undefined && rs !== null) {
    const v = findSchemaViolation(rs, 'generation_config.response_schema');
    if (v) throw new ApiError(400, v);
    if (field(gc, 'responseJsonSchema') !== undefined) {
      throw new ApiError(400, '* GenerateContentRequest.generation_config.response_schema: response_schema and response_json_schema cannot both be set.\n');
    }
  }
  const mime = field(gc, 'responseMimeType');
  if ((rs !== undefined || field(gc, 'responseJsonSchema') !== undefined) && mime !== 'application/json' && mime !== 'text/x.enum') {
    throw new ApiError(400, `* GenerateContentRequest.generation_config.response_mime_type: response_mime_type must be 'application/json' when a response schema is set.\n`);
  }
}

/** Validates a GenerateContentRequest the way the API does (structure, schemas, pairing). */
function checkGenerateRequest(body: unknown): Record<string, unknown> {
  if (!isObject(body)) throw new ApiError(400, `Invalid JSON payload received. Expected an object.`);
  checkFields(body, REQUEST_FIELDS, null);
  const contents = body.contents;
  if (contents === undefined || (Array.isArray(contents) && contents.length === 0)) {
    throw new ApiError(400, '* GenerateContentRequest.contents: contents is not specified\n');
  }
  if (!Array.isArray(contents)) throw new ApiError(400, `Invalid JSON payload received. Unknown name "contents": Proto field is not repeating, cannot start list.`);
  contents.forEach((c, i) => checkContent(c, `contents[${i}]`));
  const sys = field(body, 'systemInstruction');
  if (sys !== undefined) checkContent(sys, 'system_instruction');
  checkTools(body.tools);
  checkGenerationConfig(field(body, 'generationConfig'));
  const toolConfig = field(body, 'toolConfig');
  if (toolConfig !== undefined) {
    if (!isObject(toolConfig)) throw new ApiError(400, `Invalid value at 'tool_config'`);
    const fcc = field(toolConfig, 'functionCallingConfig');
    if (isObject(fcc)) {
      const mode = fcc.mode;
      if (mode !== undefined && !['MODE_UNSPECIFIED', 'AUTO', 'ANY', 'NONE', 'VALIDATED'].includes(String(mode))) {
        throw new ApiError(400, `Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), ${JSON.stringify(mode)}`);
      }
    }
  }
  // Function call turns must follow a user or function response turn, and be
  // answered by as many function responses as they made calls.
  const list = contents as Record<string, unknown>[];
  list.forEach((c, i) => {
    const parts = c.parts as Record<string, unknown>[];
    const calls = parts.filter((p) => field(p, 'functionCall') !== undefined).length;
    if (calls === 0 || c.role !== 'model') return;
    const prev = list[i - 1];
    if (!prev || prev.role !== 'user') {
      throw new ApiError(400, 'Please ensure that function call turn comes immediately after a user turn or after a function response turn.');
    }
    const next = list[i + 1];
    if (next) {
      const responses = (next.parts as Record<string, unknown>[]).filter((p) => field(p, 'functionResponse') !== undefined).length;
      if (next.role !== 'user' || responses !== calls) {
        throw new ApiError(
          400,
          'Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.',
        );
      }
    }
  });
  return body;
}

// ---------------------------------------------------------------------------
// Answers

const DEFAULT_MODELS: GeminiModelInfo[] = [
  model('gemini-2.5-pro', 'Gemini 2.5 Pro', true),
  model('gemini-2.5-flash', 'Gemini 2.5 Flash', true),
  model('gemini-2.5-flash-lite', 'Gemini 2.5 Flash-Lite', true),
  model('gemini-3-pro-preview', 'Gemini 3 Pro Preview', true),
  model('gemini-2.0-flash', 'Gemini 2.0 Flash', false),
  {
    name: 'models/text-embedding-004',
    version: '004',
    displayName: 'Text Embedding 004',
    description: 'Obtain a distributed representation of a text.',
    inputTokenLimit: 2048,
    outputTokenLimit: 1,
    supportedGenerationMethods: ['embedContent'],
  },
];

function model(id: string, displayName: string, thinking: boolean): GeminiModelInfo {
  return {
    name: `models/${id}`,
    version: '001',
    displayName,
    description: `${displayName} (stand-in)`,
    inputTokenLimit: 1048576,
    outputTokenLimit: 65536,
    supportedGenerationMethods: ['generateContent', 'countTokens', 'createCachedContent', 'batchGenerateContent'],
    temperature: 1,
    topP: 0.95,
    topK: 64,
    maxTemperature: 2,
    thinking,
  };
}

function estimateTokens(text: string): number {
  return text.length === 0 ? 0 : Math.max(1, Math.ceil(text.length / 4));
}

function collectText(value: unknown, out: string[]): void {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) collectText(v, out);
  else if (isObject(value)) for (const [k, v] of Object.entries(value)) if (k !== 'thoughtSignature' && k !== 'thought_signature') collectText(v, out);
}

function promptTokens(req: Record<string, unknown>): number {
  const out: string[] = [];
  collectText(req.contents, out);
  collectText(field(req, 'systemInstruction'), out);
  collectText(req.tools, out);
  return estimateTokens(out.join(' '));
}

function lastUserText(req: Record<string, unknown>): string {
  const contents = req.contents as Record<string, unknown>[];
  for (let i = contents.length - 1; i >= 0; i--) {
    const c = contents[i]!;
    if (c.role === 'model') continue;
    for (const p of c.parts as Record<string, unknown>[]) {
      if (typeof p.text === 'string') return p.text;
      const fr = field(p, 'functionResponse');
      if (isObject(fr)) return `function ${String(fr.name)} returned ${JSON.stringify(fr.response ?? {})}`;
    }
  }
  return '';
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function callKey(name: string, args: unknown): string {
  return `${name}\u0000${canonical(args ?? {})}`;
}

/** Google's documented thinking-budget ranges (ai.google.dev/gemini-api/docs/thinking). */
function budgetRange(model: string): { min: number; max: number; off: boolean } | null {
  if (/^gemini-2\.5-pro/.test(model)) return { min: 128, max: 32768, off: false };
  if (/^gemini-2\.5-flash-lite/.test(model)) return { min: 512, max: 24576, off: true };
  if (/^gemini-2\.5-flash/.test(model)) return { min: 1, max: 24576, off: true };
  return null;
}

/** maxOutputTokens above the model's outputTokenLimit, or a thinkingBudget outside its range: 400, as Google answers. */
function checkOutputRanges(req: Record<string, unknown>, info: GeminiModelInfo): void {
  const gc = field(req, 'generationConfig');
  if (!isObject(gc)) return;
  const max = field(gc, 'maxOutputTokens');
  const limit = info.outputTokenLimit;
  if (typeof max === 'number' && typeof limit === 'number' && max > limit) {
    throw new ApiError(400, `Unable to submit request because it has a maxOutputTokens value of ${max} but the supported range is from 1 (inclusive) to ${limit + 1} (exclusive). Update the value and try again.`);
  }
  const tc = field(gc, 'thinkingConfig');
  const budget = isObject(tc) ? field(tc, 'thinkingBudget') : undefined;
  const range = budgetRange(info.name.replace(/^models\//, ''));
  if (typeof budget === 'number' && range && budget !== -1) {
    const ok = (budget === 0 && range.off) || (budget >= range.min && budget <= range.max);
    if (!ok) {
      throw new ApiError(
        400,
        budget === 0 && !range.off
          ? 'Budget 0 is invalid. This model only works in thinking mode.'
          : `The thinking budget ${budget} is invalid. Please choose a value between ${range.min} and ${range.max}.`,
      );
    }
  }
}

interface PendingFailure {
  kind: FailureKind;
  opts: FailureOptions;
  left: number;
}

// ---------------------------------------------------------------------------
// The server

export async function startGeminiUpstream(options: GeminiUpstreamOptions = {}): Promise<GeminiUpstream> {
  const tokens = new Map<string, string | null>();
  for (const t of options.tokens ?? []) tokens.set(t, null);
  const revoked = new Set<string>();
  const failures = new Map<string, PendingFailure[]>();
  const scripts: (ScriptedAnswer | ScriptedReply)[] = [];
  const issuedSignatures = new Set<string>();
  /** Function calls this upstream issued with a signature: call key -> signatures given for it. */
  const signedCalls = new Map<string, Set<string>>();
  const requests: RecordedRequest[] = [];
  const models = options.models ?? DEFAULT_MODELS;
  const record = options.record ?? true;
  let delayMs = options.delayMs ?? 0;
  const chunkChars = options.streamChunkChars ?? 40;
  let defaultAnswer: ScriptedAnswer | null = null;
  let large: { text: string; chunkChars: number } | null = null;
  let inFlight = 0;
  let responseCounter = 0;
  const metering = options.metering ?? null;
  const projectQuota = new Map<string, { left: number; retryDelay: string }>();
  const servedByProject = new Map<string, number>();

  /** Google's metering checks; an error body (and its status) or null when the request may go on. */
  async function meter(token: string, userProject: string | null, modelName: string | null, action: string, rec: RecordedRequest | null): Promise<{ status: number; body: { error: Record<string, unknown> } } | null> {
    if (!metering) return null;
    const info = await metering.tokenInfo(token);
    if (!info) return { status: 401, body: unauthenticatedBody(MSG_UNAUTHENTICATED) };
    if (!info.scopes.some((sc) => sc.startsWith('https://www.googleapis.com/auth/generative-language'))) {
      return {
        status: 403,
        body: googleError(403, 'Request had insufficient authentication scopes.', [
          {
            '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
            reason: 'ACCESS_TOKEN_SCOPE_INSUFFICIENT',
            domain: 'googleapis.com',
            metadata: { service: 'generativelanguage.googleapis.com', method: 'google.ai.generativelanguage.v1beta.GenerativeService.GenerateContent' },
          },
        ]),
      };
    }
    const consumer = userProject ?? metering.clientProject;
    if (rec) rec.consumerProject = consumer;
    if (userProject && !metering.canUse(info.email, userProject)) return { status: 403, body: userProjectDeniedBody(userProject) };
    if (!metering.isEnabled(consumer, 'generativelanguage.googleapis.com')) return { status: 403, body: serviceDisabledBody(consumer) };
    if (modelName && (action === 'generateContent' || action === 'streamGenerateContent')) {
      const q = projectQuota.get(`${consumer}\u0000${modelName}`) ?? projectQuota.get(`${consumer}\u0000*`);
      if (q) {
        if (q.left <= 0) return { status: 429, body: quotaBody(modelName, false, q.retryDelay) };
        q.left--;
      }
      servedByProject.set(consumer, (servedByProject.get(consumer) ?? 0) + 1);
    }
    return null;
  }

  async function tokenValid(token: string): Promise<boolean> {
    if (revoked.has(token)) return false;
    if (tokens.has(token)) return true;
    if (options.validateToken) return Boolean(await options.validateToken(token));
    return false;
  }

  function takeFailure(token: string, modelName: string | null): PendingFailure | null {
    for (const key of [token, '*']) {
      const queue = failures.get(key);
      if (!queue) continue;
      const idx = queue.findIndex((f) => !f.opts.model || f.opts.model === modelName);
      if (idx === -1) continue;
      const f = queue[idx]!;
      f.left -= 1;
      if (f.left <= 0) queue.splice(idx, 1);
      if (queue.length === 0) failures.delete(key);
      return f;
    }
    return null;
  }

  function newSignature(): string {
    const sig = randomBytes(24).toString('base64');
    issuedSignatures.add(sig);
    return sig;
  }

  /** The answer's parts as the API returns them, with thought signatures issued. */
  function renderParts(answer: ScriptedAnswer, includeThoughts: boolean): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    let firstCallInStep = true;
    for (const part of answer.parts) {
      if ('functionCall' in part) {
        const args = part.functionCall.args ?? {};
        const fc: Record<string, unknown> = { name: part.functionCall.name, args };
        if (part.functionCall.id) fc.id = part.functionCall.id;
        const p: Record<string, unknown> = { functionCall: fc };
        const sign = part.thoughtSignature ?? firstCallInStep;
        if (sign) {
          const sig = newSignature();
          p.thoughtSignature = sig;
          const key = callKey(part.functionCall.name, args);
          let set = signedCalls.get(key);
          if (!set) signedCalls.set(key, (set = new Set()));
          set.add(sig);
        }
        firstCallInStep = false;
        out.push(p);
      } else {
        if (part.thought && !includeThoughts) continue;
        const p: Record<string, unknown> = { text: part.text };
        if (part.thought) p.thought = true;
        if (part.thoughtSignature) p.thoughtSignature = newSignature();
        out.push(p);
      }
    }
    return out;
  }

  /** Thought signatures: present ones must be real, and calls this upstream signed must carry theirs in the current turn. */
  function checkSignatures(req: Record<string, unknown>): void {
    const contents = req.contents as Record<string, unknown>[];
    let turnStart = 0;
    contents.forEach((c, i) => {
      if (c.role === 'model') return;
      const parts = c.parts as Record<string, unknown>[];
      if (parts.some((p) => field(p, 'functionResponse') === undefined)) turnStart = i;
    });
    contents.forEach((c, i) => {
      for (const p of c.parts as Record<string, unknown>[]) {
        const sig = field(p, 'thoughtSignature');
        if (sig !== undefined) {
          const ok = typeof sig === 'string' && (issuedSignatures.has(sig) || DUMMY_SIGNATURES.has(sig));
          if (!ok) throw new ApiError(400, 'Thought signature is not valid.');
        }
        if (c.role !== 'model' || i < turnStart) continue;
        const fc = field(p, 'functionCall');
        if (!isObject(fc)) continue;
        const given = signedCalls.get(callKey(String(fc.name), fc.args));
        if (!given) continue;
        // A call this upstream signed needs its own signature back; Google's
        // documented dummy signatures are only accepted for calls it did not sign.
        if (typeof sig !== 'string' || !given.has(sig)) {
          throw new ApiError(
            400,
            `Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call \`default_api:${String(fc.name)}\` , position ${i + 1}. Please refer to ${SIGNATURE_DOCS} for more details.`,
          );
        }
      }
    });
  }

  function pickAnswer(req: Record<string, unknown>): { answer: ScriptedAnswer; chunkChars: number } {
    const next = scripts.shift();
    const scripted = typeof next === 'function' ? next(req) : next;
    if (scripted) return { answer: scripted, chunkChars: scripted.chunkChars ?? chunkChars };
    if (large) return { answer: { parts: [{ text: large.text }] }, chunkChars: large.chunkChars };
    if (defaultAnswer) return { answer: defaultAnswer, chunkChars: defaultAnswer.chunkChars ?? chunkChars };
    const text = lastUserText(req);
    return { answer: { parts: [{ text: `Echo: ${text.slice(0, 200)}` }] }, chunkChars };
  }

  function usageFor(req: Record<string, unknown>, answer: ScriptedAnswer, parts: Record<string, unknown>[]) {
    const prompt = answer.usage?.promptTokenCount ?? promptTokens(req);
    const visible: string[] = [];
    const thoughts: string[] = [];
    for (const p of parts) {
      if (p.thought) thoughts.push(String(p.text));
      else collectText(p.text ?? p.functionCall, visible);
    }
    const candidates = answer.usage?.candidatesTokenCount ?? estimateTokens(visible.join(''));
    const thought = answer.usage?.thoughtsTokenCount ?? estimateTokens(thoughts.join(''));
    const usage: Record<string, unknown> = {
      promptTokenCount: prompt,
      candidatesTokenCount: candidates,
      totalTokenCount: prompt + candidates + thought,
      promptTokensDetails: [{ modality: 'TEXT', tokenCount: prompt }],
    };
    if (thought) usage.thoughtsTokenCount = thought;
    return usage;
  }

  function finishReasonOf(answer: ScriptedAnswer): string {
    return answer.finishReason ?? 'STOP';
  }

  /** Splits the rendered parts into stream chunks (text split every `size` characters). */
  function splitChunks(parts: Record<string, unknown>[], size: number): Record<string, unknown>[][] {
    const chunks: Record<string, unknown>[][] = [];
    for (const p of parts) {
      if (typeof p.text === 'string' && p.text.length > size) {
        const text = p.text;
        for (let i = 0; i < text.length; i += size) {
          const piece: Record<string, unknown> = { text: text.slice(i, i + size) };
          if (p.thought) piece.thought = true;
          if (p.thoughtSignature && i + size >= text.length) piece.thoughtSignature = p.thoughtSignature;
          chunks.push([piece]);
        }
      } else {
        chunks.push([p]);
      }
    }
    if (chunks.length === 0) chunks.push([{ text: '' }]);
    return chunks;
  }

  function wait(ms: number): Promise<void> {
    return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
  }

  function sendError(res: ServerResponse, body: { error: Record<string, unknown> }): void {
    const text = JSON.stringify(body, null, 2);
    res.writeHead(body.error.code as number, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  function sendJson(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
    return Buffer.concat(chunks).toString('utf8');
  }

  function parseJson(text: string): unknown {
    if (text.length === 0) return {};
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new ApiError(400, `Invalid JSON payload received. ${(e as Error).message}`);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse, rec: RecordedRequest | null): Promise<number> {
    const url = new URL(req.url ?? '/', 'http://upstream');
    const m = /^\/(v1beta|v1)\/models(?:\/([^/:]+)(?::([A-Za-z]+))?)?\/?$/.exec(url.pathname);
    const bodyText = req.method === 'POST' ? await readBody(req) : '';
    const auth = req.headers.authorization;
    const token = auth && /^Bearer /i.test(auth) ? auth.slice(7).trim() : null;
    const userProject = typeof req.headers['x-goog-user-project'] === 'string' ? req.headers['x-goog-user-project'] : null;
    const modelName = m?.[2] ? decodeURIComponent(m[2]) : null;
    const action = m ? (m[3] ?? (m[2] ? 'get' : 'list')) : 'unknown';
    if (rec) {
      rec.path = url.pathname;
      rec.query = Object.fromEntries(url.searchParams);
      rec.action = action;
      rec.model = modelName;
      rec.token = token;
      rec.userProject = userProject;
      rec.sentApiKey = req.headers['x-goog-api-key'] !== undefined || url.searchParams.has('key');
      try {
        rec.body = bodyText ? JSON.parse(bodyText) : null;
      } catch {
        rec.body = bodyText;
      }
    }

    if (!m) {
      sendError(res, googleError(404, `Method not found.`));
      return 404;
    }
    // Authentication first, as the real API does.
    if (!token) {
      sendError(res, unauthenticatedBody(MSG_MISSING_CREDENTIAL));
      return 401;
    }
    if (!(await tokenValid(token))) {
      sendError(res, unauthenticatedBody(MSG_UNAUTHENTICATED));
      return 401;
    }
    const boundProject = tokens.get(token) ?? null;
    if (boundProject && userProject !== boundProject) {
      sendError(res, userProjectDeniedBody(userProject ?? '(none)'));
      return 403;
    }
    const metered = await meter(token, userProject, modelName, action, rec);
    if (metered) {
      sendError(res, metered.body);
      return metered.status;
    }

    // Like Google's front end: a query parameter that is neither a system
    // parameter nor a field of the request message is an error.
    for (const name of url.searchParams.keys()) {
      if (SYSTEM_PARAMS.has(name) || (action === 'list' && (name === 'pageSize' || name === 'pageToken'))) continue;
      sendError(
        res,
        googleError(400, `Invalid JSON payload received. Unknown name "${name}": Cannot bind query parameter. Field '${name}' could not be found in request message.`),
      );
      return 400;
    }
    const expectedMethod = action === 'list' || action === 'get' ? 'GET' : 'POST';
    if (req.method !== expectedMethod) {
      sendError(res, googleError(404, `Method not found.`));
      return 404;
    }
    const info = modelName ? models.find((x) => x.name === `models/${modelName}`) : undefined;

    if (action === 'list') {
      const pageSize = Math.min(Math.max(Number(url.searchParams.get('pageSize')) || 50, 1), 1000);
      const start = Number(url.searchParams.get('pageToken') || 0) || 0;
      const page = models.slice(start, start + pageSize);
      const body: Record<string, unknown> = { models: page };
      if (start + pageSize < models.length) body.nextPageToken = String(start + pageSize);
      sendJson(res, 200, body);
      return 200;
    }
    if (!info) {
      sendError(
        res,
        googleError(
          404,
          `models/${modelName} is not found for API version ${m[1]}, or is not supported for ${action}. Call ListModels to see the list of available models and their supported methods.`,
        ),
      );
      return 404;
    }
    if (action === 'get') {
      sendJson(res, 200, info);
      return 200;
    }
    if (action === 'embedContent' || action === 'batchEmbedContents') {
      if (!(info.supportedGenerationMethods ?? []).includes('embedContent')) {
        sendError(res, googleError(404, `models/${modelName} is not found for API version ${m[1]}, or is not supported for ${action}. Call ListModels to see the list of available models and their supported methods.`));
        return 404;
      }
      let parsed: unknown;
      try {
        parsed = parseJson(bodyText);
      } catch (e) {
        sendError(res, googleError(400, (e as Error).message));
        return 400;
      }
      const embed = (content: unknown) => {
        const out: string[] = [];
        collectText(content, out);
        const text = out.join(' ');
        return { values: Array.from({ length: 8 }, (_, i) => ((text.charCodeAt(i % Math.max(1, text.length)) || 0) % 17) / 17) };
      };
      if (action === 'embedContent') {
        if (!isObject(parsed) || !isObject(parsed.content)) {
          sendError(res, googleError(400, '* EmbedContentRequest.content: content is required\n'));
          return 400;
        }
        sendJson(res, 200, { embedding: embed(parsed.content) });
        return 200;
      }
      const reqs = isObject(parsed) && Array.isArray(parsed.requests) ? parsed.requests : null;
      if (!reqs || reqs.length === 0) {
        sendError(res, googleError(400, '* BatchEmbedContentsRequest.requests: requests is required\n'));
        return 400;
      }
      sendJson(res, 200, { embeddings: reqs.map((r) => embed(isObject(r) ? r.content : null)) });
      return 200;
    }
    if (action !== 'generateContent' && action !== 'streamGenerateContent' && action !== 'countTokens') {
      sendError(res, googleError(400, `* ${action} is not supported by the stand-in.\n`));
      return 400;
    }
    if (!(info.supportedGenerationMethods ?? []).includes(action === 'streamGenerateContent' ? 'generateContent' : action)) {
      sendError(res, googleError(404, `models/${modelName} is not found for API version ${m[1]}, or is not supported for ${action}. Call ListModels to see the list of available models and their supported methods.`));
      return 404;
    }

    const failure = takeFailure(token, modelName);
    if (failure) {
      const done = await fail(req, res, failure, modelName!, userProject);
      if (done !== null) return done;
    }

    let body: Record<string, unknown>;
    try {
      const parsed = parseJson(bodyText);
      if (action === 'countTokens') {
        if (!isObject(parsed)) throw new ApiError(400, 'Invalid JSON payload received. Expected an object.');
        checkFields(parsed, new Set(['contents', 'generateContentRequest']), null);
        const inner = field(parsed, 'generateContentRequest');
        if (inner !== undefined) {
          if (!isObject(inner)) throw new ApiError(400, `Invalid value at 'generate_content_request'`);
          const innerModel = inner.model;
          if (typeof innerModel !== 'string' || !innerModel.startsWith('models/')) {
            throw new ApiError(400, '* CountTokensRequest.generate_content_request.model: unexpected model name format\n');
          }
          body = checkGenerateRequest(inner);
        } else {
          body = checkGenerateRequest({ contents: parsed.contents });
        }
        checkSignatures(body);
        sendJson(res, 200, { totalTokens: promptTokens(body), promptTokensDetails: [{ modality: 'TEXT', tokenCount: promptTokens(body) }] });
        return 200;
      }
      body = checkGenerateRequest(parsed);
      checkSignatures(body);
      checkOutputRanges(body, info);
    } catch (e) {
      if (e instanceof ApiError) {
        sendError(res, googleError(e.code, e.message));
        return e.code;
      }
      throw e;
    }

    await wait(delayMs);
    const gc = field(body, 'generationConfig');
    const tc = isObject(gc) ? field(gc, 'thinkingConfig') : undefined;
    const includeThoughts = isObject(tc) && field(tc, 'includeThoughts') === true;
    const { answer, chunkChars: size } = pickAnswer(body);
    const parts = renderParts(answer, includeThoughts);
    const usage = usageFor(body, answer, parts);
    const responseId = `stand-in-${(++responseCounter).toString(36)}`;
    const modelVersion = modelName!;

    if (action === 'generateContent') {
      sendJson(res, 200, {
        candidates: [{ content: { parts, role: 'model' }, finishReason: finishReasonOf(answer), index: 0 }],
        usageMetadata: usage,
        modelVersion,
        responseId,
      });
      return 200;
    }

    // streamGenerateContent
    const sse = url.searchParams.get('alt') === 'sse';
    const chunks = splitChunks(parts, size);
    res.writeHead(200, sse ? { 'content-type': 'text/event-stream' } : { 'content-type': 'application/json; charset=UTF-8' });
    if (!sse) res.write('[');
    const partial = { promptTokenCount: usage.promptTokenCount, totalTokenCount: usage.promptTokenCount };
    const breakAfter = failure && (failure.kind === 'reset_mid_stream' || failure.kind === 'stall_mid_stream') ? (failure.opts.afterChunks ?? 1) : -1;
    let flushed: Promise<void> = Promise.resolve();
    if (breakAfter === 0) res.flushHeaders();
    for (let i = 0; i < chunks.length; i++) {
      if (i === breakAfter) {
        // Let what was written reach the client first.
        await flushed;
        await new Promise((r) => setTimeout(r, 5));
        if (failure!.kind === 'reset_mid_stream') {
          res.socket?.destroy();
        }
        // stall: keep the connection open without writing until the client leaves.
        await new Promise<void>((r) => res.once('close', () => r()));
        return 200;
      }
      if (answer.pauseAfterChunks !== undefined && i === answer.pauseAfterChunks && answer.resume) await answer.resume;
      const last = i === chunks.length - 1;
      const candidate: Record<string, unknown> = { content: { parts: chunks[i], role: 'model' }, index: 0 };
      if (last) candidate.finishReason = finishReasonOf(answer);
      const chunk = { candidates: [candidate], usageMetadata: last ? usage : partial, modelVersion, responseId };
      const text = JSON.stringify(chunk);
      let ok: boolean;
      if (breakAfter > 0) {
        flushed = new Promise<void>((r) => {
          ok = res.write(sse ? `data: ${text}\r\n\r\n` : `${i ? ',\r\n' : ''}${text}`, () => r());
        });
      } else {
        ok = res.write(sse ? `data: ${text}\r\n\r\n` : `${i ? ',\r\n' : ''}${text}`);
      }
      if (!ok!) await new Promise<void>((r) => res.once('drain', () => r()));
      if (res.destroyed) return 200;
    }
    if (!sse) res.write(']');
    res.end();
    return 200;
  }

  /** Answers with a programmed failure; null when the request should proceed (slow first byte, mid-stream kinds). */
  async function fail(req: IncomingMessage, res: ServerResponse, f: PendingFailure, modelName: string, userProject: string | null): Promise<number | null> {
    switch (f.kind) {
      case 'unauthorized':
        sendError(res, unauthenticatedBody(f.opts.message ?? MSG_UNAUTHENTICATED));
        return 401;
      case 'rate_limited':
        sendError(res, quotaBody(modelName, false, f.opts.retryDelay, f.opts.message));
        return 429;
      case 'daily_quota':
        sendError(res, quotaBody(modelName, true, f.opts.retryDelay, f.opts.message));
        return 429;
      case 'service_disabled':
        sendError(res, serviceDisabledBody(f.opts.project ?? userProject ?? '123456789012', f.opts.message));
        return 403;
      case 'permission_denied':
        sendError(res, googleError(403, f.opts.message ?? 'The caller does not have permission'));
        return 403;
      case 'bad_request':
        sendError(res, googleError(400, f.opts.message ?? 'Request contains an invalid argument.'));
        return 400;
      case 'server_error':
        sendError(res, googleError(500, f.opts.message ?? 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting'));
        return 500;
      case 'unavailable':
        sendError(res, googleError(503, f.opts.message ?? 'The model is overloaded. Please try again later.'));
        return 503;
      case 'reset':
        req.socket.destroy();
        return 0;
      case 'slow_first_byte':
        await wait(f.opts.delayMs ?? 1000);
        return res.destroyed ? 0 : null;
      case 'reset_mid_stream':
      case 'stall_mid_stream':
        return null;
      case 'raw_answer': {
        const raw = f.opts.raw ?? { status: 200, body: '' };
        res.writeHead(raw.status, { 'content-length': Buffer.byteLength(raw.body), ...raw.headers });
        res.end(raw.body);
        return raw.status;
      }
    }
  }

  const server: Server = createServer((req, res) => {
    inFlight++;
    let rec: RecordedRequest | null = null;
    if (record) {
      rec = {
        time: Date.now(), method: req.method ?? 'GET', path: '', query: {}, action: '', model: null, token: null,
        userProject: null, sentApiKey: false, headers: req.headers, body: null, status: 0,
      };
      requests.push(rec);
    }
    let counted = true;
    const done = () => {
      if (counted) {
        counted = false;
        inFlight--;
      }
    };
    res.on('close', done);
    handle(req, res, rec)
      .then((status) => {
        if (rec) rec.status = status;
      })
      .catch((e) => {
        if (rec) rec.status = 500;
        if (!res.headersSent) sendError(res, googleError(500, `stand-in failure: ${(e as Error).message}`));
        else res.destroy();
      });
  });
  server.keepAliveTimeout = 60_000;
  const listening = await listenLoopback(server);

  return {
    url: listening.url,
    requests,
    get issuedSignatures() {
      return issuedSignatures;
    },
    get inFlight() {
      return inFlight;
    },
    setProjectQuota(project, model, requests, retryDelay = '37s') {
      projectQuota.set(`${project}\u0000${model}`, { left: requests, retryDelay });
    },
    servedByProject,
    addToken(token, opts = {}) {
      revoked.delete(token);
      tokens.set(token, opts.project ?? null);
    },
    revokeToken(token) {
      tokens.delete(token);
      revoked.add(token);
    },
    failNext(tokenOrAny, kind, opts = {}) {
      if ((opts.times ?? 1) <= 0) return;
      let queue = failures.get(tokenOrAny);
      if (!queue) failures.set(tokenOrAny, (queue = []));
      queue.push({ kind, opts, left: opts.times ?? 1 });
    },
    clearFailures() {
      failures.clear();
    },
    script(...answers) {
      scripts.push(...answers);
    },
    setDefaultAnswer(answer) {
      defaultAnswer = answer;
    },
    setLargeAnswer(bytes, size = 1024) {
      large = bytes > 0 ? { text: 'x'.repeat(bytes), chunkChars: size } : null;
    },
    setDelay(ms) {
      delayMs = ms;
    },
    clearRequests() {
      requests.length = 0;
    },
    async close() {
      await listening.close();
    },
  };
}
