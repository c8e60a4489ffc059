// The model-list adapter: the gateway's own call for the upstream model list
// (all pages), each page one exchange with no client to answer.
import { baseOf } from '../upstream-client.ts';
import { upstreamMessage } from '../upstream-errors.ts';
import type { GeminiModel } from '../models.ts';
import { ClientAbort } from './answer.ts';
import { geminiJson } from './checks.ts';
import type { EngineDeps } from './deps.ts';
import { newTrack, okReport, runExchange } from './exchange.ts';
import { ProxyFailure } from './failure.ts';

const MAX_PAGES = 10;

/** Fetches every page of the upstream model list (throws ProxyFailure when no account can). */
export async function fetchModelList(deps: EngineDeps): Promise<GeminiModel[]> {
  const { origin, prefix } = baseOf(deps.config().gemini_base_url);
  const out: GeminiModel[] = [];
  let pageToken = '';
  for (let page = 0; page < MAX_PAGES; page++) {
    const q = `?pageSize=1000${pageToken ? `&pageToken=${encodeURIComponent(pageToken)}` : ''}`;
    let failure = null as ProxyFailure | null;
    let next = '';
    const { thrown } = await runExchange(deps, null, newTrack(deps, '/v1beta/models', 'gemini'), {
      spec: {
        model: '',
        consume: 'full',
        check: geminiJson,
        origin,
        method: 'GET',
        path: `${prefix}/v1beta/models${q}`,
        body: null,
        headers: {},
        signal: new ClientAbort(),
      },
      errorBody: () => null,
      serve(opened) {
        if (opened.kind !== 'ok') {
          const status = opened.status;
          const message = opened.kind === 'client_error' ? upstreamMessage(status, opened.text) : 'unexpected streamed model list';
          failure = new ProxyFailure(opened.kind === 'client_error' ? status : 502, opened.kind === 'client_error' ? 'upstream_error' : 'bad_upstream_answer', message);
          return { status: failure.status, error: message.slice(0, 300), report: opened.kind === 'client_error' ? { kind: 'client_error' } : null };
        }
        const parsed = opened.value as { models?: unknown; nextPageToken?: unknown };
        if (Array.isArray(parsed.models)) {
          for (const m of parsed.models) if (m && typeof (m as GeminiModel).name === 'string') out.push(m as GeminiModel);
        }
        next = typeof parsed.nextPageToken === 'string' ? parsed.nextPageToken : '';
        return { status: 200, report: okReport(null, false) };
      },
    });
    if (thrown) throw thrown;
    if (failure) throw failure;
    pageToken = next;
    if (!pageToken) break;
  }
  return out;
}
