// The real Claude Code (`claude -p`, pinned, default model) against the gateway's Anthropic door and the Gemini stand-in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startProxy } from '../support/proxy-harness.ts';
import {
  baseEnv, checkGolden, declaredTools, ensureClient, rejected, runClient, secretFile, shapes, startRecorder, tempHome, toolOutputCameBack,
} from '../support/real-clients.ts';

const VERSION = '2.1.328';
const GOLDEN = join(import.meta.dirname, 'golden', 'claude.json');

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
  const env = baseEnv(tmp.home, {
    ANTHROPIC_BASE_URL: rec.url,
    ANTHROPIC_API_KEY: 'gp-test-key',
    DISABLE_TELEMETRY: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_ERROR_REPORTING: '1',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    CLAUDE_CODE_DISABLE_TERMINAL_TITLE: '1',
  });
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
