// JSON Schema (as clients send it in tool parameters and response formats)
// to the Gemini API's OpenAPI-subset `Schema`. References are inlined (a
// recursive reference is cut to a described, property-less node), keywords
// Gemini lacks are rewritten where the meaning survives (const -> enum,
// ["x","null"] -> nullable, allOf -> merged, oneOf -> anyOf, examples ->
// example, exclusive bounds -> bounds) and dropped when they only narrow what
// is valid. What cannot be expressed at all is a 400.
import { BadRequest } from '../http/http-util.ts';
import { nestsDeeperThan } from '../util/json.ts';
import { isObj, type Json } from './translate-util.ts';

export type GeminiSchema = Json;

const MAX_DEPTH = 64;
const MAX_NODES = 50_000;
/** Keywords whose values are data, not schemas. */
const VALUE_KEYWORDS = ['const', 'enum', 'default', 'example', 'examples'] as const;

const TYPE_NAMES: Record<string, string> = {
  string: 'STRING', number: 'NUMBER', integer: 'INTEGER', boolean: 'BOOLEAN', array: 'ARRAY', object: 'OBJECT', null: 'NULL',
};
const NUMBER_FORMATS = new Set(['float', 'double']);
const INTEGER_FORMATS = new Set(['int32', 'int64']);
const STRING_FORMATS = new Set(['enum', 'date-time']);

interface Ctx {
  root: unknown;
  where: string;
  refStack: string[];
  nodes: number;
}

function fail(ctx: Ctx, path: string, message: string): never {
  throw new BadRequest(`${ctx.where}${path ? ` at ${path}` : ''}: ${message}`, 'invalid_schema');
}

/**
 * Converts one JSON Schema to Gemini's Schema. `where` names the schema in
 * error messages, e.g. `tools[3].function.parameters`.
 */
export function toGeminiSchema(schema: unknown, where: string): GeminiSchema {
  const ctx: Ctx = { root: schema, where, refStack: [], nodes: 0 };
  if (schema === true || schema === undefined || schema === null) return {};
  if (schema === false) fail(ctx, '', 'the schema `false` accepts no value and cannot be sent to Gemini');
  if (!isObj(schema)) fail(ctx, '', 'a schema must be a JSON object');
  return convert(schema, ctx, '#', 0);
}

/**
 * Tool parameters: like toGeminiSchema, but an object schema without
 * properties becomes `undefined` (omit `parameters`, the function takes none).
 */
export function toGeminiParameters(schema: unknown, where: string): GeminiSchema | undefined {
  if (schema === undefined || schema === null) return undefined;
  const out = toGeminiSchema(schema, where);
  const props = out.properties;
  const empty = !isObj(props) || Object.keys(props).length === 0;
  if ((out.type === 'OBJECT' || out.type === undefined) && empty && out.anyOf === undefined) return undefined;
  return out;
}

function resolvePointer(ctx: Ctx, ref: string, path: string): unknown {
  if (!ref.startsWith('#')) fail(ctx, path, `$ref "${ref}" points outside this schema; only local references (#/$defs/..., #/definitions/...) can be inlined`);
  const pointer = ref.slice(1);
  if (pointer === '') return ctx.root;
  if (!pointer.startsWith('/')) {
    // An anchor: search for $anchor / $id "#name".
    const found = findAnchor(ctx.root, pointer, 0);
    if (found === undefined) fail(ctx, path, `$ref "${ref}" does not resolve`);
    return found;
  }
  let node: unknown = ctx.root;
  for (const raw of pointer.slice(1).split('/')) {
    let key: string;
    try {
      key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    } catch {
      fail(ctx, path, `$ref "${ref}" is not valid percent-encoding (a JSON pointer in a URI fragment escapes bytes as %XX of UTF-8)`);
    }
    if (Array.isArray(node)) node = node[Number(key)];
    else if (isObj(node) && Object.hasOwn(node, key)) node = node[key];
    else fail(ctx, path, `$ref "${ref}" does not resolve`);
  }
  if (node === undefined) fail(ctx, path, `$ref "${ref}" does not resolve`);
  return node;
}

function findAnchor(node: unknown, name: string, depth: number): unknown {
  if (depth > MAX_DEPTH || typeof node !== 'object' || node === null) return undefined;
  if (isObj(node) && (node.$anchor === name || node.$id === `#${name}`)) return node;
  for (const v of Object.values(node)) {
    const f = findAnchor(v, name, depth + 1);
    if (f !== undefined) return f;
  }
  return undefined;
}

/** Resolves `$ref` (with siblings applied over the target) and merges `allOf`, in JSON Schema terms. */
function flatten(node: Json, ctx: Ctx, path: string, depth: number): { schema: Json; cut?: string } {
  if (depth > MAX_DEPTH) fail(ctx, path, `schema is nested more than ${MAX_DEPTH} levels deep`);
  // Values are copied and compared as they are: bound their nesting too.
  for (const key of VALUE_KEYWORDS) {
    if (node[key] !== undefined && nestsDeeperThan(node[key], MAX_DEPTH)) fail(ctx, path, `${key} is nested more than ${MAX_DEPTH} levels deep`);
  }
  let schema = node;
  if (typeof schema.$ref === 'string') {
    const ref = schema.$ref;
    if (ctx.refStack.includes(ref)) return { schema: {}, cut: ref };
    const target = resolvePointer(ctx, ref, path);
    const { $ref: _r, ...siblings } = schema;
    if (target === false) fail(ctx, path, `$ref "${ref}" points to the schema \`false\``);
    const base = isObj(target) ? target : {};
    ctx.refStack.push(ref);
    try {
      const flat = flatten(base, ctx, path, depth + 1);
      if (flat.cut) return { schema: { ...siblings }, cut: flat.cut };
      schema = Object.keys(siblings).length ? mergeSchemas(flat.schema, flatten(siblings, ctx, path, depth + 1).schema) : flat.schema;
      // Nested refs inside the target (properties etc.) resolve later with this ref still "open"
      // only while flattening; to detect cycles through properties we record the ref on the node.
      schema = { ...schema, [OPEN_REFS]: [...((schema[OPEN_REFS] as string[] | undefined) ?? []), ref] };
    } finally {
      ctx.refStack.pop();
    }
  }
  if (Array.isArray(schema.allOf)) {
    const { allOf, ...rest } = schema;
    let merged: Json = {};
    for (const [i, sub] of (allOf as unknown[]).entries()) {
      if (sub === true) continue;
      if (!isObj(sub)) fail(ctx, `${path}/allOf/${i}`, 'allOf entries must be schemas');
      const flat = flatten(sub, ctx, `${path}/allOf/${i}`, depth + 1);
      merged = mergeSchemas(merged, flat.schema);
    }
    schema = mergeSchemas(merged, flatten(rest, ctx, path, depth + 1).schema);
  }
  return { schema };
}

const OPEN_REFS = '\u0000openRefs';

/** Merges two schemas that must both hold (allOf). */
function mergeSchemas(a: Json, b: Json): Json {
  const out: Json = { ...a };
  for (const [key, value] of Object.entries(b)) {
    if (!(key in out)) {
      out[key] = value;
      continue;
    }
    const prev = out[key];
    switch (key) {
      case 'properties':
        out.properties = isObj(prev) && isObj(value) ? mergeProperties(prev, value) : value;
        break;
      case 'required':
        out.required = [...new Set([...(Array.isArray(prev) ? prev : []), ...(Array.isArray(value) ? value : [])])];
        break;
      case 'description':
        out.description = prev === value ? prev : [prev, value].filter((s) => typeof s === 'string' && s).join('\n');
        break;
      case 'type': {
        const pa = Array.isArray(prev) ? prev : [prev];
        const pb = Array.isArray(value) ? value : [value];
        let both = pa.filter((t) => pb.includes(t) || (t === 'integer' && pb.includes('number')));
        if (both.length === 0 && pa.includes('number') && pb.includes('integer')) both = ['integer'];
        out.type = both.length === 0 ? prev : both.length === 1 ? both[0] : both;
        break;
      }
      case 'enum':
        out.enum = Array.isArray(prev) && Array.isArray(value) ? prev.filter((x) => value.some((y) => JSON.stringify(y) === JSON.stringify(x))) : value;
        break;
      case 'minimum': case 'minLength': case 'minItems': case 'minProperties': case 'exclusiveMinimum':
        out[key] = typeof prev === 'number' && typeof value === 'number' ? Math.max(prev, value) : value;
        break;
      case 'maximum': case 'maxLength': case 'maxItems': case 'maxProperties': case 'exclusiveMaximum':
        out[key] = typeof prev === 'number' && typeof value === 'number' ? Math.min(prev, value) : value;
        break;
      case 'items':
        out.items = isObj(prev) && isObj(value) ? { allOf: [prev, value] } : value;
        break;
      case 'anyOf': case 'oneOf':
        // Both alternatives lists must hold: keep the first, the second as a nested allOf branch.
        out.allOf = [...(Array.isArray(out.allOf) ? out.allOf : []), { [key]: value }];
        break;
      case OPEN_REFS:
        out[key] = [...(prev as string[]), ...(value as string[])];
        break;
      default:
        out[key] = value;
    }
  }
  return out;
}

function mergeProperties(a: Json, b: Json): Json {
  const out: Json = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = k in out && isObj(out[k]) && isObj(v) ? { allOf: [out[k], v] } : v;
  }
  return out;
}

function describeAppend(desc: unknown, note: string): string {
  return typeof desc === 'string' && desc ? `${desc} (${note})` : note;
}

function convert(input: Json, ctx: Ctx, path: string, depth: number): GeminiSchema {
  if (++ctx.nodes > MAX_NODES) fail(ctx, path, `schema expands to more than ${MAX_NODES} nodes (deeply shared references?)`);
  if (depth > MAX_DEPTH) fail(ctx, path, `schema is nested more than ${MAX_DEPTH} levels deep`);
  const opened = ctx.refStack.length;
  const flat = flatten(input, ctx, path, depth);
  let s = flat.schema;
  if (flat.cut) {
    const name = flat.cut.split('/').pop();
    return { type: 'OBJECT', description: describeAppend(s.description, `recursive reference to ${name}, not expanded further`) };
  }
  const refs = (s[OPEN_REFS] as string[] | undefined) ?? [];
  ctx.refStack.push(...refs);
  try {
    return convertFlat(s, ctx, path, depth);
  } finally {
    ctx.refStack.length = opened;
  }
}

function convertFlat(s: Json, ctx: Ctx, path: string, depth: number): GeminiSchema {
  const out: GeminiSchema = {};
  let nullable = s.nullable === true;

  // --- type ---------------------------------------------------------------
  let types: string[] = [];
  if (typeof s.type === 'string') types = [s.type];
  else if (Array.isArray(s.type)) types = s.type.filter((t): t is string => typeof t === 'string');
  else if (s.type !== undefined) fail(ctx, path, '"type" must be a string or an array of strings');
  for (const t of types) if (!(t in TYPE_NAMES)) fail(ctx, path, `unknown type "${t}"`);
  if (types.includes('null')) {
    nullable = true;
    types = types.filter((t) => t !== 'null');
    if (types.length === 0 && s.type !== undefined && !Array.isArray(s.type)) {
      // {"type":"null"} alone: only null is allowed.
      return { nullable: true, ...(typeof s.description === 'string' ? { description: s.description } : {}) };
    }
  }
  if (types.length > 1) {
    // ["string","integer"] -> anyOf of one branch per type, sharing the other keywords.
    const { type: _t, ...rest } = s;
    const branches = types.map((t, i) => convertFlat({ ...rest, type: t, description: undefined, title: undefined }, ctx, `${path}/type/${i}`, depth + 1));
    const res: GeminiSchema = { anyOf: branches.map(stripUndefined) };
    if (typeof s.description === 'string') res.description = s.description;
    if (typeof s.title === 'string') res.title = s.title;
    if (nullable) res.nullable = true;
    return res;
  }
  let type = types[0];

  // --- const / enum -------------------------------------------------------
  let values: unknown[] | undefined;
  if ('const' in s) values = [s.const];
  if (Array.isArray(s.enum)) values = values ? values.filter((v) => (s.enum as unknown[]).some((e) => JSON.stringify(e) === JSON.stringify(v))) : s.enum;
  let description = typeof s.description === 'string' ? s.description : undefined;
  if (values) {
    if (values.includes(null)) {
      nullable = true;
      values = values.filter((v) => v !== null);
    }
    if (values.length > 0 && values.every((v) => typeof v === 'string')) {
      out.enum = values;
      if (!type) type = 'string';
    } else if (values.length > 0) {
      if (!type) {
        const kinds = new Set(values.map((v) => (typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'number') : typeof v)));
        if (kinds.size === 1) type = [...kinds][0] === 'object' ? 'object' : [...kinds][0];
        else if ([...kinds].every((k) => k === 'integer' || k === 'number')) type = 'number';
      }
      const list = values.map((v) => JSON.stringify(v)).join(', ');
      description = describeAppend(description, values.length === 1 ? `must be ${list}` : `one of: ${list}`);
    }
  }

  // --- anyOf / oneOf ------------------------------------------------------
  const alternatives = [...(Array.isArray(s.anyOf) ? s.anyOf : []), ...(Array.isArray(s.oneOf) ? s.oneOf : [])];
  if (Array.isArray(s.allOf)) {
    // Leftover from merging two anyOf lists: keep the first list, the rest narrows only.
    for (const extra of s.allOf as Json[]) alternatives.push(...((extra.anyOf ?? extra.oneOf ?? []) as unknown[]));
  }
  if (alternatives.length > 0) {
    const branches: GeminiSchema[] = [];
    for (const [i, alt] of alternatives.entries()) {
      if (alt === false) continue;
      if (alt === true) {
        branches.push({});
        continue;
      }
      if (!isObj(alt)) fail(ctx, `${path}/anyOf/${i}`, 'anyOf/oneOf entries must be schemas');
      const flatAlt = flatten(alt, ctx, `${path}/anyOf/${i}`, depth + 1).schema;
      if (flatAlt.type === 'null' || (Array.isArray(flatAlt.enum) && flatAlt.enum.length === 1 && flatAlt.enum[0] === null) || ('const' in flatAlt && flatAlt.const === null)) {
        nullable = true;
        continue;
      }
      branches.push(convert(alt, ctx, `${path}/anyOf/${i}`, depth + 1));
    }
    // Sibling keywords of anyOf (type, properties...) apply to every branch.
    const { anyOf: _a, oneOf: _o, allOf: _l, description: _d, title: _ti, ...siblings } = s;
    const siblingSchema = Object.keys(siblings).filter((k) => k !== OPEN_REFS && k !== 'nullable').length > 0 ? convertFlat(siblings, ctx, path, depth + 1) : undefined;
    let merged = branches.map((b) => (siblingSchema ? { ...siblingSchema, ...b } : b));
    // All branches string enums -> one enum.
    if (merged.length > 1 && merged.every((b) => Array.isArray(b.enum) && b.type === 'STRING' && Object.keys(b).every((k) => k === 'enum' || k === 'type' || k === 'description'))) {
      merged = [{ type: 'STRING', enum: [...new Set(merged.flatMap((b) => b.enum as string[]))] }];
    }
    const res: GeminiSchema = merged.length === 1 ? { ...merged[0] } : merged.length === 0 ? {} : { anyOf: merged };
    if (description !== undefined) res.description = typeof res.description === 'string' && merged.length === 1 ? `${description}\n${res.description}` : description;
    if (typeof s.title === 'string') res.title = s.title;
    if (nullable) res.nullable = true;
    return res;
  }

  // --- infer a missing type -----------------------------------------------
  if (!type) {
    if (isObj(s.properties) || s.additionalProperties !== undefined || s.required !== undefined) type = 'object';
    else if (s.items !== undefined || s.prefixItems !== undefined) type = 'array';
  }
  if (type) out.type = TYPE_NAMES[type];
  if (typeof s.title === 'string') out.title = s.title;
  if (nullable) out.nullable = true;

  // --- format ------------------------------------------------------------
  if (typeof s.format === 'string' && s.format) {
    const f = s.format;
    const ok = (type === 'string' && STRING_FORMATS.has(f)) || (type === 'number' && NUMBER_FORMATS.has(f)) || (type === 'integer' && INTEGER_FORMATS.has(f));
    if (ok) out.format = f;
    else if (type === 'string' || type === undefined) description = describeAppend(description, `format: ${f}`);
  }

  // --- numbers ------------------------------------------------------------
  const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  if (num(s.minimum)) out.minimum = s.minimum;
  if (num(s.maximum)) out.maximum = s.maximum;
  if (num(s.exclusiveMinimum)) out.minimum = type === 'integer' ? Math.floor(s.exclusiveMinimum) + 1 : Math.max(s.exclusiveMinimum, num(out.minimum) ? out.minimum : -Infinity);
  else if (s.exclusiveMinimum === true && num(s.minimum) && type === 'integer') out.minimum = s.minimum + 1;
  if (num(s.exclusiveMaximum)) out.maximum = type === 'integer' ? Math.ceil(s.exclusiveMaximum) - 1 : Math.min(s.exclusiveMaximum, num(out.maximum) ? out.maximum : Infinity);
  else if (s.exclusiveMaximum === true && num(s.maximum) && type === 'integer') out.maximum = s.maximum - 1;
  if (num(s.multipleOf)) description = describeAppend(description, `multiple of ${s.multipleOf}`);

  // --- strings ------------------------------------------------------------
  const count = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  if (count(s.minLength)) out.minLength = s.minLength;
  if (count(s.maxLength)) out.maxLength = s.maxLength;
  if (typeof s.pattern === 'string') out.pattern = s.pattern;

  // --- arrays -------------------------------------------------------------
  if (count(s.minItems)) out.minItems = s.minItems;
  if (count(s.maxItems)) out.maxItems = s.maxItems;
  const tuple = Array.isArray(s.prefixItems) ? s.prefixItems : Array.isArray(s.items) ? s.items : undefined;
  if (tuple) {
    const convs = tuple.map((t, i) => (isObj(t) ? convert(t, ctx, `${path}/items/${i}`, depth + 1) : {}));
    const extra = !Array.isArray(s.items) && isObj(s.items) ? [convert(s.items, ctx, `${path}/items`, depth + 1)] : [];
    const all = [...convs, ...extra];
    const unique = all.filter((c, i) => all.findIndex((d) => JSON.stringify(d) === JSON.stringify(c)) === i);
    if (unique.length === 1) out.items = unique[0];
    else if (unique.length > 1) out.items = { anyOf: unique };
    if (!out.type) out.type = 'ARRAY';
  } else if (isObj(s.items)) {
    out.items = convert(s.items, ctx, `${path}/items`, depth + 1);
  } else if (s.items === true) {
    out.items = {};
  }

  // --- objects ------------------------------------------------------------
  if (isObj(s.properties)) {
    const props: Json = {};
    for (const [name, sub] of Object.entries(s.properties)) {
      if (sub === false) continue; // the property must not be present: leave it out
      props[name] = sub === true || !isObj(sub) ? {} : convert(sub, ctx, `${path}/properties/${name}`, depth + 1);
    }
    if (Object.keys(props).length > 0) out.properties = props;
    if (Array.isArray(s.required)) {
      const req = [...new Set(s.required.filter((r): r is string => typeof r === 'string' && Object.hasOwn(props, r)))];
      if (req.length) out.required = req;
    }
  }
  if (count(s.minProperties)) out.minProperties = s.minProperties;
  if (count(s.maxProperties)) out.maxProperties = s.maxProperties;

  // --- documentation ------------------------------------------------------
  if (description !== undefined) out.description = description;
  if (s.default !== undefined) out.default = s.default;
  if (s.example !== undefined) out.example = s.example;
  else if (Array.isArray(s.examples) && s.examples.length > 0) out.example = s.examples[0];

  if (out.enum && !out.type) out.type = 'STRING';
  return stripUndefined(out);
}

function stripUndefined(o: GeminiSchema): GeminiSchema {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}
