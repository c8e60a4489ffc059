// The Vercel AI SDK (`ai`, pinned) with its default OpenAI (Responses API), Anthropic and Google providers,
// each pointed at the gateway in front of the Gemini stand-in: a plain answer and a tool round trip per provider,
// and generateObject through the Anthropic door.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startProxy } from '../support/proxy-harness.ts';
import { CLIENT_CACHE, declaredTools, rejected, startRecorder, toolOutputCameBack } from '../support/real-clients.ts';

const VERSION = '7.0.173';
const PACKAGES = ['ai@7.0.173', '@ai-sdk/openai@4.0.118', '@ai-sdk/anthropic@4.0.105', '@ai-sdk/google@4.0.121', 'zod@4'];

/** Installs the pinned packages into <tmp>/grantpool-clients/ai-sdk@<version> (reused when there); the folder, or a reason. */
function ensureSdk(): { dir: string | null; reason: string } {
  const dir = join(CLIENT_CACHE, `ai-sdk@${VERSION}`);
  const marker = join(dir, '.installed');
  if (existsSync(marker)) return { dir, reason: '' };
  mkdirSync(dir, { recursive: true });
  const npmCli = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  const npm = existsSync(npmCli) ? [process.execPath, npmCli] : ['npm'];
  const r = spawnSync(npm[0]!, [...npm.slice(1), 'install', '--no-audit', '--no-fund', '--prefix', dir, ...PACKAGES], {
    encoding: 'utf8',
    timeout: 240_000,
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });
  if (r.status !== 0 || !existsSync(join(dir, 'node_modules', 'ai', 'package.json'))) {
    const tail = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n').slice(-4).join(' | ');
    return { dir: null, reason: `npm install ${PACKAGES.join(' ')} into ${dir} failed (${r.error?.message ?? `exit ${r.status}`}): ${tail}` };
  }
  writeFileSync(marker, `${PACKAGES.join('\n')}\n`);
  return { dir, reason: '' };
}

// The packages are not project dependencies: their types are not available here, so the parts used are typed loosely.
type Any = any;
/** Imports a package's ESM entry (its package.json `exports["."].import`) from the cache folder. */
async function load(dir: string, pkg: string): Promise<Any> {
  const root = join(dir, 'node_modules', pkg);
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports?: Record<string, Any>; module?: string; main?: string };
  const dot = manifest.exports?.['.'];
  const entry: string = (typeof dot === 'string' ? dot : typeof dot?.import === 'string' ? dot.import : dot?.import?.default) ?? manifest.module ?? manifest.main ?? 'index.js';
  return import(pathToFileURL(join(root, entry)).href);
}

test(`AI SDK ${VERSION}: openai (Responses), anthropic and google providers answer and complete a tool round trip; anthropic generateObject`, { timeout: 300_000 }, async (t) => {
  const installed = ensureSdk();
  if (!installed.dir) {
    t.skip(`AI SDK not available: ${installed.reason}`);
    return;
  }
  const dir = installed.dir;
  (globalThis as Any).AI_SDK_LOG_WARNINGS = false; // generateObject is deprecated in v7 but still supported; keep the output quiet
  const ai = await load(dir, 'ai');
  const { createOpenAI } = await load(dir, '@ai-sdk/openai');
  const { createAnthropic } = await load(dir, '@ai-sdk/anthropic');
  const { createGoogleGenerativeAI } = await load(dir, '@ai-sdk/google');
  const { z } = await load(dir, 'zod');

  const gw = await startProxy({ accounts: ['a'] });
  const rec = await startRecorder(gw.url);
  t.after(async () => {
    await rec.close();
    await gw.close();
  });
  const apiKey = 'gp-test-key';
  const openai = createOpenAI({ baseURL: `${rec.url}/v1`, apiKey });
  const anthropic = createAnthropic({ baseURL: `${rec.url}/v1`, apiKey });
  const google = createGoogleGenerativeAI({ baseURL: `${rec.url}/v1beta`, apiKey });
  const providers: { name: string; model: Any; path: string }[] = [
    { name: 'openai', model: openai('gpt-4o'), path: '/v1/responses' },
    { name: 'anthropic', model: anthropic('claude-sonnet-4-5'), path: '/v1/messages' },
    { name: 'google', model: google('gemini-2.5-flash'), path: '/v1beta/models/gemini-2.5-flash:generateContent' },
  ];

  for (const p of providers) {
    await t.test(`${p.name}: generateText and a tool round trip`, async () => {
      const before = rec.seen.length;
      // 1) A plain answer: the stand-in's scripted text comes back as result.text.
      const plain = `Plain answer ${randomBytes(4).toString('hex')}`;
      gw.upstream.script({ parts: [{ text: plain }] });
      const r1 = await ai.generateText({ model: p.model, prompt: 'Say hello.', maxRetries: 0 });
      assert.equal(r1.text, plain);

      // 2) A tool round trip: the model calls lookup_secret; its random output must come back before the final text.
      const token = `tok-${randomBytes(6).toString('hex')}`;
      const final = `Final answer ${randomBytes(4).toString('hex')}`;
      let calls = 0;
      let sawOutput = false;
      let declared: string[] = [];
      gw.upstream.script(
        (body) => {
          declared = declaredTools(body);
          return { parts: [{ functionCall: { name: 'lookup_secret', args: { key: 'alpha' } } }] };
        },
        (body) => {
          sawOutput = toolOutputCameBack(body, token);
          return { parts: [{ text: sawOutput ? final : 'the tool output did not come back' }] };
        },
      );
      const r2 = await ai.generateText({
        model: p.model,
        prompt: 'What is the secret for alpha?',
        maxRetries: 0,
        tools: {
          lookup_secret: ai.tool({
            description: 'Looks up the secret stored under a key.',
            inputSchema: z.object({ key: z.string() }),
            execute: async ({ key }: { key: string }) => {
              calls++;
              assert.equal(key, 'alpha');
              return { secret: token };
            },
          }),
        },
        stopWhen: ai.stepCountIs(3),
      });
      assert.ok(declared.includes('lookup_secret'), `${p.name} declared no lookup_secret tool upstream: ${declared.join(', ')}`);
      assert.equal(calls, 1, 'the tool ran once');
      assert.ok(sawOutput, 'the tool output did not come back to the model');
      assert.equal(r2.text, final);
      assert.equal(r2.steps.length, 2);

      const mine = rec.seen.slice(before);
      assert.ok(mine.every((s) => s.path === p.path), `${p.name} went elsewhere: ${mine.map((s) => s.path).join(', ')}`);
      assert.deepEqual(rejected(mine), [], `the gateway refused some of what the ${p.name} provider sent`);
    });
  }

  await t.test('anthropic: generateObject returns the object (output_config.format)', async () => {
    const before = rec.seen.length;
    const city = `City-${randomBytes(3).toString('hex')}`;
    let schemaSent: unknown = null;
    gw.upstream.script((body) => {
      schemaSent = (body.generationConfig as Record<string, unknown> | undefined)?.responseJsonSchema ?? (body.generationConfig as Record<string, unknown> | undefined)?.responseSchema ?? null;
      return { parts: [{ text: JSON.stringify({ city, population: 1234 }) }] };
    });
    const r = await ai.generateObject({
      model: anthropic('claude-sonnet-4-5'),
      schema: z.object({ city: z.string(), population: z.number() }),
      prompt: 'Name a city and its population.',
      maxRetries: 0,
    });
    assert.deepEqual(r.object, { city, population: 1234 });
    assert.ok(schemaSent, 'the JSON schema did not reach the upstream as a response schema');
    const mine = rec.seen.slice(before);
    assert.equal(mine.length, 1);
    assert.equal((mine[0]!.body as Record<string, Any>)?.output_config?.format?.type, 'json_schema', 'the provider did not send output_config.format');
    assert.match(JSON.stringify(schemaSent), /population/, 'the upstream response schema lost the fields');
    assert.deepEqual(rejected(mine), [], 'the gateway refused what generateObject sent');
  });
});
