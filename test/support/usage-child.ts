// A process counting usage as the gateway does, to be killed with SIGKILL.
// Usage: node usage-child.ts <dataDir> <count> <everyMs> <debounceMs>
//   adds <count> records (1 request, 10 tokens in, 5 out), one per <everyMs>,
//   printing the total after each, then prints "added" and idles until killed.
import { setTimeout as sleep } from 'node:timers/promises';
import { FileUsageStore } from '../../src/pool/usage-file.ts';

const [dataDir, count, everyMs, debounceMs] = process.argv.slice(2);
const usage = new FileUsageStore(dataDir!, { debounceMs: Number(debounceMs) });
await usage.load();
for (let i = 1; i <= Number(count); i++) {
  usage.add('2026-12-01', `acct-${i % 7}`, i % 2 ? 'gemini-2.5-flash' : 'gemini-2.5-pro', { requests: 1, tokens_in: 10, tokens_out: 5 });
  process.stdout.write(`${i}\n`);
  if (Number(everyMs) > 0) await sleep(Number(everyMs));
}
process.stdout.write('added\n');
setInterval(() => {}, 60_000);
