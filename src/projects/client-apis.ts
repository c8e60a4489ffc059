// Are the Cloud Resource Manager API and the Service Usage API enabled in the
// project that owns the OAuth client? Discovery, `--use` and `--enable` call
// them with the accounts' tokens and no x-goog-user-project, so Google meters
// (and gates) those calls on the OAuth client's project: with either API off
// there, every account's discovery fails with SERVICE_DISABLED. For
// `grantpool doctor`: one cheap call to each with one account's token, read
// the way Google answers (SERVICE_DISABLED names the API and the link to
// enable it; any other answer, a 403 on the project included, means the API
// let the call through).
import { GoogleApis, ProjectApiError, RESOURCE_MANAGER_SERVICE, SERVICE_USAGE_SERVICE } from './google-apis.ts';

export type ClientApiState = 'enabled' | 'disabled' | 'unknown';

export interface ClientApiCheck {
  service: string;
  title: string;
  state: ClientApiState;
  detail: string;
  /** What to do when the state is not `enabled`. */
  fix: string | null;
}

const TITLES: Record<string, string> = {
  [RESOURCE_MANAGER_SERVICE]: 'Cloud Resource Manager API',
  [SERVICE_USAGE_SERVICE]: 'Service Usage API',
};

function enableFix(service: string, activationUrl: string | null, clientProject: string | null): string {
  const link = activationUrl ?? `https://console.cloud.google.com/apis/library/${service}${clientProject ? `?project=${encodeURIComponent(clientProject)}` : ''}`;
  return (
    `enable the ${TITLES[service]} in the Google Cloud project that owns the OAuth client${clientProject ? ` (${clientProject})` : ''}: ` +
    `open ${link}, press Enable, wait a minute and run \`grantpool doctor\` again. Until then Grantpool cannot find or check the accounts' projects ` +
    '(they draw on the OAuth client\'s project); set one by hand with `grantpool accounts project <email> --use <project>` once it is on'
  );
}

function outcome(service: string, e: unknown, clientProject: string | null): ClientApiCheck {
  const title = TITLES[service]!;
  if (e instanceof ProjectApiError && e.kind === 'api_disabled' && e.disabled?.service === service) {
    const where = e.disabled.consumer ? ` (${e.disabled.consumer})` : '';
    return { service, title, state: 'disabled', detail: `off in the OAuth client's project${where}: ${e.message}`, fix: enableFix(service, e.disabled.activationUrl, clientProject) };
  }
  // Past the API's gate: Google checked the caller's permission on the project, or found no such project.
  if (e instanceof ProjectApiError && (e.kind === 'permission' || e.kind === 'not_found') && e.status !== 401) {
    return { service, title, state: 'enabled', detail: 'enabled (it answered)', fix: null };
  }
  if (e instanceof ProjectApiError && e.kind === 'scope') {
    return { service, title, state: 'unknown', detail: `not checked: ${e.message}`, fix: e.fix };
  }
  const said = e instanceof Error ? e.message : String(e);
  const first = e instanceof ProjectApiError && e.fix ? `${e.fix}, or ` : '';
  return { service, title, state: 'unknown', detail: `not checked: ${said}`, fix: `${first}check by hand that it is enabled: https://console.cloud.google.com/apis/library/${service}` };
}

/**
 * Both checks with one access token (cloud-platform scope). `probeProject` is
 * any project id to ask Service Usage about (the account's own, else the
 * first project the account can see, else the OAuth client's own).
 */
export async function checkClientApis(
  api: GoogleApis,
  token: string,
  opts: { probeProject?: string | null; clientProject?: string | null } = {},
): Promise<ClientApiCheck[]> {
  const clientProject = opts.clientProject ?? null;
  let seen: string | null = null;
  let rm: ClientApiCheck;
  try {
    const page = await api.searchPage(token, 1);
    seen = page.projects[0]?.project_id ?? null;
    rm = { service: RESOURCE_MANAGER_SERVICE, title: TITLES[RESOURCE_MANAGER_SERVICE]!, state: 'enabled', detail: 'enabled (projects:search answered)', fix: null };
  } catch (e) {
    rm = outcome(RESOURCE_MANAGER_SERVICE, e, clientProject);
  }
  const project = opts.probeProject ?? seen ?? clientProject;
  let su: ClientApiCheck;
  if (!project) {
    su = {
      service: SERVICE_USAGE_SERVICE,
      title: TITLES[SERVICE_USAGE_SERVICE]!,
      state: 'unknown',
      detail: 'not checked: the account has no project to ask about',
      fix: `check by hand that it is enabled: https://console.cloud.google.com/apis/library/${SERVICE_USAGE_SERVICE}`,
    };
  } else {
    try {
      await api.serviceState(token, project, SERVICE_USAGE_SERVICE);
      su = { service: SERVICE_USAGE_SERVICE, title: TITLES[SERVICE_USAGE_SERVICE]!, state: 'enabled', detail: 'enabled (services.get answered)', fix: null };
    } catch (e) {
      su = outcome(SERVICE_USAGE_SERVICE, e, clientProject);
    }
  }
  return [rm, su];
}
