// What the Gemini API accepts in its OpenAPI-subset `Schema` field
// (functionDeclarations[].parameters / response, generationConfig.responseSchema),
// checked the way the real API checks it, with the real API's messages.
//
// The field list follows the public reference of google.ai.generativelanguage.v1beta.Schema.
// JSON mapping of protobuf accepts the lowerCamel json name and the original
// snake_case field name; anything else is "Unknown name ... Cannot find field.".

const SCALAR_STRING = ['format', 'title', 'description', 'pattern'] as const;
const INT64 = ['maxItems', 'minItems', 'minProperties', 'maxProperties', 'minLength', 'maxLength'] as const;
const DOUBLE = ['minimum', 'maximum'] as const;

/** camelCase json name -> canonical name, plus snake_case proto names. */
const KNOWN_FIELDS: Record<string, string> = {};
for (const name of [
  'type', 'format', 'title', 'description', 'nullable', 'enum', 'maxItems', 'minItems', 'properties',
  'required', 'minProperties', 'maxProperties', 'minLength', 'maxLength', 'pattern', 'example', 'anyOf',
  'propertyOrdering', 'default', 'items', 'minimum', 'maximum',
]) {
  KNOWN_FIELDS[name] = name;
  KNOWN_FIELDS[name.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())] = name;
}

const TYPES = new Set(['TYPE_UNSPECIFIED', 'STRING', 'NUMBER', 'INTEGER', 'BOOLEAN', 'ARRAY', 'OBJECT', 'NULL']);
const STRING_FORMATS = new Set(['enum', 'date-time']);

function show(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isInt64(v: unknown): boolean {
  if (typeof v === 'number') return Number.isInteger(v);
  return typeof v === 'string' && /^-?\d+$/.test(v);
}

/**
 * All violations in one Schema object, in the Gemini API's own words.
 * `path` is where the schema sits in the request, in the API's notation,
 * e.g. `tools[0].function_declarations[2].parameters` or `generation_config.response_schema`.
 */
export function findSchemaViolations(schema: unknown, path: string): string[] {
  const out: string[] = [];
  walk(schema, path, out, 0);
  return out;
}

/**
 * The violations joined the way the API joins them in its 400 message, or
 * null when the real API would accept the schema.
 */
export function findSchemaViolation(schema: unknown, path: string): string | null {
  const all = findSchemaViolations(schema, path);
  return all.length ? all.join('\n') : null;
}

function walk(schema: unknown, path: string, out: string[], depth: number): void {
  if (depth > 100) {
    out.push(`Invalid JSON payload received. Nesting too deep at '${path}'.`);
    return;
  }
  if (Array.isArray(schema)) {
    out.push(`Invalid JSON payload received. Unknown name "" at '${path}': Proto field is not repeating, cannot start list.`);
    return;
  }
  if (!isObject(schema)) {
    out.push(`Invalid value at '${path}' (type.googleapis.com/google.ai.generativelanguage.v1beta.Schema), ${show(schema)}`);
    return;
  }
  const seen: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    const field = KNOWN_FIELDS[key];
    if (!field) {
      out.push(`Invalid JSON payload received. Unknown name "${key}" at '${path}': Cannot find field.`);
      continue;
    }
    seen[field] = value;
  }

  for (const [key, value] of Object.entries(seen)) {
    const repeated = key === 'enum' || key === 'required' || key === 'anyOf' || key === 'propertyOrdering';
    if (Array.isArray(value) && !repeated && key !== 'example' && key !== 'default') {
      out.push(`Invalid JSON payload received. Unknown name "${key}" at '${path}': Proto field is not repeating, cannot start list.`);
      delete seen[key];
    } else if (repeated && value !== null && !Array.isArray(value)) {
      out.push(`Invalid value at '${path}.${snake(key)}' (${key === 'anyOf' ? 'type.googleapis.com/google.ai.generativelanguage.v1beta.Schema' : 'TYPE_STRING'}), ${show(value)}`);
      delete seen[key];
    }
  }

  let type: string | undefined;
  if ('type' in seen && seen.type !== null) {
    const t = seen.type;
    if (typeof t !== 'string' || !TYPES.has(t.toUpperCase())) {
      out.push(`Invalid value at '${path}.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), ${show(t)}`);
    } else {
      type = t.toUpperCase();
    }
  }
  for (const key of SCALAR_STRING) {
    const v = seen[key];
    if (v !== undefined && v !== null && typeof v !== 'string') out.push(`Invalid value at '${path}.${snake(key)}' (TYPE_STRING), ${show(v)}`);
  }
  for (const key of INT64) {
    const v = seen[key];
    if (v !== undefined && v !== null && !isInt64(v)) out.push(`Invalid value at '${path}.${snake(key)}' (TYPE_INT64), ${show(v)}`);
  }
  for (const key of DOUBLE) {
    const v = seen[key];
    if (v !== undefined && v !== null && typeof v !== 'number') out.push(`Invalid value at '${path}.${snake(key)}' (TYPE_DOUBLE), ${show(v)}`);
  }
  if (seen.nullable !== undefined && seen.nullable !== null && typeof seen.nullable !== 'boolean') {
    out.push(`Invalid value at '${path}.nullable' (TYPE_BOOL), ${show(seen.nullable)}`);
  }
  for (const key of ['enum', 'required', 'propertyOrdering'] as const) {
    const list = seen[key];
    if (!Array.isArray(list)) continue;
    list.forEach((v, i) => {
      if (typeof v !== 'string') out.push(`Invalid value at '${path}.${snake(key)}[${i}]' (TYPE_STRING), ${show(v)}`);
    });
  }
  if (type === 'STRING' && typeof seen.format === 'string' && seen.format !== '' && !STRING_FORMATS.has(seen.format)) {
    out.push(`GenerateContentRequest.${path}.format: only 'enum' and 'date-time' are supported for STRING type`);
  }

  const props = seen.properties;
  if (props !== undefined && props !== null) {
    if (!isObject(props)) {
      out.push(`Invalid value at '${path}.properties' (type.googleapis.com/google.ai.generativelanguage.v1beta.Schema.PropertiesEntry), ${show(props)}`);
    } else {
      Object.entries(props).forEach(([, sub], i) => walk(sub, `${path}.properties[${i}].value`, out, depth + 1));
    }
  }
  if (Array.isArray(seen.required)) {
    const names = isObject(props) ? props : {};
    seen.required.forEach((name, i) => {
      if (typeof name === 'string' && !Object.hasOwn(names, name)) {
        out.push(`GenerateContentRequest.${path}.required[${i}]: property is not defined`);
      }
    });
  }
  if (seen.items !== undefined && seen.items !== null) walk(seen.items, `${path}.items`, out, depth + 1);
  if (Array.isArray(seen.anyOf)) seen.anyOf.forEach((sub, i) => walk(sub, `${path}.any_of[${i}]`, out, depth + 1));
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

/**
 * Every schema a generateContent / countTokens request carries, with its
 * path in the API's notation: function declaration parameters and responses,
 * and generationConfig.responseSchema. `parametersJsonSchema`,
 * `responseJsonSchema` are JSON Schema fields and not checked here.
 */
export function findRequestSchemaViolations(request: unknown): string[] {
  const out: string[] = [];
  if (!isObject(request)) return out;
  const tools = request.tools;
  if (Array.isArray(tools)) {
    tools.forEach((tool, t) => {
      if (!isObject(tool)) return;
      const decls = tool.functionDeclarations ?? tool.function_declarations;
      if (!Array.isArray(decls)) return;
      decls.forEach((decl, d) => {
        if (!isObject(decl)) return;
        const base = `tools[${t}].function_declarations[${d}]`;
        if (decl.parameters !== undefined && decl.parameters !== null) out.push(...findSchemaViolations(decl.parameters, `${base}.parameters`));
        if (decl.response !== undefined && decl.response !== null) out.push(...findSchemaViolations(decl.response, `${base}.response`));
      });
    });
  }
  const gc = request.generationConfig ?? request.generation_config;
  if (isObject(gc)) {
    const rs = gc.responseSchema ?? gc.response_schema;
    if (rs !== undefined && rs !== null) out.push(...findSchemaViolations(rs, 'generation_config.response_schema'));
  }
  return out;
}
