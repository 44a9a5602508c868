// The history checker: many concurrent tasks over a few hot accounts, each returning what it read
// and wrote (account, version, balance); the committed history must have no lost update, an acyclic
// precedence graph (conflict serializability), reads that could coexist, conserved money and an
// unbroken write-skew invariant. Hand-made bad histories show that the checker can fail.
//
// SHARDLESS_TEST_WORKERS sets the worker threads (2 by default; 0 runs every task on the main
// thread); SHARDLESS_TEST_SEED changes the workload.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { describe, it, type TestContext } from "node:test";
import { SeededRandom, silentLogger, startServer, type Durability, type Server, type Task } from "shardless";
import HistoryApp, {
  ACCOUNT_BINDING_PREFIX,
  AuditTask,
  DepositTask,
  SKEW_X,
  SKEW_Y,
  TransferTask,
  WithdrawTask,
  bankAccountName,
  taskMessage,
  type Account,
  type AccountState,
  type Footprint,
} from "./fixtures/history-app.ts";
import { tempDir } from "./helpers.ts";
import { RawClient } from "./raw-client.ts";

const APP_MODULE = fileURLToPath(new URL("./fixtures/history-app.ts", import.meta.url));
const WORKERS = Number(process.env.SHARDLESS_TEST_WORKERS ?? 2);
const SEED = Number(process.env.SHARDLESS_TEST_SEED ?? 20240607);

const ACCOUNTS = 16;
const BALANCE = 1000;
const SKEW_BALANCE = 50;
const TRANSFERS = 1200;
const AUDITS = 300;
const SKEW_OPS = 400;
/** Zipf exponent of the choice of bank account: the first few accounts take most transfers. */
const ZIPF_EXPONENT = 1.2;
/**
 * Submitters, each with one task in flight. Enough that most attempts on worker threads conflict,
 * few enough that many still commit there (with every task in flight at once, nearly all attempts
 * would run on a stale snapshot, conflict, and commit on the main thread instead).
 */
const CLIENTS = 16;

const BANK = Array.from({ length: ACCOUNTS }, (_, i) => bankAccountName(i));
const TOTAL = ACCOUNTS * BALANCE;
const INITIAL: ReadonlyMap<string, number> = new Map([...BANK.map((name) => [name, BALANCE] as const), [SKEW_X, SKEW_BALANCE], [SKEW_Y, SKEW_BALANCE]]);

// ---------------------------------------------------------------------------------------------
// The checker: generic over histories of tasks that read and write versioned accounts, where every
// write installs the version after the one its task read.

/** A committed task: its name in reports, and what it read and wrote. */
interface Committed extends Footprint {
  readonly label: string;
}

type ViolationKind = "lost update" | "broken chain" | "unknown version" | "wrong balance" | "cycle" | "fractured read";

interface Violation {
  readonly kind: ViolationKind;
  readonly detail: string;
}

interface CheckResult {
  readonly violations: Violation[];
  /** Edges of the precedence graph. */
  readonly dependencies: number;
}

/** A dependency of task `to` on the task that owns the edge list; `why` names the access. */
interface Edge {
  readonly to: number;
  readonly why: string;
}

/**
 * Checks a history of committed tasks against the accounts' initial balances (all at version 0):
 * - every (account, version) is written by at most one task (no lost update), versions are written
 *   from 1 without gaps, and each write follows its task's read of the version before;
 * - every read names a version some task wrote (or 0) and sees the balance written there;
 * - the precedence graph (write→read, read→next write, write→next write) has no cycle;
 * - no task saw one write of another task but missed a second one (fractured read): a task that
 *   read account `a` at or after task W's write there, and also read an account `b` that W wrote,
 *   must have read `b` at or after W's version of it.
 */
function checkHistory(initial: ReadonlyMap<string, number>, history: readonly Committed[]): CheckResult {
  const violations: Violation[] = [];
  const report = (kind: ViolationKind, detail: string) => violations.push({ kind, detail });
  const label = (task: number) => history[task]!.label;

  // Who wrote each version, and what balance it left there.
  type Written = { readonly task: number; readonly balance: number };
  const writers = new Map<string, Map<number, Written>>();
  history.forEach((task, index) => {
    for (const [name, version, balance] of task.writes) {
      let chain = writers.get(name);
      if (chain === undefined) writers.set(name, (chain = new Map<number, Written>()));
      const earlier = chain.get(version);
      if (earlier !== undefined) {
        report("lost update", `${label(earlier.task)} and ${label(index)} both wrote ${name} version ${version}`);
        continue;
      }
      chain.set(version, { task: index, balance });
      const read = task.reads.find(([readName]) => readName === name);
      if (read?.[1] !== version - 1) {
        report("broken chain", `${label(index)} wrote ${name} version ${version} after reading ${read === undefined ? "none of it" : `version ${read[1]}`}`);
      }
    }
  });
  for (const [name, chain] of writers) {
    if (!initial.has(name)) report("unknown version", `${name} was written but never created`);
    for (let version = 1; version <= chain.size; version++) {
      if (!chain.has(version)) report("broken chain", `${name} has ${chain.size} writes but none of version ${version}`);
    }
  }

  history.forEach((task, index) => {
    for (const [name, version, balance] of task.reads) {
      const expected = version === 0 ? initial.get(name) : writers.get(name)?.get(version)?.balance;
      if (expected === undefined) report("unknown version", `${label(index)} read ${name} version ${version}, which no committed task wrote`);
      else if (expected !== balance) report("wrong balance", `${label(index)} read ${name} version ${version} with balance ${balance}, but that version holds ${expected}`);
    }
  });

  const edges: Edge[][] = history.map(() => []);
  let dependencies = 0;
  const depend = (from: number, to: number, why: string) => {
    if (from === to) return;
    edges[from]!.push({ to, why });
    dependencies++;
  };
  history.forEach((task, index) => {
    for (const [name, version] of task.reads) {
      const chain = writers.get(name);
      const source = chain?.get(version);
      if (source !== undefined) depend(source.task, index, `wr ${name}@${version}`);
      const next = chain?.get(version + 1);
      if (next !== undefined) depend(index, next.task, `rw ${name}@${version + 1}`);
    }
    for (const [name, version] of task.writes) {
      const previous = writers.get(name)?.get(version - 1);
      if (previous !== undefined) depend(previous.task, index, `ww ${name}@${version}`);
    }
  });
  const cycle = findCycle(edges);
  if (cycle !== undefined) {
    const path = cycle.map((step) => `${label(step.from)} -(${step.why})-> `).join("");
    report("cycle", `${path}${label(cycle[0]!.from)}`);
  }

  history.forEach((task, index) => {
    const seen = new Map(task.reads.map(([name, version]) => [name, version]));
    const fracture = findFracture(history, writers, index, seen);
    if (fracture !== undefined) report("fractured read", fracture);
  });
  return { violations, dependencies };
}

/** The first write that task `index` saw only in part, described; undefined if none. */
function findFracture(
  history: readonly Committed[],
  writers: ReadonlyMap<string, ReadonlyMap<number, { readonly task: number }>>,
  index: number,
  seen: ReadonlyMap<string, number>,
): string | undefined {
  const reader = history[index]!;
  for (const [name, version] of reader.reads) {
    const chain = writers.get(name);
    // Every write of `name` up to the version read is visible to the reader, with all its parts.
    for (let earlier = 1; earlier <= version; earlier++) {
      const writer = chain?.get(earlier);
      if (writer === undefined || writer.task === index) continue;
      for (const [other, otherVersion] of history[writer.task]!.writes) {
        const seenVersion = seen.get(other);
        if (other !== name && seenVersion !== undefined && seenVersion < otherVersion) {
          return `${reader.label} saw ${history[writer.task]!.label}'s write of ${name}@${earlier} (reading ${name}@${version}) but read ${other}@${seenVersion}, before its write of ${other}@${otherVersion}`;
        }
      }
    }
  }
  return undefined;
}

/** A cycle of the graph as its steps (each node and the edge it leaves by), or undefined if none. */
function findCycle(edges: readonly (readonly Edge[])[]): { from: number; why: string }[] | undefined {
  const NEW = 0;
  const ON_PATH = 1;
  const DONE = 2;
  const state = new Uint8Array(edges.length);
  for (let root = 0; root < edges.length; root++) {
    if (state[root] !== NEW) continue;
    // Iterative depth-first search: thousands of tasks would overflow the call stack.
    const path: { node: number; next: number }[] = [{ node: root, next: 0 }];
    state[root] = ON_PATH;
    while (path.length > 0) {
      const top = path[path.length - 1]!;
      const out = edges[top.node]!;
      if (top.next === out.length) {
        state[top.node] = DONE;
        path.pop();
        continue;
      }
      const edge = out[top.next++]!;
      if (state[edge.to] === ON_PATH) {
        const start = path.findIndex((frame) => frame.node === edge.to);
        return path.slice(start).map((frame) => ({ from: frame.node, why: edges[frame.node]![frame.next - 1]!.why }));
      }
      if (state[edge.to] === NEW) {
        state[edge.to] = ON_PATH;
        path.push({ node: edge.to, next: 0 });
      }
    }
  }
  return undefined;
}

const kinds = (violations: readonly Violation[]) => [...new Set(violations.map((violation) => violation.kind))].sort();

/** The highest-version write of each account in `history`. */
function lastWrites(history: readonly Committed[]): Map<string, AccountState> {
  const last = new Map<string, AccountState>();
  for (const task of history) {
    for (const write of task.writes) {
      if ((last.get(write[0])?.[1] ?? 0) < write[1]) last.set(write[0], write);
    }
  }
  return last;
}

// ---------------------------------------------------------------------------------------------
// The workload.

interface Planned {
  readonly label: string;
  readonly task: Task;
  readonly kind: "transfer" | "full audit" | "audit" | "withdrawal" | "deposit" | "skew audit";
}

/** Draws indexes 0..n-1 with probability proportional to 1 / (index + 1)^exponent. */
function zipf(random: SeededRandom, n: number, exponent: number): () => number {
  const weights = Array.from({ length: n }, (_, k) => 1 / (k + 1) ** exponent);
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  return () => {
    let left = random.next() * total;
    for (let k = 0; k < n; k++) {
      left -= weights[k]!;
      if (left < 0) return k;
    }
    return n - 1;
  };
}

/** Transfers, audits and skew-pair operations over hot accounts, in a seeded random order. */
function plan(seed: number): Planned[] {
  const random = new SeededRandom(seed);
  const pick = zipf(random, ACCOUNTS, ZIPF_EXPONENT);
  const between = (low: number, high: number) => low + Math.floor(random.next() * (high - low + 1));
  const distinct = (count: number) => {
    const chosen = new Set<number>();
    while (chosen.size < count) chosen.add(pick());
    return [...chosen].map((i) => BANK[i]!);
  };
  const planned: Planned[] = [];
  for (let i = 0; i < TRANSFERS; i++) {
    const [from, to] = distinct(2) as [string, string];
    planned.push({ label: `transfer#${i} ${from}→${to}`, kind: "transfer", task: new TransferTask(from, to, between(1, 100)) });
  }
  for (let i = 0; i < AUDITS; i++) {
    const full = i % 3 === 0;
    planned.push({ label: `audit#${i}`, kind: full ? "full audit" : "audit", task: new AuditTask(full ? [...BANK] : distinct(between(2, 4))) });
  }
  for (let i = 0; i < SKEW_OPS; i++) {
    const [one, other] = random.next() < 0.5 ? [SKEW_X, SKEW_Y] : [SKEW_Y, SKEW_X];
    const roll = random.next();
    if (roll < 0.6) planned.push({ label: `withdrawal#${i} ${one}`, kind: "withdrawal", task: new WithdrawTask(one, other, between(1, 10)) });
    else if (roll < 0.85) planned.push({ label: `deposit#${i} ${one}`, kind: "deposit", task: new DepositTask(one, between(1, 8)) });
    else planned.push({ label: `skew audit#${i}`, kind: "skew audit", task: new AuditTask([SKEW_X, SKEW_Y]) });
  }
  for (let i = planned.length - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    [planned[i], planned[j]] = [planned[j]!, planned[i]!];
  }
  return planned;
}

function isAccountStates(value: unknown): value is AccountState[] {
  return Array.isArray(value) && value.every((state) => Array.isArray(state) && state.length === 3 && typeof state[0] === "string" && typeof state[1] === "number" && typeof state[2] === "number");
}

function footprint(label: string, value: unknown): Footprint {
  const { reads, writes } = (value ?? {}) as Partial<Record<keyof Footprint, unknown>>;
  assert.ok(isAccountStates(reads) && isAccountStates(writes), `${label} returned ${JSON.stringify(value)}, not its reads and writes`);
  return { reads, writes };
}

const sumOf = (states: readonly AccountState[]) => states.reduce((sum, [, , balance]) => sum + balance, 0);

/**
 * Runs the workload with {@link CLIENTS} submitters each keeping one task in flight, through
 * `Server.runTask`; fills in `history`.
 */
async function runTasks(server: Server, planned: readonly Planned[], history: Committed[]): Promise<void> {
  let next = 0;
  const client = async () => {
    while (next < planned.length) {
      const index = next++;
      const { label, task } = planned[index]!;
      history[index] = { label, ...footprint(label, await server.runTask(task)) };
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
}

/**
 * Runs the workload as session messages: {@link CLIENTS} sessions, each sending its share of the
 * tasks at once, so that a session's messages run chained on each other's writes; fills in `history`.
 */
async function runSessions(server: Server, planned: readonly Planned[], history: Committed[]): Promise<void> {
  const clients = await Promise.all(Array.from({ length: CLIENTS }, (_, n) => RawClient.login(server.tcpPort!, `teller${n}`)));
  const shares = clients.map((_, n) => planned.map((_, index) => index).filter((index) => index % CLIENTS === n));
  await Promise.all(
    clients.map(async (client, n) => {
      for (const index of shares[n]!) client.say(taskMessage(planned[index]!.task));
      for (const index of shares[n]!) history[index] = { label: planned[index]!.label, ...footprint(planned[index]!.label, JSON.parse(await client.nextText(30_000))) };
      client.close();
    }),
  );
}

/** Runs the workload on a fresh server and checks the history it committed. */
async function checkServer(t: TestContext, durability: Durability, via: "tasks" | "sessions" = "tasks"): Promise<void> {
  const server = await startServer({
    app: HistoryApp,
    appModule: APP_MODULE,
    durability,
    ...(durability === "memory" ? {} : { dataDir: tempDir("shardless-history-") }),
    appProperties: { accounts: String(ACCOUNTS), balance: String(BALANCE), skewBalance: String(SKEW_BALANCE) },
    tcpPort: via === "sessions" ? 0 : null,
    host: "127.0.0.1",
    httpPort: null,
    logger: silentLogger,
    workers: WORKERS,
  });
  try {
    const before = { ...server.taskCounters };
    const planned = plan(SEED);
    // Tasks on different threads read the same hot accounts at the same time.
    const history: Committed[] = new Array<Committed>(planned.length);
    await (via === "tasks" ? runTasks(server, planned, history) : runSessions(server, planned, history));
    await server.whenIdle();
    const counters = server.taskCounters;
    assert.equal(counters.failed - before.failed, 0, "no task failed for good");

    const { violations, dependencies } = checkHistory(INITIAL, history);
    assert.deepEqual(violations.slice(0, 10), [], `${violations.length} violation(s) of serializability`);

    // Reads that coexist: a full audit saw every account at one moment, when the total was intact;
    // every task that read the skew pair saw it within its invariant.
    history.forEach((task, index) => {
      const kind = planned[index]!.kind;
      if (kind === "full audit") assert.equal(sumOf(task.reads), TOTAL, `${task.label} saw ${JSON.stringify(task.reads)}`);
      const pair = task.reads.filter(([name]) => name === SKEW_X || name === SKEW_Y);
      if (pair.length === 2) assert.ok(sumOf(pair) >= 0, `${task.label} saw the skew pair at ${JSON.stringify(pair)}`);
    });

    // The final state is the last write of each account in the history: nothing committed that the
    // history lacks, nothing recorded that did not stay. Money is conserved and the invariant holds.
    const final = await server.run("final state", (ctx) =>
      [...INITIAL.keys()].map((name): AccountState => {
        const account = ctx.data.getBinding<Account>(ACCOUNT_BINDING_PREFIX + name);
        return [name, account.version, account.balance];
      }),
    );
    const last = lastWrites(history);
    for (const state of final) assert.deepEqual(state, last.get(state[0]) ?? [state[0], 0, INITIAL.get(state[0])], `final state of ${state[0]}`);
    assert.equal(sumOf(final.filter(([name]) => BANK.includes(name))), TOTAL, "money is conserved");
    assert.ok(sumOf(final.filter(([name]) => name === SKEW_X || name === SKEW_Y)) >= 0, `the skew pair ends within its invariant: ${JSON.stringify(final.slice(ACCOUNTS))}`);

    const count = (kind: Planned["kind"]) => planned.filter((entry) => entry.kind === kind).length;
    const withdrawalsDone = history.filter((task, index) => planned[index]!.kind === "withdrawal" && task.writes.length > 0).length;
    t.diagnostic(
      `${durability}, workers ${WORKERS}, ${via}, seed ${SEED}: ${history.length} tasks committed ` +
        `(${count("transfer")} transfers, ${count("full audit")} full and ${count("audit") + count("skew audit")} partial audits, ` +
        `${withdrawalsDone} of ${count("withdrawal")} withdrawals done, ${count("deposit")} deposits); ` +
        `${counters.conflicts - before.conflicts} conflicts, ${counters.chained - before.chained} attempts chained, ${counters.timeouts - before.timeouts} timeouts; ` +
        `${dependencies} dependencies, no cycle; final versions ${final.map(([, version]) => version).join(" ")}`,
    );
  } finally {
    await server.close();
  }
}

// ---------------------------------------------------------------------------------------------

const done = (label: string, reads: AccountState[], writes: AccountState[] = []): Committed => ({ label, reads, writes });

describe("the history checker", () => {
  it("passes a serial history", () => {
    const initial = new Map([["a", 100], ["b", 100]]);
    const result = checkHistory(initial, [
      done("T1", [["a", 0, 100], ["b", 0, 100]], [["a", 1, 90], ["b", 1, 110]]),
      done("A", [["a", 1, 90], ["b", 1, 110]]),
      done("T2", [["b", 1, 110]], [["b", 2, 100]]),
      done("B", [["a", 1, 90], ["b", 2, 100]]),
    ]);
    assert.deepEqual(result.violations, []);
  });

  it("reports a lost update: two tasks wrote the same version", () => {
    const initial = new Map([["a", 100]]);
    const { violations } = checkHistory(initial, [
      done("T1", [["a", 0, 100]], [["a", 1, 90]]),
      done("T2", [["a", 0, 100]], [["a", 1, 80]]),
      done("A", [["a", 1, 90]]),
    ]);
    assert.deepEqual(kinds(violations), ["lost update"], JSON.stringify(violations));
    assert.match(violations[0]!.detail, /T1 and T2 both wrote a version 1/);
  });

  it("reports a cycle: write skew, each task read what the other then wrote", () => {
    const initial = new Map([["x", 50], ["y", 50]]);
    const { violations } = checkHistory(initial, [
      done("W1", [["x", 0, 50], ["y", 0, 50]], [["x", 1, -30]]),
      done("W2", [["x", 0, 50], ["y", 0, 50]], [["y", 1, -30]]),
    ]);
    assert.deepEqual(kinds(violations), ["cycle"], JSON.stringify(violations));
    assert.match(violations[0]!.detail, /^W1 -\(rw y@1\)-> W2 -\(rw x@1\)-> W1$/);
  });

  it("reports a fractured read, which is also a cycle", () => {
    const initial = new Map([["a", 100], ["b", 100]]);
    const { violations } = checkHistory(initial, [
      done("T", [["a", 0, 100], ["b", 0, 100]], [["a", 1, 50], ["b", 1, 150]]),
      done("A", [["a", 1, 50], ["b", 0, 100]]),
    ]);
    assert.deepEqual(kinds(violations), ["cycle", "fractured read"], JSON.stringify(violations));
  });

  it("reports a read of a balance the version never held, and a gap in the versions", () => {
    const initial = new Map([["a", 100]]);
    const { violations } = checkHistory(initial, [done("T1", [["a", 0, 100]], [["a", 1, 90]]), done("A", [["a", 1, 90]]), done("T3", [["a", 2, 80]], [["a", 3, 70]])]);
    assert.deepEqual(kinds(violations), ["broken chain", "unknown version"], JSON.stringify(violations));
    assert.deepEqual(kinds(checkHistory(initial, [done("T1", [["a", 0, 100]], [["a", 1, 90]]), done("A", [["a", 1, 95]])]).violations), ["wrong balance"]);
  });
});

describe("serializability under contention", () => {
  it("holds in memory", (t) => checkServer(t, "memory"));
  it("holds with sync durability on LMDB", (t) => checkServer(t, "sync"));
  it("holds with each session's messages chained on the ones before, in memory", (t) => checkServer(t, "memory", "sessions"));
  it("holds with each session's messages chained on the ones before, with sync durability on LMDB", (t) => checkServer(t, "sync", "sessions"));
});
