// The real Codex CLI (`codex exec`, pinned) against the gateway's Responses API and the Gemini stand-in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProxy } from '../support/proxy-harness.ts';
import { baseEnv, checkGolden, declaredTools, ensureClient, rejected, runClient, secretFile, shapes, startRecorder, tempHome, toolOutputCameBack } from '../support/real-clients.ts';

const VERSION = '0.169.0';
const GOLDEN = join(import.meta.dirname, 'golden', 'codex.json');

test(`codex exec ${VERSION}: a plain answer and a shell tool round trip through the gateway`, { timeout: 300_000 }, async (t) => {
  const installed = ensureClient('codex', '@openai/codex', VERSION, 'codex');
  if (!installed.bin) {
    t.skip(`Codex CLI not available: ${installed.reason}`);
    return;
  }
  const gw = await startProxy({ accounts: ['a'] });
  const rec = await startRecorder(gw.url);
  const tmp = tempHome('codex');
  t.after(async () => {
    await rec.close();
    await gw.close();
    tmp.cleanup();
  });
  const codexHome = join(tmp.home, '.codex');
  mkdirSync(codexHome, { recursive: true });
  writeFileSync(
    join(codexHome, 'config.toml'),
    [
      'model = "gemini-2.5-pro"',
      'model_provider = "grantpool"',
      'model_context_window = 1048576',
      'check_for_update_on_startup = false',
      '[analytics]',
      'enabled = false',
      '[feedback]',
      'enabled = false',
      '[model_providers.grantpool]',
      'name = "Grantpool"',
      `base_url = "${rec.url}/v1"`,
      'env_key = "GRANTPOOL_API_KEY"',
      'wire_api = "responses"',
      'request_max_retries = 0',
      'stream_max_retries = 0',
      '',
    ].join('\n'),
  );
  const env = baseEnv(tmp.home, { CODEX_HOME: codexHome, GRANTPOOL_API_KEY: 'gp-test-key', RUST_LOG: 'error' });
  const run = (prompt: string) =>
    runClient(installed.bin!, ['exec', '--skip-git-repo-check', '--dangerously-bypass-approvals-and-sandbox', '-C', tmp.work, prompt], {
      cwd: tmp.work,
      env,
      timeoutMs: 60_000,
    });

  // 1) A plain answer.
  const plain = `Plain answer ${randomBytes(4).toString('hex')}`;
  gw.upstream.script({ parts: [{ text: plain }] });
  const r1 = await run('Say hello.');
  assert.equal(r1.timedOut, false, `codex exec timed out\n${r1.stderr}`);
  assert.equal(r1.code, 0, `codex exec failed (${r1.code})\nstdout: ${r1.stdout}\nstderr: ${r1.stderr}`);
  assert.match(r1.stdout, new RegExp(plain));
  const first = gw.upstream.requests.find((r) => r.action === 'streamGenerateContent' || r.action === 'generateContent');
  assert.ok(first, 'the gateway sent nothing upstream');
  const tools = declaredTools(first.body);
  assert.ok(tools.includes('exec_command'), `Codex declared no exec_command tool: ${tools.join(', ')}`);

  // 2) A tool round trip: the model runs `cat` on a file with a random token; the final answer comes only when the token came back.
  const secret = secretFile(tmp.work);
  const final = `Final answer ${randomBytes(4).toString('hex')}`;
  let sawOutput = false;
  gw.upstream.script({ parts: [{ functionCall: { name: 'exec_command', args: { cmd: `cat ${secret.path}` } } }] }, (body) => {
    sawOutput = toolOutputCameBack(body, secret.token);
    return { parts: [{ text: sawOutput ? final : 'the tool output did not come back' }] };
  });
  const r2 = await run('Show me what secret.txt says.');
  assert.equal(r2.timedOut, false, `codex exec timed out\n${r2.stderr}`);
  assert.equal(r2.code, 0, `codex exec failed (${r2.code})\nstdout: ${r2.stdout}\nstderr: ${r2.stderr}`);
  assert.ok(sawOutput, `the shell output did not come back to the model\nstderr: ${r2.stderr.slice(-2000)}`);
  assert.match(r2.stdout, new RegExp(final));

  // 3) Every request Codex sent was accepted; its shape is kept in the golden file.
  assert.deepEqual(rejected(rec.seen), [], 'the gateway refused some of what Codex sent');
  const changes = checkGolden(GOLDEN, 'codex', VERSION, shapes(rec.seen));
  if (changes.length) t.diagnostic(`Codex ${VERSION} requests differ from ${GOLDEN} (GOLDEN_UPDATE=1 rewrites it):\n${changes.join('\n')}`);
});
