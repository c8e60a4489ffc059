// The real Claude Code (`claude -p`, pinned, default model) against the gateway's Anthropic door: translated to the
// Gemini stand-in when no account has a Vertex lane, and passed through to Claude on Vertex AI (the Vertex stand-in's
// Anthropic publisher) when one has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startProxy } from '../support/proxy-harness.ts';
import { startVertexUpstream } from '../support/vertex-upstream.ts';
import {
  baseEnv, checkGolden, declaredTools, ensureClient, rejected, runClient, secretFile, shapes, startRecorder, tempHome, toolOutputCameBack,
} from '../support/real-clients.ts';

const VERSION = '2.1.328';
const GOLDEN = join(import.meta.dirname, 'golden', 'claude.json');

/** Claude Code pointed at `baseUrl` with a gateway key, with its telemetry, updater and other traffic off. */
function claudeEnv(home: string, baseUrl: string) {
  return baseEnv(home, {
    ANTHROPIC_BASE_URL: baseUrl,
    ANTHROPIC_API_KEY: 'gp-test-key',
    DISABLE_TELEMETRY: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_ERROR_REPORTING: '1',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    CLAUDE_CODE_DISABLE_TERMINAL_TITLE: '1',
  });
}

test(`claude -p ${VERSION}: a plain answer (default model and --model opus|sonnet|haiku) and a Read tool round trip through the gateway`, { timeout: 300_000 }, async (t) => {
  const installed = ensureClient('claude', '@anthropic-ai/claude-code', VERSION, 'claude');
  if (!installed.bin) {
    t.skip(`Claude Code not available: ${installed.reason}`);
    return;
  }
  const gw = await startProxy({ accounts: ['a'] });
  const rec = await startRecorder(gw.url);
  const tmp = tempHome('claude');
  t.after(async () => {
    await rec.close();
    await gw.close();
    tmp.cleanup();
  });
  const env = claudeEnv(tmp.home, rec.url);
  const run = (prompt: string) =>
    runClient(installed.bin!, ['-p', prompt, '--allowedTools', 'Read', '--output-format', 'text'], {
      cwd: tmp.work,
      env,
      timeoutMs: 60_000,
    });
  const generate = () => gw.upstream.requests.filter((r) => r.action === 'streamGenerateContent' || r.action === 'generateContent');

  // 1) A plain answer with the default model. Claude Code may also ask small side questions (titles, topics):
  // those get the stand-in's default echo, the main turn gets the scripted text.
  const plain = `Plain answer ${randomBytes(4).toString('hex')}`;
  gw.upstream.setDefaultAnswer({ parts: [{ text: plain }] });
  const r1 = await run('Say hello.');
  assert.equal(r1.timedOut, false, `claude -p timed out\n${r1.stderr}`);
  assert.equal(r1.code, 0, `claude -p failed (${r1.code})\nstdout: ${r1.stdout}\nstderr: ${r1.stderr}`);
  assert.match(r1.stdout, new RegExp(plain));
  const withTools = generate().find((r) => declaredTools(r.body).length > 0);
  assert.ok(withTools, 'Claude Code declared no tools');
  const tools = declaredTools(withTools.body);
  assert.ok(tools.includes('Read'), `Claude Code declared no Read tool: ${tools.join(', ')}`);

  // 2) A tool round trip: the model reads a file with a random token; the final answer comes only when the token came back.
  const secret = secretFile(tmp.work);
  const final = `Final answer ${randomBytes(4).toString('hex')}`;
  let sawOutput = false;
  gw.upstream.setDefaultAnswer(null);
  gw.upstream.script({ parts: [{ functionCall: { name: 'Read', args: { file_path: secret.path } } }] }, (body) => {
    sawOutput = toolOutputCameBack(body, secret.token);
    return { parts: [{ text: sawOutput ? final : 'the tool output did not come back' }] };
  });
  const r2 = await run('Show me what secret.txt says.');
  assert.equal(r2.timedOut, false, `claude -p timed out\n${r2.stderr}`);
  assert.equal(r2.code, 0, `claude -p failed (${r2.code})\nstdout: ${r2.stdout}\nstderr: ${r2.stderr}`);
  assert.ok(sawOutput, `the Read output did not come back to the model\nstdout: ${r2.stdout}\nstderr: ${r2.stderr.slice(-2000)}`);
  assert.match(r2.stdout, new RegExp(final));

  // 3) Every --model alias answers too (the gateway maps claude-opus-*, claude-sonnet-*, claude-haiku-*).
  for (const alias of ['opus', 'sonnet', 'haiku']) {
    const text = `Answer from ${alias} ${randomBytes(4).toString('hex')}`;
    gw.upstream.setDefaultAnswer({ parts: [{ text }] });
    const r = await runClient(installed.bin, ['-p', 'Say hello.', '--model', alias, '--output-format', 'text'], { cwd: tmp.work, env, timeoutMs: 60_000 });
    assert.equal(r.code, 0, `claude -p --model ${alias} failed (${r.code}, timed out: ${r.timedOut})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(text), `claude -p --model ${alias}`);
  }

  // 4) Every request Claude Code sent was accepted; its shape is kept in the golden file.
  assert.deepEqual(rejected(rec.seen), [], 'the gateway refused some of what Claude Code sent');
  const changes = checkGolden(GOLDEN, 'claude', VERSION, shapes(rec.seen));
  if (changes.length) t.diagnostic(`Claude Code ${VERSION} requests differ from ${GOLDEN} (GOLDEN_UPDATE=1 rewrites it):\n${changes.join('\n')}`);
});

test(`claude -p ${VERSION} (default model) on Claude on Vertex AI through the gateway: a plain answer and a Read tool round trip, answered by Anthropic's publisher as Anthropic answers`, { timeout: 300_000 }, async (t) => {
  const installed = ensureClient('claude', '@anthropic-ai/claude-code', VERSION, 'claude');
  if (!installed.bin) {
    t.skip(`Claude Code not available: ${installed.reason}`);
    return;
  }
  const vertex = await startVertexUpstream();
  const gw = await startProxy({ accounts: [] });
  gw.config.vertex_base_url = vertex.url;
  const pool = gw.fake!;
  const gemini = pool.onToken;
  pool.onToken = (token, a) => {
    gemini(token, a);
    vertex.addToken(token, a.email);
  };
  vertex.addProject('cc-vertex', { users: ['cc@example.com'] });
  pool.add('cc', { projectId: 'cc-vertex', vertex: true });
  const rec = await startRecorder(gw.url);
  const tmp = tempHome('claude-vertex');
  t.after(async () => {
    await rec.close();
    await gw.close();
    await vertex.close();
    tmp.cleanup();
  });
  const env = claudeEnv(tmp.home, rec.url);
  const run = (prompt: string) =>
    runClient(installed.bin!, ['-p', prompt, '--allowedTools', 'Read', '--output-format', 'text'], { cwd: tmp.work, env, timeoutMs: 60_000 });
  const messages = () => vertex.requests.filter((r) => r.action === 'rawPredict' || r.action === 'streamRawPredict');
  const explain = () => vertex.requests.map((r) => `${r.action} ${r.model} -> ${r.status}${r.error ? ` ${r.error}` : ''}`).join('\n');
  const hasTool = (body: any, name: string) => Array.isArray(body?.tools) && body.tools.some((x: any) => x.name === name);

  // 1) A plain answer with the default model.
  const plain = `Plain answer from Claude ${randomBytes(4).toString('hex')}`;
  vertex.setDefaultAnswer({ content: [{ type: 'text', text: plain }] });
  const r1 = await run('Say hello.');
  assert.equal(r1.timedOut, false, `claude -p timed out\n${r1.stderr}`);
  assert.equal(r1.code, 0, `claude -p failed (${r1.code})\nstdout: ${r1.stdout}\nstderr: ${r1.stderr}\nVertex saw:\n${explain()}`);
  assert.match(r1.stdout, new RegExp(plain));
  const main = messages().find((r) => hasTool(r.body, 'Read'));
  assert.ok(main, `Claude Code's main turn (with its tools) did not reach Vertex:\n${explain()}`);
  assert.equal((main.body as any).model, undefined, 'model is in the URL, not the body');
  assert.equal((main.body as any).anthropic_version, 'vertex-2023-10-16');
  t.diagnostic(`Claude Code's default model on Vertex: ${main.model}; betas sent to Vertex: ${String(main.headers['anthropic-beta'] ?? '(none)')}`);

  // 2) A tool round trip: Claude (the stand-in) asks for Read; the final answer only once the file's token came back in a tool_result.
  const secret = secretFile(tmp.work);
  const final = `Final answer from Claude ${randomBytes(4).toString('hex')}`;
  let sawOutput = false;
  vertex.setDefaultAnswer((body) => {
    if (!hasTool(body, 'Read')) return { content: [{ type: 'text', text: 'side question' }] };
    const results = (body.messages as any[]).flatMap((m) => (Array.isArray(m.content) ? m.content : [])).filter((b: any) => b.type === 'tool_result');
    if (results.length === 0) {
      return { content: [{ type: 'thinking', thinking: 'I should read secret.txt.' }, { type: 'tool_use', name: 'Read', input: { file_path: secret.path } }] };
    }
    sawOutput = JSON.stringify(results).includes(secret.token);
    return { content: [{ type: 'text', text: sawOutput ? final : 'the tool output did not come back' }] };
  });
  const r2 = await run('Show me what secret.txt says.');
  assert.equal(r2.timedOut, false, `claude -p timed out\n${r2.stderr}`);
  assert.equal(r2.code, 0, `claude -p failed (${r2.code})\nstdout: ${r2.stdout}\nstderr: ${r2.stderr}\nVertex saw:\n${explain()}`);
  assert.ok(sawOutput, `the Read output did not come back to Claude\nstdout: ${r2.stdout}\nstderr: ${r2.stderr.slice(-2000)}`);
  assert.match(r2.stdout, new RegExp(final));

  t.diagnostic(`the gateway's note: ${gw.requestLog.query()[0]?.note}`);
  // 3) Everything went to Claude on Vertex AI, nothing to Gemini; every request was accepted.
  assert.deepEqual(vertex.requests.filter((r) => r.status !== 200).map((r) => `${r.action} ${r.model} -> ${r.status} ${r.error}`), []);
  assert.equal(gw.upstream.requests.filter((r) => r.action === 'streamGenerateContent' || r.action === 'generateContent').length, 0, 'no request was translated to Gemini');
  assert.deepEqual(rejected(rec.seen), [], 'the gateway refused some of what Claude Code sent');
});
