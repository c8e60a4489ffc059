// A small method + path router on node:http. Patterns are literal segments,
// `:name` (one segment) and a trailing `*name` (the rest of the path).
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
}

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

  /** `method` is an HTTP method or 'ANY'. */
  on(method: string, pattern: string, handler: Handler): this {
    const segments = split(pattern);
    this.routes.push({ method: method.toUpperCase(), segments, rest: segments.at(-1)?.startsWith('*') ?? false, handler });
    return this;
  }

  /** The handler for a request, or null; `allowed` lists methods of routes matching the path. */
  match(method: string, pathname: string): { handler: Handler; params: Record<string, string> } | { allowed: string[] } | null {
    const parts = split(pathname);
    const allowed: string[] = [];
    for (const route of this.routes) {
      // Most routes are ruled out by their number of segments alone.
      if (route.rest ? parts.length < route.segments.length - 1 : parts.length !== route.segments.length) continue;
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      if (route.method === 'ANY' || route.method === method || (method === 'HEAD' && route.method === 'GET')) {
        return { handler: route.handler, params };
      }
      allowed.push(route.method);
    }
    return allowed.length ? { allowed } : null;
  }
}

function split(path: string): string[] {
  return path.split('/').filter((s) => s.length > 0);
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | null {
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith('*')) {
      params[p.slice(1)] = parts.slice(i).map(safeDecode).join('/');
      return params;
    }
    const part = parts[i];
    if (part === undefined) return null;
    if (p.startsWith(':')) params[p.slice(1)] = safeDecode(part);
    else if (p !== part) return null;
  }
  return parts.length === pattern.length ? params : null;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
