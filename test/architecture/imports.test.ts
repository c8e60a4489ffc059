// The folders of src/ form a one-way graph (docs/architecture.md): a module
// may import its own folder and any folder on a lower layer, nothing on its
// own layer or above. A new folder must be given a layer here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';

const LAYERS: string[][] = [
  ['cli'],
  ['app'],
  ['api', 'dashboard'],
  ['proxy'],
  ['projects'],
  ['pool'],
  ['risc'],
  ['oauth'],
  ['store', 'config', 'http'],
  ['fsx', 'log'],
  ['util'],
];
const layerOf = new Map(LAYERS.flatMap((folders, i) => folders.map((f) => [f, i] as const)));

function modules(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return modules(p);
    return /\.(ts|js)$/.test(name) && !name.endsWith('.d.ts') ? [p] : [];
  });
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

/** Every import in src/ that runs against the layers, as "from -> to" lines. */
export function violations(SRC: string): string[] {
  const out: string[] = [];
  for (const file of modules(SRC)) {
    const folder = relative(SRC, file).split(sep)[0]!;
    const from = layerOf.get(folder);
    if (from === undefined) {
      out.push(`${relative(SRC, file)}: folder src/${folder}/ has no layer (add it to test/architecture/imports.test.ts and docs/architecture.md)`);
      continue;
    }
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2]!;
      const target = relative(SRC, resolve(dirname(file), spec));
      if (target.startsWith('..')) continue; // outside src/ (package.json and the like)
      const to = target.split(sep)[0]!;
      if (to === folder) continue;
      const layer = layerOf.get(to);
      if (layer === undefined || layer <= from) out.push(`src/${relative(SRC, file)} imports src/${target} (${folder} may not import ${to})`);
    }
  }
  return out;
}

test('imports in src/ run one way: cli -> app -> api/dashboard -> proxy -> projects -> pool -> risc -> oauth -> store/config/http -> fsx/log -> util', () => {
  assert.deepEqual(violations(resolve(import.meta.dirname, '../../src')), []);
});

test('the check reports an upward import, a sideways import and a folder without a layer', () => {
  const root = mkdtempSync(join(tmpdir(), 'gp-layers-'));
  try {
    const put = (path: string, text: string) => {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    };
    put('pool/pool.ts', "import { a } from '../store/store.ts';\nimport { b } from './types.ts';\n");
    put('store/store.ts', "import type { Pool } from '../pool/pool.ts';\nexport const a = 1;\n");
    put('api/routes.ts', "const d = await import('../dashboard/routes.ts');\n");
    put('dashboard/routes.ts', 'export {};\n');
    put('misc/x.ts', 'export {};\n');
    const found = violations(root).sort();
    assert.equal(found.length, 3, found.join('\n'));
    assert.match(found[0]!, /^misc\/x.ts: folder src\/misc\/ has no layer/);
    assert.match(found[1]!, /src\/api\/routes.ts imports src\/dashboard\/routes.ts \(api may not import dashboard\)/);
    assert.match(found[2]!, /src\/store\/store.ts imports src\/pool\/pool.ts \(store may not import pool\)/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
