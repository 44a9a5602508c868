// A kernel below the server, for tests (and benchmarks) of transactions themselves. Apart from
// helpers.ts so that a benchmark can use it without loading the test runner.
import assert from "node:assert/strict";
import { ManualClock, silentLogger, type Logger } from "shardless";
import { Kernel } from "../src/kernel/kernel.ts";
import { installTaskServices } from "../src/tasks/task-service.ts";
import type { Clock, CommitBatch, DataStore, Random } from "shardless";
import { MemoryDataStore, SeededRandom } from "shardless";

/**
 * A memory store that counts its commits and, while `held`, keeps each commit waiting until the
 * test lets it through with {@link release}: a slow disk on demand.
 */
export class ControlledStore extends MemoryDataStore {
  commits = 0;
  held = false;
  /** Commits waiting to be let through, oldest first. */
  readonly waiting: (() => void)[] = [];

  override commit(batch: CommitBatch): Promise<void> {
    this.commits++;
    if (!this.held) return super.commit(batch);
    return new Promise((resolve) => this.waiting.push(() => resolve(super.commit(batch))));
  }

  /** Lets the oldest waiting commit through. */
  release(): void {
    const next = this.waiting.shift();
    assert.ok(next !== undefined, "no commit is waiting");
    next();
  }
}

/** Options of {@link bareKernel}. */
export type BareKernelOptions = { store?: DataStore; clock?: Clock; random?: Random; txnTimeoutMs?: number; maxTaskAttempts?: number; logger?: Logger; onFatal?: (error: unknown) => void; objectCacheEntries?: number };

/** A kernel with its task service, below the server; the caller closes it. */
export function bareKernel(options: BareKernelOptions = {}) {
  const logger = options.logger ?? silentLogger;
  const kernel = new Kernel({
    store: options.store ?? new MemoryDataStore(),
    clock: options.clock ?? new ManualClock(),
    random: options.random ?? new SeededRandom(1),
    logger,
    txnTimeoutMs: options.txnTimeoutMs ?? 100,
    maxTaskAttempts: options.maxTaskAttempts ?? 10,
    retryBackoffMaxMs: 0.001,
    appTimeCheckpointMs: 3_600_000,
    onFatal: options.onFatal ?? (() => undefined),
    objectCacheEntries: options.objectCacheEntries,
  });
  const { tasks } = installTaskServices(kernel, logger, () => ({
    createChannel: () => assert.fail("no channels in a bare kernel"),
    getChannel: () => assert.fail("no channels in a bare kernel"),
  }));
  return { kernel, tasks };
}

