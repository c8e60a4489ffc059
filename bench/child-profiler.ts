// CPU profile of a benchmark child over a window chosen by bench/run.ts
// (messages profile-start {intervalUs} / profile-stop {path}); used by the
// gateway child and the bare proxy (b) so their profiles compare like for like.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

let session: Session | null = null;

export async function startProfile(intervalUs: number): Promise<void> {
  session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
  await session.post('Profiler.start');
}

export async function stopProfile(path: string): Promise<void> {
  const s = session;
  session = null;
  if (!s) return;
  const { profile } = await s.post('Profiler.stop');
  writeFileSync(path, JSON.stringify(profile));
  s.disconnect();
}
