// The proxy engine: one exchange pipeline (src/proxy/exchange/) and the
// adapters the routes call. A request is one exchange: lease an account, open
// the upstream with failover (attempts.ts, judged by the pure settle.ts),
// serve the answer (raw.ts forwards it, translated.ts translates it,
// model-list.ts reads it), and finish exactly once (exchange.ts): the
// outcome is reported to the pool and recorded in the request log.
export type { EngineDeps, Protocol } from './exchange/deps.ts';
export { ProxyFailure } from './exchange/failure.ts';
export { ClientAbort, clientSignal, passHeaders, sendJsonBody, type ErrorShaper } from './exchange/answer.ts';
export { openUpstream, type AttemptSpec, type AttemptState, type Checked, type Opened } from './exchange/attempts.ts';
export { finishTrack, newTrack, okReport, runExchange, type Adapter, type ExchangeOutcome, type Served, type Track } from './exchange/exchange.ts';
export { settle, exhausted, type Answer, type Verdict } from './exchange/settle.ts';
export { geminiArrayHead, geminiJson, geminiSseHead, passthroughHead } from './exchange/checks.ts';
export { forwardRaw, GEMINI_USAGE, type RawForward } from './exchange/raw.ts';
export { forwardCountTokens, forwardTranslated, responseId, type TranslatedCall } from './exchange/translated.ts';
export { fetchModelList } from './exchange/model-list.ts';
