// A second process working on the same data directory as a test (the CLI next
// to a running gateway). Usage: node store-child.ts <command> <dataDir> ...
//   increment <dataDir> <id> <times>     read-modify-write `counter` + 1, <times> times
//   write-loop <dataDir> <ids,...>       rewrites those accounts forever (to be killed)
//   set <dataDir> <id> <field> <json>    one update of one field
//   refresh-lock <dataDir> <id> <marker> <times> <holdMs>
//                                        withRefreshLock; inside, <marker> must not exist
import { open, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createFileStore } from '../../src/store/file-store.ts';
import type { Logger } from '../../src/log/logger.ts';

const [command, dataDir, ...rest] = process.argv.slice(2);
if (!command || !dataDir) throw new Error('usage: store-child.ts <command> <dataDir> ...');
// A no-op logger without loading pino: these children are started hundreds of times.
const noop = () => {};
const logger = { debug: noop, info: noop, warn: noop, error: noop } as unknown as Logger;
const store = await createFileStore({ dataDir, logger });

function counterOf(a: Record<string, unknown>): number {
  return typeof a.counter === 'number' ? a.counter : 0;
}

if (command === 'increment') {
  const [id, times] = rest;
  for (let i = 0; i < Number(times); i++) {
    const r = await store.update(id!, (a) => ({ ...a, counter: counterOf(a) + 1 }));
    if (!r) throw new Error(`account ${id} not found`);
  }
  console.log('done');
} else if (command === 'write-loop') {
  const ids = rest[0]!.split(',');
  console.log('ready');
  for (let i = 0; ; i++) {
    const id = ids[i % ids.length]!;
    // Vary the size so that a torn write would show as broken JSON.
    const padding = 'x'.repeat(Math.floor(Math.random() * 4000));
    await store.update(id, (a) => ({ ...a, counter: counterOf(a) + 1, padding }));
  }
} else if (command === 'set') {
  const [id, field, json] = rest;
  const r = await store.update(id!, (a) => ({ ...a, [field!]: JSON.parse(json!) }));
  if (!r) throw new Error(`account ${id} not found`);
  console.log('done');
} else if (command === 'refresh-lock') {
  const [id, marker, times, holdMs] = rest;
  let violations = 0;
  for (let i = 0; i < Number(times); i++) {
    await store.withRefreshLock(id!, async () => {
      // 'wx' fails if the other holder is inside at the same time.
      const fh = await open(marker!, 'wx').catch(() => null);
      if (!fh) {
        violations++;
        return;
      }
      await fh.close();
      await sleep(Number(holdMs));
      await unlink(marker!);
    });
  }
  console.log(`violations ${violations}`);
} else {
  throw new Error(`unknown command ${command}`);
}
await store.close();
