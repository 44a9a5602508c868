// /metrics in Prometheus text: tasks by type and outcome, batches, sessions, frames and bytes, the
// store's size; each server with figures of its own.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ResourceUnavailableError, SystemClock } from "shardless";
import App from "./fixtures/echo-app.ts";
import { RawClient } from "./raw-client.ts";
import { eventually, tempDir, testServer } from "./helpers.ts";

/** The value of one sample line (`name{labels} value`); 0 when the series is absent. */
function sample(text: string, series: string): number {
  const line = text.split("\n").find((each) => each.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

async function metrics(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return response.text();
}

describe("metrics", () => {
  it("counts tasks by type and outcome, batches, sessions, frames and bytes, and the store's size", async () => {
    const server = await testServer({ app: App, dataDir: tempDir(), durability: "relaxed", clock: new SystemClock(), tcpPort: 0, httpPort: 0, host: "127.0.0.1" }, import.meta.url);
    const client = await RawClient.login(server.tcpPort!, "ann");
    client.say("hello");
    assert.equal(await client.nextText(), "hello");
    let first = true;
    await server.run("flaky", () => {
      if (!first) return;
      first = false;
      throw new ResourceUnavailableError("busy, once"); // retryable: runs again
    });

    const text = await metrics(server.httpPort!);
    assert.equal(sample(text, 'shardless_tasks_committed_total{type="login"}'), 1);
    assert.equal(sample(text, 'shardless_tasks_committed_total{type="session-message"}'), 1);
    assert.equal(sample(text, 'shardless_task_aborts_total{type="run",reason="error",outcome="retried"}'), 1);
    assert.equal(sample(text, 'shardless_task_attempts_total{type="run"}') - sample(text, 'shardless_tasks_committed_total{type="run"}'), 1, "one attempt more than commits");
    assert.equal(sample(text, 'shardless_task_latency_ms_count{type="session-message"}'), 1);
    assert.ok(sample(text, "shardless_commit_batch_tasks_count") >= 3, "every commit went through a batch");
    assert.ok(sample(text, "shardless_store_writes_total") > 0);
    assert.equal(sample(text, "shardless_sessions"), 1);
    assert.equal(sample(text, "shardless_logins_total"), 1);
    assert.equal(sample(text, "shardless_frames_in_total"), 2, "the login and the message");
    assert.equal(sample(text, "shardless_frames_out_total"), 2, "LOGIN_SUCCESS and the echo");
    assert.ok(sample(text, "shardless_bytes_out_total") >= "hello".length);
    assert.ok(sample(text, "shardless_store_bytes") >= 4096, "an LMDB store has pages");
    assert.ok(text.includes("# HELP shardless_event_loop_utilization"));

    client.close();
    await eventually("the session to end", () => metrics(server.httpPort!), (later) => sample(later, "shardless_sessions") === 0);
    const later = await metrics(server.httpPort!);
    assert.equal(sample(later, "shardless_logins_total"), 1, "a counter does not grow by being read twice");
    assert.equal(sample(later, 'shardless_tasks_committed_total{type="disconnect"}'), 1);
  });

  it("counts the decoded-object caches' hits and misses, on whichever thread runs the tasks", async () => {
    const server = await testServer({ app: App, clock: new SystemClock(), tcpPort: 0, httpPort: 0, host: "127.0.0.1" }, import.meta.url);
    const client = await RawClient.login(server.tcpPort!, "cy");
    // Each message reads the session's record and listener, unchanged: decoded once, then lent.
    for (const word of ["one", "two", "three", "four"]) {
      client.say(word);
      assert.equal(await client.nextText(), word);
    }
    const text = await metrics(server.httpPort!);
    assert.ok(sample(text, "shardless_object_cache_misses_total") >= 1);
    assert.ok(sample(text, "shardless_object_cache_hits_total") >= 4, `hits: ${sample(text, "shardless_object_cache_hits_total")}`);
    assert.ok(text.includes("# HELP shardless_task_chained_attempts_total"));
    client.close();
  });

  it("keeps each server's figures apart in one process", async () => {
    const busy = await testServer({ app: App, clock: new SystemClock(), tcpPort: 0, httpPort: 0, host: "127.0.0.1" }, import.meta.url);
    const quiet = await testServer({ app: App, clock: new SystemClock(), tcpPort: null, httpPort: 0, host: "127.0.0.1" }, import.meta.url);
    const client = await RawClient.login(busy.tcpPort!, "bob");
    client.close();
    assert.equal(sample(await metrics(busy.httpPort!), "shardless_logins_total"), 1);
    assert.equal(sample(await metrics(quiet.httpPort!), "shardless_logins_total"), 0);
  });
});
