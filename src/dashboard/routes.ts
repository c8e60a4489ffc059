// The dashboard's own routes: the login page, the app shell and its static
// assets (read once at start and served from memory). Everything the app shows
// comes from /api/*, which the lead's API guards with `sessions.authenticate`.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Router } from '../http/router.ts';
import { BadRequest, HttpError, escapeHtml, readBody, sendHtml } from '../http/http-util.ts';
import { safeEqual, type DashboardSessions } from './session.ts';

export interface DashboardDeps {
  sessions: DashboardSessions;
  /** Where the assets live (default: src/dashboard/assets next to this file). */
  assetsDir?: string;
  /** Shown on the login page: where an operator finds the admin token. */
  adminTokenHint?: string;
}

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  // same-origin, not no-referrer: with no-referrer browsers send `Origin: null`
  // on form posts, and the login's cross-site check could not tell them apart.
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** Assets a browser may fetch before logging in (the login page's look). */
const PUBLIC_ASSETS = new Set(['app.css', 'favicon.svg']);

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const DEFAULT_ASSETS_DIR = fileURLToPath(new URL('./assets/', import.meta.url));

/** Reads every file under `dir` once; keys are paths relative to `dir` with `/`. */
export function loadAssets(dir: string = DEFAULT_ASSETS_DIR): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) {
        walk(p);
        continue;
      }
      const type = CONTENT_TYPES[extname(name).toLowerCase()];
      if (!type) continue;
      const body = readFileSync(p);
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"`;
      assets.set(relative(dir, p).split(sep).join('/'), { body, type, etag });
    }
  };
  walk(dir);
  return assets;
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body?: Buffer | string): void {
  res.writeHead(status, { ...SECURITY_HEADERS, ...headers });
  res.end(body);
}

function redirect(res: ServerResponse, location: string, extra: Record<string, string> = {}): void {
  send(res, 303, { location, 'cache-control': 'no-store', 'content-length': '0', ...extra });
}

function page(res: ServerResponse, status: number, html: string, extra: Record<string, string> = {}): void {
  sendHtml(res, status, html, { ...SECURITY_HEADERS, ...extra });
}

export function renderLoginPage(opts: { error?: string; notice?: string; hint?: string } = {}): string {
  const message = opts.error
    ? `<p class="form-error" role="alert" id="login-error">${escapeHtml(opts.error)}</p>`
    : opts.notice
      ? `<p class="form-notice" role="status">${escapeHtml(opts.notice)}</p>`
      : '';
  const hint =
    opts.hint ??
    'The admin token is printed when the gateway starts for the first time and saved as "admin_token" in config.json in the data directory (~/.grantpool by default), unless GRANTPOOL_ADMIN_TOKEN sets it.';
  return `${pageHead('Log in · Grantpool')}
</head>
<body class="login-body">
<main class="login-card" aria-labelledby="login-title">
  <div class="brand brand-large"><span class="brand-mark" aria-hidden="true"></span><span>Grantpool</span></div>
  <h1 id="login-title">Log in to the dashboard</h1>
  ${message}
  <form method="post" action="/login" class="stack">
    <label for="token">Admin token</label>
    <input id="token" name="token" type="password" autocomplete="current-password" required autofocus
      spellcheck="false" autocapitalize="off"${opts.error ? ' aria-invalid="true" aria-describedby="login-error token-hint"' : ' aria-describedby="token-hint"'}>
    <p class="hint" id="token-hint">${escapeHtml(hint)}</p>
    <button type="submit" class="btn btn-primary">Log in</button>
  </form>
</main>
</body>
</html>`;
}

/** The start of every dashboard page, up to (not including) </head>. */
function pageHead(title: string, extra = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">${extra ? `\n${extra}` : ''}
<title>${escapeHtml(title)}</title>
<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/app.css">`;
}

export function renderAppPage(csrf: string): string {
  return `${pageHead('Grantpool', `<meta name="grantpool-csrf" content="${escapeHtml(csrf)}">`)}
<script type="module" src="/assets/app.js"></script>
</head>
<body>
<a class="skip-link" href="#main">Skip to content</a>
<header class="topbar">
  <div class="brand"><span class="brand-mark" aria-hidden="true"></span><span>Grantpool</span></div>
  <nav aria-label="Sections" class="tabs" id="nav">
    <a href="#accounts" data-view="accounts">Accounts</a>
    <a href="#proxy" data-view="proxy">Proxy</a>
    <a href="#requests" data-view="requests">Requests</a>
    <a href="#setup" data-view="setup">Setup</a>
  </nav>
  <div class="topbar-end">
    <span id="live" class="live" role="status" aria-live="polite">Connecting…</span>
    <form method="post" action="/logout">
      <input type="hidden" name="csrf" value="${escapeHtml(csrf)}">
      <button type="submit" class="btn btn-ghost">Log out</button>
    </form>
  </div>
</header>
<div id="banners" class="banners"></div>
<main id="main" tabindex="-1">
  <p class="loading">Loading…</p>
</main>
<div id="toasts" class="toasts" role="status" aria-live="polite"></div>
<noscript><p class="container">The dashboard needs JavaScript. The management API at /api works without it.</p></noscript>
</body>
</html>`;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = String(req.headers['content-type'] ?? '').toLowerCase();
  const body = await readBody(req, 16 * 1024);
  if (type.startsWith('application/json')) {
    try {
      const obj = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(obj ?? {})) if (typeof v === 'string') p.set(k, v);
      return p;
    } catch {
      throw new BadRequest('request body is not valid JSON', 'invalid_json');
    }
  }
  return new URLSearchParams(body.toString('utf8'));
}

export function registerDashboardRoutes(router: Router, deps: DashboardDeps): void {
  const { sessions } = deps;
  const assets = loadAssets(deps.assetsDir);

  const loginPage = (res: ServerResponse, status: number, opts: { error?: string; notice?: string } = {}): void =>
    page(res, status, renderLoginPage({ ...opts, hint: deps.adminTokenHint }));

  router.on('GET', '/', async ({ req, res }) => {
    await sessions.prepare(req);
    const session = sessions.sessionFor(req);
    if (!session) return loginPage(res, 200);
    page(res, 200, renderAppPage(session.csrf));
  });

  router.on('GET', '/login', async ({ req, res, url }) => {
    await sessions.prepare(req);
    if (sessions.sessionFor(req)) return redirect(res, '/');
    loginPage(res, 200, url.searchParams.has('logged_out') ? { notice: 'You are logged out.' } : {});
  });

  router.on('POST', '/login', async ({ req, res }) => {
    let form: URLSearchParams;
    try {
      form = await readForm(req);
    } catch (e) {
      const status = e instanceof HttpError ? e.status : 400;
      return loginPage(res, status, { error: 'The login form could not be read. Try again.' });
    }
    const result = sessions.login(form.get('token') ?? '', req);
    if (!result.ok) {
      const extra: Record<string, string> = result.status === 429 ? { 'retry-after': String(result.retryAfterSeconds) } : {};
      return page(res, result.status, renderLoginPage({ error: result.message, hint: deps.adminTokenHint }), extra);
    }
    await sessions.flush(); // the other gateways know the session before the browser uses it
    redirect(res, '/', { 'set-cookie': result.setCookie });
  });

  router.on('POST', '/logout', async ({ req, res }) => {
    await sessions.prepare(req);
    const session = sessions.sessionFor(req);
    if (session) {
      let sent = req.headers['x-grantpool-csrf'];
      if (typeof sent !== 'string') {
        const form = await readForm(req).catch(() => new URLSearchParams());
        sent = form.get('csrf') ?? '';
      }
      if (sessions.isCrossSite(req) || !safeEqual(sent, session.csrf)) {
        return page(res, 403, renderLoginPage({ error: 'Log out from the dashboard page itself (the request did not carry its CSRF token).', hint: deps.adminTokenHint }));
      }
    } else {
      req.resume();
    }
    const cleared = sessions.logout(req);
    await sessions.flush();
    redirect(res, '/login?logged_out=1', { 'set-cookie': cleared });
  });

  router.on('GET', '/assets/*path', async ({ req, res, params }) => {
    const path = params.path ?? '';
    const asset = assets.get(path);
    if (!asset || path.split('/').includes('..')) {
      return send(res, 404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }, 'Not found\n');
    }
    if (!PUBLIC_ASSETS.has(path)) await sessions.prepare(req);
    if (!PUBLIC_ASSETS.has(path) && !sessions.sessionFor(req)) {
      return send(res, 401, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }, 'Log in first.\n');
    }
    const headers = { 'content-type': asset.type, etag: asset.etag, 'cache-control': 'no-cache' };
    if (req.headers['if-none-match'] === asset.etag) return send(res, 304, headers);
    send(res, 200, { ...headers, 'content-length': String(asset.body.length) }, req.method === 'HEAD' ? undefined : asset.body);
  });
}
