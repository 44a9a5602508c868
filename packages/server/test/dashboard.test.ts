// The live dashboard: its figures as JSON at /dashboard/data (totals, histograms, the conflict
// profile), the page's arithmetic on them, and the page itself in a real browser (Debian's
// Chromium, driven by playwright-core) watching a server under load. A screenshot is kept in
// .tmp/artifacts/dashboard.png; docs/dashboard.png is made from it when missing (delete it to refresh it).
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { chromium } from "playwright-core";
import {
  Delivery,
  SystemClock,
  TransactionConflictError,
  managed,
  type AppListener,
  type ClientSession,
  type ClientSessionListener,
  type Ref,
  type TaskContext,
} from "shardless";
import type { DashboardSnapshot } from "../src/dashboard/dashboard-data.ts";
import { growth, quantile, total } from "../src/dashboard/dashboard-math.js";
import { RawClient } from "./raw-client.ts";
import { RunTally, tempDir, testServer } from "./helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACT = fileURLToPath(new URL("../../../.tmp/artifacts/dashboard.png", import.meta.url));
const DOCS_SCREENSHOT = fileURLToPath(new URL("../../../docs/dashboard.png", import.meta.url));
/** A safety net for waiting on the page, not a measure of anything. */
const WAIT_MS = 20_000;

@managed("dashboard.Scoreboard")
class Scoreboard {
  messages = 0;
  /** The tally (see RunTally) of the messages that have had their one conflict: the `tally` property. */
  constructor(readonly contended: string) {}
}

@managed("dashboard.Echo")
class Echo implements ClientSessionListener {
  constructor(private readonly session: Ref<ClientSession>) {}

  receivedMessage(ctx: TaskContext, message: Uint8Array): void {
    const board = ctx.data.getBinding<Scoreboard>("scoreboard");
    const text = new TextDecoder().decode(message);
    // A message whose text starts with `contend` aborts its first attempt with a conflict on the
    // scoreboard, as a task running beside another would, and commits when retried: the test's
    // messages never run side by side, so they would not conflict of themselves.
    if (text.startsWith("contend") && RunTally.record(board.contended, text) === 1) {
      throw new TransactionConflictError("simulated", { on: { kind: "object", id: ctx.data.getObjectId(board), binding: "a.scoreboard" } });
    }
    board.messages++;
    this.session.get().send(message);
  }

  disconnected(ctx: TaskContext): void {
    ctx.data.removeObject(this);
  }
}

@managed("dashboard.App")
class App implements AppListener {
  initialize(ctx: TaskContext, props: Readonly<Record<string, string>>): void {
    ctx.data.setBinding("scoreboard", new Scoreboard(props.tally!));
    ctx.channels.createChannel("lobby", null, Delivery.RELIABLE);
  }

  loggedIn(ctx: TaskContext, session: ClientSession): ClientSessionListener {
    ctx.channels.getChannel("lobby").join(session);
    return new Echo(ctx.data.createReference(session));
  }
}

async function dashboardData(port: number): Promise<DashboardSnapshot> {
  const response = await fetch(`http://127.0.0.1:${port}/dashboard/data`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/json; charset=utf-8");
  assert.equal(response.headers.get("cache-control"), "no-store");
  return (await response.json()) as DashboardSnapshot;
}

/** The value of one sample line of /metrics (`name{labels} value`); 0 when the series is absent. */
async function metricsSample(port: number, series: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split("\n").find((each) => each.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/** Sends `text` and waits for its echo (the channel join comes first after login). */
async function echo(client: RawClient, text: string): Promise<void> {
  client.say(text);
  for (;;) {
    const message = await client.next();
    if (message.op === "SESSION_MESSAGE") {
      assert.equal(new TextDecoder().decode(message.message), text);
      return;
    }
  }
}

/**
 * The little of the DOM the checks run in the page use. This file is type-checked without the
 * DOM's types; each check reaches the page's document through `globalThis` with this shape.
 */
interface PageDocument {
  getElementById(id: string): { dataset: Record<string, string | undefined>; textContent: string | null } | null;
  querySelectorAll(selector: string): ArrayLike<{ textContent: string | null; dataset: Record<string, string | undefined> }>;
  body: { dataset: Record<string, string | undefined> };
}

describe("the dashboard", () => {
  it("serves its figures as JSON: totals by task type, aborts, histograms, sessions, traffic, store, hot objects", async () => {
    // A generous time budget and no checkpoint of application time (a batch that holds no task):
    // the exact counts below must not depend on how loaded the machine is, or how long start-up takes.
    const server = await testServer({ app: App, appProperties: { tally: new RunTally().path }, dataDir: tempDir(), durability: "relaxed", clock: new SystemClock(), txnTimeoutMs: 10_000, appTimeCheckpointMs: 3_600_000, tcpPort: 0, httpPort: 0, host: "127.0.0.1" }, import.meta.url);
    const port = server.httpPort!;
    const scoreboardId = await server.run("id", (ctx) => ctx.data.getObjectId(ctx.data.getBinding<Scoreboard>("scoreboard")).toString());
    const before = await dashboardData(port);
    assert.equal(before.version, 1);
    assert.equal(before.sessions.active, 0);
    assert.deepEqual(before.conflicts, { windowMs: 60_000, totalAborts: 0, hot: [] });

    const client = await RawClient.login(server.tcpPort!, "ann");
    await echo(client, "hello");
    await echo(client, "contend-json");
    await server.whenIdle();
    const data = await dashboardData(port);

    assert.ok(data.timeMs > before.timeMs, "a monotonic clock to divide by");
    const committed = growth(before.tasks.committed, data.tasks.committed);
    assert.equal(committed.login, 1);
    assert.equal(committed["session-message"], 2);
    assert.equal(data.tasks.attempts["session-message"], 3, "the contended message ran twice");
    assert.deepEqual(
      data.tasks.aborts.filter((abort) => abort.type === "session-message"),
      [{ type: "session-message", reason: "conflict", outcome: "retried", count: 1 }],
    );
    assert.deepEqual(data.tasks.failed, {});
    assert.equal(data.tasks.inFlight, 0);
    // The page's rate: growth over the snapshots' clock.
    const rate = total(committed) / ((data.timeMs - before.timeMs) / 1000);
    assert.ok(rate > 0 && Number.isFinite(rate));

    const latency = data.tasks.latencyMs["session-message"]!;
    assert.equal(latency.count, 2);
    assert.ok(latency.sum > 0);
    assert.equal(latency.counts.length, latency.bounds.length);
    assert.ok(latency.bounds.every((bound, i) => i === 0 || bound > latency.bounds[i - 1]!), "bounds ascend");
    assert.ok(latency.counts.every((count, i) => count >= (latency.counts[i - 1] ?? 0) && count <= latency.count), "counts are cumulative");
    const p99 = quantile(0.99, before.tasks.latencyMs["session-message"], latency);
    assert.ok(p99 !== null && p99 > 0 && p99 <= latency.bounds.at(-1)!);
    assert.ok(data.commits.latencyMs.count > before.commits.latencyMs.count);
    assert.ok(data.commits.batchTasks.sum >= data.commits.batchTasks.count, "a group commit holds at least one task");

    assert.deepEqual(data.sessions, { active: 1, channelsInUse: 1, logins: 1, loginFailures: 0, disconnects: 0, protocolErrors: 0, droppedMessages: 0, pausedReads: 0, rateLimited: 0 });
    assert.equal(data.traffic.framesIn, 3, "the login and two messages");
    assert.equal(data.traffic.framesOut, 4, "LOGIN_SUCCESS, the channel join and two echoes");
    assert.ok(data.traffic.bytesIn >= "hellocontend-json".length && data.traffic.bytesOut >= "hellocontend-json".length);
    assert.ok(data.store.bytes >= 4096, "an LMDB store has pages");
    assert.ok(data.store.writes > before.store.writes);
    assert.ok(data.eventLoop.activeMs >= before.eventLoop.activeMs && data.eventLoop.idleMs >= before.eventLoop.idleMs);
    assert.equal(data.status.sessions, 1);
    assert.equal(data.status.committedTasks, total(data.tasks.committed));
    assert.deepEqual(data.conflicts, {
      windowMs: 60_000,
      totalAborts: 1,
      hot: [{ kind: "object", id: scoreboardId, binding: "scoreboard", classTag: "dashboard.Scoreboard", aborts: 1, taskTypes: { "session-message": 1 } }],
    });

    // The same figures as /metrics, and reading them twice counts nothing twice.
    assert.equal(await metricsSample(port, 'shardless_tasks_committed_total{type="session-message"}'), data.tasks.committed["session-message"]);
    assert.equal(await metricsSample(port, "shardless_frames_in_total"), data.traffic.framesIn);
    const again = await dashboardData(port);
    assert.equal(again.sessions.logins, 1);
    assert.equal(again.traffic.framesIn, 3);
    client.close();
  });

  it("keeps each server's figures apart in one process", async () => {
    const busy = await testServer({ app: App, appProperties: { tally: new RunTally().path }, clock: new SystemClock(), tcpPort: 0, httpPort: 0, host: "127.0.0.1" }, import.meta.url);
    const quiet = await testServer({ app: App, appProperties: { tally: new RunTally().path }, clock: new SystemClock(), tcpPort: null, httpPort: 0, host: "127.0.0.1" }, import.meta.url);
    const client = await RawClient.login(busy.tcpPort!, "bob");
    await echo(client, "hi");
    await busy.whenIdle();
    const [busyData, quietData] = [await dashboardData(busy.httpPort!), await dashboardData(quiet.httpPort!)];
    assert.equal(busyData.sessions.active, 1);
    assert.equal(busyData.tasks.committed["session-message"], 1);
    assert.equal(quietData.sessions.active, 0);
    assert.equal(quietData.tasks.committed["session-message"], undefined);
    assert.equal(quietData.store.bytes, 0, "a memory store cannot say its size");
    for (const port of [busy.httpPort!, quiet.httpPort!]) {
      const page = await fetch(`http://127.0.0.1:${port}/dashboard`);
      assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
      assert.match(await page.text(), /<script type="module" src="\/dashboard\/dashboard\.js">/);
    }
    client.close();
  });

  it("estimates quantiles between two snapshots from histogram buckets, as Prometheus does", () => {
    const bounds = [1, 2, 4];
    const older = { bounds, counts: [10, 10, 10], count: 10, sum: 5 };
    // Since `older`: 4 observations in (1, 2], 4 in (2, 4], 2 above 4.
    const newer = { bounds, counts: [10, 14, 18], count: 20, sum: 60 };
    assert.equal(quantile(0.5, older, newer), 2.5, "rank 5 of 10: a quarter into (2, 4]");
    assert.equal(quantile(0.2, older, newer), 1.5, "rank 2: halfway through (1, 2]");
    assert.equal(quantile(0.99, older, newer), 4, "in the +Inf bucket: the highest finite bound");
    assert.equal(quantile(0.5, newer, newer), null, "nothing observed between them");
    assert.equal(quantile(0.5, undefined, { bounds, counts: [2, 2, 2], count: 2, sum: 1 }), 0.5, "from the start, the first bucket starts at 0");
    assert.deepEqual(growth({ a: 5, b: 7 }, { a: 8, b: 2, c: 1 }), { a: 3, b: 2, c: 1 }, "a total that went down started again");
  });

  it("shows a server under load in a real browser: throughput, latency, aborts, hot objects, sessions, charts", async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium package (.ci/run does)`);
    const server = await testServer({ app: App, appProperties: { tally: new RunTally().path }, dataDir: tempDir(), durability: "relaxed", clock: new SystemClock(), tcpPort: 0, httpPort: 0, host: "127.0.0.1" }, import.meta.url);
    const clients = await Promise.all(["ann", "bob", "cyd"].map((name) => RawClient.login(server.tcpPort!, name)));
    after(() => clients.forEach((client) => client.close()));

    // A few sessions echoing until the page has seen enough; now and then a message contends.
    let loading = true;
    let sent = 0;
    const load = (async () => {
      while (loading) {
        await Promise.all(clients.map((client) => echo(client, ++sent % 25 === 0 ? `contend-${sent}` : `move ${sent}`)));
        await sleep(5);
      }
    })();

    const profile = mkdtempSync(join(tmpdir(), "chromium-"));
    after(() => rmSync(profile, { recursive: true, force: true }));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    try {
      const tab = await browser.newPage();
      tab.setDefaultTimeout(WAIT_MS);
      const pageErrors: string[] = [];
      tab.on("pageerror", (error) => pageErrors.push(error.message));
      await tab.goto(`http://127.0.0.1:${server.httpPort}/dashboard`);
      // Enough samples for lines in the charts, throughput and sessions shown, the hot object listed.
      await tab.waitForFunction(
        () => {
          const document = (globalThis as unknown as { document: PageDocument }).document;
          const hot = [...Array.from(document.querySelectorAll("#hot-objects tbody td"))].map((cell) => cell.textContent);
          return (
            Number(document.body.dataset.samples) >= 6 &&
            Number(document.getElementById("commits-rate")?.dataset.value) > 0 &&
            document.getElementById("sessions")?.dataset.value === "3" &&
            hot.includes("dashboard.Scoreboard")
          );
        },
        undefined,
        { polling: 100 },
      );

      // Read through playwright's own queries: a named function inside a page function would
      // carry tsx's __name helper, which the page does not have.
      const cells = (selector: string) => tab.locator(selector).allTextContents();
      const shown = {
        connection: await tab.getAttribute("#connection", "data-state"),
        sessions: await tab.textContent("#sessions"),
        channels: await tab.textContent("#channels"),
        taskP99: (await tab.textContent("#task-p99")) ?? "",
        commitP99: (await tab.textContent("#commit-p99")) ?? "",
        bytesIn: (await tab.textContent("#bytes-in-rate")) ?? "",
        framesOut: Number(await tab.getAttribute("#frames-out-rate", "data-value")),
        store: (await tab.textContent("#store-bytes")) ?? "",
        eventLoop: (await tab.textContent("#event-loop")) ?? "",
        taskTypes: await cells("#task-types tbody td:first-child"),
        abortReasons: await cells("#aborts tbody td:first-child"),
        hot: await cells("#hot-objects tbody td"),
        chartPoints: (await tab.locator("canvas").evaluateAll((canvases) => canvases.map((canvas) => (canvas as unknown as { dataset: Record<string, string> }).dataset.points))).map(Number),
        samples: Number(await tab.getAttribute("body", "data-samples")),
      };
      assert.equal(shown.connection, "live");
      assert.equal(shown.sessions, "3");
      assert.equal(shown.channels, "1");
      assert.match(shown.taskP99, /^[\d.]+ m?s$/);
      assert.match(shown.commitP99, /^[\d.]+ m?s$/);
      assert.match(shown.bytesIn, /B\/s$/);
      assert.ok(shown.framesOut > 0);
      assert.match(shown.store, /iB$/);
      assert.match(shown.eventLoop, /^\d+ %$/);
      assert.ok(shown.taskTypes.includes("login") && shown.taskTypes.includes("session-message"), shown.taskTypes.join());
      // A loaded machine may add timeouts to the conflicts.
      assert.ok(shown.abortReasons.includes("conflict"), shown.abortReasons.join());
      assert.ok(shown.hot.includes("scoreboard") && shown.hot.some((cell) => cell.startsWith("session-message ")), shown.hot.join("|"));
      assert.equal(shown.chartPoints.length, 6);
      assert.ok(
        shown.chartPoints.every((points) => points > 0),
        `every chart has lines: ${shown.chartPoints.join()}`,
      );

      // It keeps updating.
      await tab.waitForFunction((seen) => Number((globalThis as unknown as { document: PageDocument }).document.body.dataset.samples) > seen, shown.samples, { polling: 100 });
      assert.deepEqual(pageErrors, []);

      mkdirSync(dirname(ARTIFACT), { recursive: true });
      await tab.screenshot({ path: ARTIFACT, fullPage: true });
      if (!existsSync(DOCS_SCREENSHOT)) copyFileSync(ARTIFACT, DOCS_SCREENSHOT);
    } finally {
      loading = false;
      await load;
      await browser.close();
    }
  });
});
