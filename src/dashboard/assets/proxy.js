// Proxy view: where to point clients, with which key, and ready-to-paste setup
// for Claude Code, Gemini CLI, the OpenAI SDKs and curl.
import { api } from './api.js';
import { h, clear, replaceChildren, uid, timeEl, srOnly } from './dom.js';
import { card, copyField, codeBlock, confirmDialog, errorBox, setBusy, toast, toastError, emptyState, badge } from './ui.js';

const KEY_PLACEHOLDER = '<your Grantpool API key>';

const AUTH_MODES = {
  off: ['Off', 'warn', 'The proxy accepts requests without an API key. Only safe while it listens on this machine alone.'],
  strict: ['Strict', 'ok', 'Every proxy route, /healthz included, needs an API key.'],
  all_except_health: ['All except health', 'ok', 'Every proxy route needs an API key; /healthz is open for health checks.'],
  auto: ['Auto', 'info', 'No key needed while the gateway listens on loopback only; a key is required as soon as it listens on a network address.'],
};

export function mountProxy(root, app) {
  const endpointsBox = h('div');
  const keysBox = h('div');
  const newKeyBox = h('div', { 'aria-live': 'polite' });
  const aliasesBox = h('div');
  const snippetsBox = h('div');
  const authBox = h('div');
  let proxy = null;
  let keys = [];
  let loadError = null;

  root.append(h('div', { class: 'container' },
    h('div', { class: 'page-head' }, h('h1', null, 'Proxy')),
    h('div', { class: 'grid-2' },
      card('Endpoints', endpointsBox),
      card('Authentication', authBox)),
    card('API keys', newKeyBox, keysBox, createKeyForm()),
    card('Set up a client', snippetsBox),
    card('Model aliases', aliasesBox)));

  function createKeyForm() {
    const id = uid('label');
    const input = h('input', { id, type: 'text', maxlength: '80', placeholder: 'e.g. laptop, CI, Claude Code', autocomplete: 'off', required: true });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create key');
    const err = h('div');
    const form = h('form', { class: 'inline-form' },
      h('div', { class: 'field' }, h('label', { for: id }, 'Label for a new key'), input),
      submit, err);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clear(err);
      setBusy(submit, true, 'Creating…');
      try {
        const created = await api.createKey(input.value.trim());
        app.state.newKey = created;
        input.value = '';
        await loadKeys();
        renderNewKey();
        renderSnippets();
        newKeyBox.querySelector('.copy-btn')?.focus();
      } catch (ex) {
        err.append(errorBox(ex));
      } finally {
        setBusy(submit, false);
      }
    });
    return form;
  }

  function renderNewKey() {
    clear(newKeyBox);
    const k = app.state.newKey;
    if (!k) return;
    newKeyBox.append(h('div', { class: 'notice notice-ok new-key', role: 'status' },
      h('p', null, h('strong', null, `New key "${k.label}" created. `), 'Copy it now: this is the only time it is shown. The setup snippets below use it.'),
      copyField(k.key, 'the new API key'),
      h('button', { type: 'button', class: 'btn-link', onclick: () => { app.state.newKey = null; renderNewKey(); renderSnippets(); } }, 'I have saved it, hide it')));
  }

  async function revoke(key) {
    const ok = await confirmDialog({
      title: `Revoke the key "${key.label}"?`,
      body: ['Clients using it get 401 from now on. This cannot be undone.'],
      confirmLabel: 'Revoke key',
      danger: true,
    });
    if (!ok) return;
    try {
      await api.revokeKey(key.id);
      if (app.state.newKey?.id === key.id) app.state.newKey = null;
      toast(`Revoked the key "${key.label}".`, 'ok');
      await loadKeys();
      renderNewKey();
      renderSnippets();
    } catch (err) {
      toastError('Could not revoke the key', err);
    }
  }

  function renderKeys() {
    clear(keysBox);
    if (!keys.length) {
      keysBox.append(emptyState('No API keys', 'Create one below, or set GRANTPOOL_API_KEYS.'));
      return;
    }
    keysBox.append(h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
      h('caption', { class: 'sr-only' }, 'Proxy API keys'),
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, 'Label'), h('th', { scope: 'col' }, 'Key'), h('th', { scope: 'col' }, 'Created'),
        h('th', { scope: 'col', class: 'col-actions' }, srOnly('Actions')))),
      h('tbody', null, keys.map((k) => h('tr', null,
        h('td', { 'data-label': 'Label' }, k.label ?? ''),
        h('td', { 'data-label': 'Key' }, h('code', null, /…$/.test(k.prefix ?? '') ? k.prefix : `${k.prefix ?? ''}…`)),
        h('td', { 'data-label': 'Created' }, timeEl(k.created_at)),
        h('td', { class: 'col-actions' }, h('button', { type: 'button', class: 'btn btn-small btn-ghost btn-ghost-danger',
          'aria-label': `Revoke the key ${k.label}`, onclick: () => revoke(k) }, 'Revoke'))))))));
  }

  function renderEndpoints() {
    clear(endpointsBox);
    if (!proxy) return;
    const ep = proxy.endpoints ?? {};
    const rows = [
      ['Base URL', proxy.base_url],
      ['OpenAI-style', ep.openai],
      ['Anthropic-style', ep.anthropic],
      ['Gemini API', ep.gemini],
      ['Google API pass-through', ep.google],
    ].filter(([, v]) => v);
    endpointsBox.append(h('dl', { class: 'kv' }, rows.map(([k, v]) => [h('dt', null, k), h('dd', null, copyField(v, `${k} URL`))])));
  }

  function renderAuth() {
    clear(authBox);
    if (!proxy) return;
    const mode = proxy.auth_mode ?? app.state.status?.auth_mode ?? 'auto';
    const [label, tone, text] = AUTH_MODES[mode] ?? [mode, 'neutral', ''];
    authBox.append(
      h('p', null, badge(label, tone, { 'data-testid': 'auth-mode' })),
      h('p', null, text),
      h('p', { class: 'hint' }, 'Clients may send the key as Authorization: Bearer, x-api-key, x-goog-api-key or ?key=. Change the mode with GRANTPOOL_AUTH_MODE or auth_mode in config.json.'));
  }

  function renderAliases() {
    clear(aliasesBox);
    const aliases = aliasRows(proxy);
    if (!aliases.length) {
      aliasesBox.append(emptyState('No aliases', 'Model names are passed to Gemini as they are.'));
      return;
    }
    aliasesBox.append(
      h('p', { class: 'hint' }, 'A requested model that matches a pattern (* matches anything) is served by the Gemini model on the right; the first match wins. A family (family:flash) is the newest model of that family the accounts can use, read from Google\'s model list. Set them with model_aliases in config.json or GRANTPOOL_MODEL_ALIASES.'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'table table-compact' },
        h('caption', { class: 'sr-only' }, 'Model aliases'),
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Requested model'), h('th', { scope: 'col' }, 'Served by'))),
        h('tbody', null, aliases.map(({ alias, target, model }) => h('tr', null,
          h('td', { 'data-label': 'Requested model' }, h('code', null, alias)),
          h('td', { 'data-label': 'Served by' }, h('code', null, model),
            target !== model ? h('span', { class: 'muted' }, ` (${target})`) : null)))))));
  }

  function renderSnippets() {
    clear(snippetsBox);
    if (!proxy) return;
    const base = String(proxy.base_url ?? '').replace(/\/+$/, '');
    const key = app.state.newKey?.key ?? KEY_PLACEHOLDER;
    const model = pickModel(aliasRows(proxy).map((a) => a.model));
    const mode = proxy.auth_mode ?? 'auto';
    const snippets = buildSnippets({ base, key, model });
    const tabsId = uid('snip');
    const tablist = h('div', { class: 'seg', role: 'tablist', 'aria-label': 'Client' });
    const panels = [];
    snippets.forEach((sn, i) => {
      const tabId = `${tabsId}-tab-${i}`;
      const panelId = `${tabsId}-panel-${i}`;
      const tab = h('button', { type: 'button', role: 'tab', id: tabId, 'aria-controls': panelId, 'aria-selected': i === 0 ? 'true' : 'false', tabindex: i === 0 ? '0' : '-1', class: 'seg-btn' }, sn.name);
      tab.addEventListener('click', () => select(i));
      tab.addEventListener('keydown', (e) => {
        if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
          e.preventDefault();
          const next = (i + (e.key === 'ArrowRight' ? 1 : snippets.length - 1)) % snippets.length;
          select(next);
          tablist.children[next].focus();
        }
      });
      tablist.append(tab);
      panels.push(h('div', { role: 'tabpanel', id: panelId, 'aria-labelledby': tabId, hidden: i !== 0, class: 'stack' },
        h('p', { class: 'hint' }, sn.note), codeBlock(sn.code, `${sn.name} setup`)));
    });
    function select(n) {
      [...tablist.children].forEach((t, j) => {
        t.setAttribute('aria-selected', j === n ? 'true' : 'false');
        t.setAttribute('tabindex', j === n ? '0' : '-1');
      });
      panels.forEach((p, j) => { p.hidden = j !== n; });
    }
    snippetsBox.append(
      key === KEY_PLACEHOLDER
        ? h('p', { class: 'hint' }, mode === 'off'
          ? 'Authentication is off, so any key value works.'
          : `Replace ${KEY_PLACEHOLDER} with one of your keys (create a new one above to have it filled in).`)
        : h('p', { class: 'hint' }, 'Filled in with the key you just created.'),
      tablist, ...panels);
  }

  async function loadKeys() {
    const res = await api.keys();
    keys = res.keys ?? [];
    renderKeys();
  }

  async function load() {
    try {
      const [p] = await Promise.all([api.proxy(), loadKeys()]);
      proxy = p;
      loadError = null;
    } catch (err) {
      loadError = err;
    }
    if (loadError) {
      replaceChildren(endpointsBox, errorBox(loadError));
      return;
    }
    renderEndpoints();
    renderAuth();
    renderAliases();
    renderSnippets();
    renderNewKey();
  }

  load();
  return { update() {} };
}

/** The aliases with the model each resolves to now (a `family:` target is resolved by the gateway). */
function aliasRows(proxy) {
  if (Array.isArray(proxy?.model_aliases_resolved)) return proxy.model_aliases_resolved;
  return Object.entries(proxy?.model_aliases ?? {}).map(([alias, target]) => ({ alias, target, model: target }));
}

function pickModel(models) {
  const values = (models ?? []).filter((m) => typeof m === 'string' && !m.startsWith('family:'));
  return values.find((m) => /flash/.test(m) && !/lite/.test(m)) ?? values[0] ?? 'gemini-2.5-flash';
}

export function buildSnippets({ base, key, model }) {
  return [
    {
      name: 'Claude Code',
      note: 'Run in the shell that starts claude. Claude model names are mapped to Gemini by the aliases below.',
      code: `export ANTHROPIC_BASE_URL="${base}"\nexport ANTHROPIC_AUTH_TOKEN="${key}"   # or ANTHROPIC_API_KEY\nclaude`,
    },
    {
      name: 'Gemini CLI',
      note: 'Run in the shell that starts gemini; choose "Use Gemini API key" when it asks how to authenticate.',
      code: `export GOOGLE_GEMINI_BASE_URL="${base}"\nexport GEMINI_API_KEY="${key}"\ngemini`,
    },
    {
      name: 'OpenAI Python',
      note: 'pip install openai',
      code: `from openai import OpenAI\n\nclient = OpenAI(base_url="${base}/v1", api_key="${key}")\nreply = client.chat.completions.create(\n    model="${model}",\n    messages=[{"role": "user", "content": "Hello!"}],\n)\nprint(reply.choices[0].message.content)`,
    },
    {
      name: 'OpenAI TypeScript',
      note: 'npm install openai',
      code: `import OpenAI from 'openai';\n\nconst client = new OpenAI({ baseURL: '${base}/v1', apiKey: '${key}' });\nconst reply = await client.chat.completions.create({\n  model: '${model}',\n  messages: [{ role: 'user', content: 'Hello!' }],\n});\nconsole.log(reply.choices[0].message.content);`,
    },
    {
      name: 'curl',
      note: 'OpenAI-style chat completion; the Anthropic (/v1/messages) and Gemini (/v1beta/models/…) routes work the same way.',
      code: `curl ${base}/v1/chat/completions \\\n  -H "Authorization: Bearer ${key}" \\\n  -H "Content-Type: application/json" \\\n  -d '{"model": "${model}", "messages": [{"role": "user", "content": "Hello!"}]}'`,
    },
  ];
}
