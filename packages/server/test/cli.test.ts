// The command line: every misconfiguration gets a clear message and exit code 2; a real start and
// a clean stop through signals.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { RawClient } from "./raw-client.ts";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { main, type CliIo } from "../src/cli/main.ts";
import { ChildServer } from "./child-server.ts";
import { tempDir } from "./helpers.ts";

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

/** Runs the CLI in-process; a start that succeeds is stopped at once by the fake signal. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io: CliIo = { out: (text) => (out += text), err: (text) => (err += text), stopSignal: Promise.resolve("SIGTERM") };
  const code = await main(args.length > 1 && args[0] === "start" ? [...args, "--tcp-port", "0", "--http-port", "0", "--host", "127.0.0.1"] : args, io);
  return { code, out, err };
}

async function refused(args: string[], message: RegExp): Promise<void> {
  const { code, err } = await cli(args);
  assert.equal(code, 2, `exit code for ${args.join(" ")}; stderr: ${err}`);
  assert.match(err, message);
}

describe("shardless CLI", () => {
  it("prints usage with --help", async () => {
    const { code, out } = await cli(["--help"]);
    assert.equal(code, 0);
    assert.match(out, /Usage: shardless start <app module>/);
  });

  it("explains every misconfiguration, with exit code 2", async () => {
    const dataDir = tempDir();
    const quiet = fixture("quiet-app.ts");
    await refused([], /missing command/);
    await refused(["serve", quiet], /unknown command "serve"/);
    await refused(["start"], /missing the application module/);
    await refused(["start", quiet, "extra"], /unexpected argument "extra"/);
    await refused(["start", quiet, "--no-such-flag"], /Unknown option '--no-such-flag'/);
    await refused(["start", join(dataDir, "missing.ts")], /cannot find the application module .*missing\.ts/);
    await refused(["start", fixture("no-default.ts")], /must default-export its AppListener class/);
    await refused(["start", fixture("unmanaged-app.ts"), "--durability", "memory"], /must be decorated with @managed/);
    await refused(["start", quiet, "--durability", "fast"], /durability must be one of sync, relaxed, memory, got "fast"/);
    await refused(["start", quiet, "--txn-timeout-ms", "soon"], /--txn-timeout-ms needs a number/);
    await refused(["start", quiet, "--txn-timeout-ms=-5", "--durability", "memory"], /txnTimeoutMs must be a number > 0, got -5/);
    await refused(["start", quiet, "--prop", "novalue"], /--prop needs key=value/);
    await refused(["start", quiet, "--log-level", "loud"], /--log-level must be/);
    const badJson = join(dataDir, "bad.json");
    writeFileSync(badJson, "{ not json");
    await refused(["start", quiet, "--config", badJson], /config file .*bad\.json is not valid JSON/);
    const unknownField = join(dataDir, "unknown.json");
    writeFileSync(unknownField, JSON.stringify({ durability: "memory", tickRate: 5 }));
    await refused(["start", quiet, "--config", unknownField], /unknown configuration field "tickRate"/);
    await refused(["start", quiet, "--config", join(dataDir, "absent.json")], /cannot read config file/);
  });

  it("fails start-up with exit code 1 when initialize throws, storing nothing", async () => {
    const dataDir = tempDir();
    const first = await cli(["start", fixture("throwing-app.ts"), "--data-dir", dataDir]);
    assert.equal(first.code, 1);
    assert.match(first.err, /initialize exploded/);
    // Nothing was committed, so the next start tries initialize again (and fails the same way).
    const second = await cli(["start", fixture("throwing-app.ts"), "--data-dir", dataDir]);
    assert.match(second.err, /initialize exploded/);
  });

  it("refuses a data directory that holds another application's world, naming both", async () => {
    const dataDir = tempDir();
    assert.equal((await cli(["start", fixture("quiet-app.ts"), "--data-dir", dataDir])).code, 0);
    // In this process both classes are loaded: the stored listener decodes, and is the wrong one.
    const here = await cli(["start", fixture("plain-js-app.js"), "--data-dir", dataDir]);
    assert.equal(here.code, 1);
    assert.match(here.err, /holds the world of another application \(fixture\.QuietApp\), not fixture\.js\.App/);
    // In a process of its own the stored class is not even loaded: the same refusal.
    const child = ChildServer.start(["start", fixture("plain-js-app.js"), "--data-dir", dataDir, "--tcp-port", "0", "--http-port", "0", "--host", "127.0.0.1"]);
    assert.equal((await child.exit()).code, 1);
    assert.match(child.stderrText, /holds the world of another application \(fixture\.QuietApp\)/);
  });

  it("takes settings from a config file, with flags overriding it", async () => {
    const dir = tempDir();
    const config = join(dir, "shardless.json");
    writeFileSync(config, JSON.stringify({ durability: "relaxed", dataDir: join(dir, "from-config") }));
    const { code, out } = await cli(["start", fixture("quiet-app.ts"), "--config", config, "--durability", "memory"]);
    assert.equal(code, 0);
    assert.match(out, /in memory \(nothing is kept\) \(durability memory\)/);
  });

  it("refuses a data directory another server holds", async () => {
    const dataDir = tempDir();
    const child = ChildServer.start(["start", fixture("quiet-app.ts"), "--data-dir", dataDir, "--tcp-port", "0", "--http-port", "0", "--host", "127.0.0.1"]);
    await child.waitFor("start", () => child.stdout.includes("Shardless is running"));
    const { code, err } = await cli(["start", fixture("quiet-app.ts"), "--data-dir", dataDir]);
    assert.equal(code, 1);
    assert.match(err, /is in use by process \d+ \[ERR_DATA_LOCKED\]/);
    await child.stop("SIGTERM");
  });

  it("starts a TypeScript app as a real process and stops cleanly on SIGINT", async () => {
    const dataDir = tempDir();
    const child = ChildServer.start(["start", fixture("quiet-app.ts"), "--data-dir", dataDir, "--tcp-port", "0", "--http-port", "0", "--host", "127.0.0.1"]);
    await child.waitFor("start", () => child.stdout.includes("Shardless is running QuietApp"));
    assert.match(child.stdout, /new data store: initialize\(\) ran/);
    const { code } = await child.stop("SIGINT");
    assert.equal(code, 0);
    assert.match(child.stdout, /Shardless stopped \(SIGINT\)/);
    const again = ChildServer.start(["start", fixture("quiet-app.ts"), "--data-dir", dataDir, "--tcp-port", "0", "--http-port", "0", "--host", "127.0.0.1"]);
    await again.waitFor("restart", () => again.stdout.includes("existing data store"));
    assert.equal((await again.stop("SIGTERM")).code, 0);
  });

  it("starts an application written in plain JavaScript", async () => {
    const child = ChildServer.start(["start", fixture("plain-js-app.js"), "--durability", "memory", "--tcp-port", "0", "--http-port", "0", "--host", "127.0.0.1"]);
    await child.waitFor("start", () => child.stdout.includes("Shardless is running PlainJsApp"));
    assert.equal(child.messages("javascript app initialized").length, 1);
    assert.equal((await child.stop("SIGTERM")).code, 0);
  });

  it("runs tasks on worker threads with --workers, which import the application's module", async () => {
    const child = ChildServer.start(["start", fixture("echo-app.ts"), "--workers", "2", "--durability", "memory", "--tcp-port", "0", "--http-port", "0", "--host", "127.0.0.1"]);
    await child.waitFor("start", () => child.stdout.includes("Shardless is running EchoApp"));
    assert.match(child.stdout, /tasks: on 2 worker thread\(s\)/);
    const port = Number(/tcp:\/\/127\.0\.0\.1:(\d+)/.exec(child.stdout)?.[1]);
    const client = await RawClient.login(port, "cli-worker");
    client.say("through a worker");
    assert.equal(await client.nextText(), "through a worker");
    client.close();
    assert.equal((await child.stop("SIGTERM")).code, 0);
  });
});
