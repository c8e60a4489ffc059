// A 429 learned by one gateway is honoured by every gateway on the same
// store: each lane cooldown the pool learns is published on the shared
// events, and those of other gateways are applied to this pool. The hot path
// stays in memory; the database sees one small event per 429.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from '../log/logger.ts';
import type { Pool } from '../pool/pool.ts';
import type { SharedEvents } from '../store/shared-state.ts';

const TOPIC = 'lane_cooldown';
const Event = z.object({
  from: z.string(),
  lane: z.string().max(300),
  model: z.string().max(300),
  untilMs: z.number().finite(),
  reason: z.string().max(1000),
});

export function shareLaneCooldowns(pool: Pool, events: SharedEvents, logger: Logger): () => void {
  const me = randomUUID();
  const stopPublishing = pool.onLaneCooldown((c) => {
    events.publish(TOPIC, { from: me, ...c }).catch((e: Error) => logger.warn({ lane: c.lane, err: { message: e.message } }, 'could not share a lane cooldown with the other gateways'));
  });
  const stopListening = events.subscribe(TOPIC, (payload) => {
    const parsed = Event.safeParse(payload);
    if (!parsed.success || parsed.data.from === me) return;
    const { from: _from, ...c } = parsed.data;
    pool.coolLane(c);
  });
  return () => {
    stopPublishing();
    stopListening();
  };
}
