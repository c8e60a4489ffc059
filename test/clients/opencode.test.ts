// The real opencode (`opencode run`, pinned) against the gateway's Chat Completions door and the Gemini stand-in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProxy } from '../support/proxy-harness.ts';
import {
  baseEnv, checkGolden, declaredTools, ensureClient, rejected, runClient, secretFile, shapes, startRecorder, tempHome, toolOutputCameBack,
} from '../support/real-clients.ts';

const VERSION = '1.18.33';
const GOLDEN = join(import.meta.dirname, 'golden', 'opencode.json');

test(`opencode run ${VERSION}: a plain answer and a read tool round trip through the gateway`, { timeout: 300_000 }, async (t) => {
  const installed = ensureClient('opencode', 'opencode-ai', VERSION, 'opencode');
  if (!installed.bin) {
    t.skip(`opencode not available: ${installed.reason}`);
    return;
  }
  const gw = await startProxy({ accounts: ['a'] });
  const rec = await startRecorder(gw.url);
  const tmp = tempHome('opencode');
  t.after(async () => {
    await rec.close();
    await gw.close();
    tmp.cleanup();
  });
  const configDir = join(tmp.home, '.config', 'opencode');
  mkdirSync(configDir, { recursive: true });
  const configFile = join(configDir, 'opencode.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      $schema: 'https://opencode.ai/config.json',
      autoupdate: false,
      share: 'disabled',
      provider: {
        grantpool: {
          npm: '@ai-sdk/openai-compatible',
          name: 'Grantpool',
          options: { baseURL: `${rec.url}/v1`, apiKey: '{env:GRANTPOOL_API_KEY}' },
          models: { 'gemini-2.5-flash': { name: 'Gemini 2.5 Flash', tool_call: true } },
        },
      },
      model: 'grantpool/gemini-2.5-flash',
      small_model: 'grantpool/gemini-2.5-flash',
      permission: { read: 'allow' },
    }),
  );
  const env = baseEnv(tmp.home, {
    OPENCODE_CONFIG: configFile,
    GRANTPOOL_API_KEY: 'gp-test-key',
    OPENCODE_DISABLE_AUTOUPDATE: '1',
    OPENCODE_DISABLE_MODELS_FETCH: '1',
    OPENCODE_DISABLE_DEFAULT_PLUGINS: '1',
    OPENCODE_DISABLE_LSP_DOWNLOAD: '1',
    OPENCODE_DISABLE_SHARE: '1',
    OPENCODE_DISABLE_CLAUDE_CODE: '1',
    OPENCODE_DISABLE_EXTERNAL_SKILLS: '1',
  });
  const run = (prompt: string) => runClient(installed.bin!, ['run', prompt], { cwd: tmp.work, env, timeoutMs: 60_000 });
  const generate = () => gw.upstream.requests.filter((r) => r.action === 'streamGenerateContent' || r.action === 'generateContent');

  // 1) A plain answer. opencode also asks for a session title with the small model: that gets the same default answer.
  const plain = `Plain answer ${randomBytes(4).toString('hex')}`;
  gw.upstream.setDefaultAnswer({ parts: [{ text: plain }] });
  const r1 = await run('Say hello.');
  assert.equal(r1.timedOut, false, `opencode run timed out\n${r1.stderr}`);
  assert.equal(r1.code, 0, `opencode run failed (${r1.code})\nstdout: ${r1.stdout}\nstderr: ${r1.stderr}`);
  assert.match(r1.stdout, new RegExp(plain), `stderr: ${r1.stderr.slice(-2000)}`);
  const withTools = generate().find((r) => declaredTools(r.body).length > 0);
  assert.ok(withTools, 'opencode declared no tools');
  const tools = declaredTools(withTools.body);
  assert.ok(tools.includes('read'), `opencode declared no read tool: ${tools.join(', ')}`);

  // 2) A tool round trip: the model reads a file with a random token; the final answer comes only when the token came back.
  // The title question (no tools) may come before or between the turns: each reply looks at the request it answers.
  const secret = secretFile(tmp.work);
  const final = `Final answer ${randomBytes(4).toString('hex')}`;
  let sawOutput = false;
  let called = false;
  const reply = (body: Record<string, unknown>) => {
    if (declaredTools(body).length === 0) return { parts: [{ text: 'Reading secret.txt' }] }; // the title
    if (toolOutputCameBack(body, secret.token)) {
      sawOutput = true;
      return { parts: [{ text: final }] };
    }
    if (called) return { parts: [{ text: 'the tool output did not come back' }] };
    called = true;
    return { parts: [{ functionCall: { name: 'read', args: { filePath: secret.path } } }] };
  };
  gw.upstream.setDefaultAnswer({ parts: [{ text: 'an unexpected extra request' }] });
  gw.upstream.script(reply, reply, reply, reply);
  const r2 = await run('Show me what secret.txt says.');
  assert.equal(r2.timedOut, false, `opencode run timed out\n${r2.stderr}`);
  assert.equal(r2.code, 0, `opencode run failed (${r2.code})\nstdout: ${r2.stdout}\nstderr: ${r2.stderr}`);
  assert.ok(sawOutput, `the read output did not come back to the model\nstdout: ${r2.stdout}\nstderr: ${r2.stderr.slice(-2000)}`);
  assert.match(r2.stdout, new RegExp(final));

  // 3) Every request opencode sent was accepted; its shape is kept in the golden file.
  assert.deepEqual(rejected(rec.seen), [], 'the gateway refused some of what opencode sent');
  const changes = checkGolden(GOLDEN, 'opencode', VERSION, shapes(rec.seen));
  if (changes.length) t.diagnostic(`opencode ${VERSION} requests differ from ${GOLDEN} (GOLDEN_UPDATE=1 rewrites it):\n${changes.join('\n')}`);
});
