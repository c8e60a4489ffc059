// The dashboard app: loads the data, keeps it live (server-sent events with a
// polling fallback), draws the banners and switches between the views.
import { api, setUnauthorizedHandler } from './api.js';
import { h, replaceChildren, clear, formatDateTime } from './dom.js';
import { toast } from './ui.js';
import { mountAccounts } from './accounts.js';
import { mountProxy } from './proxy.js';
import { mountRequests } from './requests.js';
import { mountSetup } from './setup.js';

const VIEWS = { accounts: mountAccounts, proxy: mountProxy, requests: mountRequests, setup: mountSetup };
const TITLES = { accounts: 'Accounts', proxy: 'Proxy', requests: 'Requests', setup: 'Setup' };
const POLL_MS = 5000;
const STATUS_MS = 30000;

const app = {
  state: {
    status: null,
    accounts: null,
    /** Accounts we are waiting for after "Add with Google" / "Re-authorize". */
    pending: { adding: false, reauth: new Set() },
    /** A just-created API key: { id, label, key }, shown once. */
    newKey: null,
    sessionEnded: false,
  },
  view: null,
  viewName: null,
  /** Notifies the mounted view that something changed ('accounts', 'status', 'request'). */
  emit(kind, payload) {
    if (kind === 'status' || kind === 'accounts') renderBanners();
    app.view?.update?.(kind, payload);
  },
  async refreshAccounts() {
    const data = await api.accounts();
    setAccounts(data.accounts ?? []);
  },
  async refreshStatus() {
    app.state.status = await api.status();
    app.emit('status');
  },
  go(view) {
    if (location.hash !== `#${view}`) location.hash = `#${view}`;
    else showView();
  },
};

function setAccounts(accounts) {
  const before = app.state.accounts;
  app.state.accounts = accounts;
  if (before) noticeChanges(before, accounts);
  app.emit('accounts');
}

/** The order of GET /api/accounts: by creation, then email, then id (code-unit order). */
function byCreation(a, b) {
  const text = (x, y) => (x < y ? -1 : x > y ? 1 : 0);
  return (a.created_at ?? 0) - (b.created_at ?? 0) || text(a.email ?? '', b.email ?? '') || text(a.id, b.id);
}

/** Applies a live accounts event: {changed: [account...], removed: [id...]} (only what changed). */
function applyAccountChanges(data) {
  const list = [...(app.state.accounts ?? [])];
  const at = new Map(list.map((a, i) => [a.id, i]));
  let added = false;
  for (const a of Array.isArray(data.changed) ? data.changed : []) {
    if (!a || typeof a.id !== 'string') continue;
    const i = at.get(a.id);
    if (i === undefined) {
      at.set(a.id, list.push(a) - 1);
      added = true;
    } else {
      list[i] = a;
    }
  }
  const removed = new Set(Array.isArray(data.removed) ? data.removed : []);
  const next = removed.size ? list.filter((a) => !removed.has(a.id)) : list;
  if (added) next.sort(byCreation);
  setAccounts(next);
}

/** Tells the operator when an account they were adding or re-authorizing arrives. */
function noticeChanges(before, after) {
  const old = new Map(before.map((a) => [a.id, a]));
  let statusStale = false;
  for (const a of after) {
    const prev = old.get(a.id);
    // The status says whether accounts die the way a Testing-mode app's do, and which share a project.
    if (!prev || prev.disabled_at !== a.disabled_at || prev.project_id !== a.project_id) statusStale = true;
    if (!prev) {
      toast(`Added ${a.email}.`, 'ok');
      app.state.pending.adding = false;
    } else if (prev.state?.state === 'disabled' && a.state?.state !== 'disabled') {
      toast(`${a.email} is working again.`, 'ok');
      app.state.pending.reauth.delete(a.id);
    } else if (prev.state?.state !== 'disabled' && a.state?.state === 'disabled') {
      toast(`${a.email} was disabled: ${a.state.reason || a.disabled_reason || 'its credentials stopped working'}`, 'error');
    }
  }
  if (statusStale || after.length !== before.length) refreshStatusSoon();
}

let statusSoon = null;
/** One status reload for a burst of account events. */
function refreshStatusSoon() {
  if (statusSoon) return;
  statusSoon = setTimeout(() => {
    statusSoon = null;
    app.refreshStatus().catch(() => {});
  }, 300);
}

// ---- banners ------------------------------------------------------------------

function renderBanners() {
  const box = document.getElementById('banners');
  if (!box) return;
  clear(box);
  const st = app.state.status;
  if (app.state.sessionEnded) {
    box.append(h('div', { class: 'banner banner-bad', role: 'alert' },
      h('strong', null, 'Your dashboard session has ended. '),
      h('a', { href: '/login' }, 'Log in again')));
    return;
  }
  if (!st) return;
  const oauth = st.oauth ?? {};
  if (!oauth.configured) {
    if (app.viewName === 'setup') return;
    box.append(h('div', { class: 'banner banner-info', role: 'status' },
      h('strong', null, 'No Google OAuth client yet. '),
      'Accounts can be added once the client_secret.json is in place. ',
      h('a', { href: '#setup' }, 'Set it up')));
  } else if (oauth.problem) {
    box.append(h('div', { class: 'banner banner-bad', role: 'alert' },
      h('strong', null, 'OAuth client problem: '), oauth.problem,
      oauth.fix ? h('div', { class: 'banner-fix' }, h('strong', null, 'Fix: '), oauth.fix) : null));
  }
  if (oauth.testing_mode) {
    box.append(h('div', { class: 'banner banner-warn', role: 'alert', 'data-testid': 'testing-mode' },
      h('strong', null, 'Accounts die every week? '), oauth.testing_mode.message, '.',
      h('div', { class: 'banner-fix' }, h('strong', null, 'Fix: '), oauth.testing_mode.fix, '. ',
        h('a', { href: '#setup' }, 'More on the Setup page'))));
  }
  const shared = st.pool?.shared_lanes ?? [];
  if (shared.length) {
    box.append(h('div', { class: 'banner banner-warn', role: 'status', 'data-testid': 'shared-lanes' },
      h('strong', null, 'Shared quota: '), shared[0].warning,
      shared.length > 1 ? ` (and ${shared.length - 1} more project${shared.length === 2 ? '' : 's'} shared by several accounts)` : '', '. ',
      app.viewName === 'accounts' ? 'Use "Choose project" in the Project column.' : h('a', { href: '#accounts' }, 'Choose a project for each account')));
  }
  for (const problem of st.problems ?? []) {
    box.append(h('div', { class: 'banner banner-bad', role: 'alert', 'data-testid': 'gateway-problem' },
      h('strong', null, 'Degraded: '), problem));
  }
  for (const c of oauth.clients ?? []) {
    if (!c.failing) continue;
    box.append(h('div', { class: 'banner banner-bad', role: 'alert', 'data-testid': 'client-failing' },
      h('strong', null, 'Google rejects the OAuth client '), h('code', null, c.client_id ?? ''), h('strong', null, ': '),
      c.error ?? 'requests with this client fail',
      c.since ? h('span', { class: 'muted' }, ` (since ${formatDateTime(c.since)})`) : null,
      h('div', { class: 'banner-fix' }, h('strong', null, 'Fix: '),
        c.fix ?? 'Check the OAuth client in the Google Cloud console (it may be deleted, disabled, or its secret rotated) and upload a fresh client_secret.json on the Setup page. No account was disabled for this.')));
  }
}

// ---- live updates ---------------------------------------------------------------

let source = null;
let pollTimer = null;
let statusTimer = null;

function setLive(text, tone) {
  const el = document.getElementById('live');
  if (!el) return;
  el.textContent = text;
  el.className = `live live-${tone}`;
}

function startPolling() {
  if (pollTimer || app.state.sessionEnded) return;
  setLive(`Updating every ${POLL_MS / 1000} s`, 'warn');
  pollTimer = setInterval(() => {
    app.refreshAccounts().catch(() => {});
    if (app.viewName === 'requests') app.view?.update?.('poll');
  }, POLL_MS);
}

function stopPolling() {
  if (pollTimer) clearInterval(pollTimer);
  pollTimer = null;
}

/** While the full list loads after (re)connecting, changes wait and are applied over it. */
let loadingAccounts = false;
let heldChanges = [];

function reloadAccounts() {
  loadingAccounts = true;
  heldChanges = [];
  app.refreshAccounts().catch(() => {}).finally(() => {
    loadingAccounts = false;
    const held = heldChanges;
    heldChanges = [];
    for (const data of held) applyAccountChanges(data);
  });
}

function connectLive() {
  if (typeof EventSource !== 'function') return startPolling();
  source = new EventSource('/api/events');
  source.addEventListener('open', () => {
    stopPolling();
    setLive('Live', 'ok');
    // Events carry only what changed since the connection opened: start from the full list.
    reloadAccounts();
  });
  source.addEventListener('accounts', (ev) => {
    try {
      const data = JSON.parse(ev.data);
      if (Array.isArray(data.accounts)) setAccounts(data.accounts);
      else if (loadingAccounts) heldChanges.push(data);
      else applyAccountChanges(data);
    } catch {
      /* a malformed event is ignored; the next one or the poll repairs it */
    }
  });
  source.addEventListener('request', (ev) => {
    try {
      app.emit('request', JSON.parse(ev.data));
    } catch {
      /* ignored */
    }
  });
  source.addEventListener('error', () => {
    startPolling();
    if (source && source.readyState === EventSource.CLOSED) {
      source = null;
      setTimeout(() => { if (!source && !app.state.sessionEnded) connectLive(); }, 30000);
    }
  });
}

function endSession() {
  if (app.state.sessionEnded) return;
  app.state.sessionEnded = true;
  stopPolling();
  if (statusTimer) clearInterval(statusTimer);
  source?.close();
  source = null;
  setLive('Logged out', 'bad');
  renderBanners();
}

// ---- views -----------------------------------------------------------------------

function currentViewName() {
  const name = location.hash.replace(/^#/, '');
  if (VIEWS[name]) return name;
  return app.state.status && !app.state.status.oauth?.configured && !(app.state.accounts?.length) ? 'setup' : 'accounts';
}

function showView() {
  const name = currentViewName();
  const main = document.getElementById('main');
  if (app.viewName !== name) {
    app.view?.unmount?.();
    replaceChildren(main);
    app.viewName = name;
    app.view = VIEWS[name](main, app) ?? null;
    document.title = `${TITLES[name]} · Grantpool`;
  }
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  renderBanners();
}

async function start() {
  setUnauthorizedHandler(endSession);
  try {
    const [status, accounts] = await Promise.all([api.status(), api.accounts()]);
    app.state.status = status;
    app.state.accounts = accounts.accounts ?? [];
  } catch (err) {
    replaceChildren(document.getElementById('main'),
      h('div', { class: 'container' }, h('div', { class: 'form-error', role: 'alert' },
        h('strong', null, 'The dashboard could not load: '), err.message ?? String(err))));
    if (!app.state.sessionEnded) setTimeout(start, 5000);
    return;
  }
  window.addEventListener('hashchange', () => {
    showView();
    document.getElementById('main')?.focus({ preventScroll: true });
  });
  showView();
  connectLive();
  statusTimer = setInterval(() => app.refreshStatus().catch(() => {}), STATUS_MS);
}

start();
