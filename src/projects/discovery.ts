// Which of the account's projects it should draw on (docs/projects.md#discovery-set-up-by-itself): the
// active projects from Resource Manager, in the order listed, up to 20, each
// asked with Service Usage for both APIs; the first with the Generative
// Language API ENABLED wins. Never throws: a failure comes back as the reason
// shown on the account.
import type { ApiState } from '../store/account.ts';
import { GEMINI_SERVICE, ProjectApiError, VERTEX_SERVICE, type CloudProject, type GoogleApis } from './google-apis.ts';

/** Projects whose API states discovery asks for. */
export const MAX_DISCOVERY_PROJECTS = 20;

export interface ProjectStates {
  project_id: string;
  display_name: string | null;
  gemini_api: ApiState;
  vertex_ai: ApiState;
  /** Why a state is `denied` or `unknown`. */
  error?: string;
}

export type DiscoveryResult =
  | { ok: true; project: ProjectStates; checked: number }
  | { ok: false; reason: string; checked: number };

/** An error as one line with its fix. */
export function describeError(e: unknown): string {
  if (e instanceof ProjectApiError) return e.fix ? `${e.message}. Fix: ${e.fix}` : e.message;
  return `unexpected error: ${(e as Error)?.message ?? String(e)}`;
}

/** Both API states of one project; a 403 is `denied`, any other failure `unknown`. */
export async function projectStates(api: GoogleApis, token: string, p: CloudProject | string): Promise<ProjectStates> {
  const project = typeof p === 'string' ? { project_id: p, display_name: null } : p;
  const one = async (service: string): Promise<{ state: ApiState; error?: ProjectApiError }> => {
    try {
      const s = await api.serviceState(token, project.project_id, service);
      return { state: s === 'ENABLED' ? 'enabled' : s === 'DISABLED' ? 'disabled' : 'unknown' };
    } catch (e) {
      if (!(e instanceof ProjectApiError)) throw e;
      return { state: e.kind === 'permission' ? 'denied' : 'unknown', error: e };
    }
  };
  const [gemini, vertex] = await Promise.all([one(GEMINI_SERVICE), one(VERTEX_SERVICE)]);
  const out: ProjectStates = { project_id: project.project_id, display_name: project.display_name, gemini_api: gemini.state, vertex_ai: vertex.state };
  const err = gemini.error ?? vertex.error;
  if (err) out.error = describeError(err);
  return out;
}

/** Lists the account's projects with both API states (the first `limit` checked, the rest `unknown`). */
export async function listProjectStates(api: GoogleApis, token: string, limit = MAX_DISCOVERY_PROJECTS): Promise<ProjectStates[]> {
  const projects = await api.searchProjects(token);
  const out: ProjectStates[] = [];
  for (const [i, p] of projects.entries()) {
    if (i < limit) out.push(await projectStates(api, token, p));
    else out.push({ project_id: p.project_id, display_name: p.display_name, gemini_api: 'unknown', vertex_ai: 'unknown' });
  }
  return out;
}

/** Discovery proper: the first project (of up to 20) with the Gemini API enabled. */
export async function discover(api: GoogleApis, token: string): Promise<DiscoveryResult> {
  let projects: CloudProject[];
  try {
    projects = await api.searchProjects(token);
  } catch (e) {
    return { ok: false, reason: `could not list the account's projects: ${describeError(e)}`, checked: 0 };
  }
  if (projects.length === 0) {
    return {
      ok: false,
      reason:
        'the account has no active Google Cloud project. Fix: create one at https://console.cloud.google.com/projectcreate, enable the Generative Language API in it (https://console.cloud.google.com/apis/library/generativelanguage.googleapis.com), then run `grantpool accounts project <email> --use <project>`',
      checked: 0,
    };
  }
  const seen: ProjectStates[] = [];
  for (const p of projects.slice(0, MAX_DISCOVERY_PROJECTS)) {
    let s: ProjectStates;
    try {
      s = await projectStates(api, token, p);
    } catch (e) {
      return { ok: false, reason: describeError(e), checked: seen.length };
    }
    if (s.gemini_api === 'enabled') return { ok: true, project: s, checked: seen.length + 1 };
    seen.push(s);
    // The OAuth client's project lacks Service Usage: every other project would say the same.
    if (s.error && /must have the .* enabled/.test(s.error)) return { ok: false, reason: `could not check the account's projects: ${s.error}`, checked: seen.length };
  }
  const more = projects.length > MAX_DISCOVERY_PROJECTS ? ` (the first ${MAX_DISCOVERY_PROJECTS} of ${projects.length} checked)` : '';
  const list = seen
    .slice(0, 5)
    .map((s) => `${s.project_id}: ${s.gemini_api}`)
    .join(', ');
  const first = seen.find((s) => s.gemini_api === 'disabled')?.project_id ?? seen[0]!.project_id;
  return {
    ok: false,
    reason: `none of the account's ${seen.length} project(s) has the Generative Language API enabled${more} (${list}${seen.length > 5 ? ', …' : ''}). Fix: \`grantpool accounts project <email> --enable ${first}\``,
    checked: seen.length,
  };
}
