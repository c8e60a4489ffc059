// Wrong admin tokens are throttled per client address (dashboard login and
// the management API's bearer token): N wrong tokens within a minute from one
// address make that address wait, and nobody else.
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { isLoopbackHost } from '../util/net.ts';

/**
 * The client's address, as a throttling key. Behind a reverse proxy on this
 * machine (the peer is loopback) the client is the last X-Forwarded-For hop,
 * the one that proxy added (entries to its left are the client's own claims).
 * IPv6 addresses count by their /64: one host usually holds a whole /64.
 */
export function clientAddress(req: IncomingMessage | undefined): string {
  if (!req) return 'unknown';
  let addr = req.socket?.remoteAddress ?? 'unknown';
  if (addr.startsWith('::ffff:') && isIP(addr.slice(7)) === 4) addr = addr.slice(7);
  if (isLoopbackHost(addr)) {
    const xff = req.headers['x-forwarded-for'];
    const last = (Array.isArray(xff) ? xff.join(',') : xff ?? '').split(',').map((s) => s.trim()).filter(Boolean).at(-1);
    if (last && isIP(last)) addr = last;
  }
  if (isIP(addr) === 6) return addr.toLowerCase().split(':').slice(0, 4).join(':') + '::/64';
  return addr;
}

export interface FailureThrottle {
  /** Seconds the address must wait, or 0 when it may try. */
  retryAfter(address: string): number;
  /** Records a wrong token from the address. */
  fail(address: string): void;
}

/**
 * A sliding window of failures per address. Memory is bounded: at most
 * `maxAddresses` addresses are remembered, the oldest forgotten first.
 */
export function createFailureThrottle(opts: { max: number; windowMs: number; now: () => number; maxAddresses?: number }): FailureThrottle {
  const maxAddresses = opts.maxAddresses ?? 10_000;
  const failures = new Map<string, number[]>();
  const recent = (address: string, now: number): number[] => {
    const list = failures.get(address);
    if (!list) return [];
    const kept = list.filter((t) => now - t < opts.windowMs);
    if (kept.length === 0) failures.delete(address);
    else if (kept.length !== list.length) failures.set(address, kept);
    return kept;
  };
  return {
    retryAfter(address) {
      const now = opts.now();
      const list = recent(address, now);
      if (list.length < opts.max) return 0;
      // Free again when the oldest failure that keeps it at the limit leaves the window.
      const oldest = list[list.length - opts.max]!;
      return Math.max(1, Math.ceil((oldest + opts.windowMs - now) / 1000));
    },
    fail(address) {
      const now = opts.now();
      const list = recent(address, now);
      list.push(now);
      failures.delete(address);
      failures.set(address, list.slice(-opts.max));
      while (failures.size > maxAddresses) {
        const first = failures.keys().next().value;
        if (first === undefined) break;
        failures.delete(first);
      }
    },
  };
}
