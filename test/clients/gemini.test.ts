// The real Gemini CLI (`gemini -p`, pinned) against the gateway's Gemini door and the Gemini stand-in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProxy } from '../support/proxy-harness.ts';
import {
  baseEnv, checkGolden, declaredTools, ensureClient, rejected, runClient, secretFile, shapes, startRecorder, tempHome, toolOutputCameBack,
} from '../support/real-clients.ts';

const VERSION = '0.61.0';
const GOLDEN = join(import.meta.dirname, 'golden', 'gemini.json');

test(`gemini -p ${VERSION}: a plain answer and a read_file tool round trip through the gateway`, { timeout: 300_000 }, async (t) => {
  const installed = ensureClient('gemini', '@google/gemini-cli', VERSION, 'gemini');
  if (!installed.bin) {
    t.skip(`Gemini CLI not available: ${installed.reason}`);
    return;
  }
  const gw = await startProxy({ accounts: ['a'] });
  const rec = await startRecorder(gw.url);
  const tmp = tempHome('gemini');
  t.after(async () => {
    await rec.close();
    await gw.close();
    tmp.cleanup();
  });
  const geminiHome = join(tmp.home, '.gemini');
  mkdirSync(geminiHome, { recursive: true });
  writeFileSync(
    join(geminiHome, 'settings.json'),
    JSON.stringify({
      general: { enableAutoUpdate: false, enableAutoUpdateNotification: false, disableAutoUpdate: true },
      telemetry: { enabled: false },
      privacy: { usageStatisticsEnabled: false },
      security: { auth: { selectedType: 'gemini-api-key' } },
    }),
  );
  const env = baseEnv(tmp.home, { GOOGLE_GEMINI_BASE_URL: rec.url, GEMINI_API_KEY: 'gp-test-key', GEMINI_CLI_TRUST_WORKSPACE: 'true' });
  const run = (prompt: string) =>
    runClient(installed.bin!, ['-p', prompt, '-m', 'gemini-2.5-flash', '--yolo'], { cwd: tmp.work, env, timeoutMs: 60_000 });
  const generate = () => gw.upstream.requests.filter((r) => r.action === 'streamGenerateContent' || r.action === 'generateContent');

  // 1) A plain answer. Gemini CLI may ask small side questions (next speaker, routing):
  // those get the same default answer, the main turn prints it.
  const plain = `Plain answer ${randomBytes(4).toString('hex')}`;
  gw.upstream.setDefaultAnswer({ parts: [{ text: plain }] });
  const r1 = await run('Say hello.');
  assert.equal(r1.timedOut, false, `gemini -p timed out\n${r1.stderr}`);
  assert.equal(r1.code, 0, `gemini -p failed (${r1.code})\nstdout: ${r1.stdout}\nstderr: ${r1.stderr}`);
  assert.match(r1.stdout, new RegExp(plain));
  const withTools = generate().find((r) => declaredTools(r.body).length > 0);
  assert.ok(withTools, 'Gemini CLI declared no tools');
  const tools = declaredTools(withTools.body);
  assert.ok(tools.includes('read_file'), `Gemini CLI declared no read_file tool: ${tools.join(', ')}`);

  // 2) A tool round trip: the model reads a file with a random token; the final answer comes only when the token came back.
  const secret = secretFile(tmp.work);
  const final = `Final answer ${randomBytes(4).toString('hex')}`;
  let sawOutput = false;
  gw.upstream.setDefaultAnswer(null);
  gw.upstream.script({ parts: [{ functionCall: { name: 'read_file', args: { file_path: secret.path } } }] }, (body) => {
    sawOutput = toolOutputCameBack(body, secret.token);
    return { parts: [{ text: sawOutput ? final : 'the tool output did not come back' }] };
  });
  const r2 = await run('Show me what secret.txt says.');
  assert.equal(r2.timedOut, false, `gemini -p timed out\n${r2.stderr}`);
  assert.equal(r2.code, 0, `gemini -p failed (${r2.code})\nstdout: ${r2.stdout}\nstderr: ${r2.stderr}`);
  assert.ok(sawOutput, `the read_file output did not come back to the model\nstdout: ${r2.stdout}\nstderr: ${r2.stderr.slice(-2000)}`);
  assert.match(r2.stdout, new RegExp(final));

  // 3) Every request Gemini CLI sent was accepted; its shape is kept in the golden file.
  assert.deepEqual(rejected(rec.seen), [], 'the gateway refused some of what Gemini CLI sent');
  const changes = checkGolden(GOLDEN, 'gemini', VERSION, shapes(rec.seen));
  if (changes.length) t.diagnostic(`Gemini CLI ${VERSION} requests differ from ${GOLDEN} (GOLDEN_UPDATE=1 rewrites it):\n${changes.join('\n')}`);
});
