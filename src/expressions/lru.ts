/**
 * A small least-recently-used map. A Map iterates in insertion order, so
 * re-inserting on every hit keeps the oldest entry first.
 */
export class Lru<K, V> {
  private readonly map = new Map<K, V>();

  constructor(
    private readonly capacity: number,
    private readonly onEvict: (value: V) => void = () => {},
  ) {}

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, value);
    return value;
  }

  set(key: K, value: V): void {
    const old = this.map.get(key);
    if (old !== undefined) {
      this.map.delete(key);
      if (old !== value) this.onEvict(old);
    }
    this.map.set(key, value);
    while (this.map.size > this.capacity) {
      const first = this.map.entries().next();
      if (first.done === true) break;
      this.map.delete(first.value[0]);
      this.onEvict(first.value[1]);
    }
  }

  /** Forgets every entry without calling `onEvict` (their owner is gone). */
  clear(): void {
    this.map.clear();
  }
}
