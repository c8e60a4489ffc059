// Output items the Responses door handed out, kept briefly in memory by id so
// that an `item_reference` to one of them (the AI SDK sends those for earlier
// assistant text and reasoning while `store` is left on) can be served. This
// is a bounded cache, not conversation state: an id it no longer holds (or one
// from another gateway) gets a 400 that says to send the item itself.

export interface ItemCache {
  remember(item: { id?: string | null }): void;
  recall(id: string): Record<string, unknown> | undefined;
  readonly size: number;
}

export function createItemCache(options: { maxEntries?: number; maxBytes?: number } = {}): ItemCache {
  const maxEntries = Math.max(1, options.maxEntries ?? 2000);
  const maxBytes = Math.max(1024, options.maxBytes ?? 16 * 1024 * 1024);
  const map = new Map<string, { text: string; bytes: number }>();
  let bytes = 0;
  const drop = (id: string) => {
    const e = map.get(id);
    if (!e) return;
    bytes -= e.bytes;
    map.delete(id);
  };
  return {
    remember(item) {
      const id = item.id;
      if (typeof id !== 'string' || !id) return;
      const text = JSON.stringify(item);
      const size = text.length * 2;
      if (size > maxBytes / 8) return; // one huge item must not push everything else out
      drop(id);
      map.set(id, { text, bytes: size });
      bytes += size;
      while (map.size > maxEntries || bytes > maxBytes) drop(map.keys().next().value as string);
    },
    recall(id) {
      const e = map.get(id);
      if (!e) return undefined;
      map.delete(id);
      map.set(id, e);
      return JSON.parse(e.text) as Record<string, unknown>;
    },
    get size() {
      return map.size;
    },
  };
}
