import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findSchemaViolation, findRequestSchemaViolations } from '../support/gemini-schema-rules.ts';

const P = 'tools[0].function_declarations[0].parameters';

test('accepts a schema made only of the OpenAPI-subset fields', () => {
  const schema = {
    type: 'OBJECT',
    title: 'Args',
    description: 'args',
    properties: {
      city: { type: 'STRING', description: 'the city', minLength: 1, maxLength: '40', pattern: '^[A-Z]' },
      when: { type: 'string', format: 'date-time', nullable: true },
      unit: { type: 'STRING', format: 'enum', enum: ['C', 'F'], default: 'C', example: 'F' },
      days: { type: 'INTEGER', minimum: 1, maximum: 10, format: 'int32' },
      tags: { type: 'ARRAY', items: { type: 'STRING' }, minItems: 0, maxItems: 5 },
      either: { anyOf: [{ type: 'STRING' }, { type: 'NUMBER' }] },
      obj: { type: 'OBJECT', properties: { a: { type: 'BOOLEAN' } }, minProperties: 1, maxProperties: 3, propertyOrdering: ['a'] },
    },
    required: ['city'],
  };
  assert.equal(findSchemaViolation(schema, P), null);
});

test('rejects unknown keywords with the API message and the path of the offending schema', () => {
  const schema = {
    type: 'object',
    additionalProperties: false,
    properties: { a: { type: 'string' }, b: { type: 'array', items: { type: 'object', $ref: '#/x' } } },
  };
  assert.equal(
    findSchemaViolation(schema, P),
    `Invalid JSON payload received. Unknown name "additionalProperties" at '${P}': Cannot find field.\n` +
      `Invalid JSON payload received. Unknown name "$ref" at '${P}.properties[1].value.items': Cannot find field.`,
  );
});

test('rejects the JSON Schema keywords Gemini lacks', () => {
  for (const key of ['$schema', 'const', 'oneOf', 'allOf', '$defs', 'definitions', 'examples', 'patternProperties', 'exclusiveMinimum', 'multipleOf', 'propertyNames', 'uniqueItems']) {
    const msg = findSchemaViolation({ type: 'object', properties: { x: { type: 'string', [key]: 1 } } }, P);
    assert.ok((msg ?? '').includes(`Unknown name "${key}" at '${P}.properties[0].value': Cannot find field.`), key);
  }
});

test('rejects type lists, unknown type names, non-string enums and bad formats', () => {
  assert.match(findSchemaViolation({ type: ['string', 'null'] }, P) ?? '', /Unknown name "type" at .*Proto field is not repeating, cannot start list\./);
  assert.match(findSchemaViolation({ type: 'enum' }, P) ?? '', /Invalid value at '.*\.type' \(type\.googleapis\.com\/google\.ai\.generativelanguage\.v1beta\.Type\), enum/);
  assert.match(findSchemaViolation({ type: 'integer', enum: [1, 2] }, P) ?? '', /Invalid value at '.*\.enum\[0\]' \(TYPE_STRING\), 1/);
  assert.match(findSchemaViolation({ type: 'string', format: 'uri' }, P) ?? '', /only 'enum' and 'date-time' are supported for STRING type/);
  assert.match(findSchemaViolation({ type: 'object', properties: {}, required: ['x'] }, P) ?? '', /required\[0\]: property is not defined/);
  assert.match(findSchemaViolation({ type: 'array', items: [{ type: 'string' }] }, P) ?? '', /Unknown name "items".*cannot start list/);
  assert.match(findSchemaViolation({ type: 'string', minLength: 1.5 }, P) ?? '', /min_length' \(TYPE_INT64\)/);
});

test('finds every schema in a generateContent request', () => {
  const req = {
    contents: [],
    tools: [{ functionDeclarations: [{ name: 'a', parameters: { type: 'object' } }, { name: 'b', parameters: { type: 'object', const: 1 } }] }],
    generationConfig: { responseSchema: { type: 'object', additionalProperties: {} }, responseJsonSchema: { additionalProperties: false } },
  };
  assert.deepEqual(findRequestSchemaViolations(req), [
    `Invalid JSON payload received. Unknown name "const" at 'tools[0].function_declarations[1].parameters': Cannot find field.`,
    `Invalid JSON payload received. Unknown name "additionalProperties" at 'generation_config.response_schema': Cannot find field.`,
  ]);
});
