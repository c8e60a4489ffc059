// Items for Selector tests: each keeps its place (Seating) in itself, as the pool's entries do,
// and draws on the ring of its `lane` key (one ring per key, as a pool's lanes; change it while out).
import { Selector, leaveRing, type Ring, type Seating, type Strategy } from '../../src/pool/selection.ts';

export interface Item {
  readonly id: string;
  lane: string;
  at: number;
  /** The ring it is a member of (null: none): left when its lane changes, as the pool's Lanes do. */
  ring: Ring<Item> | null;
}

export function item(id: string, lane = ''): Item {
  return { id, lane, at: -1, ring: null };
}

export function items(...ids: string[]): Item[] {
  return ids.map((id) => item(id));
}

export function testSelector(opts: { strategy: Strategy; sessionAffinity: boolean; maxSessions?: number }): Selector<Item> {
  const rings = new Map<string, Ring<Item>>();
  const ringOf = (x: Item): Ring<Item> => {
    let r = rings.get(x.lane);
    if (!r) rings.set(x.lane, (r = { key: x.lane, items: [], size: 0, cursor: 0, at: -1 }));
    return r;
  };
  const seating: Seating<Item> = {
    ringOf,
    atOf: (x) => {
      const old = x.ring;
      // its lane changed (while out of rotation): it leaves the old lane's ring
      if (old !== null && old.key !== x.lane) leaveRing(x, { ringOf: () => old, atOf: (y) => y.at, setAt: seating.setAt });
      return x.at;
    },
    setAt: (x, at) => {
      x.at = at;
      x.ring = at < 0 ? null : ringOf(x);
    },
  };
  return new Selector<Item>({ ...opts, seating });
}
