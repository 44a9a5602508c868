/**
 * Records recently read from or written to a store, kept in memory up to a byte budget, oldest
 * first out. The store's writer keeps it exact: every commit replaces or drops the records it wrote,
 * so an entry is always what the store holds. Entries are plain data, never handed out to be changed.
 */
export class RecentRecords<K, V> {
  private readonly entries = new Map<K, V>();
  private bytes = 0;

  /**
   * @param maxBytes the budget: entries are dropped, oldest first, to stay within it (0 keeps none).
   * @param sizeOf the bytes an entry accounts for.
   */
  constructor(
    private readonly maxBytes: number,
    private readonly sizeOf: (value: V) => number,
  ) {}

  get(key: K): V | undefined {
    return this.entries.get(key);
  }

  /** Keeps `value` for `key`, replacing what was there; a value over a sixteenth of the budget is not kept. */
  set(key: K, value: V): void {
    this.delete(key);
    const size = this.sizeOf(value);
    if (size > this.maxBytes / 16) return;
    this.entries.set(key, value);
    this.bytes += size;
    for (const [oldest, old] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= this.sizeOf(old);
    }
  }

  delete(key: K): void {
    const old = this.entries.get(key);
    if (old === undefined) return;
    this.entries.delete(key);
    this.bytes -= this.sizeOf(old);
  }

  /** Entries kept now. */
  get size(): number {
    return this.entries.size;
  }
}
