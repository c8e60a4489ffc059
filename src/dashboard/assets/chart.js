// A stacked per-day bar chart in inline SVG, with a legend and a data table
// for screen readers. No library: the data is small and the shape is fixed.
import { h, s, formatCompact, formatNumber, formatShortDate, uid } from './dom.js';

// Distinguishable colours (colour-blind friendly first), then greys for "other".
export const PALETTE = ['#2563eb', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#06b6d4', '#ec4899', '#84cc16', '#f97316', '#64748b'];
const OTHER_COLOR = '#94a3b8';
const MAX_SERIES = 8;

/** Consecutive YYYY-MM-DD dates ending today (local time). */
export function lastDays(n, now = new Date()) {
  const out = [];
  for (let i = n - 1; i >= 0; i--) {
    const d = new Date(now.getFullYear(), now.getMonth(), now.getDate() - i);
    out.push(`${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`);
  }
  return out;
}

/**
 * rows: [{ date, key, value }] -> { dates, series: [{ key, color, values[], total }] }
 * keeping the biggest MAX_SERIES series and folding the rest into "Other".
 */
export function buildSeries(rows, dates) {
  const byKey = new Map();
  for (const r of rows) {
    const i = dates.indexOf(r.date);
    if (i < 0) continue;
    let sr = byKey.get(r.key);
    if (!sr) {
      sr = { key: r.key, values: dates.map(() => 0), total: 0 };
      byKey.set(r.key, sr);
    }
    sr.values[i] += r.value;
    sr.total += r.value;
  }
  let series = [...byKey.values()].filter((x) => x.total > 0).sort((a, b) => b.total - a.total || a.key.localeCompare(b.key));
  if (series.length > MAX_SERIES) {
    const rest = series.slice(MAX_SERIES - 1);
    const other = { key: `Other (${rest.length})`, values: dates.map((_, i) => rest.reduce((sum, x) => sum + x.values[i], 0)), total: 0 };
    other.total = other.values.reduce((a, b) => a + b, 0);
    series = [...series.slice(0, MAX_SERIES - 1), other];
    series.forEach((x, i) => { x.color = i === MAX_SERIES - 1 ? OTHER_COLOR : PALETTE[i]; });
  } else {
    series.forEach((x, i) => { x.color = PALETTE[i % PALETTE.length]; });
  }
  return { dates, series };
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** The chart figure: SVG + legend + a table with the same numbers. */
export function stackedBarChart({ dates, series }, { unit = 'requests', title = 'Usage per day' } = {}) {
  const W = 760;
  const H = 260;
  const pad = { l: 48, r: 12, t: 12, b: 30 };
  const totals = dates.map((_, i) => series.reduce((sum, x) => sum + x.values[i], 0));
  const max = niceMax(Math.max(0, ...totals));
  const plotW = W - pad.l - pad.r;
  const plotH = H - pad.t - pad.b;
  const step = plotW / Math.max(1, dates.length);
  const barW = Math.max(4, Math.min(40, step * 0.64));
  const y = (v) => pad.t + plotH - (v / max) * plotH;
  const titleId = uid('chart-title');
  const descId = uid('chart-desc');
  const grand = totals.reduce((a, b) => a + b, 0);

  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-labelledby': `${titleId} ${descId}`, preserveAspectRatio: 'xMidYMid meet' },
    s('title', { id: titleId }, title),
    s('desc', { id: descId }, `${formatNumber(grand)} ${unit} over ${dates.length} days; the table below has every number.`));

  for (let i = 0; i <= 4; i++) {
    const v = (max / 4) * i;
    const yy = y(v);
    svg.append(
      s('line', { x1: pad.l, x2: W - pad.r, y1: yy, y2: yy, class: i === 0 ? 'chart-axis' : 'chart-grid' }),
      s('text', { x: pad.l - 8, y: yy + 4, 'text-anchor': 'end', class: 'chart-label' }, formatCompact(v)));
  }
  const labelEvery = dates.length > 20 ? 4 : dates.length > 10 ? 2 : 1;
  dates.forEach((date, i) => {
    const x = pad.l + step * i + (step - barW) / 2;
    let acc = 0;
    const g = s('g', { class: 'chart-bar' });
    for (const sr of series) {
      const v = sr.values[i];
      if (!v) continue;
      const y0 = y(acc);
      const y1 = y(acc + v);
      acc += v;
      g.append(s('rect', { x, y: y1, width: barW, height: Math.max(1, y0 - y1), fill: sr.color, rx: 2 },
        s('title', null, `${formatShortDate(date)} · ${sr.key}: ${formatNumber(v)} ${unit}`)));
    }
    if (totals[i] > 0) g.append(s('title', null, `${formatShortDate(date)}: ${formatNumber(totals[i])} ${unit}`));
    svg.append(g);
    if (i % labelEvery === 0 || i === dates.length - 1) {
      svg.append(s('text', { x: x + barW / 2, y: H - 10, 'text-anchor': 'middle', class: 'chart-label' }, formatShortDate(date)));
    }
  });

  const legend = h('ul', { class: 'legend', 'aria-label': 'Legend' }, series.map((sr) => h('li', null,
    s('svg', { width: 12, height: 12, viewBox: '0 0 12 12', 'aria-hidden': 'true' }, s('rect', { width: 12, height: 12, rx: 3, fill: sr.color })),
    h('span', { class: 'legend-key' }, sr.key),
    h('span', { class: 'muted' }, formatCompact(sr.total)))));

  const table = h('details', { class: 'chart-table' },
    h('summary', null, 'Show the numbers'),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table table-compact' },
      h('caption', { class: 'sr-only' }, `${title}, ${unit}`),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Day'), series.map((sr) => h('th', { scope: 'col', class: 'num' }, sr.key)), h('th', { scope: 'col', class: 'num' }, 'Total'))),
      h('tbody', null, dates.map((d, i) => h('tr', null,
        h('th', { scope: 'row' }, formatShortDate(d)),
        series.map((sr) => h('td', { class: 'num' }, formatNumber(sr.values[i]))),
        h('td', { class: 'num' }, formatNumber(totals[i]))))))));

  return h('figure', { class: 'chart-figure' }, svg, legend, table);
}
