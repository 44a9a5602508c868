import { compareUtf8, type BindingRecord, type DataStore, type ObjectRecord } from "./data-store.js";

/** The read side of a store, which an {@link Overlay} lies over. */
export type StoreReads = Pick<DataStore, "getObject" | "getObjectVersion" | "getBinding" | "nextBindingName">;

/**
 * Commits that are validated but not yet in the store, laid over the store's reads: reads see the
 * overlay's version of a key first. The committer keeps one for its own thread; each worker keeps a
 * copy fed with every validated commit, so that its tasks read what was committed, not only what
 * is durable.
 */
export class Overlay {
  readonly objects = new Map<bigint, { bytes: Uint8Array | null; version: number }>();
  readonly bindings = new Map<string, { id: bigint | null; version: number }>();

  constructor(private readonly store: StoreReads) {}

  /** The committed state of object `id` (overlay first, then the store), or undefined if absent. */
  readObject(id: bigint): ObjectRecord | undefined {
    const pending = this.objects.get(id);
    if (pending !== undefined) return pending.bytes === null ? undefined : { bytes: pending.bytes, version: pending.version };
    return this.store.getObject(id);
  }

  /** The version of object `id`'s committed state, or undefined if absent (see {@link readObject}). */
  readObjectVersion(id: bigint): number | undefined {
    const pending = this.objects.get(id);
    if (pending !== undefined) return pending.bytes === null ? undefined : pending.version;
    if (this.store.getObjectVersion !== undefined) return this.store.getObjectVersion(id);
    return this.store.getObject(id)?.version;
  }

  /** The committed binding of key `name`, or undefined. */
  readBinding(name: string): BindingRecord | undefined {
    const pending = this.bindings.get(name);
    if (pending !== undefined) return pending.id === null ? undefined : { id: pending.id, version: pending.version };
    return this.store.getBinding(name);
  }

  /** The committed binding key after `after` with `prefix`, in UTF-8 byte order. */
  nextBindingName(after: string | undefined, prefix: string): string | undefined {
    let fromStore = this.store.nextBindingName(after, prefix);
    while (fromStore !== undefined && this.bindings.get(fromStore)?.id === null) {
      fromStore = this.store.nextBindingName(fromStore, prefix);
    }
    let fromOverlay: string | undefined;
    for (const [name, pending] of this.bindings) {
      if (pending.id === null || !name.startsWith(prefix)) continue;
      if (after !== undefined && compareUtf8(name, after) <= 0) continue;
      if (fromOverlay === undefined || compareUtf8(name, fromOverlay) < 0) fromOverlay = name;
    }
    if (fromStore === undefined) return fromOverlay;
    if (fromOverlay === undefined) return fromStore;
    return compareUtf8(fromStore, fromOverlay) <= 0 ? fromStore : fromOverlay;
  }

  /** Drops the overlay's entry for object `id` if it is still the one written at `version` (now stored). */
  forgetObject(id: bigint, version: number): void {
    if (this.objects.get(id)?.version === version) this.objects.delete(id);
  }

  /** Drops the overlay's entry for binding `name` if it is still the one written at `version`. */
  forgetBinding(name: string, version: number): void {
    if (this.bindings.get(name)?.version === version) this.bindings.delete(name);
  }
}
