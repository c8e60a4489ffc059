// The "Project" cell of an account row and its "choose project" dialog: the
// account's Google Cloud projects with the Gemini API and Vertex AI state in
// each, "Use" for a project with the Gemini API on, "Enable Gemini API" (with
// progress while Google's operation runs) for one with it off, and "Look
// again" (discovery). Everything goes through /api/accounts/{id}/project(s).
import { api, request } from './api.js';
import { h, clear, replaceChildren } from './dom.js';
import { toast, openDialog, errorBox, setBusy, badge } from './ui.js';

api.accountProjects = (id) => request('GET', `/api/accounts/${encodeURIComponent(id)}/projects`);
api.setAccountProject = (id, project_id, enable = false) => request('PUT', `/api/accounts/${encodeURIComponent(id)}/project`, { project_id, enable });
api.discoverProject = (id) => request('POST', `/api/accounts/${encodeURIComponent(id)}/project/discover`);

const TONES = { enabled: 'ok', disabled: 'warn', denied: 'bad', unknown: 'neutral' };

export const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';

/**
 * The account did not grant cloud-platform, which listing, checking and
 * enabling its projects need (granted scopes of its token, or asked for and
 * refused at consent).
 */
export function lacksCloudScope(a) {
  const granted = (a.token?.scope ?? '').split(/\s+/).filter(Boolean);
  if ((a.missing_scopes ?? []).includes(CLOUD_PLATFORM)) return true;
  return granted.length > 0 && !granted.includes(CLOUD_PLATFORM);
}

/**
 * The table cell: the project (and how it was chosen), or why there is none,
 * and the button that opens the dialog; for an account without the
 * cloud-platform scope, the offer to re-authorize it (Google adds the scope
 * to what it granted before: incremental authorization).
 */
const LANE_TONES = { active: 'ok', cooling_down: 'warn', quota_protected: 'warn', off: 'bad' };

/** Each lane of the account (Gemini API, Vertex AI) and what it can do now. */
export function lanesList(a) {
  const lanes = a.lanes ?? [];
  if (lanes.length === 0) return null;
  const word = (l) => {
    const s = l.state ?? { state: 'active' };
    if (s.state === 'cooling_down') return `cooling${s.model ? ` for ${s.model}` : ''} until ${new Date(s.until * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}`;
    if (s.state === 'quota_protected') return `quota protected for ${s.model}`;
    if (s.state === 'off') return 'off';
    return 'ready';
  };
  return h('ul', { class: 'chips lanes', 'aria-label': `Services ${a.email} can serve`, 'data-testid': 'lanes' },
    lanes.map((l) => h('li', { 'data-service': l.service, 'data-lane-state': l.state?.state ?? 'active' },
      badge(`${l.service === 'vertex' ? 'Vertex AI' : 'Gemini API'}: ${word(l)}`, LANE_TONES[l.state?.state ?? 'active'] ?? 'neutral',
        { title: l.state?.reason ? `${l.key}: ${l.state.reason}` : l.key }))));
}

export function projectCell(a, onUpdated, reauthorize) {
  const current = a.project_id
    ? h('div', null, h('code', null, a.project_id), a.project ? h('span', { class: 'muted' }, ` ${a.project.source}`) : null)
    : h('div', { class: 'muted', title: a.project_error ?? '' }, 'OAuth client\'s project');
  if (lacksCloudScope(a) && !a.disabled && reauthorize) {
    const grant = h('button', { type: 'button', class: 'btn btn-small btn-primary', 'data-key': `${a.id}:scope`,
      'aria-label': `Grant Google Cloud access for ${a.email}` }, 'Grant Cloud access');
    grant.addEventListener('click', () => reauthorize(a, grant));
    return h('div', { class: 'cell-project', 'data-testid': 'needs-cloud-scope' },
      current,
      lanesList(a),
      h('div', { class: 'reason' }, 'Grantpool cannot list this account\'s projects: it did not allow access to Google Cloud data (cloud-platform). Re-authorize it to add that permission; what it granted before stays.'),
      grant);
  }
  const button = h('button', { type: 'button', class: 'btn btn-small btn-secondary', 'data-key': `${a.id}:project`,
    'aria-label': `Choose the project of ${a.email}` }, a.project_id ? 'Change' : 'Choose project');
  button.addEventListener('click', () => chooseProject(a, onUpdated));
  return h('div', { class: 'cell-project' },
    current,
    lanesList(a),
    !a.project_id && a.project_error ? h('div', { class: 'reason' }, a.project_error) : null,
    button);
}

async function chooseProject(account, onUpdated) {
  await openDialog(`Project of ${account.email}`, (close) => {
    const body = h('div', { class: 'stack', 'aria-live': 'polite' }, h('p', null, 'Asking Google for the account\'s projects…'));
    const status = h('div', { role: 'status' });
    const again = h('button', { type: 'button', class: 'btn btn-secondary' }, 'Look again (discovery)');
    again.addEventListener('click', async () => {
      setBusy(again, true, 'Looking…');
      try {
        const res = await api.discoverProject(account.id);
        onUpdated(res.account);
        toast(res.account.project_id ? `${account.email} draws on ${res.account.project_id}.` : `No project found for ${account.email}.`, res.account.project_id ? 'ok' : 'warn');
        close(true);
      } catch (err) {
        replaceChildren(status, errorBox(err));
      } finally {
        setBusy(again, false);
      }
    });

    const use = async (p, enable, button) => {
      clear(status);
      const started = Date.now();
      const label = enable ? 'Enabling…' : 'Checking…';
      setBusy(button, true, label);
      // Google's operation takes seconds to minutes; show that it is running.
      const tick = enable ? setInterval(() => replaceChildren(status, h('p', null, `Enabling the Gemini API in ${p.project_id} … ${Math.round((Date.now() - started) / 1000)} s`)), 1000) : null;
      try {
        const res = await api.setAccountProject(account.id, p.project_id, enable);
        onUpdated(res.account);
        toast(`${account.email} draws on ${p.project_id}${enable ? ' (Gemini API enabled)' : ''}.`, 'ok');
        close(true);
      } catch (err) {
        replaceChildren(status, errorBox(err));
      } finally {
        if (tick) clearInterval(tick);
        setBusy(button, false);
      }
    };

    api.accountProjects(account.id).then(
      (res) => {
        if (!res.projects.length) {
          replaceChildren(body, h('p', null, 'The account has no active Google Cloud project. ',
            h('a', { href: 'https://console.cloud.google.com/projectcreate', target: '_blank', rel: 'noopener noreferrer' }, 'Create one'),
            ', then look again.'));
          return;
        }
        replaceChildren(body, h('table', { class: 'table table-projects' },
          h('thead', null, h('tr', null, ['Project', 'Gemini API', 'Vertex AI', ''].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', null, res.projects.map((p) => {
            const current = p.project_id === res.project_id;
            let action = null;
            if (current) action = h('span', { class: 'muted' }, 'in use');
            else if (p.gemini_api === 'enabled') {
              action = h('button', { type: 'button', class: 'btn btn-small btn-primary' }, 'Use');
              action.addEventListener('click', () => use(p, false, action));
            } else if (p.gemini_api === 'disabled') {
              action = h('button', { type: 'button', class: 'btn btn-small btn-secondary' }, 'Enable Gemini API');
              action.addEventListener('click', () => use(p, true, action));
            }
            return h('tr', { 'data-project': p.project_id },
              h('td', null, h('code', null, p.project_id), p.display_name && p.display_name !== p.project_id ? h('div', { class: 'muted' }, p.display_name) : null),
              h('td', null, badge(p.gemini_api, TONES[p.gemini_api] ?? 'neutral', p.error ? { title: p.error } : {})),
              h('td', null, badge(p.vertex_ai, TONES[p.vertex_ai] ?? 'neutral')),
              h('td', null, action));
          }))));
      },
      (err) => replaceChildren(body, errorBox(err)),
    );
    return h('div', { class: 'stack' },
      h('p', { class: 'hint' }, 'Google meters the Gemini API per project: an account on a project of its own brings that project\'s quota. Nothing is enabled unless you press a button here.'),
      body,
      status,
      h('div', { class: 'dialog-actions' }, again, h('button', { type: 'button', class: 'btn btn-secondary', onclick: () => close() }, 'Close')));
  }, { wide: true });
}
