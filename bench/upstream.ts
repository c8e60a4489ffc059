// A minimal Gemini API stand-in for the benchmark: the same wire format as
// generativelanguage.googleapis.com (generateContent JSON, streamGenerateContent
// with ?alt=sse, countTokens, the model list), and Claude on Vertex AI's
// (rawPredict: Anthropic's message JSON; streamRawPredict: Anthropic's SSE
// sequence), answers built once and sent from memory, no validation. It is deliberately cheap so that the numbers measure
// the proxy, not the stand-in (test/support/gemini-upstream.ts validates every
// request and is much heavier).
//
// Runs as a child process of bench/run.ts (IPC: {type:'config'} messages), or
// in-process through startBenchUpstream().
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface UpstreamShape {
  /** Delay before every answer (ms); 0 answers at once. */
  delayMs: number;
  /** Streaming: number of events. */
  events: number;
  /** Streaming: pause between two events (ms); 0 writes them back to back (with backpressure). */
  gapMs: number;
  /** Streaming: characters of text in each event. */
  eventChars: number;
}

export const DEFAULT_SHAPE: UpstreamShape = { delayMs: 0, events: 10, gapMs: 0, eventChars: 40 };

const MODEL_VERSION = 'gemini-2.5-flash';

function generateAnswer(text: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason: 'STOP', index: 0 }],
      usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 9, totalTokenCount: 14 },
      modelVersion: MODEL_VERSION,
      responseId: 'bench-response-0001',
    }),
  );
}

const GENERATE = generateAnswer('Hello! How can I help you today?');
const COUNT = Buffer.from(JSON.stringify({ totalTokens: 5, promptTokensDetails: [{ modality: 'TEXT', tokenCount: 5 }] }));
const MODELS = Buffer.from(
  JSON.stringify({
    models: ['gemini-2.5-pro', 'gemini-2.5-flash', 'gemini-2.5-flash-lite'].map((m) => ({
      name: `models/${m}`,
      version: '001',
      displayName: m,
      inputTokenLimit: 1048576,
      outputTokenLimit: 65536,
      supportedGenerationMethods: ['generateContent', 'countTokens'],
    })),
  }),
);

/** One SSE event (`data: {...}\r\n\r\n`, as the Gemini API frames them). */
function sseEvent(text: string, last: boolean): Buffer {
  const chunk: Record<string, unknown> = {
    candidates: [{ content: { role: 'model', parts: [{ text }] }, ...(last ? { finishReason: 'STOP' } : {}), index: 0 }],
    usageMetadata: last
      ? { promptTokenCount: 5, candidatesTokenCount: 9, totalTokenCount: 14 }
      : { promptTokenCount: 5, totalTokenCount: 5 },
    modelVersion: MODEL_VERSION,
    responseId: 'bench-response-0001',
  };
  return Buffer.from(`data: ${JSON.stringify(chunk)}\r\n\r\n`);
}

// Claude on Vertex AI (rawPredict / streamRawPredict): Anthropic's message JSON and SSE sequence.
const CLAUDE_MESSAGE = Buffer.from(
  JSON.stringify({
    id: 'msg_vrtx_bench0001',
    type: 'message',
    role: 'assistant',
    model: 'claude-sonnet-4-5',
    content: [{ type: 'text', text: 'Hello! How can I help you today?' }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 5, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 9 },
  }),
);
const CLAUDE_COUNT = Buffer.from(JSON.stringify({ input_tokens: 5 }));

function claudeEvent(name: string, data: Record<string, unknown>): Buffer {
  return Buffer.from(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** The Anthropic stream around `events` text deltas: its head (message_start ... ping), one delta, its tail. */
function claudeStream(shape: UpstreamShape): { head: Buffer; delta: Buffer; tail: Buffer } {
  const base = 'lorem ipsum dolor sit amet consectetur adipiscing elit ';
  const text = base.repeat(Math.ceil(shape.eventChars / base.length)).slice(0, shape.eventChars);
  const message = { id: 'msg_vrtx_bench0001', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 5, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 } };
  return {
    head: Buffer.concat([
      claudeEvent('message_start', { type: 'message_start', message }),
      claudeEvent('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
      claudeEvent('ping', { type: 'ping' }),
    ]),
    delta: claudeEvent('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }),
    tail: Buffer.concat([
      claudeEvent('content_block_stop', { type: 'content_block_stop', index: 0 }),
      claudeEvent('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 9 } }),
      claudeEvent('message_stop', { type: 'message_stop' }),
    ]),
  };
}

function streamEvents(shape: UpstreamShape): { middle: Buffer; last: Buffer } {
  // Plain letters and spaces: nothing to escape, so the size is exact.
  const base = 'lorem ipsum dolor sit amet consectetur adipiscing elit ';
  const text = base.repeat(Math.ceil(shape.eventChars / base.length)).slice(0, shape.eventChars);
  return { middle: sseEvent(text, false), last: sseEvent(text, true) };
}

export interface BenchUpstream {
  url: string;
  server: Server;
  setShape(shape: Partial<UpstreamShape>): void;
  /** Streams in progress and bytes written so far (to show backpressure). */
  streamStats(): { active: number; bytesWritten: number; completed: number };
  close(): Promise<void>;
}

function wait(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function startBenchUpstream(initial: Partial<UpstreamShape> = {}): Promise<BenchUpstream> {
  let shape: UpstreamShape = { ...DEFAULT_SHAPE, ...initial };
  let events = streamEvents(shape);
  let claude = claudeStream(shape);
  let active = 0;
  let bytesWritten = 0;
  let completed = 0;

  const sendJson = (res: ServerResponse, status: number, body: Buffer) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': body.length });
    res.end(body);
  };

  async function stream(res: ServerResponse, anthropic = false): Promise<void> {
    const s = shape;
    const { middle, last } = anthropic ? { middle: claude.delta, last: claude.delta } : events;
    active++;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    try {
      if (anthropic) {
        bytesWritten += claude.head.length;
        res.write(claude.head);
      }
      for (let i = 0; i < s.events; i++) {
        if (res.destroyed) return;
        if (i > 0 && s.gapMs > 0) await wait(s.gapMs);
        const ev = i === s.events - 1 ? last : middle;
        bytesWritten += ev.length;
        if (!res.write(ev)) await new Promise<void>((r) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            r();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
      if (anthropic) bytesWritten += claude.tail.length;
      res.end(anthropic ? claude.tail : undefined);
      completed++;
    } finally {
      active--;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    // Drain the request body without looking at it.
    await new Promise<void>((r) => {
      req.on('data', () => {});
      req.on('end', r);
      req.on('error', () => r());
    });
    if (shape.delayMs > 0) await wait(shape.delayMs);
    if (req.method === 'GET' && /^\/v1(beta)?\/models(\?|$)/.test(url)) return sendJson(res, 200, MODELS);
    if (req.method === 'POST') {
      if (url.includes(':streamGenerateContent')) return stream(res);
      if (url.includes('/count-tokens:rawPredict')) return sendJson(res, 200, CLAUDE_COUNT);
      if (url.includes(':streamRawPredict')) return stream(res, true);
      if (url.includes(':rawPredict')) return sendJson(res, 200, CLAUDE_MESSAGE);
      if (url.includes(':generateContent')) return sendJson(res, 200, GENERATE);
      if (url.includes(':countTokens')) return sendJson(res, 200, COUNT);
    }
    sendJson(res, 404, Buffer.from(JSON.stringify({ error: { code: 404, message: `no route ${req.method} ${url}`, status: 'NOT_FOUND' } })));
  }

  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    setShape(next) {
      shape = { ...shape, ...next };
      events = streamEvents(shape);
      claude = claudeStream(shape);
    },
    streamStats: () => ({ active, bytesWritten, completed }),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// ---- child process entry --------------------------------------------------------------

if (import.meta.main && process.send) {
  const up = await startBenchUpstream();
  process.on('message', (m: { type: string; id?: number; shape?: Partial<UpstreamShape> }) => {
    if (m.type === 'config') {
      up.setShape(m.shape ?? {});
      process.send!({ type: 'ok', id: m.id });
    } else if (m.type === 'stream-stats') {
      process.send!({ type: 'stream-stats', id: m.id, stats: up.streamStats() });
    } else if (m.type === 'close') {
      void up.close().then(() => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready', url: up.url });
}
