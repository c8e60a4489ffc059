// Requests view: a per-day usage chart (by account or model) and the recent
// proxied requests with filters, updated live.
import { api } from './api.js';
import { h, clear, replaceChildren, uid, formatClockSeconds, formatMs, formatNumber } from './dom.js';
import { card, badge, errorBox, emptyState } from './ui.js';
import { buildSeries, lastDays, stackedBarChart } from './chart.js';

const PROTOCOLS = [['', 'All protocols'], ['openai', 'OpenAI'], ['anthropic', 'Anthropic'], ['gemini', 'Gemini'], ['google', 'Google pass-through']];
const STATUSES = [['', 'Any status'], ['2xx', 'Success (2xx)'], ['4xx', 'Client errors (4xx)'], ['429', 'Rate limited (429)'], ['5xx', 'Server errors (5xx)']];
const LIMIT = 100;
const PAGE = 25;

export function matchesFilters(r, f) {
  if (f.account && r.account_id !== f.account) return false;
  if (f.model && !String(r.model_requested ?? '').includes(f.model) && !String(r.model_used ?? '').includes(f.model)) return false;
  if (f.protocol && r.protocol !== f.protocol) return false;
  if (f.status) {
    const code = Number(r.status);
    if (/^\dxx$/.test(f.status)) {
      if (Math.floor(code / 100) !== Number(f.status[0])) return false;
    } else if (code !== Number(f.status)) return false;
  }
  return true;
}

export function mountRequests(root, app) {
  const filters = { account: '', model: '', status: '', protocol: '' };
  let rows = [];
  let usage = null;
  let groupBy = 'account';
  let measure = 'requests';
  let days = 14;
  let visible = PAGE;

  const chartBox = h('div', { class: 'chart-box' });
  const tableBox = h('div');
  const countBox = h('p', { class: 'hint', role: 'status', 'aria-live': 'polite' });

  const seg = (name, label, options, get, set) => {
    const group = h('div', { class: 'seg', role: 'radiogroup', 'aria-label': label });
    const draw = () => {
      clear(group);
      for (const [value, text] of options) {
        group.append(h('button', { type: 'button', role: 'radio', class: 'seg-btn', 'aria-checked': get() === value ? 'true' : 'false',
          onclick: () => { set(value); draw(); renderChart(); } }, text));
      }
    };
    draw();
    return group;
  };

  const accountSelId = uid('f-acc');
  const modelId = uid('f-model');
  const statusId = uid('f-status');
  const protoId = uid('f-proto');
  const modelList = h('datalist', { id: `${modelId}-list` });
  const accountSelect = h('select', { id: accountSelId });
  const onFilter = () => { visible = PAGE; load(); };
  accountSelect.addEventListener('change', () => { filters.account = accountSelect.value; onFilter(); });
  const modelInput = h('input', { id: modelId, type: 'search', list: `${modelId}-list`, placeholder: 'any', autocomplete: 'off' });
  let modelTimer = null;
  modelInput.addEventListener('input', () => {
    clearTimeout(modelTimer);
    modelTimer = setTimeout(() => { filters.model = modelInput.value.trim(); onFilter(); }, 300);
  });
  const select = (id, options, key) => {
    const el = h('select', { id }, options.map(([v, t]) => h('option', { value: v }, t)));
    el.addEventListener('change', () => { filters[key] = el.value; onFilter(); });
    return el;
  };

  root.append(h('div', { class: 'container' },
    h('div', { class: 'page-head' }, h('h1', null, 'Requests')),
    card('Usage per day',
      h('div', { class: 'chart-controls' },
        seg('group', 'Split by', [['account', 'By account'], ['model', 'By model']], () => groupBy, (v) => { groupBy = v; }),
        seg('measure', 'Measure', [['requests', 'Requests'], ['tokens', 'Tokens']], () => measure, (v) => { measure = v; }),
        seg('days', 'Period', [[7, '7 days'], [14, '14 days'], [30, '30 days']], () => days, (v) => { days = v; loadUsage(); })),
      chartBox),
    card('Recent requests',
      h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter requests', onsubmit: (e) => e.preventDefault() },
        h('div', { class: 'field' }, h('label', { for: accountSelId }, 'Account'), accountSelect),
        h('div', { class: 'field' }, h('label', { for: modelId }, 'Model'), modelInput, modelList),
        h('div', { class: 'field' }, h('label', { for: statusId }, 'Status'), select(statusId, STATUSES, 'status')),
        h('div', { class: 'field' }, h('label', { for: protoId }, 'Protocol'), select(protoId, PROTOCOLS, 'protocol'))),
      countBox,
      tableBox)));

  function renderAccountOptions() {
    const current = accountSelect.value;
    replaceChildren(accountSelect, h('option', { value: '' }, 'All accounts'),
      (app.state.accounts ?? []).map((a) => h('option', { value: a.id }, a.email ?? a.id)));
    accountSelect.value = current;
  }

  function renderModelOptions() {
    const models = new Set();
    for (const r of rows) {
      if (r.model_requested) models.add(r.model_requested);
      if (r.model_used) models.add(r.model_used);
    }
    for (const d of usage?.days ?? []) if (d.model) models.add(d.model);
    replaceChildren(modelList, [...models].sort().map((m) => h('option', { value: m })));
  }

  function renderChart() {
    clear(chartBox);
    if (!usage) return chartBox.append(h('p', { class: 'muted' }, 'Loading…'));
    if (usage.error) return chartBox.append(errorBox(usage.error));
    const dates = lastDays(days);
    const seriesRows = (usage.days ?? []).map((d) => ({
      date: d.date,
      key: groupBy === 'account' ? (d.email ?? d.account_id ?? 'unknown') : (d.model ?? 'unknown'),
      value: measure === 'requests' ? (d.requests ?? 0) : (d.tokens_in ?? 0) + (d.tokens_out ?? 0),
    }));
    const data = buildSeries(seriesRows, dates);
    if (!data.series.length) {
      chartBox.append(emptyState('No usage yet', `Requests through the proxy in the last ${days} days show up here.`));
      return;
    }
    chartBox.append(stackedBarChart(data, {
      unit: measure,
      title: `${measure === 'requests' ? 'Requests' : 'Tokens (in + out)'} per day by ${groupBy}, last ${days} days`,
    }));
  }

  function statusBadge(code) {
    const n = Number(code);
    const tone = n >= 200 && n < 300 ? 'ok' : n === 429 ? 'warn' : n >= 400 && n < 500 ? 'warn' : 'bad';
    return badge(String(code ?? '–'), tone);
  }

  function renderTable() {
    clear(tableBox);
    const matching = rows.filter((r) => matchesFilters(r, filters)).slice(0, LIMIT);
    const shown = matching.slice(0, visible);
    countBox.textContent = shown.length ? `Showing the latest ${shown.length} of ${matching.length} request${matching.length === 1 ? '' : 's'}.` : '';
    if (!shown.length) {
      tableBox.append(emptyState('No requests', Object.values(filters).some(Boolean) ? 'Nothing matches these filters.' : 'Proxied requests show up here as they happen.'));
      return;
    }
    tableBox.append(h('div', { class: 'table-wrap' }, h('table', { class: 'table table-requests' },
      h('caption', { class: 'sr-only' }, 'Recent proxied requests, newest first'),
      h('thead', null, h('tr', null,
        ['Time', 'Route', 'Model', 'Account', 'Status'].map((t) => h('th', { scope: 'col' }, t)),
        h('th', { scope: 'col', class: 'num' }, 'Latency'),
        h('th', { scope: 'col', class: 'num' }, 'Tokens in / out'))),
      h('tbody', null, shown.map((r) => h('tr', { 'data-status': String(r.status) },
        h('td', { 'data-label': 'Time' }, h('time', { datetime: new Date(r.time).toISOString(), title: new Date(r.time).toLocaleString() }, formatClockSeconds(r.time))),
        h('td', { 'data-label': 'Route' }, h('div', null, r.protocol ?? ''), h('div', { class: 'muted mono' }, r.route ?? '')),
        h('td', { 'data-label': 'Model', class: 'cell-model' },
          h('div', null, r.model_requested ?? '–'),
          r.model_used && r.model_used !== r.model_requested ? h('div', { class: 'muted' }, `→ ${r.model_used}`) : null),
        h('td', { 'data-label': 'Account' }, r.email ?? r.account_id ?? h('span', { class: 'muted' }, 'none'),
          r.lane ? h('div', { class: 'muted mono', 'data-testid': 'request-lane', title: 'the service and lane (quota) that served it' }, `${r.service === 'vertex' ? 'Vertex AI' : 'Gemini API'} · ${r.lane}`) : null),
        h('td', { 'data-label': 'Status' },
          statusBadge(r.status),
          r.retries ? h('div', { class: 'muted' }, `${r.retries} retr${r.retries === 1 ? 'y' : 'ies'}`) : null,
          r.error ? h('div', { class: 'state-detail tone-bad' }, r.error) : null),
        h('td', { 'data-label': 'Latency', class: 'num' },
          h('div', null, formatMs(r.latency_ms)),
          r.first_byte_ms != null ? h('div', { class: 'muted', title: 'time to first byte' }, `first byte ${formatMs(r.first_byte_ms)}`) : null),
        h('td', { 'data-label': 'Tokens', class: 'num' }, `${formatNumber(r.tokens_in ?? 0)} / ${formatNumber(r.tokens_out ?? 0)}`)))))));
    if (matching.length > shown.length) {
      tableBox.append(h('div', { class: 'more' }, h('button', { type: 'button', class: 'btn btn-secondary',
        onclick: () => { visible += PAGE; renderTable(); } }, `Show ${Math.min(PAGE, matching.length - shown.length)} more`)));
    }
  }

  // Live entries that arrive while a reload is in flight must survive it.
  let arrivedDuringLoad = null;
  const sameEntry = (a, b) => a.time === b.time && a.route === b.route && a.account_id === b.account_id && a.status === b.status;

  async function load() {
    arrivedDuringLoad = [];
    const arrived = arrivedDuringLoad;
    try {
      const res = await api.requests({ ...filters, limit: LIMIT });
      if (arrived !== arrivedDuringLoad) return; // a newer load (other filters) is under way
      arrivedDuringLoad = null;
      const fresh = res.requests ?? [];
      rows = [...arrived.filter((e) => !fresh.some((r) => sameEntry(r, e))).reverse(), ...fresh];
    } catch (err) {
      if (arrived === arrivedDuringLoad) arrivedDuringLoad = null;
      replaceChildren(tableBox, errorBox(err));
      return;
    }
    renderModelOptions();
    renderTable();
  }

  async function loadUsage() {
    try {
      usage = await api.usage(days);
    } catch (err) {
      usage = { error: err };
    }
    renderModelOptions();
    renderChart();
  }

  renderAccountOptions();
  renderChart();
  load();
  loadUsage();
  const usageTimer = setInterval(loadUsage, 60000);

  return {
    update(kind, payload) {
      if (kind === 'accounts') renderAccountOptions();
      else if (kind === 'request' && payload) {
        rows.unshift(payload);
        arrivedDuringLoad?.push(payload);
        if (rows.length > LIMIT * 2) rows.length = LIMIT * 2;
        renderTable();
      } else if (kind === 'poll') load();
    },
    unmount() {
      clearInterval(usageTimer);
    },
  };
}
