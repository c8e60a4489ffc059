// Project errors from the Gemini API (docs/projects.md#when-a-project-breaks): a 403
// USER_PROJECT_DENIED (the account may not use its project) or
// SERVICE_DISABLED (the Generative Language API is off in the consumer
// project) is about the account's project, not the request. The proxy takes
// the account out with a reason that names the project, Google's message and
// the fix; this module decides that and words it (pure, no I/O).
import { GEMINI_SERVICE, VERTEX_SERVICE, iamPage } from './google-apis.ts';
import { oneLine } from '../util/text.ts';

export type ProjectErrorCode = 'USER_PROJECT_DENIED' | 'SERVICE_DISABLED';

export interface ProjectErrorInput {
  /** google.rpc.ErrorInfo reason (or the status when there is none). */
  reason: string;
  /** Google's message. */
  message: string;
  /** ErrorInfo metadata (consumer, activationUrl, service, ...). */
  metadata: Record<string, unknown>;
}

export interface ProjectErrorAccount {
  email: string;
  /** The account's quota project (sent as x-goog-user-project), or null: the OAuth client's project. */
  projectId: string | null;
}

/** The project a Google error names (`consumer: "projects/P"`), or null. */
function consumerOf(meta: Record<string, unknown>): string | null {
  const c = meta.consumer ?? meta.containerInfo;
  if (typeof c !== 'string' || !c) return null;
  return c.replace(/^projects\//, '');
}

/** True for a proxy_disabled_reason that projectErrorReason wrote (setting a project clears it). */
export function isProjectErrorReason(reason: string | null | undefined): boolean {
  return !!reason && /^(USER_PROJECT_DENIED|SERVICE_DISABLED) /.test(reason);
}

/**
 * The proxy_disabled_reason for a Gemini API 403 about the account's project,
 * or null when the 403 is something else (it is then classified as before).
 */
export function projectErrorReason(err: ProjectErrorInput, account: ProjectErrorAccount | undefined): string | null {
  if (!account) return null;
  if (err.reason !== 'USER_PROJECT_DENIED' && err.reason !== 'SERVICE_DISABLED') return null;
  const service = typeof err.metadata.service === 'string' ? err.metadata.service : GEMINI_SERVICE;
  if (err.reason === 'SERVICE_DISABLED' && service !== GEMINI_SERVICE) return null;
  const said = oneLine(err.message || err.reason, 300);
  const own = account.projectId;
  const named = consumerOf(err.metadata);
  const project = own ?? named ?? "the OAuth client's project";
  const email = account.email;
  if (err.reason === 'USER_PROJECT_DENIED') {
    const p = own ?? named ?? 'P';
    return (
      `USER_PROJECT_DENIED for project ${project}: ${said} ` +
      `Fix: grant ${email} the Service Usage Consumer role (serviceusage.services.use) in ${p} at ${iamPage(p)}, ` +
      `or choose a project the account may use: \`grantpool accounts project ${email}\` lists them, \`--use <project>\` sets one.`
    );
  }
  const activation = typeof err.metadata.activationUrl === 'string' ? err.metadata.activationUrl : null;
  if (own) {
    return (
      `SERVICE_DISABLED for project ${own}: ${said} ` +
      `Fix: \`grantpool accounts project ${email} --enable ${own}\`${activation ? ` (or enable it at ${activation})` : ''}.`
    );
  }
  return (
    `SERVICE_DISABLED for project ${project}: ${said} ` +
    `Fix: give the account a project of its own with the Generative Language API: \`grantpool accounts project ${email}\` lists its projects, \`--enable <project>\` enables the API there and uses it${activation ? `; or enable it in the OAuth client's project at ${activation}` : ''}.`
  );
}

/** What a Vertex AI 403 about the account's project means for its Vertex lane. */
export interface VertexLaneError {
  /** `project.vertex_ai` from now on: the API is off in the project, or the account may not use it there. */
  state: 'disabled' | 'denied';
  reason: string;
}

/** ErrorInfo reasons of a Vertex AI 403 that say the API is off (or unusable) in the project itself. */
const VERTEX_OFF = new Set(['SERVICE_DISABLED', 'API_DISABLED', 'BILLING_DISABLED', 'CONSUMER_SUSPENDED', 'CONSUMER_INVALID']);
/** ...and those that say the account may not use it there. */
const VERTEX_DENIED = new Set(['IAM_PERMISSION_DENIED', 'USER_PROJECT_DENIED', 'ACCESS_TOKEN_SCOPE_INSUFFICIENT']);

/**
 * A Vertex AI 403 about the account's project (the Vertex AI API disabled,
 * billing off, no permission to predict there): the account's Vertex lane is
 * taken away with a reason that names the project and the fix; its Gemini
 * API lane is not touched. Null: the 403 is about something else.
 */
export function vertexLaneError(err: ProjectErrorInput, account: ProjectErrorAccount | undefined): VertexLaneError | null {
  if (!account?.projectId) return null;
  const p = account.projectId;
  const said = oneLine(err.message || err.reason, 300);
  const service = typeof err.metadata.service === 'string' ? err.metadata.service : VERTEX_SERVICE;
  if (VERTEX_OFF.has(err.reason)) {
    if (err.reason === 'SERVICE_DISABLED' && service !== VERTEX_SERVICE) return null;
    const activation = typeof err.metadata.activationUrl === 'string' ? err.metadata.activationUrl : null;
    const fix =
      err.reason === 'SERVICE_DISABLED' || err.reason === 'API_DISABLED'
        ? `\`grantpool accounts project ${account.email} --enable-vertex ${p}\`${activation ? ` (or enable it at ${activation})` : ''}`
        : `turn billing on for ${p} (Vertex AI needs it), then \`grantpool accounts project ${account.email} --use ${p}\``;
    return { state: 'disabled', reason: `${err.reason} for Vertex AI in project ${p}: ${said} Fix: ${fix}.` };
  }
  // Vertex AI's usual 403 carries no ErrorInfo: "Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/P/…' (or it may not exist)."
  if (VERTEX_DENIED.has(err.reason) || /Permission '?aiplatform\.[A-Za-z.]+'? denied/.test(err.message)) {
    return {
      state: 'denied',
      reason:
        `${err.reason} for Vertex AI in project ${p}: ${said} ` +
        `Fix: grant ${account.email} the Vertex AI User role (roles/aiplatform.user) in ${p} at ${iamPage(p)}, then \`grantpool accounts project ${account.email} --use ${p}\`.`,
    };
  }
  return null;
}
