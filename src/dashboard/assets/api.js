// The management API client: same-origin fetch with the session cookie and,
// for changes, the CSRF token the server rendered into the page.

const csrf = document.querySelector('meta[name="grantpool-csrf"]')?.getAttribute('content') ?? '';

export class ApiError extends Error {
  constructor(status, code, message, fix) {
    super(message);
    this.status = status;
    this.code = code;
    this.fix = fix ?? null;
  }
}

let onUnauthorized = () => {};
/** Called once when the session has ended (any 401). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/**
 * request('GET', '/api/status') -> parsed JSON. `body`: an object (sent as
 * JSON) or a string (sent as is, as JSON). Errors become ApiError with the
 * server's plain-words message and fix.
 */
export async function request(method, path, body) {
  const headers = { accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') headers['x-grantpool-csrf'] = csrf;
  let payload;
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin', cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'network', 'The gateway cannot be reached. Is it still running?');
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    if (res.status === 401) onUnauthorized();
    const err = data && typeof data === 'object' ? data.error : null;
    const message = err && typeof err.message === 'string' ? err.message : `The gateway answered ${res.status} ${res.statusText}.`;
    throw new ApiError(res.status, err?.code ?? 'http_error', message, err?.fix);
  }
  return data;
}

export const api = {
  status: () => request('GET', '/api/status'),
  accounts: () => request('GET', '/api/accounts'),
  addRefreshToken: (refresh_token) => request('POST', '/api/accounts', { refresh_token }),
  oauthStart: (login_hint) => request('POST', '/api/oauth/start', login_hint ? { login_hint } : {}),
  oauthComplete: (callback_url) => request('POST', '/api/oauth/complete', { callback_url }),
  setProxyDisabled: (id, proxy_disabled) => request('PATCH', `/api/accounts/${encodeURIComponent(id)}`, { proxy_disabled }),
  removeAccount: (id, revoke = true) =>
    request('DELETE', `/api/accounts/${encodeURIComponent(id)}${revoke ? '' : '?revoke=false'}`),
  requests: (filters = {}) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filters)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    const qs = q.toString();
    return request('GET', `/api/requests${qs ? `?${qs}` : ''}`);
  },
  usage: (days = 14) => request('GET', `/api/usage?days=${days}`),
  keys: () => request('GET', '/api/keys'),
  createKey: (label) => request('POST', '/api/keys', { label }),
  revokeKey: (id) => request('DELETE', `/api/keys/${encodeURIComponent(id)}`),
  proxy: () => request('GET', '/api/proxy'),
  uploadClientSecret: (jsonText) => request('POST', '/api/client-secret', jsonText),
};
