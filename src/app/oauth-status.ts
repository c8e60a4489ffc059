// The OAuth part of GET /api/status: whether a client is configured, the
// clients in use (the current one and the kept earlier ones), and which of
// them Google rejects (invalid_client / unauthorized_client, from the pool).
import type { OAuthStatus } from '../api/deps.ts';
import type { OAuthHolder } from '../oauth/oauth-holder.ts';
import type { Pool } from '../pool/pool.ts';

export function oauthStatus(oauth: Pick<OAuthHolder, 'status'>, pool: Pick<Pool, 'failingClients'>): OAuthStatus {
  const s = oauth.status();
  const failures = pool.failingClients();
  const failing = new Map(failures.map((f) => [f.client_id, f]));
  const clients = s.clientId ? [s.clientId, ...s.previousClientIds] : [];
  // '(default)' is an account without a recorded client: refreshed with the current one.
  for (const id of failing.keys()) if (!clients.includes(id) && id !== '(default)') clients.push(id);
  const first = failures[0];
  return {
    configured: s.configured,
    problem: s.problem ?? (first ? `${first.error}: ${first.description}` : null),
    fix: s.fix ?? first?.fix ?? null,
    clients: clients.map((id) => {
      const f = failing.get(id) ?? (id === s.clientId ? failing.get('(default)') : undefined);
      return {
        client_id: id,
        failing: !!f,
        error: f ? `${f.error}${f.description ? `: ${f.description}` : ''}` : null,
        fix: f?.fix ?? null,
        since: f ? Math.floor(f.since / 1000) : null,
      };
    }),
  };
}
