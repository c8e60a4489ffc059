// `node bench/heap-summary.ts <file.heapsnapshot> [top]`: what a V8 heap snapshot
// holds, as self sizes summed by node type and by (type, name), largest first.
// For reading where a process's heap goes without opening DevTools.
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

const [path, topArg] = process.argv.slice(2);
if (!path) {
  console.error('usage: node bench/heap-summary.ts <file.heapsnapshot> [top]');
  process.exit(2);
}
const top = Number(topArg ?? 40);
const snap = JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
const fields = snap.snapshot.meta.node_fields;
const types = snap.snapshot.meta.node_types[0];
const width = fields.length;
const TYPE = fields.indexOf('type');
const NAME = fields.indexOf('name');
const SIZE = fields.indexOf('self_size');

const byType = new Map<string, { size: number; count: number }>();
const byName = new Map<string, { size: number; count: number }>();
let total = 0;
for (let i = 0; i < snap.nodes.length; i += width) {
  const type = types[snap.nodes[i + TYPE]!]!;
  const size = snap.nodes[i + SIZE]!;
  // Names of strings are their contents: group them by kind, not by text.
  const name = type === 'string' || type === 'concatenated string' || type === 'sliced string' ? '' : snap.strings[snap.nodes[i + NAME]!]!.slice(0, 60);
  total += size;
  for (const [map, key] of [[byType, type], [byName, `${type}: ${name}`]] as const) {
    const e = map.get(key) ?? { size: 0, count: 0 };
    e.size += size;
    e.count++;
    map.set(key, e);
  }
}

const mb = (n: number) => (n / 1024 / 1024).toFixed(2).padStart(7);
const print = (title: string, map: Map<string, { size: number; count: number }>, n: number) => {
  console.log(`\n${title}`);
  for (const [k, v] of [...map].sort((a, b) => b[1].size - a[1].size).slice(0, n)) console.log(`${mb(v.size)} MB ${String(v.count).padStart(8)}  ${k}`);
};
console.log(`${path}: ${mb(total)} MB in ${snap.nodes.length / width} objects`);
print('by type', byType, 20);
print(`by type and name (top ${top})`, byName, top);
