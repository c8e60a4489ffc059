// Accounts view: the table with state badges and reasons, and every fix one
// action away (add, re-authorize, take out of / put back into the proxy, remove),
// also for a multi-selection.
import { api } from './api.js';
import { h, clear, replaceChildren, timeEl, formatNumber, formatCompact, uid, srOnly } from './dom.js';
import {
  toast, toastError, openDialog, confirmDialog, errorBox, setBusy, stateCell, describeState,
  stateLabel, emptyState, badge,
} from './ui.js';
import { projectCell } from './projects.js';

const STATE_ORDER = ['active', 'refreshing', 'cooling_down', 'quota_protected', 'proxy_disabled', 'disabled'];

export function mountAccounts(root, app) {
  const selection = new Set();
  let filterText = '';
  let filterState = '';
  let bulkBusy = false;

  const summary = h('div', { class: 'summary', 'aria-label': 'Accounts by state', role: 'group' });
  const pendingBox = h('div', { class: 'pending', 'aria-live': 'polite' });
  const bulkBar = h('div', { class: 'bulkbar', role: 'region', 'aria-label': 'Actions on selected accounts', hidden: true });
  const tbody = h('tbody');
  const selectAll = h('input', { type: 'checkbox', 'aria-label': 'Select all shown accounts' });
  const emptyBox = h('div');
  const table = h('table', { class: 'table table-accounts' },
    h('caption', { class: 'sr-only' }, 'Google accounts in the pool, with state, usage today and actions'),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col', class: 'col-check' }, selectAll),
      h('th', { scope: 'col' }, 'Account'),
      h('th', { scope: 'col' }, 'State'),
      h('th', { scope: 'col' }, 'Project'),
      h('th', { scope: 'col' }, 'Last used'),
      h('th', { scope: 'col', class: 'num' }, 'Today'),
      h('th', { scope: 'col' }, 'Missing scopes'),
      h('th', { scope: 'col', class: 'col-actions' }, srOnly('Actions')))),
    tbody);

  const tableWrap = h('div', { class: 'table-wrap' }, table);
  const searchId = uid('search');
  const stateSelId = uid('statesel');
  const stateSelect = h('select', { id: stateSelId, onchange: (e) => { filterState = e.target.value; render(); } },
    h('option', { value: '' }, 'All states'),
    STATE_ORDER.map((s) => h('option', { value: s }, stateLabel(s))));
  const filters = h('div', { class: 'filters' },
    h('div', { class: 'field field-inline' },
      h('label', { for: searchId }, 'Find'),
      h('input', { id: searchId, type: 'search', placeholder: 'Email or name', autocomplete: 'off',
        oninput: (e) => { filterText = e.target.value.trim().toLowerCase(); render(); } })),
    h('div', { class: 'field field-inline' }, h('label', { for: stateSelId }, 'State'), stateSelect));

  const addGoogleBtn = h('button', { type: 'button', class: 'btn btn-primary', onclick: () => addWithGoogle(null, addGoogleBtn) }, 'Add with Google');
  root.append(h('div', { class: 'container' },
    h('div', { class: 'page-head' },
      h('h1', null, 'Accounts'),
      h('div', { class: 'actions' },
        addGoogleBtn,
        h('button', { type: 'button', class: 'btn btn-secondary', onclick: addByRefreshToken }, 'Add by refresh token'),
        h('button', { type: 'button', class: 'btn btn-secondary', onclick: () => finishWithRedirectUrl() }, 'Paste redirect URL'))),
    summary,
    pendingBox,
    filters,
    bulkBar,
    tableWrap,
    emptyBox));

  selectAll.addEventListener('change', () => {
    for (const a of shown()) {
      if (selectAll.checked) selection.add(a.id);
      else selection.delete(a.id);
    }
    render();
  });

  function accounts() {
    return app.state.accounts ?? [];
  }

  function shown() {
    return accounts().filter((a) => {
      if (filterState && describeState(a).state !== filterState) return false;
      if (!filterText) return true;
      return `${a.email ?? ''} ${a.name ?? ''}`.toLowerCase().includes(filterText);
    });
  }

  // ---- actions ----------------------------------------------------------------

  async function addWithGoogle(account, button) {
    if (!app.state.status?.oauth?.configured) {
      toast('Set up the Google OAuth client first.', 'info');
      app.go('setup');
      return;
    }
    // Open the tab inside the click, so that popup blockers allow it; point it at Google once we have the URL.
    const win = window.open('', '_blank');
    if (button) setBusy(button, true, 'Starting…');
    try {
      const { auth_url } = await api.oauthStart(account ? account.email : undefined);
      let opened = false;
      if (win && !win.closed) {
        try {
          win.opener = null;
          win.location.href = auth_url;
          opened = true;
        } catch {
          opened = false;
        }
      }
      if (account) app.state.pending.reauth.add(account.id);
      else app.state.pending.adding = true;
      showPending(auth_url, account, opened);
    } catch (err) {
      if (win && !win.closed) win.close();
      toastError(account ? `Could not start re-authorizing ${account.email}` : 'Could not start adding an account', err);
    } finally {
      if (button) setBusy(button, false);
    }
  }

  function showPending(authUrl, account, opened) {
    replaceChildren(pendingBox, h('div', { class: 'notice notice-info' },
      h('p', null,
        h('strong', null, account ? `Re-authorizing ${account.email}. ` : 'Adding an account. '),
        opened
          ? 'Finish the Google consent in the new tab; this table updates by itself when it is done.'
          : 'Your browser blocked the new tab. Open the consent page with the link below.'),
      h('p', { class: 'pending-links' },
        h('a', { href: authUrl, target: '_blank', rel: 'noopener noreferrer' }, 'Open the Google consent page'),
        ' · ',
        h('button', { type: 'button', class: 'btn-link', onclick: () => finishWithRedirectUrl() }, 'The tab ended on an error page? Paste its address'),
        ' · ',
        h('button', { type: 'button', class: 'btn-link', onclick: () => clear(pendingBox) }, 'Dismiss'))));
  }

  /**
   * A dialog with one field that sends it to the API and reports the account it
   * added; errors stay in the dialog next to the field.
   */
  function oneFieldDialog({ title, idPrefix, label, inputAttrs, hint, submitLabel, busyLabel, send, after }) {
    return openDialog(title, (close) => {
      const inputId = uid(idPrefix);
      const input = h('input', { id: inputId, autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': `${inputId}-hint`, ...inputAttrs });
      const err = h('div');
      const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, submitLabel);
      const form = h('form', { class: 'stack' },
        h('label', { for: inputId }, label),
        input,
        h('p', { class: 'hint', id: `${inputId}-hint` }, ...hint),
        err,
        h('div', { class: 'dialog-actions' },
          h('button', { type: 'button', class: 'btn btn-secondary', onclick: () => close() }, 'Cancel'),
          submit));
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        clear(err);
        setBusy(submit, true, busyLabel);
        try {
          const result = await send(input.value.trim());
          input.value = '';
          reportAdded(result);
          after?.();
          await app.refreshAccounts().catch(() => {});
          close(true);
        } catch (ex) {
          err.append(errorBox(ex));
          input.focus();
        } finally {
          setBusy(submit, false);
        }
      });
      return form;
    });
  }

  async function addByRefreshToken() {
    const clientIds = (app.state.status?.oauth?.clients ?? []).map((c) => c.client_id).filter(Boolean);
    await oneFieldDialog({
      title: 'Add an account by refresh token',
      idPrefix: 'rt',
      label: 'Refresh token',
      inputAttrs: { type: 'password' },
      hint: [
        'A Google OAuth refresh token (it usually starts with "1//"), issued to this gateway\'s OAuth client',
        clientIds.length ? ` (${clientIds.join(', ')})` : '',
        '. Re-adding a disabled account with a new token brings it back.',
      ],
      submitLabel: 'Add account',
      busyLabel: 'Checking…',
      send: (token) => api.addRefreshToken(token),
    });
  }

  async function finishWithRedirectUrl() {
    const redirectUri = app.state.status?.redirect_uri ?? '<public url>/oauth2callback';
    await oneFieldDialog({
      title: 'Finish adding an account with the redirect URL',
      idPrefix: 'cb',
      label: 'Redirect URL from the address bar',
      inputAttrs: { type: 'url', placeholder: `${redirectUri}?state=…&code=…` },
      hint: [`After the consent, Google sends the browser to ${redirectUri}?state=…&code=…. When that page could not load (for example, the gateway runs on another machine), copy the whole address from the browser's address bar and paste it here. It works once, within a few minutes of the consent.`],
      submitLabel: 'Finish',
      busyLabel: 'Finishing…',
      send: (url) => api.oauthComplete(url),
      after: () => clear(pendingBox),
    });
  }

  function reportAdded(result) {
    const email = result?.account?.email ?? 'the account';
    const what = result?.created ? `Added ${email}.` : result?.reenabled ? `${email} is back: its new credentials work.` : `Updated ${email}.`;
    const missing = result?.missing_scopes ?? [];
    toast(missing.length ? `${what} Google did not grant: ${missing.join(', ')}. Re-authorize and tick every box to grant them.` : what, missing.length ? 'warn' : 'ok');
  }

  async function setProxyDisabled(account, value) {
    const res = await api.setProxyDisabled(account.id, value);
    if (res?.account) replaceAccount(res.account);
    return res;
  }

  function replaceAccount(updated) {
    const list = accounts();
    const i = list.findIndex((a) => a.id === updated.id);
    if (i >= 0) {
      list[i] = updated;
      render();
    }
  }

  async function toggleProxy(account, button) {
    const next = !account.proxy_disabled;
    setBusy(button, true, next ? 'Taking out…' : 'Putting back…');
    try {
      await setProxyDisabled(account, next);
      toast(next ? `${account.email} is out of the proxy.` : `${account.email} is back in the proxy.`, 'ok');
    } catch (err) {
      toastError(`Could not change ${account.email}`, err);
    } finally {
      setBusy(button, false);
    }
  }

  function revokeCheckbox() {
    const id = uid('revoke');
    const box = h('input', { type: 'checkbox', id, checked: true });
    return {
      box,
      el: h('div', { class: 'check' }, box, h('label', { for: id }, 'Also revoke its tokens at Google (recommended)')),
    };
  }

  const REVOCATION_WORDS = {
    revoked: 'tokens revoked at Google',
    already_revoked: 'tokens were already revoked',
    skipped: 'tokens not revoked',
    failed: 'revocation at Google failed; revoke access at myaccount.google.com/permissions',
  };

  async function removeAccount(account) {
    const revoke = revokeCheckbox();
    const ok = await confirmDialog({
      title: `Remove ${account.email}?`,
      body: ['Grantpool deletes this account and stops using it. You can add it again later with Add with Google.'],
      extra: revoke.el,
      confirmLabel: 'Remove account',
      danger: true,
    });
    if (!ok) return;
    try {
      const res = await api.removeAccount(account.id, revoke.box.checked);
      selection.delete(account.id);
      app.state.accounts = accounts().filter((a) => a.id !== account.id);
      render();
      toast(`Removed ${account.email} (${REVOCATION_WORDS[res?.revocation] ?? 'done'}).`, res?.revocation === 'failed' ? 'warn' : 'ok');
    } catch (err) {
      toastError(`Could not remove ${account.email}`, err);
    }
  }

  // ---- bulk actions -------------------------------------------------------------

  function selected() {
    return accounts().filter((a) => selection.has(a.id));
  }

  async function runBulk(label, items, fn) {
    if (!items.length) return;
    bulkBusy = true;
    let done = 0;
    const failures = [];
    renderBulk(`${label}: 0 of ${items.length}…`);
    for (const a of items) {
      try {
        await fn(a);
      } catch (err) {
        failures.push(`${a.email}: ${err.message}`);
      }
      done += 1;
      renderBulk(`${label}: ${done} of ${items.length}…`);
    }
    bulkBusy = false;
    if (failures.length) toast(`${label}: ${failures.length} failed. ${failures.join(' · ')}`, 'error');
    else toast(`${label}: done for ${items.length} account${items.length === 1 ? '' : 's'}.`, 'ok');
    await app.refreshAccounts().catch(() => {});
    render();
  }

  async function bulkRemove() {
    const items = selected();
    const revoke = revokeCheckbox();
    const ok = await confirmDialog({
      title: `Remove ${items.length} account${items.length === 1 ? '' : 's'}?`,
      body: [h('ul', { class: 'plain-list' }, items.map((a) => h('li', null, a.email)))],
      extra: revoke.el,
      confirmLabel: `Remove ${items.length}`,
      danger: true,
    });
    if (!ok) return;
    const revokeAll = revoke.box.checked;
    await runBulk('Remove', items, async (a) => {
      await api.removeAccount(a.id, revokeAll);
      selection.delete(a.id);
    });
  }

  async function bulkReauthorize() {
    const items = selected();
    // Browsers allow one new tab per click, so each account gets its own button.
    await openDialog('Re-authorize selected accounts', () => h('div', { class: 'stack' },
      h('p', null, 'Each button opens Google\'s consent for that account in a new tab. The table updates as each one finishes.'),
      h('ul', { class: 'plain-list reauth-list' }, items.map((a) => {
        const btn = h('button', { type: 'button', class: 'btn btn-small btn-primary' }, 'Re-authorize');
        btn.addEventListener('click', () => addWithGoogle(a, btn));
        return h('li', null, h('span', null, a.email), btn);
      }))), { wide: true });
  }

  function renderBulk(progress) {
    const items = selected();
    bulkBar.hidden = items.length === 0;
    if (!items.length) return clear(bulkBar);
    const canOut = items.filter((a) => !a.proxy_disabled);
    const canIn = items.filter((a) => a.proxy_disabled);
    replaceChildren(bulkBar,
      h('span', { class: 'bulk-count' }, `${items.length} selected`),
      progress ? h('span', { class: 'bulk-progress', role: 'status' }, progress) : null,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'btn btn-small btn-secondary', disabled: bulkBusy || !canOut.length,
          onclick: () => runBulk('Take out of proxy', canOut, (a) => setProxyDisabled(a, true)) }, `Take out of proxy (${canOut.length})`),
        h('button', { type: 'button', class: 'btn btn-small btn-secondary', disabled: bulkBusy || !canIn.length,
          onclick: () => runBulk('Put back into proxy', canIn, (a) => setProxyDisabled(a, false)) }, `Put back (${canIn.length})`),
        h('button', { type: 'button', class: 'btn btn-small btn-secondary', disabled: bulkBusy, onclick: bulkReauthorize }, 'Re-authorize'),
        h('button', { type: 'button', class: 'btn btn-small btn-danger', disabled: bulkBusy, onclick: bulkRemove }, 'Remove'),
        h('button', { type: 'button', class: 'btn btn-small btn-ghost', disabled: bulkBusy,
          onclick: () => { selection.clear(); render(); } }, 'Clear selection')));
  }

  // ---- rendering -----------------------------------------------------------------

  function renderSummary() {
    const list = accounts();
    const counts = Object.fromEntries(STATE_ORDER.map((s) => [s, 0]));
    for (const a of list) counts[describeState(a).state] = (counts[describeState(a).state] ?? 0) + 1;
    const tones = { active: 'ok', refreshing: 'info', cooling_down: 'warn', quota_protected: 'warn', proxy_disabled: 'neutral', disabled: 'bad' };
    replaceChildren(summary,
      h('div', { class: 'stat' }, h('span', { class: 'stat-value' }, String(list.length)), h('span', { class: 'stat-label' }, 'accounts')),
      STATE_ORDER.filter((s) => counts[s] > 0 || s === 'active').map((s) =>
        h('button', { type: 'button', class: ['stat', 'stat-button', `stat-${tones[s]}`, filterState === s && 'stat-selected'],
          'aria-pressed': filterState === s ? 'true' : 'false',
          title: `Show only ${stateLabel(s).toLowerCase()} accounts`,
          onclick: () => { filterState = filterState === s ? '' : s; stateSelect.value = filterState; render(); } },
        h('span', { class: 'stat-value' }, String(counts[s])), h('span', { class: 'stat-label' }, stateLabel(s)))));
  }

  function row(a) {
    const st = describeState(a);
    const checkbox = h('input', { type: 'checkbox', checked: selection.has(a.id), 'aria-label': `Select ${a.email}`, 'data-key': `${a.id}:select` });
    checkbox.addEventListener('change', () => {
      if (checkbox.checked) selection.add(a.id);
      else selection.delete(a.id);
      renderBulk();
      syncSelectAll();
    });
    const actions = [];
    if (st.state === 'disabled' || (a.missing_scopes ?? []).length) {
      const b = h('button', { type: 'button', class: ['btn', 'btn-small', st.state === 'disabled' ? 'btn-primary' : 'btn-secondary'],
        'data-key': `${a.id}:reauth`, 'aria-label': `Re-authorize ${a.email}` }, 'Re-authorize');
      b.addEventListener('click', () => addWithGoogle(a, b));
      actions.push(b);
    }
    const toggle = h('button', { type: 'button', class: 'btn btn-small btn-secondary', 'data-key': `${a.id}:toggle`,
      'aria-label': `${a.proxy_disabled ? 'Put back into proxy' : 'Take out of proxy'}: ${a.email}` },
    a.proxy_disabled ? 'Put back' : 'Take out');
    toggle.addEventListener('click', () => toggleProxy(a, toggle));
    actions.push(toggle);
    actions.push(h('button', { type: 'button', class: 'btn btn-small btn-ghost btn-ghost-danger', 'data-key': `${a.id}:remove`,
      'aria-label': `Remove ${a.email}`, onclick: () => removeAccount(a) }, 'Remove'));

    const missing = a.missing_scopes ?? [];
    const usage = a.usage_today ?? { requests: 0, tokens: 0 };
    return h('tr', { 'data-account-id': a.id, 'data-state': st.state, class: selection.has(a.id) ? 'is-selected' : null },
      h('td', { class: 'col-check' }, checkbox),
      h('td', { 'data-label': 'Account', class: 'cell-account' },
        h('div', { class: 'account-email' }, a.email ?? a.id),
        a.name ? h('div', { class: 'muted' }, a.name) : null),
      h('td', { 'data-label': 'State' }, stateCell(a)),
      h('td', { 'data-label': 'Project' }, projectCell(a, replaceAccount, addWithGoogle)),
      h('td', { 'data-label': 'Last used', class: 'cell-time' }, timeEl(a.last_used)),
      h('td', { 'data-label': 'Today', class: 'num' },
        h('div', null, `${formatNumber(usage.requests)} req`),
        h('div', { class: 'muted', title: `${formatNumber(usage.tokens)} tokens` }, `${formatCompact(usage.tokens)} tokens`)),
      h('td', { 'data-label': 'Missing scopes', class: 'cell-scopes' },
        missing.length
          ? h('ul', { class: 'chips', 'aria-label': 'Scopes Google did not grant' }, missing.map((sc) => h('li', null, badge(shortScope(sc), 'warn', { title: sc }))))
          : h('span', { class: 'muted' }, 'none')),
      h('td', { class: 'col-actions' }, h('div', { class: 'row-actions' }, actions)));
  }

  function syncSelectAll() {
    const list = shown();
    const n = list.filter((a) => selection.has(a.id)).length;
    selectAll.checked = list.length > 0 && n === list.length;
    selectAll.indeterminate = n > 0 && n < list.length;
  }

  function render() {
    // Keep keyboard focus on the same control across live re-renders.
    const focusedKey = document.activeElement?.getAttribute?.('data-key');
    for (const id of [...selection]) if (!accounts().some((a) => a.id === id)) selection.delete(id);
    // The consent being waited for has arrived: the notice has done its job.
    if (!app.state.pending.adding && app.state.pending.reauth.size === 0) clear(pendingBox);
    renderSummary();
    const list = shown();
    clear(tbody);
    for (const a of list) tbody.append(row(a));
    tableWrap.hidden = list.length === 0;
    filters.hidden = summary.hidden = accounts().length === 0;
    clear(emptyBox);
    if (!accounts().length) {
      emptyBox.append(emptyState('No accounts yet',
        app.state.status?.oauth?.configured
          ? 'Add a Google account to start serving requests.'
          : 'First set up the Google OAuth client, then add accounts.',
        app.state.status?.oauth?.configured
          ? h('button', { type: 'button', class: 'btn btn-primary', onclick: (e) => addWithGoogle(null, e.currentTarget) }, 'Add with Google')
          : h('a', { class: 'btn btn-primary', href: '#setup' }, 'Go to setup')));
    } else if (!list.length) {
      emptyBox.append(emptyState('No account matches the filter.', null,
        h('button', { type: 'button', class: 'btn btn-secondary', onclick: () => { filterState = ''; filterText = ''; stateSelect.value = ''; root.querySelector('input[type=search]').value = ''; render(); } }, 'Show all')));
    }
    syncSelectAll();
    if (!bulkBusy) renderBulk();
    if (focusedKey) root.querySelector(`[data-key="${CSS.escape(focusedKey)}"]`)?.focus();
  }

  render();
  // Relative times ("3 min ago", "until … (in 4 min)") age; redraw them once a minute.
  const ticker = setInterval(render, 60000);

  return {
    update(kind) {
      if (kind === 'accounts' || kind === 'status') render();
    },
    unmount() {
      clearInterval(ticker);
    },
  };
}

function shortScope(scope) {
  return scope.replace('https://www.googleapis.com/auth/', '');
}
