// Output limits: what clients ask for is clamped to what the target model accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clampOutputLimits, limitsFromList, thinkingRange } from '../../src/proxy/output-limits.ts';

const claudeCode = { contents: [], generationConfig: { maxOutputTokens: 128_000, thinkingConfig: { thinkingBudget: 31_999, includeThoughts: true } } };

test('Claude Code sizes are clamped to gemini-2.5-flash: 65,536 output tokens, thinking budget 24,576', () => {
  const r = clampOutputLimits(claudeCode, 'gemini-2.5-flash', { outputTokenLimit: 65_536 });
  const gc = r.body.generationConfig as any;
  assert.equal(gc.maxOutputTokens, 65_536);
  assert.equal(gc.thinkingConfig.thinkingBudget, 24_576);
  assert.equal(gc.thinkingConfig.includeThoughts, true);
  assert.equal(r.notes.length, 2);
  assert.match(r.notes.join('; '), /maxOutputTokens 128000 -> 65536.*thinkingBudget 31999 -> 24576/);
  // the input is not changed
  assert.equal(claudeCode.generationConfig.maxOutputTokens, 128_000);
});

test('2.5 Pro: a budget of 0 becomes 128 (thinking cannot be turned off), above 32,768 becomes 32,768', () => {
  const zero = clampOutputLimits({ generationConfig: { thinkingConfig: { thinkingBudget: 0 } } }, 'gemini-2.5-pro', null);
  assert.equal((zero.body.generationConfig as any).thinkingConfig.thinkingBudget, 128);
  const big = clampOutputLimits({ generationConfig: { thinkingConfig: { thinkingBudget: 40_000 } } }, 'gemini-2.5-pro', null);
  assert.equal((big.body.generationConfig as any).thinkingConfig.thinkingBudget, 32_768);
});

test('Flash-Lite: 0 (off) and -1 (dynamic) stay; 100 becomes 512', () => {
  for (const b of [0, -1]) {
    const r = clampOutputLimits({ generationConfig: { thinkingConfig: { thinkingBudget: b } } }, 'gemini-2.5-flash-lite', null);
    assert.equal(r.notes.length, 0);
  }
  const r = clampOutputLimits({ generationConfig: { thinkingConfig: { thinkingBudget: 100 } } }, 'gemini-2.5-flash-lite', null);
  assert.equal((r.body.generationConfig as any).thinkingConfig.thinkingBudget, 512);
});

test('snake_case fields (Gemini-native clients) are clamped under their own names', () => {
  const r = clampOutputLimits({ generation_config: { max_output_tokens: 100_000, thinking_config: { thinking_budget: 50_000 } } }, 'gemini-2.5-flash', { outputTokenLimit: 65_536 });
  assert.deepEqual(r.body.generation_config, { max_output_tokens: 65_536, thinking_config: { thinking_budget: 24_576 } });
});

test('requests within the limits and unknown families are sent as they are (same object)', () => {
  const ok = { generationConfig: { maxOutputTokens: 1000, thinkingConfig: { thinkingBudget: 2000 } } };
  assert.equal(clampOutputLimits(ok, 'gemini-2.5-flash', { outputTokenLimit: 65_536 }).body, ok);
  const other = { generationConfig: { maxOutputTokens: 1_000_000, thinkingConfig: { thinkingBudget: 99_999 } } };
  assert.equal(clampOutputLimits(other, 'some-model', {}).body, other);
  assert.equal(thinkingRange('gemma-3'), null);
});

test('limits come from the model list, else the documented family default; a model that does not think loses its budget', () => {
  const list = [{ name: 'models/gemini-2.5-flash', outputTokenLimit: 8192 }, { name: 'models/gemini-2.0-flash', outputTokenLimit: 8192, thinking: false }];
  assert.equal(limitsFromList(list, 'gemini-2.5-flash').outputTokenLimit, 8192);
  assert.equal(limitsFromList(null, 'gemini-2.5-pro').outputTokenLimit, 65_536);
  const r = clampOutputLimits({ generationConfig: { thinkingConfig: { thinkingBudget: 1024, includeThoughts: true } } }, 'gemini-2.0-flash', limitsFromList(list, 'gemini-2.0-flash'));
  assert.deepEqual((r.body.generationConfig as any).thinkingConfig, {});
  assert.match(r.notes[0]!, /does not think/);
});

test('a new model list gives the new limits: the limits read from the last list are not kept for the next', () => {
  const before = [{ name: 'models/gemini-3-pro', outputTokenLimit: 32_768, thinking: true }];
  assert.equal(limitsFromList(before, 'gemini-3-pro').outputTokenLimit, 32_768);
  assert.equal(limitsFromList(before, 'gemini-3-pro').outputTokenLimit, 32_768, 'asked again of the same list');
  const after = [{ name: 'models/gemini-3-pro', outputTokenLimit: 65_536, thinking: false }];
  assert.deepEqual(limitsFromList(after, 'gemini-3-pro'), { outputTokenLimit: 65_536, thinking: false });
  const clamped = clampOutputLimits({ generationConfig: { maxOutputTokens: 50_000 } }, 'gemini-3-pro', limitsFromList(after, 'gemini-3-pro'));
  assert.equal(clamped.notes.length, 0, 'clamped to the new limit, not the old one');
  assert.equal(limitsFromList([], 'gemini-3-pro').outputTokenLimit, 65_536, 'a list without the model: the documented default');
  assert.equal(limitsFromList(null, 'gemini-3-pro').outputTokenLimit, 65_536);
});
