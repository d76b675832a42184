/**
 * A per-container cache of reads by key for a fixed time (`ms`): what a Lambda container (or the
 * local runtime's process) read within `ms` is answered again without a read. A failed read is
 * not remembered; `forget` drops a key (its writer changed it in this container) or every key.
 * What another container changed is seen after at most `ms`: each user says what that delay
 * means for it (routing-cache.ts, endpoints-cache.ts).
 */
export function containerCache(ms: number) {
  const entries = new Map<string, { at: number; value: Promise<unknown> }>();
  return {
    get<T>(key: string, load: () => Promise<T>): Promise<T> {
      const now = Date.now();
      const hit = entries.get(key);
      if (hit && now - hit.at < ms && now >= hit.at) return hit.value as Promise<T>;
      const value = load();
      const entry = { at: now, value };
      entries.set(key, entry);
      value.catch(() => {
        if (entries.get(key) === entry) entries.delete(key);
      });
      return value;
    },
    forget(key?: string): void {
      if (key === undefined) entries.clear();
      else entries.delete(key);
    },
  };
}
