// Shared pieces: toasts, copy buttons, dialogs, state badges, error boxes.
import { h, uid, formatClock, formatRelative, formatDateTime } from './dom.js';

// ---- toasts -------------------------------------------------------------------

export function toast(message, tone = 'info', { timeout = 6000 } = {}) {
  const box = document.getElementById('toasts');
  if (!box) return;
  const close = () => el.remove();
  const el = h('div', { class: ['toast', `toast-${tone}`] },
    h('span', { class: 'toast-text' }, message),
    h('button', { type: 'button', class: 'btn-icon', 'aria-label': 'Dismiss', onclick: close }, '×'));
  box.append(el);
  // Keep at most three on screen; the oldest goes first.
  while (box.children.length > 3) box.firstElementChild.remove();
  if (timeout) setTimeout(close, tone === 'error' ? timeout * 2 : timeout);
}

/** A toast for a failed API call, with the server's fix when there is one. */
export function toastError(prefix, err) {
  const msg = err && err.message ? err.message : String(err);
  toast(`${prefix}: ${msg}${err && err.fix ? ` Fix: ${err.fix}` : ''}`, 'error');
}

// ---- copying --------------------------------------------------------------------

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = h('textarea', { class: 'sr-only', 'aria-hidden': 'true' });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    ta.remove();
    return ok;
  }
}

/** A "Copy" button; `getText` is called at click time. */
export function copyButton(getText, label = 'Copy', what = '') {
  const btn = h('button', { type: 'button', class: 'btn btn-small btn-secondary copy-btn', 'aria-label': what ? `Copy ${what}` : label }, label);
  btn.addEventListener('click', async () => {
    const ok = await copyText(typeof getText === 'function' ? getText() : getText);
    btn.textContent = ok ? 'Copied' : 'Copy failed';
    setTimeout(() => { btn.textContent = label; }, 1600);
  });
  return btn;
}

/** A one-line value with a copy button. */
export function copyField(value, what) {
  return h('div', { class: 'copy-field' },
    h('code', { class: 'copy-value' }, value),
    copyButton(value, 'Copy', what));
}

/** A code block with a copy button. */
export function codeBlock(text, what) {
  return h('div', { class: 'code-block' },
    h('pre', { tabindex: '0', 'aria-label': what }, h('code', null, text)),
    copyButton(text, 'Copy', what));
}

// ---- dialogs ----------------------------------------------------------------------

/**
 * Opens a modal dialog. `build(close)` returns the body nodes. Resolves with
 * the value passed to close() (undefined when dismissed).
 */
export function openDialog(title, build, { wide = false } = {}) {
  return new Promise((resolve) => {
    const titleId = uid('dlg-title');
    const dlg = h('dialog', { class: ['dialog', wide && 'dialog-wide'], 'aria-labelledby': titleId });
    let result;
    const close = (value) => {
      result = value;
      dlg.close();
    };
    dlg.addEventListener('close', () => {
      dlg.remove();
      resolve(result);
    });
    dlg.append(
      h('div', { class: 'dialog-head' },
        h('h2', { id: titleId }, title),
        h('button', { type: 'button', class: 'btn-icon', 'aria-label': 'Close', onclick: () => close(undefined) }, '×')),
      h('div', { class: 'dialog-body' }, build(close)));
    document.body.append(dlg);
    dlg.showModal();
  });
}

/** Asks a yes/no question; resolves true on confirm. */
export function confirmDialog({ title, body, confirmLabel = 'Confirm', danger = false, extra }) {
  return openDialog(title, (close) => {
    const form = h('form', { method: 'dialog', class: 'stack' });
    form.append(
      ...[].concat(body).map((p) => (typeof p === 'string' ? h('p', null, p) : p)),
      extra ?? null,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'btn btn-secondary', onclick: () => close(false) }, 'Cancel'),
        h('button', { type: 'submit', class: ['btn', danger ? 'btn-danger' : 'btn-primary'], onclick: (e) => { e.preventDefault(); close(true); } }, confirmLabel)));
    return form;
  }).then((v) => v === true);
}

/** An inline error box (role=alert) for forms. */
export function errorBox(err) {
  if (!err) return null;
  return h('div', { class: 'form-error', role: 'alert' },
    h('strong', null, err.message || String(err)),
    err.fix ? h('p', null, `Fix: ${err.fix}`) : null);
}

export function setBusy(button, busy, busyLabel) {
  if (busy) {
    button.dataset.label = button.textContent;
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    if (busyLabel) button.textContent = busyLabel;
  } else {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    if (button.dataset.label) button.textContent = button.dataset.label;
  }
}

// ---- account state -------------------------------------------------------------------

const STATE_LABELS = {
  active: 'Active',
  refreshing: 'Refreshing',
  cooling_down: 'Cooling down',
  quota_protected: 'Quota-protected',
  proxy_disabled: 'Out of proxy',
  disabled: 'Disabled',
};
const STATE_TONES = {
  active: 'ok',
  refreshing: 'info',
  cooling_down: 'warn',
  quota_protected: 'warn',
  proxy_disabled: 'neutral',
  disabled: 'bad',
};

export function stateLabel(state) {
  return STATE_LABELS[state] ?? state;
}

/** { state, label, tone, detail } for an account: the badge and the sentence under it. */
export function describeState(account) {
  const st = account.state ?? { state: account.disabled ? 'disabled' : account.proxy_disabled ? 'proxy_disabled' : 'active' };
  const state = st.state;
  let detail = '';
  if (state === 'cooling_down') {
    detail = [st.until ? `until ${formatClock(st.until)} (${formatRelative(st.until)})` : '', st.model ? `for ${st.model}` : '', st.reason ? `· ${st.reason}` : '']
      .filter(Boolean).join(' ');
  } else if (state === 'quota_protected') {
    detail = [st.model ? `for ${st.model}` : '', st.until ? `until ${formatClock(st.until)} (${formatRelative(st.until)})` : '', st.reason ? `· ${st.reason}` : '']
      .filter(Boolean).join(' ');
  } else if (state === 'proxy_disabled') {
    detail = st.reason || account.proxy_disabled_reason || 'taken out of the proxy';
  } else if (state === 'disabled') {
    detail = st.reason || account.disabled_reason || 'credentials no longer work';
  } else if (state === 'refreshing') {
    detail = st.reason || 'getting a new access token';
  }
  return { state, label: stateLabel(state), tone: STATE_TONES[state] ?? 'neutral', detail };
}

export function badge(label, tone, attrs = {}) {
  return h('span', { class: ['badge', `badge-${tone}`], ...attrs }, h('span', { class: 'badge-dot', 'aria-hidden': 'true' }), label);
}

export function stateCell(account) {
  const d = describeState(account);
  const since = d.state === 'disabled' ? account.disabled_at : d.state === 'proxy_disabled' ? account.proxy_disabled_at : null;
  return h('div', { class: 'state-cell' },
    badge(d.label, d.tone, { 'data-state': d.state }),
    d.detail ? h('div', { class: ['state-detail', `tone-${d.tone}`], 'data-testid': 'state-detail' }, d.detail) : null,
    since ? h('div', { class: 'state-since muted', title: formatDateTime(since) }, `since ${formatRelative(since)}`) : null,
    securityNote(account));
}

/** The newest security event Google sent about the account (Cross-Account Protection), or null. */
function securityNote(account) {
  const e = account.security_events?.[0];
  if (!e) return null;
  const text = `Google: ${e.event.replace(/-/g, ' ')}${e.reason ? ` (${e.reason})` : ''} · ${formatRelative(e.received_at)}`;
  return h('div', { class: ['state-detail', 'tone-warn'], 'data-testid': 'security-event', title: formatDateTime(e.received_at) }, text);
}

export function emptyState(title, text, action) {
  return h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, title), text ? h('p', { class: 'muted' }, text) : null, action ?? null);
}

export function card(title, ...children) {
  const id = uid('card');
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id, class: 'card-title' }, title), ...children);
}
