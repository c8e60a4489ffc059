// A small method + path router on node:http. Patterns are literal segments,
// `:name` (one segment) and a trailing `*name` (the rest of the path).
// Fallbacks answer for a part of the path space when no route has the path
// (or none has the method: then `allowed` lists the methods that would do).
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  /** In a fallback: the methods the path allows when it is known with another method. */
  allowed?: string[];
}

export type Match = { handler: Handler; params: Record<string, string>; allowed?: string[] } | { allowed: string[] } | null;

export type Handler = (ctx: RequestContext) => Promise<void> | void;

interface Route {
  method: string;
  segments: string[];
  /** Ends in `*name`: matches any path with at least segments.length - 1 parts. */
  rest: boolean;
  handler: Handler;
}

export class Router {
  private routes: Route[] = [];
  private fallbacks: Route[] = [];

  /** `method` is an HTTP method or 'ANY'. */
  on(method: string, pattern: string, handler: Handler): this {
    const segments = split(pattern);
    this.routes.push({ method: method.toUpperCase(), segments, rest: segments.at(-1)?.startsWith('*') ?? false, handler });
    return this;
  }

  /**
   * The handler for the paths of `pattern` that no route takes, for any
   * method; it sees `ctx.allowed` when the path is known with other methods.
   * Fallbacks are tried in the order they were added.
   */
  fallback(pattern: string, handler: Handler): this {
    const segments = split(pattern);
    this.fallbacks.push({ method: 'ANY', segments, rest: segments.at(-1)?.startsWith('*') ?? false, handler });
    return this;
  }

  /**
   * The handler for a request; else a fallback's (with `allowed` when the path
   * is known with other methods); else `{ allowed }` for a known path, or null.
   */
  match(method: string, pathname: string): Match {
    const parts = split(pathname);
    const allowed: string[] = [];
    for (const route of this.routes) {
      const params = matchRoute(route, parts);
      if (!params) continue;
      if (route.method === 'ANY' || route.method === method || (method === 'HEAD' && route.method === 'GET')) {
        return { handler: route.handler, params };
      }
      if (!allowed.includes(route.method)) allowed.push(route.method);
    }
    for (const route of this.fallbacks) {
      const params = matchRoute(route, parts);
      if (params) return allowed.length ? { handler: route.handler, params, allowed } : { handler: route.handler, params };
    }
    return allowed.length ? { allowed } : null;
  }
}

function matchRoute(route: Route, parts: string[]): Record<string, string> | null {
  // Most routes are ruled out by their number of segments alone.
  if (route.rest ? parts.length < route.segments.length - 1 : parts.length !== route.segments.length) return null;
  return matchSegments(route.segments, parts);
}

function split(path: string): string[] {
  return path.split('/').filter((s) => s.length > 0);
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | null {
  // Literal segments first: a route that does not match is ruled out before any parameter is decoded.
  let end = pattern.length;
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith('*')) {
      end = i;
      break;
    }
    const part = parts[i];
    if (part === undefined || (!p.startsWith(':') && p !== part)) return null;
  }
  if (end === pattern.length && parts.length !== pattern.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < end; i++) {
    const p = pattern[i]!;
    if (p.startsWith(':')) params[p.slice(1)] = safeDecode(parts[i]!);
  }
  if (end < pattern.length) params[pattern[end]!.slice(1)] = parts.slice(end).map(safeDecode).join('/');
  return params;
}

function safeDecode(s: string): string {
  // Without a '%' there is nothing to decode.
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
