// Tasks on worker threads, end to end: sessions, channels, timers and task logs through real
// sockets and a real LMDB store; object ids from per-worker blocks; conflicting tasks that finish
// on the main thread; and failures that reach the caller clearly.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { join } from "node:path";
import { LmdbDataStore } from "../src/data/lmdb-data-store.ts";
import type { CommitBatch } from "../src/kernel/data-store.ts";
import { ConfigError, ResourceUnavailableError, WorkerLostError, startServer, silentLogger, type Logger, type Server } from "shardless";
import WorkerApp, { Balances, Fail, KillWorker, MakeNotes, Move, ReturnFunction, type Account, type Counter } from "./fixtures/worker-app.ts";
import { CapturingLogger, eventually, failure, tempDir } from "./helpers.ts";
import { RawClient } from "./raw-client.ts";

const APP_MODULE = fileURLToPath(new URL("./fixtures/worker-app.ts", import.meta.url));

function start(options: { dataDir?: string; logger?: Logger; workers?: number; tcpPort?: number | null; httpPort?: number | null } = {}): Promise<Server> {
  return startServer({
    app: WorkerApp,
    appModule: APP_MODULE,
    workers: options.workers ?? 2,
    durability: options.dataDir === undefined ? "memory" : "sync",
    dataDir: options.dataDir,
    tcpPort: options.tcpPort === undefined ? null : options.tcpPort,
    httpPort: options.httpPort === undefined ? null : options.httpPort,
    host: "127.0.0.1",
    logger: options.logger ?? silentLogger,
  });
}

describe("tasks on worker threads", () => {
  it("serves sessions, channels, timers and task logs on workers, over LMDB", async (t) => {
    const dataDir = tempDir();
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    const logger = new CapturingLogger();
    const server = await start({ dataDir, logger, tcpPort: 0 });
    t.after(() => server.close());
    const clients = await Promise.all(["ann", "bob", "cy"].map((name) => RawClient.login(server.tcpPort!, name)));
    for (const client of clients) assert.equal((await client.next()).op, "CHANNEL_JOIN");
    // Each session's messages run in order, one at a time, whichever worker runs them.
    const count = 60;
    for (const [index, client] of clients.entries()) for (let n = 0; n < count; n++) client.say(`${index}:${n}`);
    for (const [index, client] of clients.entries()) {
      for (let n = 0; n < count; n++) assert.equal(await client.nextText(), `${index}:${n}`);
    }
    clients[0]!.say("say:hello");
    for (const client of clients) {
      const message = await client.next();
      assert.equal(message.op, "CHANNEL_MESSAGE");
      assert.equal(new TextDecoder().decode((message as { message: Uint8Array }).message), "say:hello");
    }
    // The periodic task initialize scheduled runs on the workers too, and its runs commit.
    await eventually("ticks", () => server.run("ticks", (ctx) => ctx.data.getBinding<Counter>("ticks").ticks), (ticks) => ticks >= 5);
    const ids = (await server.runTask(new MakeNotes("note.", 3))) as string[];
    assert.equal(ids.length, 3);
    const line = logger.records.find((record) => record.message === "notes made");
    assert.ok(line !== undefined, "the task's log line is written once it commits");
    assert.equal(line.fields?.count, 3);
    assert.equal(typeof line.fields?.txn, "number");
    assert.equal(server.taskCounters.failed, 0);
    for (const client of clients) client.close();
  });

  it("runs a session's messages on the writes of the ones before them, and again when one of those fails", async (t) => {
    const server = await start({ tcpPort: 0, httpPort: 0 });
    t.after(() => server.close());
    const clients = await Promise.all(["ann", "bob", "cy"].map((name) => RawClient.login(server.tcpPort!, name)));
    for (const client of clients) assert.equal((await client.next()).op, "CHANNEL_JOIN");
    const count = 300;
    const shared = count / 10;
    // Each message writes its player; one in ten also the shared account 0, which transfers
    // between accounts 0 and 1 write meanwhile: some of those conflict, and the messages chained
    // on them run again.
    for (const client of clients) for (let n = 0; n < count; n++) client.say(n % 10 === 5 ? "count+shared" : "count");
    const moves = (async () => {
      for (let n = 0; n < 200; n++) await server.runTask(n % 2 === 0 ? new Move(0, 1) : new Move(1, 0));
    })();
    for (const client of clients) {
      for (let n = 1; n <= count; n++) assert.equal(await client.nextText(), String(n));
    }
    await moves;
    const total = await server.run("total", (ctx) => [0, 1, 2, 3].reduce((sum, n) => sum + ctx.data.getBinding<Account>(`account.${n}`).balance, 0));
    assert.equal(total, 400 + clients.length * shared);
    const { chained, conflicts, failed } = server.taskCounters;
    assert.equal(failed, 0);
    assert.ok(chained > 0, "some messages ran chained on the one before them");
    // Voided links are counted apart from conflicts in the metrics.
    const metrics = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
    assert.match(metrics, /shardless_task_aborts_total\{[^}]*reason="chain"[^}]*\} [1-9]/);
    t.diagnostic(`${clients.length * count} messages: ${chained} attempts ran chained, ${conflicts} conflicts (broken links included)`);
    for (const client of clients) client.close();
  });

  it("hands out object ids from per-worker blocks: never twice, not even after a restart", async (t) => {
    const dataDir = tempDir();
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    let server = await start({ dataDir });
    // More new objects than a worker's block of ids holds, on both workers at once.
    const batches = await Promise.all([0, 1, 2, 3].map((n) => server.runTask(new MakeNotes(`n${n}.`, 2500)) as Promise<string[]>));
    await server.close();
    server = await start({ dataDir });
    t.after(() => server.close());
    batches.push((await server.runTask(new MakeNotes("after.", 100))) as string[]);
    const all = batches.flat();
    assert.equal(new Set(all).size, all.length, "every id is new");
    assert.equal(all.length, 4 * 2500 + 100);
  });

  it("finishes on the main thread a task that conflicted on a worker: every transfer commits, money is conserved", async (t) => {
    const server = await start();
    t.after(() => server.close());
    const before = server.taskCounters.committed;
    const moves = 2000;
    let next = 0;
    // 64 at a time over 4 accounts: most attempts on the workers meet a concurrent commit.
    const lanes = Array.from({ length: 64 }, async () => {
      while (next < moves) {
        const n = next++;
        await server.runTask(new Move(n % 4, (n * 7 + 1) % 4 === n % 4 ? (n + 1) % 4 : (n * 7 + 1) % 4));
      }
    });
    await Promise.all(lanes);
    const total = await server.run("total", (ctx) => [0, 1, 2, 3].reduce((sum, n) => sum + ctx.data.getBinding<Account>(`account.${n}`).balance, 0));
    assert.equal(total, 400);
    assert.equal(server.taskCounters.failed, 0);
    assert.ok(server.taskCounters.committed - before >= moves);
    t.diagnostic(`${moves} transfers on 4 accounts: ${server.taskCounters.conflicts} conflicts, each retried on the main thread`);
  });

  it("lends a worker's next task the instances its committed tasks wrote, and never a stale one", async (t) => {
    const server = await start({ workers: 1, httpPort: 0 });
    t.after(() => server.close());
    const hits = async () => {
      const text = await (await fetch(`http://127.0.0.1:${server.httpPort!}/metrics`)).text();
      return Number(/^shardless_object_cache_hits_total (\S+)$/m.exec(text)![1]);
    };
    const before = await hits();
    for (let n = 0; n < 40; n++) await server.runTask(new Move(n % 10 === 9 ? 1 : 0, n % 10 === 9 ? 0 : 1));
    // Both accounts are written by every task: after a write or two each, the worker takes them
    // from its cache at the version its own commit gave them.
    const gained = (await hits()) - before;
    assert.ok(gained >= 60, `cache hits: ${gained} of 80 loads`);
    const balances = await server.run("balances", (ctx) => [0, 1].map((n) => ctx.data.getBinding<Account>(`account.${n}`).balance));
    assert.deepEqual(balances, [100 - 36 + 4, 100 + 36 - 4]);
  });

  it("reports a task's own error, and a result that cannot cross threads, to the caller", async (t) => {
    const server = await start();
    t.after(() => server.close());
    const failed = (await failure(server.runTask(new Fail()))) as Error;
    assert.equal(failed.name, "RangeError");
    assert.match(failed.message, /always fails/);
    const uncopyable = (await failure(server.runTask(new ReturnFunction()))) as Error;
    assert.match(uncopyable.message, /cannot be copied between threads/);
    // The workers go on serving.
    assert.equal(((await server.runTask(new MakeNotes("ok.", 1))) as string[]).length, 1);
  });

  it("refuses workers without the application's module, and fails clearly when the module does not load", async () => {
    await assert.rejects(startServer({ app: WorkerApp, workers: 2, durability: "memory", tcpPort: null, httpPort: null, logger: silentLogger }), ConfigError);
    const broken = fileURLToPath(new URL("./fixtures/import-fails.ts", import.meta.url));
    await assert.rejects(startServer({ app: WorkerApp, appModule: broken, workers: 1, durability: "memory", tcpPort: null, httpPort: null, logger: silentLogger }), (error: unknown) => {
      assert.ok(error instanceof ResourceUnavailableError);
      assert.match(error.message, /could not start: this module does not load/);
      return true;
    });
  });
});

/** Moves between the fixture's 4 accounts from `lanes` concurrent callers until `moves` are done. */
async function moveMoney(server: Server, moves: number, lanes = 32): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < moves) {
        const n = next++;
        await server.runTask(new Move(n % 4, (n + 1 + (n % 3)) % 4));
      }
    }),
  );
}

/** A counter from the metrics (the server must listen for HTTP). */
async function counter(server: Server, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${server.httpPort!}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)![1]);
}

/** Worker threads replaced so far. */
function restarts(server: Server): Promise<number> {
  return counter(server, "shardless_worker_restarts_total");
}

async function totalMoney(server: Server): Promise<number> {
  return server.run("total", (ctx) => [0, 1, 2, 3].reduce((sum, n) => sum + ctx.data.getBinding<Account>(`account.${n}`).balance, 0));
}

describe("a worker thread that dies", () => {
  it("is replaced, and what it was running runs again: every task commits once, over LMDB", async (t) => {
    const dir = tempDir();
    const logger = new CapturingLogger();
    const server = await start({ dataDir: dir, logger, workers: 2, httpPort: 0 });
    t.after(() => server.close());
    const traffic = moveMoney(server, 1500);
    const killer = server.runTask(new KillWorker(join(dir, "killed-once")));
    await traffic;
    assert.equal(await killer, "survived", "its next attempt ran on a fresh worker");
    assert.equal(await totalMoney(server), 400, "money is conserved");
    assert.equal(server.taskCounters.failed, 0);
    assert.equal(await restarts(server), 1);
    assert.ok(logger.records.some((record) => record.level === "error" && record.message.startsWith("a worker thread died")));
    // The fresh worker serves as the others do, on the state committed before and after it started.
    await moveMoney(server, 400);
    assert.equal(await totalMoney(server), 400);
  });

  it("starts its replacement on the commits validated but not yet in the store", async (t) => {
    const dir = tempDir();
    // An LMDB store whose writes can be held back: commits are validated (later tasks may read
    // them) but not in the store, where a fresh worker would not find them.
    const store = LmdbDataStore.open({ path: dir, durability: "sync" });
    const write = store.commit.bind(store);
    let holding = false;
    let held = 0;
    const waiting: (() => void)[] = [];
    store.commit = async (batch: CommitBatch) => {
      if (holding && batch.objects.length > 0) {
        held++;
        await new Promise<void>((resolve) => waiting.push(resolve));
      }
      return write(batch);
    };
    const server = await startServer({ app: WorkerApp, appModule: APP_MODULE, workers: 1, store, tcpPort: null, httpPort: 0, host: "127.0.0.1", logger: silentLogger });
    t.after(() => server.close());
    holding = true;
    const moves = Array.from({ length: 10 }, () => server.runTask(new Move(0, 1)));
    await eventually("a validated move held back from the store", () => Promise.resolve(held), (count) => count >= 1);
    const killer = server.runTask(new KillWorker(join(dir, "killed-once")));
    await eventually("the worker's replacement", () => restarts(server), (count) => count === 1);
    // The read's answer comes back (with the 4 loads it decoded) before the store gets the moves.
    const loadsBefore = await counter(server, "shardless_object_cache_misses_total");
    const read = server.runTask(new Balances());
    await eventually("the read's answer", () => counter(server, "shardless_object_cache_misses_total"), (loads) => loads >= loadsBefore + 4);
    assert.equal(held, 1, "no commit reached the store meanwhile");
    holding = false;
    for (const resolve of waiting.splice(0)) resolve();
    await Promise.all([...moves, killer]);
    const [first, second] = (await read) as number[];
    const movedBefore = 100 - first!;
    assert.equal(second, 100 + movedBefore, "the read saw one consistent state");
    assert.ok(movedBefore >= 1, `the read saw the moves validated before the worker died (${movedBefore})`);
    assert.deepEqual(await server.runTask(new Balances()), [90, 110, 100, 100]);
  });

  it("fails the one task that ends every worker it runs on, once it has run alone; the others commit", async (t) => {
    const server = await start({ workers: 2, httpPort: 0 });
    t.after(() => server.close());
    const traffic = moveMoney(server, 1500);
    const killed = (await failure(server.runTask(new KillWorker(null)))) as Error;
    await traffic;
    assert.ok(killed instanceof WorkerLostError, `the cause: ${String(killed)}`);
    assert.equal(killed.retryable, false);
    assert.match(killed.message, /ended its worker thread while running alone/);
    assert.equal(await restarts(server), 2, "one death beside other attempts, then one alone");
    assert.equal(await totalMoney(server), 400);
    assert.equal(server.taskCounters.failed, 1);
  });

  it("survives an error that escapes a callback a task scheduled, with one worker", async (t) => {
    const dir = tempDir();
    const server = await start({ workers: 1, httpPort: 0 });
    t.after(() => server.close());
    // Its answer and the thread's death race: if the death is heard first, the answer is not, and
    // the task runs again on the fresh thread (where it does not throw). Either way it commits once.
    const result = await server.runTask(new KillWorker(join(dir, "escaped-once"), true));
    assert.ok(result === "scheduled" || result === "survived", String(result));
    await eventually("the worker's replacement", () => restarts(server), (count) => count === 1);
    await moveMoney(server, 200, 8);
    assert.equal(await totalMoney(server), 400);
    assert.equal(server.taskCounters.failed, 0);
  });
});
