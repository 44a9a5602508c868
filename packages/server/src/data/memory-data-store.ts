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
  /**
   * Binding keys in UTF-8 byte order, for `nextBindingName`; rebuilt when a scan follows a change
   * of the set of names (scans are rare next to writes, so writes stay O(1)).
   */
  private sortedNames: string[] | undefined = [];
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
    const names = (this.sortedNames ??= [...this.bindings.keys()].sort(compareUtf8));
    const start = after === undefined || compareUtf8(after, prefix) < 0 ? prefix : after;
    let index = lowerBound(names, start);
    if (start === after && names[index] === after) index++;
    const candidate = names[index];
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

  /** Everything the store holds, for a copy of it (a worker thread's). */
  snapshot(): { objects: [bigint, ObjectRecord][]; bindings: [string, BindingRecord][]; meta: StoreMeta | undefined } {
    this.assertOpen();
    return { objects: [...this.objects], bindings: [...this.bindings], meta: this.meta };
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private applyBinding(name: string, id: bigint | null, version: number): void {
    if (id === null) {
      if (this.bindings.delete(name)) this.sortedNames = undefined;
      return;
    }
    if (!this.bindings.has(name)) this.sortedNames = undefined;
    this.bindings.set(name, { id, version });
  }

  private assertOpen(): void {
    if (this.closed) throw new Error("MemoryDataStore used after close");
  }
}

/** Index of the first of the sorted `names` not less than `name` in UTF-8 byte order. */
function lowerBound(names: readonly string[], name: string): number {
  let low = 0;
  let high = names.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareUtf8(names[middle]!, name) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}
