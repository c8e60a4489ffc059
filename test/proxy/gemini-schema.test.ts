import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { toGeminiParameters, toGeminiSchema } from '../../src/proxy/gemini-schema.ts';
import { HttpError } from '../../src/http/http-util.ts';
import { findSchemaViolation } from '../support/gemini-schema-rules.ts';

const claudeCodeTools = JSON.parse(readFileSync(new URL('./golden/claude-code-tools.json', import.meta.url), 'utf8')) as Array<{ name: string; input_schema: unknown }>;

test('the 24 Claude Code-sized tools pass the Gemini schema rules after conversion (and fail before)', () => {
  assert.equal(claudeCodeTools.length, 24);
  let rawFailures = 0;
  claudeCodeTools.forEach((tool, i) => {
    const path = `tools[0].function_declarations[${i}].parameters`;
    if (findSchemaViolation(tool.input_schema, path)) rawFailures++;
    const converted = toGeminiParameters(tool.input_schema, `tools.${i}.input_schema`);
    if (converted) assert.equal(findSchemaViolation(converted, path), null, `${tool.name}: ${JSON.stringify(converted)}`);
  });
  assert.equal(rawFailures, 24, 'every raw schema carries $schema/additionalProperties, which the API refuses');
});

test('inlines $ref / definitions and keeps the structure', () => {
  const multiEdit = claudeCodeTools.find((t) => t.name === 'MultiEdit')!;
  const out = toGeminiSchema(multiEdit.input_schema, 'x');
  assert.deepEqual(out.required, ['file_path', 'edits']);
  const edits = (out.properties as any).edits;
  assert.equal(edits.type, 'ARRAY');
  assert.equal(edits.minItems, 1);
  assert.deepEqual(edits.items.required, ['old_string', 'new_string']);
  assert.equal(edits.items.properties.replace_all.type, 'BOOLEAN');
  assert.equal(edits.items.properties.replace_all.default, false);
});

test('cuts recursive references safely', () => {
  const db = claudeCodeTools.find((t) => t.name === 'mcp__db__query')!;
  const out = toGeminiSchema(db.input_schema, 'x') as any;
  const filter = out.properties.filter;
  assert.equal(filter.title, 'Filter');
  assert.deepEqual(filter.properties.op.enum, ['eq', 'lt', 'gt']);
  assert.equal(filter.properties.and.items.type, 'OBJECT');
  assert.match(filter.properties.and.items.description, /recursive reference to filter/);
  assert.equal(filter.properties.and.items.properties, undefined);
  // A self-reference to the root is cut too.
  const tree = toGeminiSchema({ type: 'object', properties: { name: { type: 'string' }, children: { type: 'array', items: { $ref: '#' } } } }, 'x') as any;
  assert.equal(tree.properties.children.items.type, 'OBJECT');
});

test('rewrites keywords Gemini lacks faithfully', () => {
  const gh = toGeminiSchema(claudeCodeTools.find((t) => t.name === 'mcp__github__create_issue')!.input_schema, 'x') as any;
  assert.deepEqual(gh.properties.body, { type: 'STRING', nullable: true, description: 'Issue body content' });
  assert.deepEqual(gh.properties.assignees, { type: 'ARRAY', items: { type: 'STRING' }, nullable: true });
  assert.deepEqual(gh.properties.milestone, { type: 'NUMBER', nullable: true });
  assert.equal(gh.properties.priority.type, 'INTEGER');
  assert.equal(gh.properties.priority.enum, undefined);
  assert.match(gh.properties.priority.description, /one of: 1, 2, 3/);
  assert.equal(gh.properties.metadata.type, 'OBJECT');

  const db = toGeminiSchema(claudeCodeTools.find((t) => t.name === 'mcp__db__query')!.input_schema, 'x') as any;
  assert.equal(db.properties.sql.example, 'SELECT 1');
  assert.deepEqual(db.properties.params.items.anyOf, [{ type: 'STRING' }, { type: 'NUMBER' }, { type: 'BOOLEAN' }]);
  assert.equal(db.properties.params.items.nullable, true);
  assert.equal(db.properties.timeout_ms.minimum, 1);
  assert.equal(db.properties.since.format, 'date-time');
  assert.equal(db.properties.day.format, undefined);
  assert.match(db.properties.day.description, /format: date/);
  assert.deepEqual(db.properties.options.required, ['explain']);
  assert.deepEqual(Object.keys(db.properties.options.properties), ['limit', 'explain']);

  const ask = toGeminiSchema(claudeCodeTools.find((t) => t.name === 'AskUserQuestion')!.input_schema, 'x') as any;
  assert.deepEqual(ask.properties.kind, { type: 'STRING', enum: ['multiple_choice'] });
  assert.equal(ask.properties.questions.items.properties.options.items.properties.label.type, 'STRING');

  assert.deepEqual(toGeminiSchema({ oneOf: [{ const: 'a' }, { const: 'b' }] }, 'x'), { type: 'STRING', enum: ['a', 'b'] });
  assert.deepEqual(toGeminiSchema({ type: ['string', 'integer'], description: 'id' }, 'x'), { anyOf: [{ type: 'STRING' }, { type: 'INTEGER' }], description: 'id' });
});

test('a tool without parameters omits them', () => {
  assert.equal(toGeminiParameters({ type: 'object', properties: {}, additionalProperties: false }, 'x'), undefined);
});

test('what cannot be expressed is a clear 400', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ $ref: 'https://example.com/schema.json' }, /points outside this schema/],
    [{ type: 'object', properties: { a: { $ref: '#/$defs/missing' } } }, /does not resolve/],
    [false, /accepts no value/],
    [{ type: 'strin' }, /unknown type "strin"/],
    ['object', /must be a JSON object/],
  ];
  for (const [schema, re] of cases) {
    assert.throws(() => toGeminiSchema(schema, 'tools[0].function.parameters'), (e: unknown) => {
      assert.ok(e instanceof HttpError);
      assert.equal(e.status, 400);
      assert.match(e.message, /^tools\[0\]\.function\.parameters/);
      assert.match(e.message, re);
      return true;
    });
  }
});

test('a reference bomb is refused instead of exhausting memory', () => {
  const defs: Record<string, unknown> = { d0: { type: 'string' } };
  for (let i = 1; i < 30; i++) defs[`d${i}`] = { type: 'object', properties: { a: { $ref: `#/$defs/d${i - 1}` }, b: { $ref: `#/$defs/d${i - 1}` } } };
  assert.throws(() => toGeminiSchema({ $defs: defs, $ref: '#/$defs/d29' }, 'x'), /more than 50000 nodes/);
});
