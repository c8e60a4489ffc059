import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startChild } from './proc.ts';
import { writeAccounts } from './accounts.ts';
import { cannon } from './load.ts';
const N = Number(process.argv[2] ?? 10000);
const root = await mkdtemp(join(tmpdir(), 'gp-probe-'));
const up = await startChild('/work/main/bench/upstream.ts', {});
await writeAccounts(join(root, 'd'), N);
const port = 18000 + Math.floor(Math.random() * 1000);
const gw = await startChild('/work/main/bench/gateway-child.ts', {
  execArgv: ['--expose-gc', '--heapsnapshot-signal=SIGUSR2', ...(process.env.EXTRA ? process.env.EXTRA.split(' ') : [])],
  logFile: join(root, 'gw.log'),
  env: { ...process.env, GRANTPOOL_DATA_DIR: join(root, 'd'), GRANTPOOL_PORT: String(port), GRANTPOOL_AUTH_MODE: 'off', GRANTPOOL_GEMINI_BASE_URL: up.ready.url as string, GRANTPOOL_PUBLIC_URL: 'http://localhost:8045' },
});
const mb = (m: any) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Math.round((v as number) / 1048576)]));
console.log('ready', JSON.stringify(mb(gw.ready.mem)), 'startGatewayMs', gw.ready.startGatewayMs);
console.log('after gc', JSON.stringify(mb(((await gw.ask('gc-mem')) as any).mem)));
const t = { name: 'g', url: `http://127.0.0.1:${port}`, path: '/v1beta/models/gemini-2.5-flash:generateContent', body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Hello' }] }] }), headers: {} };
if (process.env.LOAD !== '0') {
  for (let i = 0; i < 3; i++) { const r = await cannon(t, { connections: 64, amount: 20000 }); console.log('rps', Math.round(r.rps), r.failed); }
  console.log('after load', JSON.stringify(mb(((await gw.ask('stats')) as any).mem)));
  { const g: any = await gw.ask('gc-mem'); console.log('after load+gc', JSON.stringify(mb(g.mem))); for (const [k, v] of Object.entries(g.spaces) as any) console.log(k, Math.round(v.size/1048576), Math.round(v.used/1048576)); }
}
if (process.env.IDLE) for (let i = 0; i < Number(process.env.IDLE); i++) { const r: any = await gw.ask('idle', { ms: 2000 }); console.log('idle 2s cpu ms', Math.round(r.cpuMs), 'active', Math.round(r.activeMs)); }
if (process.env.SNAP) { process.kill(gw.proc.pid!, 'SIGUSR2'); await new Promise((r) => setTimeout(r, 8000)); }
await gw.stop(); await up.stop();
console.log(root);
