// `shardless inspect`: a read-only look into a real LMDB store, both beside a running server (the
// inspector as a child process, which has none of the application's classes) and after it stopped
// (in-process, through the CLI entry), plus every error's message and exit code.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { open } from "lmdb";
import {
  Delivery,
  SystemClock,
  managed,
  type AppListener,
  type ClientSession,
  type ClientSessionListener,
  type PeriodicTaskHandle,
  type Ref,
  type Server,
  type TaskContext,
} from "shardless";
import { main, type CliIo } from "../src/cli/main.ts";
import { RawClient } from "./raw-client.ts";
import { tempDir, testServer } from "./helpers.ts";

const BIN = fileURLToPath(new URL("../bin/shardless.js", import.meta.url));
const HOUR_MS = 3_600_000;

@managed("inspect.Room")
class Room {
  constructor(
    public name: string,
    public world: Ref<World> | null,
  ) {}
}

@managed("inspect.World")
class World {
  name = "earth";
  rooms = new Map<string, Ref<Room>>();
  tick: PeriodicTaskHandle | null = null;
  colours = new Set(["blue"]);
  founded = new Date("2020-01-02T03:04:05.000Z");
  population = 12345678901234567890n;
  odd = { $key: 1 };
}

@managed("inspect.Tick")
class Tick {
  run(): void {}
}

@managed("inspect.Reminder")
class Reminder {
  note = "tea";
  run(): void {}
}

@managed("inspect.Player")
class Player implements ClientSessionListener {
  constructor(public session: Ref<ClientSession>) {}
  receivedMessage(): void {}
  disconnected(): void {}
}

@managed("inspect.App")
class InspectApp implements AppListener {
  initialize(ctx: TaskContext): void {
    const world = new World();
    const room = new Room("hall", ctx.data.createReference(world));
    world.rooms.set("hall", ctx.data.createReference(room));
    // Far in the future, so that no run changes the records while the test reads them.
    world.tick = ctx.tasks.schedulePeriodicTask(new Tick(), HOUR_MS, HOUR_MS);
    ctx.tasks.scheduleTask(new Reminder(), 2 * HOUR_MS);
    ctx.data.setBinding("world", world);
    ctx.data.setBinding("room.hall", room);
    ctx.channels.createChannel("lobby", null, Delivery.RELIABLE);
  }

  loggedIn(ctx: TaskContext, session: ClientSession): ClientSessionListener {
    ctx.channels.getChannel("lobby").join(session);
    return new Player(ctx.data.createReference(session));
  }
}

interface Outcome {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

/** Runs `shardless inspect <args>` in-process, through the CLI entry. */
async function cli(args: string[]): Promise<Outcome> {
  let out = "";
  let err = "";
  const io: CliIo = { out: (text) => (out += text), err: (text) => (err += text), stopSignal: new Promise(() => undefined) };
  const code = await main(["inspect", ...args], io);
  return { code, out, err };
}

/** Runs `node bin/shardless.js inspect <args>` as a child process: a separate LMDB reader. */
function child(args: string[]): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [BIN, "inspect", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    proc.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    proc.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
    proc.once("error", reject);
    proc.once("close", (code) => resolve({ code, out, err }));
  });
}

/** The JSON printed by a successful `--json` run. */
function json<T>(outcome: Outcome): T {
  assert.equal(outcome.code, 0, `inspect failed: ${outcome.err}`);
  return JSON.parse(outcome.out) as T;
}

async function fails(args: string[], code: number, message: RegExp): Promise<void> {
  const outcome = await cli(args);
  assert.equal(outcome.code, code, `exit code of inspect ${args.join(" ")}; stderr: ${outcome.err}`);
  assert.match(outcome.err, message);
  assert.equal(outcome.out, "", "nothing on standard output after an error");
}

/** A server with a world, two pending tasks, a channel and one logged-in session "ann". */
async function populatedServer(dataDir: string): Promise<{ server: Server; client: RawClient }> {
  const server = await testServer({ app: InspectApp, durability: "sync", dataDir, clock: new SystemClock(), tcpPort: 0, host: "127.0.0.1" }, import.meta.url);
  const client = await RawClient.login(server.tcpPort!, "ann");
  assert.equal((await client.next()).op, "CHANNEL_JOIN");
  return { server, client };
}

interface Binding {
  name: string;
  id: string;
  tag: string | null;
  version: number;
}
interface Listing<T> {
  items: T[];
  next: string | null;
}

describe("shardless inspect", () => {
  it("reads a live store beside its running server, without its lock or its classes", async () => {
    const dataDir = tempDir();
    const { server, client } = await populatedServer(dataDir);
    const lockBefore = readFileSync(join(dataDir, "shardless.lock"), "utf8");

    const [stats, sessions, channels, tasks, bindings] = await Promise.all(
      [["stats"], ["sessions"], ["channels"], ["tasks"], ["bindings"]].map((what) => child([dataDir, ...what, "--json"])),
    );
    assert.equal(json<{ serverPid: number | null }>(stats!).serverPid, process.pid, "the running server is reported");
    const session = json<Listing<{ name: string; connected: boolean; listener: { tag: string }; channels: { name: string }[] }>>(sessions!).items;
    assert.deepEqual(
      session.map((item) => [item.name, item.connected, item.listener.tag, item.channels.map((channel) => channel.name)]),
      [["ann", true, "inspect.Player", ["lobby"]]],
    );
    const channel = json<Listing<{ name: string; members: number; delivery: string }>>(channels!).items;
    assert.deepEqual(channel.map((item) => [item.name, item.members, item.delivery]), [["lobby", 1, "RELIABLE"]]);
    const task = json<Listing<{ kind: string; periodMs: number; task: { tag: string } }>>(tasks!).items;
    assert.deepEqual(task.map((item) => [item.kind, item.periodMs, item.task.tag]).sort(), [["one-shot", 0, "inspect.Reminder"], ["periodic", HOUR_MS, "inspect.Tick"]]);
    const world = json<Listing<Binding>>(bindings!).items.find((item) => item.name === "world")!;
    assert.equal(world.tag, "inspect.World");

    // The server keeps committing, and a later inspection sees the new state.
    await server.run("rename", (ctx) => {
      ctx.data.getBinding<World>("world").name = "mars";
    });
    const renamed = json<{ tag: string; fields: { name: string; rooms: unknown } }>(await child([dataDir, "object", world.id, "--json"]));
    assert.equal(renamed.tag, "inspect.World");
    assert.equal(renamed.fields.name, "mars");
    assert.equal(readFileSync(join(dataDir, "shardless.lock"), "utf8"), lockBefore, "the server's lock is untouched");
    client.close();
    await server.close();
  });

  it("shows a stopped store's bindings, objects, tasks, sessions and channels, writing nothing", async () => {
    const dataDir = tempDir();
    const { server, client } = await populatedServer(dataDir);
    client.close();
    await server.close();
    const dataFile = join(dataDir, "data.mdb");
    const before = createHash("sha256").update(readFileSync(dataFile)).digest("hex");

    const stats = json<{ format: number; serverPid: number | null; objects: number; lastCommitSeq: number; bindings: { application: number; service: number }; sizeBytes: { file: number } }>(
      await cli([dataDir, "--json"]),
    );
    assert.equal(stats.format, 1);
    assert.equal(stats.serverPid, null);
    // The app listener, world, room, two task objects and their two records, the channel, the
    // session and its listener.
    assert.equal(stats.objects, 10);
    assert.deepEqual(stats.bindings, { total: 7, application: 2, service: 5 });
    assert.ok(stats.lastCommitSeq > 0 && stats.sizeBytes.file > 0);

    const bindings = json<Listing<Binding>>(await cli([dataDir, "bindings", "--json"]));
    assert.deepEqual(bindings.items.map((item) => [item.name, item.tag]), [["room.hall", "inspect.Room"], ["world", "inspect.World"]]);
    assert.equal(bindings.next, null);
    const worldId = bindings.items[1]!.id;
    const roomId = bindings.items[0]!.id;
    assert.deepEqual(json<Listing<Binding>>(await cli([dataDir, "bindings", "room.", "--json"])).items.map((item) => item.name), ["room.hall"]);
    const firstPage = json<Listing<Binding>>(await cli([dataDir, "bindings", "--limit", "1", "--json"]));
    assert.deepEqual([firstPage.items.map((item) => item.name), firstPage.next], [["room.hall"], "room.hall"]);
    const secondPage = json<Listing<Binding>>(await cli([dataDir, "bindings", "--limit", "1", "--after", "room.hall", "--json"]));
    assert.deepEqual([secondPage.items.map((item) => item.name), secondPage.next], [["world"], null]);
    const all = json<Listing<Binding>>(await cli([dataDir, "bindings", "--all", "--json"])).items.map((item) => item.name.replace(/\d+$/, "N"));
    assert.deepEqual(all, ["a.room.hall", "a.world", "s.app", "s.channel.lobby", "s.session.N", "s.task.N", "s.task.N"]);

    const world = json<{ tag: string; version: number; fields: Record<string, unknown>; boundAs: string[]; refs: { id: string; tag: string }[] }>(
      await cli([dataDir, "object", worldId, "--json"]),
    );
    assert.equal(world.tag, "inspect.World");
    assert.ok(world.version > 0);
    assert.deepEqual(world.boundAs, ["a.world"]);
    const tick = world.fields.tick as { $taskHandle: string };
    assert.deepEqual(world.fields, {
      name: "earth",
      rooms: { $map: [["hall", { $ref: roomId }]] },
      tick,
      colours: { $set: ["blue"] },
      founded: { $date: "2020-01-02T03:04:05.000Z" },
      population: { $bigint: "12345678901234567890" },
      odd: { $object: { $key: 1 } },
    });
    assert.deepEqual(world.refs, [{ id: roomId, tag: "inspect.Room" }]);
    const followed = json<{ refs: { tag: string; fields: unknown }[] }>(await cli([dataDir, "object", worldId, "--follow", "--json"]));
    assert.deepEqual(followed.refs[0]!.fields, { name: "hall", world: { $ref: worldId } });

    const rooms = json<Listing<{ id: string; fields: { name: string } }> & { scanned: number }>(await cli([dataDir, "find", "inspect.Room", "--json"]));
    assert.deepEqual([rooms.items.map((item) => [item.id, item.fields.name]), rooms.next, rooms.scanned], [[[roomId, "hall"]], null, 10]);
    const records = json<Listing<{ id: string }>>(await cli([dataDir, "find", "shardless.PendingTask", "--limit", "1", "--json"]));
    assert.equal(records.items.length, 1);
    assert.notEqual(records.next, null, "a scan stopped by its limit says where to continue");
    const rest = json<Listing<{ id: string }>>(await cli([dataDir, "find", "shardless.PendingTask", "--after", records.next!, "--json"]));
    assert.equal(rest.items.length, 1);
    assert.notEqual(rest.items[0]!.id, records.items[0]!.id);

    const tasks = json<Listing<{ id: string; kind: string; dueInMs: number; periodMs: number; task: { tag: string }; ownsTask: boolean }> & { appTimeMs: number }>(
      await cli([dataDir, "tasks", "--json"]),
    );
    const periodic = tasks.items.find((item) => item.kind === "periodic")!;
    assert.equal(periodic.id, tick.$taskHandle, "the periodic task's record is the one the handle names");
    assert.equal(periodic.task.tag, "inspect.Tick");
    assert.ok(periodic.dueInMs > 0 && periodic.dueInMs <= HOUR_MS);
    const oneShot = tasks.items.find((item) => item.kind === "one-shot")!;
    assert.deepEqual([oneShot.task.tag, oneShot.periodMs, oneShot.ownsTask], ["inspect.Reminder", 0, true]);

    // Sessions a stop leaves behind stay stored (the next start ends them).
    const sessions = json<Listing<{ name: string; connected: boolean }>>(await cli([dataDir, "sessions", "--json"]));
    assert.deepEqual(sessions.items.map((item) => [item.name, item.connected]), [["ann", true]]);
    const channels = json<Listing<{ name: string; members: number }>>(await cli([dataDir, "channels", "--json"]));
    assert.deepEqual(channels.items.map((item) => [item.name, item.members]), [["lobby", 1]]);

    assert.equal(createHash("sha256").update(readFileSync(dataFile)).digest("hex"), before, "inspection wrote nothing to the data file");
  });

  it("prints the key facts for people", async () => {
    const dataDir = tempDir();
    const { server, client } = await populatedServer(dataDir);
    client.close();
    await server.close();
    const text = async (args: string[]) => {
      const outcome = await cli([dataDir, ...args]);
      assert.equal(outcome.code, 0, outcome.err);
      return outcome.out;
    };
    const stats = await text([]);
    assert.match(stats, /^Shardless data store /);
    assert.match(stats, /server\s+not running/);
    assert.match(stats, /objects\s+10\n/);
    assert.match(stats, /bindings\s+7 \(2 application, 5 service\)/);
    const bindings = await text(["bindings"]);
    assert.match(bindings, /^NAME\s+OBJECT\s+VERSION\n/);
    const worldId = /world\s+#(\d+) inspect\.World/.exec(bindings)?.[1];
    assert.ok(worldId !== undefined, bindings);
    const world = await text(["object", worldId, "--follow"]);
    assert.match(world, new RegExp(`^object #${worldId}  inspect\\.World  \\(version \\d+\\)\\nbound as: a\\.world\\n`));
    assert.match(world, /rooms: Map\(1\) \{ "hall" => #\d+ \}/);
    assert.match(world, /population: 12345678901234567890n/);
    assert.match(world, /colours: Set\(1\) \{ "blue" \}/);
    assert.match(world, /refs:\n {2}#\d+ inspect\.Room {2}\(version \d+\)\n {4}name: "hall"\n/);
    assert.match(await text(["find", "inspect.Room"]), /#\d+ {2}v\d+ {2}\{ name: "hall", world: #\d+ \}\n1 object\(s\) of class "inspect\.Room" among 10 scanned/);
    const tasks = await text(["tasks"]);
    // Due an hour (two) after initialize, less the application time that passed since.
    assert.match(tasks, /periodic\s+in (1\.0 h|5\d\.\d min) \(at 36\d{5} ms\)\s+1\.0 h\s+#\d+ inspect\.Tick/);
    assert.match(tasks, /one-shot\s+in (2\.0|1\.9) h \(at 72\d{5} ms\)\s+-\s+#\d+ inspect\.Reminder/);
    assert.match(await text(["sessions"]), /#\d+\s+ann\s+yes\s+#\d+ inspect\.Player\s+lobby/);
    assert.match(await text(["channels"]), /#\d+\s+lobby\s+RELIABLE\s+1\s+-/);
    assert.match(await text(["bindings", "--limit", "1"]), /more follow: continue with --after "room.hall"/);
  });

  it("refuses what is not a readable Shardless store, with exit code 1 and one line", async () => {
    const dir = tempDir();
    await fails([join(dir, "absent")], 1, /^shardless inspect: .*absent does not exist\n$/);
    writeFileSync(join(dir, "file"), "x");
    await fails([join(dir, "file")], 1, /file is not a directory\n$/);
    await fails([dir], 1, /is not a Shardless data store \(it has no data\.mdb\)\n$/);

    const foreign = join(dir, "foreign");
    const other = open({ path: foreign });
    await other.put("key", "value");
    await other.close();
    await fails([foreign, "bindings"], 1, /foreign is not a Shardless data store \(it has no "objects" database\)\n$/);
    const empty = join(dir, "empty");
    const bare = open({ path: empty, maxDbs: 8 });
    for (const name of ["objects", "bindings", "meta"]) await bare.openDB({ name }).put("probe", "x");
    await bare.close();
    await fails([empty], 1, /empty holds no Shardless metadata/);

    const dataDir = tempDir();
    const { server, client } = await populatedServer(dataDir);
    client.close();
    await server.close();
    await fails([dataDir, "object", "999999"], 1, /holds no object #999999\n$/);
    const newer = join(dir, "newer");
    cpSync(dataDir, newer, { recursive: true });
    const store = open({ path: newer, maxDbs: 8 });
    const meta = store.openDB<string, string>({ name: "meta", encoding: "string" });
    await meta.put("meta", JSON.stringify({ ...(JSON.parse(meta.get("meta")!) as object), format: 99 }));
    await store.close();
    await fails([newer, "stats"], 1, /has store format version 99, newer than the version this Shardless reads \(1\)/);
  });

  it("explains usage errors, with exit code 2", async () => {
    const dataDir = tempDir();
    await fails([], 2, /missing the data directory to inspect/);
    await fails([dataDir, "frobnicate"], 2, /unknown thing to inspect "frobnicate" \(one of stats, bindings, object, find, tasks, sessions, channels\)/);
    await fails([dataDir, "object"], 2, /object needs the id/);
    await fails([dataDir, "object", "twelve"], 2, /object needs an object id .*got "twelve"/);
    await fails([dataDir, "object", String(2n ** 64n)], 2, /object needs an object id/);
    await fails([dataDir, "find"], 2, /find needs the class tag/);
    await fails([dataDir, "find", "a.B", "--after", "x"], 2, /--after needs an object id/);
    await fails([dataDir, "tasks", "extra"], 2, /unexpected argument "extra"/);
    await fails([dataDir, "tasks", "--follow"], 2, /--follow does not apply to tasks/);
    await fails([dataDir, "bindings", "--limit", "0"], 2, /--limit needs a whole number >= 1, got "0"/);
    await fails([dataDir, "--bogus"], 2, /Unknown option '--bogus'/);
    const help = await cli(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out, /^Usage: shardless inspect <data dir> \[what\] \[options\]/);
    const top = await main(["--help"], { out: (text) => assert.match(text, /shardless inspect <data dir>/), err: () => undefined, stopSignal: new Promise(() => undefined) });
    assert.equal(top, 0);
  });
});
