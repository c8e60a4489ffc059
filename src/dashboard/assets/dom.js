// DOM helpers. Every value from the API goes in as text (text nodes,
// textContent, setAttribute); nothing here ever assigns innerHTML.

/**
 * Creates an element. `attrs`: `class`, `on<event>` (functions), boolean
 * attributes (true/false), anything else via setAttribute. Children: nodes,
 * strings/numbers (as text), arrays, null/undefined/false (skipped).
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
/** Same as h() for SVG elements. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

function applyAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'value' && 'value' in el) el.value = String(v);
    else if (k === 'checked' || k === 'indeterminate') el[k] = Boolean(v);
    else if (k === 'href' && !isSafeUrl(String(v))) continue;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Only http(s) URLs, relative paths and fragments become links. */
export function isSafeUrl(url) {
  if (url.startsWith('#') || url.startsWith('/')) return !url.startsWith('//');
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function replaceChildren(el, ...children) {
  clear(el);
  return append(el, children);
}

let idCounter = 0;
export function uid(prefix = 'id') {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/** A visually hidden text for screen readers. */
export function srOnly(text) {
  return h('span', { class: 'sr-only' }, text);
}

// ---- formatting -------------------------------------------------------------

const numberFmt = new Intl.NumberFormat();
export function formatNumber(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '–';
  return numberFmt.format(n);
}

/** 1234 -> 1.2k, 2500000 -> 2.5M */
export function formatCompact(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '–';
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${trim(n / 1e9)}B`;
  if (abs >= 1e6) return `${trim(n / 1e6)}M`;
  if (abs >= 1e4) return `${trim(n / 1e3)}k`;
  return numberFmt.format(n);
}
function trim(x) {
  return x >= 100 ? x.toFixed(0) : x.toFixed(1).replace(/\.0$/, '');
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const timeSecFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const shortDateFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

/** Absolute local date and time for unix seconds. */
export function formatDateTime(unixSeconds) {
  if (!unixSeconds) return '–';
  return dateTimeFmt.format(new Date(unixSeconds * 1000));
}

/** Local clock time, with the date when it is not today. */
export function formatClock(unixSeconds) {
  const d = new Date(unixSeconds * 1000);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return timeFmt.format(d);
  return `${shortDateFmt.format(d)} ${timeFmt.format(d)}`;
}

export function formatClockSeconds(ms) {
  return timeSecFmt.format(new Date(ms));
}

export function formatShortDate(isoDate) {
  const [y, m, d] = isoDate.split('-').map(Number);
  return shortDateFmt.format(new Date(y, m - 1, d));
}

/** "3 min ago", "in 2 h", "just now". */
export function formatRelative(unixSeconds, nowMs = Date.now()) {
  if (!unixSeconds) return 'never';
  const diff = Math.round(unixSeconds - nowMs / 1000);
  const abs = Math.abs(diff);
  let text;
  if (abs < 45) return diff > 5 ? 'in a moment' : 'just now';
  if (abs < 90 * 60) text = `${Math.round(abs / 60)} min`;
  else if (abs < 36 * 3600) text = `${Math.round(abs / 3600)} h`;
  else text = `${Math.round(abs / 86400)} days`;
  return diff >= 0 ? `in ${text}` : `${text} ago`;
}

/** A <time> element with relative text and the absolute time as tooltip. */
export function timeEl(unixSeconds, { relative = true } = {}) {
  if (!unixSeconds) return h('span', { class: 'muted' }, 'never');
  const iso = new Date(unixSeconds * 1000).toISOString();
  return h('time', { datetime: iso, title: formatDateTime(unixSeconds) }, relative ? formatRelative(unixSeconds) : formatDateTime(unixSeconds));
}

export function formatMs(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}
