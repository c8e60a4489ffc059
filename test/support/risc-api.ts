// A stand-in for Google's RISC management API (risc.googleapis.com/v1beta),
// as strict as Google's documentation: every call needs a JWT signed by the
// project's service account (kid = private_key_id, iss = sub = client_email,
// aud = the RISC management service, at most an hour), the stream must push
// to an https URL on an authorized domain, GET /v1beta/stream answers what
// stream:update stored (404 before), stream:verify sends a verification
// event to the stream (through `deliver`, since the https URL is not real),
// errors come in Google's JSON error shape.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { exportPKCS8, generateKeyPair, jwtVerify, decodeProtectedHeader, type CryptoKey } from 'jose';

export const RISC_AUDIENCE = 'https://risc.googleapis.com/google.identity.risc.v1beta.RiscManagementService';
const PUSH = 'https://schemas.openid.net/secevent/risc/delivery-method/push';

export interface RiscApiStandIn {
  url: string;
  /** Writes the service account key file (JSON, as the Cloud console gives it). */
  writeServiceAccount(path: string): Promise<void>;
  /** What stream:update stored (null before). */
  stream: { delivery: { delivery_method: string; url: string }; events_requested: string[] } | null;
  /** States of the verification events sent. */
  verifications: string[];
  /** Every call, with whether its bearer token was accepted. */
  calls: { method: string; path: string; authorized: boolean }[];
  close(): Promise<void>;
}

export async function startRiscApi(opts: {
  /** Domains the OAuth consent screen lists (the delivery URL's host must be one or under one). */
  authorizedDomains: string[];
  /** Delivers a verification event with `state` to the stream's URL. */
  deliver: (url: string, state: string) => Promise<void>;
}): Promise<RiscApiStandIn> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const sa = {
    type: 'service_account',
    project_id: 'grantpool-standin',
    private_key_id: randomBytes(20).toString('hex'),
    private_key: await exportPKCS8(privateKey as CryptoKey),
    client_email: 'risc-admin@grantpool-standin.iam.gserviceaccount.com',
    client_id: String(100000000000000000000n + BigInt(`0x${randomBytes(8).toString('hex')}`)),
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: 'https://oauth2.googleapis.com/token',
  };
  const state: RiscApiStandIn = {
    url: '',
    stream: null,
    verifications: [],
    calls: [],
    async writeServiceAccount(path) {
      await writeFile(path, JSON.stringify(sa, null, 2), { mode: 0o600 });
    },
    close: async () => {},
  };

  const fail = (res: ServerResponse, code: number, status: string, message: string) => {
    res.writeHead(code, { 'content-type': 'application/json; charset=UTF-8' });
    res.end(JSON.stringify({ error: { code, message, status } }));
  };

  async function authorized(req: IncomingMessage): Promise<boolean> {
    const m = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''));
    if (!m) return false;
    try {
      if (decodeProtectedHeader(m[1]!).kid !== sa.private_key_id) return false;
      const { payload } = await jwtVerify(m[1]!, publicKey, { algorithms: ['RS256'], audience: RISC_AUDIENCE, issuer: sa.client_email, subject: sa.client_email, requiredClaims: ['iat', 'exp'] });
      return payload.exp! - payload.iat! <= 3600;
    } catch {
      return false;
    }
  }

  const server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const ok = await authorized(req);
      state.calls.push({ method: req.method ?? '', path, authorized: ok });
      if (!ok) return fail(res, 401, 'UNAUTHENTICATED', 'Unauthorized.');
      let body: Record<string, unknown> = {};
      if (chunks.length) {
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return fail(res, 400, 'INVALID_ARGUMENT', 'Invalid JSON payload received.');
        }
      }
      const route = `${req.method} ${path}`;
      if (route === 'POST /v1beta/stream:update') {
        const delivery = body.delivery as { delivery_method?: unknown; url?: unknown } | undefined;
        if (!delivery || typeof delivery !== 'object') return fail(res, 400, 'INVALID_ARGUMENT', 'Stream configuration must contain delivery field.');
        if (delivery.delivery_method !== PUSH) return fail(res, 400, 'INVALID_ARGUMENT', 'Stream configuration must contain delivery_method field.');
        if (typeof delivery.url !== 'string') return fail(res, 400, 'INVALID_ARGUMENT', 'Stream configuration must contain url field.');
        if (!Array.isArray(body.events_requested) || body.events_requested.some((e) => typeof e !== 'string')) {
          return fail(res, 400, 'INVALID_ARGUMENT', 'Stream configuration must contain events_requested field.');
        }
        const u = new URL(delivery.url);
        if (u.protocol !== 'https:') return fail(res, 403, 'PERMISSION_DENIED', 'The delivery endpoint must be an HTTPS URL.');
        if (!opts.authorizedDomains.some((d) => u.hostname === d || u.hostname.endsWith(`.${d}`))) {
          return fail(res, 403, 'PERMISSION_DENIED', "The delivery endpoint does not belong to any of your project's domains.");
        }
        state.stream = { delivery: { delivery_method: PUSH, url: delivery.url }, events_requested: body.events_requested as string[] };
        res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
        return res.end('{}');
      }
      if (route === 'GET /v1beta/stream' || route === 'GET /v1beta/stream/status') {
        if (!state.stream) return fail(res, 404, 'NOT_FOUND', 'Project has no RISC configuration.');
        res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
        return res.end(JSON.stringify(path.endsWith('/status') ? { status: 'enabled' } : state.stream));
      }
      if (route === 'POST /v1beta/stream:verify') {
        if (!state.stream) return fail(res, 404, 'NOT_FOUND', 'Project has no RISC configuration.');
        const s = typeof body.state === 'string' ? body.state : '';
        state.verifications.push(s);
        await opts.deliver(state.stream.delivery.url, s);
        res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
        return res.end('{}');
      }
      return fail(res, 404, 'NOT_FOUND', `Method not found: ${route}`);
    })().catch((e: Error) => {
      if (!res.headersSent) fail(res, 500, 'INTERNAL', e.message);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return state;
}
