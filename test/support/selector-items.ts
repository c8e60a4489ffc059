// Items for Selector tests: each keeps its place (Seating) in itself, as the pool's entries do,
// and draws on the ring of its `lane` key (one ring per key, as a pool's lanes; change it while out).
import { Selector, type Ring, type Seating, type Strategy } from '../../src/pool/selection.ts';

export interface Item {
  readonly id: string;
  lane: string;
  at: number;
}

export function item(id: string, lane = ''): Item {
  return { id, lane, at: -1 };
}

export function items(...ids: string[]): Item[] {
  return ids.map((id) => item(id));
}

export function testSelector(opts: { strategy: Strategy; sessionAffinity: boolean; maxSessions?: number }): Selector<Item> {
  const rings = new Map<string, Ring<Item>>();
  const ringOf = (x: Item): Ring<Item> => {
    let r = rings.get(x.lane);
    if (!r) rings.set(x.lane, (r = { key: x.lane, items: [], cursor: 0, at: -1 }));
    return r;
  };
  const seating: Seating<Item> = {
    ringOf,
    atOf: (x) => x.at,
    setAt: (x, at) => {
      x.at = at;
    },
  };
  return new Selector<Item>({ ...opts, seating });
}
