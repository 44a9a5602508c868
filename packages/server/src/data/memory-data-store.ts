import {
  compareUtf8,
  type BindingRecord,
  type CommitBatch,
  type DataStore,
  type ObjectRecord,
  type StoreMeta,
} from "../kernel/data-store.js";

/**
 * A data store in memory: nothing survives the process. For tests and for benchmarks of game logic
 * (durability mode `memory`).
 */
export class MemoryDataStore implements DataStore {
  readonly kind = "memory";
  private readonly objects = new Map<bigint, ObjectRecord>();
  private readonly bindings = new Map<string, BindingRecord>();
  /** Binding keys in UTF-8 byte order, for `nextBindingName`. */
  private sortedNames: string[] = [];
  private meta: StoreMeta | undefined;
  private closed = false;

  readMeta(): StoreMeta | undefined {
    this.assertOpen();
    return this.meta;
  }

  getObject(id: bigint): ObjectRecord | undefined {
    this.assertOpen();
    return this.objects.get(id);
  }

  getBinding(name: string): BindingRecord | undefined {
    this.assertOpen();
    return this.bindings.get(name);
  }

  nextBindingName(after: string | undefined, prefix: string): string | undefined {
    this.assertOpen();
    const start = after === undefined || compareUtf8(after, prefix) < 0 ? prefix : after;
    let index = this.lowerBound(start);
    if (index < this.sortedNames.length && this.sortedNames[index] === start && after !== undefined && start === after) index++;
    const candidate = this.sortedNames[index];
    return candidate !== undefined && candidate.startsWith(prefix) ? candidate : undefined;
  }

  commit(batch: CommitBatch): Promise<void> {
    this.assertOpen();
    for (const write of batch.objects) {
      if (write.bytes === null) this.objects.delete(write.id);
      else this.objects.set(write.id, { bytes: write.bytes, version: write.version });
    }
    for (const write of batch.bindings) this.applyBinding(write.name, write.id, write.version);
    this.meta = batch.meta;
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private applyBinding(name: string, id: bigint | null, version: number): void {
    const index = this.lowerBound(name);
    const present = this.sortedNames[index] === name;
    if (id === null) {
      if (present) this.sortedNames.splice(index, 1);
      this.bindings.delete(name);
      return;
    }
    if (!present) this.sortedNames.splice(index, 0, name);
    this.bindings.set(name, { id, version });
  }

  /** Index of the first name not less than `name` in byte order. */
  private lowerBound(name: string): number {
    let low = 0;
    let high = this.sortedNames.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareUtf8(this.sortedNames[middle]!, name) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error("MemoryDataStore used after close");
  }
}
