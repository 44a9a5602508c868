/**
 * An echo server in a process of its own, for tests that measure the server's memory apart from
 * the clients that attack it. Start it with an IPC channel and `--expose-gc`:
 *
 *   spawn(node, ["--expose-gc", "--import", "tsx", thisFile], { stdio: [..., "ipc"] })
 *
 * It sends `{ ready: { tcpPort, httpPort } }` once listening, answers `{ cmd: "stats" }` with
 * `{ stats: FuzzServerStats }` (after a full garbage collection when `gc: true`), and exits after
 * `{ cmd: "close" }`. Configuration: the defaults, on an in-memory store, except a short
 * `disconnectDelayMs` so that refused connections go quickly, and the worker threads of the test
 * run (SHARDLESS_TEST_WORKERS, which the child inherits).
 */
import { silentLogger, startServer, type SessionCounters } from "shardless";
import EchoApp from "./fixtures/echo-app.ts";
import { withWorkers } from "./test-workers.ts";

/** What the child reports about itself. */
export interface FuzzServerStats {
  readonly counters: SessionCounters;
  readonly sessionCount: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly externalBytes: number;
}

/** Requests the parent may send. */
export type FuzzServerCommand = { readonly cmd: "stats"; readonly gc: boolean } | { readonly cmd: "close" };

if (process.send !== undefined) {
  const send = process.send.bind(process);
  const server = await startServer(withWorkers({ app: EchoApp, durability: "memory", tcpPort: 0, httpPort: 0, host: "127.0.0.1", logger: silentLogger, disconnectDelayMs: 100 }, new URL("./fixtures/echo-app.ts", import.meta.url).href));
  const gc = (globalThis as { gc?: () => void }).gc;
  process.on("message", (command: FuzzServerCommand) => {
    if (command.cmd === "stats") {
      if (command.gc && gc !== undefined) {
        gc();
        gc();
      }
      const memory = process.memoryUsage();
      const stats: FuzzServerStats = {
        counters: { ...server.sessionCounters },
        sessionCount: server.sessionCount,
        rssBytes: memory.rss,
        heapUsedBytes: memory.heapUsed,
        externalBytes: memory.external,
      };
      send({ stats });
    } else {
      void server.close().then(() => process.exit(0));
    }
  });
  // The parent going away ends the server too, so that a failed test leaves nothing running.
  process.on("disconnect", () => void server.close().then(() => process.exit(0)));
  send({ ready: { tcpPort: server.tcpPort, httpPort: server.httpPort } });
}
