// Structured logs: one JSON object a line (pino), level names and ISO times, errors and bigints kept
// readable; a task's lines carry its name, type, transaction id and session, and are written once,
// only if it commits.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { JsonLineLogger, SystemClock, TransactionConflictError, managed, type AppListener, type ClientSessionListener, type TaskContext } from "shardless";
import { RawClient } from "./raw-client.ts";
import { CapturingLogger, eventually, testServer } from "./helpers.ts";

@managed("logging.Player")
class Player implements ClientSessionListener {
  receivedMessage(ctx: TaskContext, message: Uint8Array): void {
    ctx.log.info("player said", { bytes: message.length });
  }

  disconnected(): void {}
}

@managed("logging.App")
class App implements AppListener {
  initialize(): void {}

  loggedIn(): ClientSessionListener {
    return new Player();
  }
}

describe("structured logs", () => {
  it("writes one JSON object a line: level name, ISO time, message, fields; bigints as exact strings; errors with their code", () => {
    const lines: string[] = [];
    const logger = new JsonLineLogger((line) => lines.push(line), "info");
    const error = new TransactionConflictError("lost a race");
    logger.debug("not written below the level");
    logger.warn("something happened", { id: 2n ** 60n + 1n, error });
    assert.equal(lines.length, 1);
    assert.ok(lines[0]!.endsWith("\n"));
    const record = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(record.level, "warn");
    assert.equal(record.msg, "something happened");
    assert.match(record.time as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(record.id, "1152921504606846977");
    assert.deepEqual({ type: (record.error as Record<string, unknown>).type, message: (record.error as Record<string, unknown>).message, code: (record.error as Record<string, unknown>).code }, {
      type: "TransactionConflictError",
      message: "lost a race",
      code: "ERR_TXN_CONFLICT",
    });
  });

  it("labels a task's lines with its name, type, transaction and session, written once on commit", async () => {
    const logger = new CapturingLogger();
    const server = await testServer({ app: App, logger, clock: new SystemClock(), tcpPort: 0, host: "127.0.0.1" }, import.meta.url);
    const ann = await RawClient.login(server.tcpPort!, "ann");
    ann.say("hello");
    await eventually("the line", () => Promise.resolve(logger.records.filter((r) => r.message === "player said")), (found) => found.length === 1);
    const [line] = logger.records.filter((record) => record.message === "player said");
    assert.equal(line!.level, "info");
    assert.equal(line!.fields?.session, "ann");
    assert.equal(line!.fields?.type, "session-message");
    assert.equal(line!.fields?.bytes, 5);
    assert.equal(typeof line!.fields?.txn, "number");
    assert.match(line!.fields?.task as string, /ann/);

    let attempt = 0;
    await server.run("retried", (ctx) => {
      ctx.log.info("attempt", { attempt: ++attempt });
      if (attempt === 1) throw new TransactionConflictError("once");
    });
    const attempts = logger.records.filter((record) => record.message === "attempt");
    assert.deepEqual(attempts.map((record) => record.fields?.attempt), [2], "only the committed attempt's line");
    assert.equal(attempts[0]!.fields?.type, "run");
    ann.close();
  });
});
