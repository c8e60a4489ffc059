// A memory store whose change notifications can be held back, like a file
// watcher that has not fired yet, or a change made by another process that
// this one has not seen.
import { MemoryAccountStore } from '../../src/store/memory-store.ts';
import type { AccountChange } from '../../src/store/store.ts';

export class LaggyStore extends MemoryAccountStore {
  private held: AccountChange[] | null = null;
  private listeners = new Set<(c: AccountChange) => void>();

  constructor(...args: ConstructorParameters<typeof MemoryAccountStore>) {
    super(...args);
    super.watch((c) => {
      if (this.held) this.held.push(c);
      else for (const l of [...this.listeners]) l(c);
    });
  }

  override watch(onChange: (change: AccountChange) => void): () => void {
    this.listeners.add(onChange);
    return () => {
      this.listeners.delete(onChange);
    };
  }

  /** Hold notifications back until deliver(). */
  holdNotifications(): void {
    this.held ??= [];
  }

  /** Deliver what was held (in order), or only the first `n`, and stop holding when all are out. */
  deliver(n?: number): void {
    const held = this.held ?? [];
    const out = held.splice(0, n ?? held.length);
    if (held.length === 0) this.held = null;
    for (const c of out) for (const l of [...this.listeners]) l(c);
  }

  get heldCount(): number {
    return this.held?.length ?? 0;
  }
}
