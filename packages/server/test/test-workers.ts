// How many worker threads the servers that tests start run their tasks on: SHARDLESS_TEST_WORKERS
// (0 by default), so the same suite checks the engine with tasks on the main thread and on workers
// (`npm run test:workers`). Only test code reads it; the server takes `workers` as an option.
import { fileURLToPath } from "node:url";
import type { StartServerOptions } from "shardless";

/** The worker threads of this test run: SHARDLESS_TEST_WORKERS, 0 when unset. */
export const TEST_WORKERS = parseWorkers(process.env.SHARDLESS_TEST_WORKERS);

/** Imported by each worker before the test file: it makes `node:test` a module of no-ops. */
const WORKER_PRELOAD = fileURLToPath(new URL("./worker-preload.ts", import.meta.url));

/**
 * `options` with this run's worker threads ({@link TEST_WORKERS}). Each worker imports `appModule`
 * to learn the application's managed classes: a test file passes its own `import.meta.url`, and
 * imports of `node:test` in it do nothing there, so a worker defines the file's classes and runs
 * none of its tests. Options that set `workers` themselves keep it; with 0 workers, `options` is
 * returned as it is.
 */
export function withWorkers<T extends StartServerOptions>(options: T, appModule: string): T {
  if (TEST_WORKERS === 0 || options.workers !== undefined) return options;
  return { ...options, workers: TEST_WORKERS, appModule, workerPreload: WORKER_PRELOAD };
}

function parseWorkers(text: string | undefined): number {
  if (text === undefined || text === "") return 0;
  const workers = Number(text);
  if (!Number.isInteger(workers) || workers < 0) throw new Error(`SHARDLESS_TEST_WORKERS must be a whole number ≥ 0, not ${JSON.stringify(text)}`);
  return workers;
}
