// /v1/responses as Codex CLI speaks it (codex-rs: ResponsesApiRequest with
// store: false, stream: true, include: ["reasoning.encrypted_content"], a
// session_id header, function + custom (freeform apply_patch) + hosted tools),
// and read the way Codex reads the stream: items from output_item.done, text
// from output_text.delta, summaries from reasoning_summary_text.delta, the end
// from response.completed (id and usage required) or response.failed (error.code).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type FakePool, type Harness } from '../support/proxy-harness.ts';

let h: Harness & { fake: FakePool | null };
before(async () => {
  h = await startProxy({ accounts: ['a', 'b'] });
});
after(() => h.close());

const SESSION = '0199a0c2-7d1e-7a40-9d5b-3c2f4e8a1b6d';
const tools = [
  {
    type: 'function', name: 'shell_command', description: 'Runs a shell command and returns its output.', strict: false,
    parameters: { type: 'object', properties: { command: { type: 'string', description: 'The shell script to execute' }, workdir: { type: 'string' }, timeout_ms: { type: 'number' } }, required: ['command'], additionalProperties: false },
  },
  {
    type: 'function', name: 'update_plan', description: 'Updates the task plan.', strict: false,
    parameters: {
      type: 'object',
      properties: { explanation: { type: 'string' }, plan: { type: 'array', items: { type: 'object', properties: { step: { type: 'string' }, status: { type: 'string' } }, required: ['step', 'status'], additionalProperties: false } } },
      required: ['plan'], additionalProperties: false,
    },
  },
  { type: 'custom', name: 'apply_patch', description: 'Use the `apply_patch` tool to edit files.', format: { type: 'grammar', syntax: 'lark', definition: 'start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF\nend_patch: "*** End Patch" LF?' } },
  { type: 'web_search' },
];

function codexBody(input: unknown[], model = 'gemini-3-pro-preview') {
  return {
    model,
    instructions: 'You are Codex, based on GPT-5. You are running as a coding agent in the Codex CLI.',
    input,
    tools,
    tool_choice: 'auto',
    parallel_tool_calls: false,
    reasoning: { effort: 'medium', summary: 'auto' },
    store: false,
    stream: true,
    include: ['reasoning.encrypted_content'],
    prompt_cache_key: SESSION,
    text: { verbosity: 'medium' },
  };
}

const userTurn = (text: string) => ({ type: 'message', role: 'user', content: [{ type: 'input_text', text }] });
const startInput = [
  { type: 'message', role: 'developer', content: [{ type: 'input_text', text: '<permissions instructions>sandbox: workspace-write</permissions instructions>' }] },
  userTurn('<environment_context>\n  <cwd>/tmp/work</cwd>\n</environment_context>'),
  userTurn('Show me hello.txt'),
];

interface CodexTurn {
  status: number;
  items: any[];
  text: string;
  summary: string;
  completed: any;
  failed: any;
  events: { event: string; data: any }[];
}

/** Posts like Codex and parses the SSE stream the way codex-rs does. */
async function codexTurn(body: unknown): Promise<CodexTurn> {
  const res = await fetch(`${h.url}/v1/responses`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json', accept: 'text/event-stream', authorization: 'Bearer gp-key',
      session_id: SESSION, originator: 'codex_exec', 'user-agent': 'codex_exec/0.171.0 (Debian 12; x86_64)', version: '0.171.0',
    },
    body: JSON.stringify(body),
  });
  const turn: CodexTurn = { status: res.status, items: [], text: '', summary: '', completed: null, failed: null, events: [] };
  if (res.status !== 200) return turn;
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const raw = await res.text();
  for (const block of raw.split('\n\n').filter(Boolean)) {
    const m = /^event: (\S+)\ndata: (.*)$/s.exec(block);
    assert.ok(m, `an SSE block with event and data: ${block}`);
    const data = JSON.parse(m[2]!);
    assert.equal(data.type, m[1], 'the data names the same event type');
    turn.events.push({ event: m[1]!, data });
    if (data.type === 'response.output_item.done') turn.items.push(data.item);
    if (data.type === 'response.output_text.delta') turn.text += data.delta;
    if (data.type === 'response.reasoning_summary_text.delta') {
      assert.equal(typeof data.summary_index, 'number');
      turn.summary += data.delta;
    }
    if (data.type === 'response.completed') turn.completed = data.response;
    if (data.type === 'response.failed') turn.failed = data.response;
  }
  return turn;
}

/** What codex-rs requires of an item to deserialize it as a ResponseItem. */
function assertCodexItem(item: any): void {
  switch (item.type) {
    case 'message':
      assert.equal(item.role, 'assistant');
      for (const c of item.content) assert.ok(c.type === 'output_text' && typeof c.text === 'string');
      break;
    case 'reasoning':
      assert.equal(typeof item.id, 'string');
      assert.ok(Array.isArray(item.summary) && item.summary.every((s: any) => s.type === 'summary_text' && typeof s.text === 'string'));
      assert.ok(item.encrypted_content === null || typeof item.encrypted_content === 'string');
      break;
    case 'function_call':
      assert.ok(typeof item.name === 'string' && typeof item.arguments === 'string' && typeof item.call_id === 'string');
      JSON.parse(item.arguments);
      break;
    case 'custom_tool_call':
      assert.ok(typeof item.name === 'string' && typeof item.input === 'string' && typeof item.call_id === 'string');
      break;
    default:
      assert.fail(`unexpected item type ${item.type}`);
  }
}

function assertCompleted(t: CodexTurn): void {
  assert.equal(t.failed, null);
  assert.ok(t.completed, 'the stream ends with response.completed');
  assert.match(t.completed.id, /^resp_/);
  for (const k of ['input_tokens', 'output_tokens', 'total_tokens']) assert.ok(Number.isInteger(t.completed.usage[k]), k);
  assert.ok(Number.isInteger(t.completed.usage.input_tokens_details.cached_tokens));
  assert.ok(Number.isInteger(t.completed.usage.output_tokens_details.reasoning_tokens));
  t.items.forEach(assertCodexItem);
  assert.deepEqual(t.events.map((e) => e.data.sequence_number), t.events.map((_, i) => i));
}

test('a Codex tool round trip: thoughts, a shell call, its output, the final answer; signatures return through encrypted_content', async () => {
  h.upstream.script(
    {
      parts: [
        { text: 'I should read the file with a shell command.', thought: true },
        { functionCall: { name: 'shell_command', args: { command: 'cat hello.txt', workdir: '/tmp/work' } } },
      ],
      usage: { promptTokenCount: 900, candidatesTokenCount: 20, thoughtsTokenCount: 12 },
    },
    { parts: [{ text: 'The file says: hello from the temp dir.' }] },
  );
  const first = await codexTurn(codexBody(startInput));
  assert.equal(first.status, 200);
  assertCompleted(first);
  assert.equal(first.summary, 'I should read the file with a shell command.');
  assert.deepEqual(first.items.map((i) => i.type), ['reasoning', 'function_call']);
  const [reasoning, call] = first.items;
  assert.match(reasoning.encrypted_content, /^gpr1\./);
  assert.deepEqual(JSON.parse(call.arguments), { command: 'cat hello.txt', workdir: '/tmp/work' });
  assert.equal(first.completed.usage.output_tokens_details.reasoning_tokens, 12);

  // What the gateway sent: Codex's instructions and developer message as the system instruction,
  // the hosted web_search tool left out, effort "medium" as Gemini 3 Pro's thinking level.
  const sent = h.upstream.requests.at(-1)!;
  const body = sent.body as any;
  assert.equal(sent.model, 'gemini-3-pro-preview');
  assert.equal(body.systemInstruction.parts.length, 2);
  assert.match(body.systemInstruction.parts[1].text, /permissions instructions/);
  assert.deepEqual(body.tools[0].functionDeclarations.map((d: any) => d.name), ['shell_command', 'update_plan', 'apply_patch']);
  assert.match(body.tools[0].functionDeclarations[2].description, /lark grammar/);
  assert.deepEqual(body.generationConfig.thinkingConfig, { thinkingLevel: 'high', includeThoughts: true });
  assert.equal(h.fake!.acquires.at(-1)!.sessionKey, SESSION, 'the session_id header keeps the conversation on one account');
  assert.match(h.requestLog.query({ limit: 1 })[0]!.note ?? '', /web_search/);

  // Turn 2 as Codex builds it: the history, the reasoning item (without its id), the call (without its id), the output.
  const { id: _rid, ...reasoningBack } = reasoning;
  const { id: _cid, status: _st, ...callBack } = call;
  const second = await codexTurn(
    codexBody([...startInput, reasoningBack, callBack, { type: 'function_call_output', call_id: call.call_id, output: 'hello from the temp dir\n' }]),
  );
  assertCompleted(second);
  assert.equal(second.text, 'The file says: hello from the temp dir.');
  assert.deepEqual(second.items.map((i) => i.type), ['message']);
  const contents = (h.upstream.requests.at(-1)!.body as any).contents;
  const modelTurn = contents.find((c: any) => c.role === 'model');
  assert.ok(h.upstream.issuedSignatures.has(modelTurn.parts[0].thoughtSignature));
  assert.deepEqual(contents.at(-1).parts[0].functionResponse, { name: 'shell_command', response: { output: 'hello from the temp dir\n' } });
});

test('Codex apply_patch (a custom tool): the call comes back as custom_tool_call with the patch as its input', async () => {
  const patch = '*** Begin Patch\n*** Add File: hi.txt\n+hi\n*** End Patch\n';
  h.upstream.script({ parts: [{ functionCall: { name: 'apply_patch', args: { input: patch } } }] }, { parts: [{ text: 'Created hi.txt.' }] });
  const first = await codexTurn(codexBody(startInput, 'gpt-5.1-codex'));
  assertCompleted(first);
  const call = first.items.find((i) => i.type === 'custom_tool_call');
  assert.ok(call, JSON.stringify(first.items));
  assert.equal(call.input, patch);
  assert.ok(first.events.some((e) => e.event === 'response.custom_tool_call_input.done' && e.data.input === patch));
  const second = await codexTurn(
    codexBody([...startInput, ...first.items, { type: 'custom_tool_call_output', call_id: call.call_id, output: 'Success. Updated the following files:\nA hi.txt\n' }], 'gpt-5.1-codex'),
  );
  assertCompleted(second);
  assert.equal(second.text, 'Created hi.txt.');
  const contents = (h.upstream.requests.at(-1)!.body as any).contents;
  assert.deepEqual(contents.at(-1).parts[0].functionResponse.name, 'apply_patch');
});

test('a stream that breaks after it started ends with response.failed and an error code Codex understands', async () => {
  h.upstream.script({ parts: [{ text: 'a long answer that will not finish because the connection drops' }], chunkChars: 8 });
  h.upstream.failNext('*', 'reset_mid_stream', { afterChunks: 2 });
  const t = await codexTurn(codexBody([userTurn('go')]));
  assert.equal(t.status, 200);
  assert.equal(t.completed, null);
  assert.ok(t.failed, 'response.failed');
  assert.equal(t.failed.status, 'failed');
  assert.equal(t.failed.error.code, 'server_error');
  assert.match(t.failed.error.message, /incomplete/);
  assert.equal(t.events.at(-1)!.event, 'response.failed');
});

test('MAX_TOKENS ends the stream with response.incomplete (reason max_output_tokens), as OpenAI does', async () => {
  h.upstream.script({ parts: [{ text: 'Once upon' }], finishReason: 'MAX_TOKENS' });
  const t = await codexTurn({ ...codexBody([userTurn('tell a story')]), max_output_tokens: 3 });
  assert.equal(t.events.at(-1)!.event, 'response.incomplete');
  assert.deepEqual(t.events.at(-1)!.data.response.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal((h.upstream.requests.at(-1)!.body as any).generationConfig.maxOutputTokens, 3);
});

test('no account can serve: an HTTP 429 in OpenAI shape with Retry-After and the "try again in" phrase', async () => {
  h.upstream.failNext('*', 'rate_limited', { retryDelay: '41s', times: 2 });
  const res = await fetch(`${h.url}/v1/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(codexBody([userTurn('hi')], 'gemini-2.5-flash-lite')),
  });
  assert.equal(res.status, 429);
  assert.equal(res.headers.get('retry-after'), '41');
  const body = (await res.json()) as any;
  assert.equal(body.error.code, 'rate_limit_exceeded');
  assert.match(body.error.message, /try again in 41s/);
});
