// Which proxy auth mode is in force, and why (docs/configuration.md#auth-modes). `auto` is `off`
// only while the gateway listens on loopback AND its public URL is loopback
// too: a gateway behind a reverse proxy listens on 127.0.0.1 but is reachable
// from outside, so it must ask for a key.
import { isLoopbackHost } from '../util/net.ts';

export type AuthMode = 'off' | 'strict' | 'all_except_health' | 'auto';
export type EffectiveAuthMode = 'off' | 'strict' | 'all_except_health';

export interface AuthModeDecision {
  mode: EffectiveAuthMode;
  /** One sentence for the start banner, the log and /api/status. */
  reason: string;
}

function hostOf(url: string): string | null {
  try {
    return new URL(url).hostname;
  } catch {
    return null;
  }
}

/**
 * Resolves `auto`. `publicUrl` is the external base URL; when absent it is the
 * default `http://localhost:<port>`, which is loopback.
 */
export function decideAuthMode(mode: AuthMode, host: string, publicUrl?: string | null): AuthModeDecision {
  if (mode !== 'auto') return { mode, reason: `auth_mode is set to "${mode}"` };
  if (!isLoopbackHost(host)) {
    return { mode: 'all_except_health', reason: `auto: the gateway listens on ${host}, which is not a loopback address, so proxy routes need an API key` };
  }
  const pubHost = publicUrl ? hostOf(publicUrl) : 'localhost';
  if (pubHost === null || !isLoopbackHost(pubHost)) {
    return {
      mode: 'all_except_health',
      reason: `auto: the public URL ${publicUrl} is not a loopback URL (a reverse proxy makes the gateway reachable from outside), so proxy routes need an API key`,
    };
  }
  return { mode: 'off', reason: `auto: both the listen address (${host}) and the public URL are loopback, so proxy routes need no API key` };
}
