// A DataStore for the simulation: a MemoryDataStore behind a simulated disk whose commits take a
// seeded number of loop iterations and may fail, plus deliberate defects for checking the checkers.
import { MemoryDataStore } from "../../src/data/memory-data-store.ts";
import type { BindingRecord, CommitBatch, DataStore, ObjectRecord, StoreMeta } from "../../src/kernel/data-store.ts";
import type { Dice } from "./sim-loop.ts";

/**
 * A deliberate defect of the store, for tests that show the checkers catch one:
 * - `lose-write`: every tenth commit that writes two objects or more drops its last object write and
 *   still reports success;
 * - `apply-failed-batch`: the failing commit applies its writes before it reports failure.
 */
export type StoreDefect = "lose-write" | "apply-failed-batch";

/** Options of {@link SimDataStore}. */
export interface SimStoreOptions {
  /** Most loop iterations a commit takes before its completion can be delivered. */
  readonly maxLatencySteps: number;
  /**
   * Chance that a commit completes at once, in a promise reaction rather than an I/O callback, as
   * MemoryDataStore's does (durability mode `memory`).
   */
  readonly instantChance: number;
  /** The commit (1-based) that fails; undefined for none. */
  readonly failAtCommit: number | undefined;
  readonly defect?: StoreDefect | undefined;
  /** Told of every violation of the SPI's contract seen from the store's side. */
  readonly violation: (message: string) => void;
  /** Called after a batch has been applied, before its commit resolves. */
  readonly onApplied: (store: SimDataStore) => void;
}

interface PendingCommit {
  readonly index: number;
  readonly batch: CommitBatch;
  stepsLeft: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * A simulated disk. Reads see only batches whose commit has completed. A commit completes as an
 * I/O callback in a poll phase at least `stepsLeft` iterations after it was issued, or at once.
 */
export class SimDataStore implements DataStore {
  readonly kind = "simulated";
  /** Commits issued. */
  commits = 0;
  /** Commits applied. */
  applied = 0;
  private readonly inner = new MemoryDataStore();
  private readonly inFlight: PendingCommit[] = [];
  private lastMeta: StoreMeta | undefined;
  private multiWriteCommits = 0;

  constructor(
    private readonly dice: Dice,
    private readonly options: SimStoreOptions,
  ) {}

  readMeta(): StoreMeta | undefined {
    return this.inner.readMeta();
  }

  getObject(id: bigint): ObjectRecord | undefined {
    return this.inner.getObject(id);
  }

  getBinding(name: string): BindingRecord | undefined {
    return this.inner.getBinding(name);
  }

  nextBindingName(after: string | undefined, prefix: string): string | undefined {
    return this.inner.nextBindingName(after, prefix);
  }

  commit(batch: CommitBatch): Promise<void> {
    // The committer promises one store commit at a time; group commit depends on it.
    if (this.inFlight.length > 0) this.options.violation(`store commit ${this.commits + 1} issued while commit ${this.inFlight[0]!.index} is in flight`);
    this.checkBatch(batch);
    const index = ++this.commits;
    const instant = this.dice.chance(this.options.instantChance);
    return new Promise((resolve, reject) => {
      const pending = { index, batch, stepsLeft: this.dice.int(0, this.options.maxLatencySteps), resolve, reject };
      if (instant) this.complete(pending);
      else this.inFlight.push(pending);
    });
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** True while a commit is in flight. */
  get busy(): boolean {
    return this.inFlight.length > 0;
  }

  /**
   * One loop iteration has passed: returns the completions now ready to deliver, as I/O callbacks.
   * The simulation calls this once per poll phase.
   */
  poll(): (() => void)[] {
    const ready: (() => void)[] = [];
    for (const pending of [...this.inFlight]) {
      if (pending.stepsLeft-- > 0) continue;
      this.inFlight.splice(this.inFlight.indexOf(pending), 1);
      ready.push(() => this.complete(pending));
    }
    return ready;
  }

  private complete(pending: PendingCommit): void {
    if (pending.index === this.options.failAtCommit) {
      if (this.options.defect === "apply-failed-batch") void this.inner.commit(pending.batch);
      pending.reject(new Error(`simulated write failure of store commit ${pending.index}`));
      return;
    }
    let batch = pending.batch;
    if (this.options.defect === "lose-write" && batch.objects.length > 1 && ++this.multiWriteCommits % 10 === 0) {
      batch = { ...batch, objects: batch.objects.slice(0, -1) };
    }
    void this.inner.commit(batch);
    this.applied++;
    this.options.onApplied(this);
    pending.resolve();
  }

  /** Checks what the SPI promises about a batch: sequence numbers and counters only move forward. */
  private checkBatch(batch: CommitBatch): void {
    const previous = this.lastMeta;
    const { meta } = batch;
    if (previous !== undefined) {
      if (meta.lastCommitSeq < previous.lastCommitSeq) this.options.violation(`lastCommitSeq went back from ${previous.lastCommitSeq} to ${meta.lastCommitSeq}`);
      if (meta.nextObjectId < previous.nextObjectId) this.options.violation(`nextObjectId went back from ${previous.nextObjectId} to ${meta.nextObjectId}`);
      if (meta.appTimeMs < previous.appTimeMs) this.options.violation(`appTimeMs went back from ${previous.appTimeMs} to ${meta.appTimeMs}`);
    }
    const floor = previous?.lastCommitSeq ?? 0;
    for (const write of [...batch.objects, ...batch.bindings]) {
      if (write.version <= floor || write.version > meta.lastCommitSeq) {
        this.options.violation(`a write of version ${write.version} in a batch covering commits (${floor}, ${meta.lastCommitSeq}]`);
      }
    }
    this.lastMeta = meta;
  }
}
