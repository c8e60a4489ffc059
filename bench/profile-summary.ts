// Summarises a .cpuprofile: busy time by area (gateway source, undici, Node's
// HTTP and streams, syscalls, GC) and the functions with the most self time,
// per request when the number of requests is given.
//   node bench/profile-summary.ts <file.cpuprofile> [requests] [top]
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function area(n: ProfileNode): string | null {
  const { url, functionName: f } = n.callFrame;
  if (f === '(idle)') return null;
  if (f === '(garbage collector)') return 'GC';
  const src = /\/src\/([^/]+)\//.exec(url);
  if (src) return `src/${src[1]}`;
  if (url.includes('undici')) return 'undici';
  if (url.startsWith('node:_http') || url.startsWith('node:http')) return 'node http';
  if (url.startsWith('node:net') || url.includes('stream')) return 'node net/streams';
  if (url.startsWith('node:')) return 'node other';
  if (url.includes('node_modules')) return 'other packages';
  if (url.startsWith('wasm')) return 'wasm (llhttp)';
  if (f === 'writev' || f === 'writeUtf8String' || f === 'writeBuffer') return 'socket writes (syscall)';
  return `native ${f || '(anonymous)'}`;
}

function label(n: ProfileNode): string {
  const { url, functionName, lineNumber } = n.callFrame;
  return `${functionName || '(anonymous)'} ${url.replace(/^.*\/(src|node_modules)\//, '$1/')}:${lineNumber + 1}`;
}

export function summarise(profile: CpuProfile, requests = 0, top = 20): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const areas = new Map<string, number>();
  const self = new Map<string, number>();
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const n = byId.get(profile.samples[i]!)!;
    const a = area(n);
    if (!a) continue;
    const dt = profile.timeDeltas[i] ?? 0;
    busy += dt;
    areas.set(a, (areas.get(a) ?? 0) + dt);
    const k = label(n);
    self.set(k, (self.get(k) ?? 0) + dt);
  }
  const per = requests > 0 ? requests : 1;
  const unit = requests > 0 ? 'µs/request' : 'µs';
  const fmt = (us: number) => `${(us / per).toFixed(requests > 0 ? 2 : 0).padStart(9)} ${unit}  ${((100 * us) / busy).toFixed(1).padStart(5)}%`;
  const lines = [`busy ${(busy / 1000).toFixed(0)} ms${requests > 0 ? `, ${(busy / per).toFixed(1)} µs per request` : ''}`, '', 'by area:'];
  for (const [k, v] of [...areas].sort((a, b) => b[1] - a[1])) lines.push(`${fmt(v)}  ${k}`);
  lines.push('', 'most self time:');
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${fmt(v)}  ${k}`);
  return lines.join('\n');
}

if (import.meta.main) {
  const [file, requests, top] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node bench/profile-summary.ts <file.cpuprofile> [requests] [top]');
    process.exit(2);
  }
  console.log(summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, Number(requests ?? 0), Number(top ?? 20)));
}
