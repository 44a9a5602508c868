/**
 * Crash safety of the transfer workload against a real server process. The server runs
 * `fixtures/ledger-app.ts` through the `shardless` command with `durability: sync`; several clients
 * send transfers (and now and then ask for a timer) over raw TCP; the harness kills the process with
 * SIGKILL at random moments (under load, during start-up, during the recovery that follows a
 * start), restarts it on the same data directory, and checks at every start it does not kill:
 *
 * - money is conserved, and every balance equals what the recorded transfers make it (a transfer
 *   applied twice, or applied without its record, shows up here);
 * - every transfer and timer a client saw acknowledged is stored, with the outcome it was told;
 * - no effect came out twice: no id is acknowledged twice (clients resend what they never saw
 *   acknowledged, and the application answers resends from its records), no fresh id is found
 *   already recorded, no timer fired twice, the heartbeat never logs a value twice;
 * - pending timers still fire: the periodic heartbeat resumes after every restart, and at the end
 *   every acknowledged timer has fired exactly once.
 *
 * The kill schedule comes from a seeded generator (the seed is in the report); the moments the
 * kills land depend on the machine, so a run is repeatable in plan, not to the microsecond.
 */
import { connect, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { FrameReader, decodeServerMessage, encodeFrame, encodeMessage } from "@shardless/protocol";
import { SeededRandom } from "shardless";
import { ChildServer } from "./child-server.ts";
import { DUPLICATE_FLAG, LEDGER_INITIAL_BALANCE, LedgerOp } from "./fixtures/ledger-app.ts";

const APP = fileURLToPath(new URL("./fixtures/ledger-app.ts", import.meta.url));

/** What a run does. */
export interface CrashHarnessOptions {
  /** SIGKILLs to deliver before the final, clean run. */
  readonly kills: number;
  /** Seed of the kill schedule and of the workload. */
  readonly seed: number;
  /** An empty directory for the server's data. */
  readonly dataDir: string;
  /** Accounts in the ledger (default 32). */
  readonly accounts?: number;
  /** Concurrent transfer clients (default 4). */
  readonly clients?: number;
  /** Requests each client keeps outstanding (default 8). */
  readonly window?: number;
  /** Longest stretch of load before a kill, in ms (default 1200). */
  readonly maxLoadMs?: number;
  /**
   * Durability mode of the server (default `sync`). `memory` keeps nothing across a kill: a run
   * with it must report anomalies, which shows that the checks can fail.
   */
  readonly durability?: "sync" | "relaxed" | "memory";
  /** Worker threads the server runs its tasks on (default 0: the main thread). */
  readonly workers?: number;
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

/** What a run saw. `anomalies` must be empty. */
export interface CrashHarnessReport {
  readonly seed: number;
  readonly kills: number;
  readonly killsByMode: Readonly<Record<KillMode, number>>;
  /** Start-up kills that landed before the server reported it had started. */
  readonly killsBeforeStarted: number;
  /** Starts at which the full set of checks ran. */
  readonly checkedStarts: number;
  readonly transfersSent: number;
  readonly transfersAcknowledged: number;
  readonly transfersRefused: number;
  /** Resends answered as already recorded: committed and durable, but killed before the reply left. */
  readonly acknowledgementsLostToKills: number;
  readonly timersAcknowledged: number;
  /** Timers the final audit found fired (each exactly once, or it is an anomaly). */
  readonly timersFired: number;
  /** "timer fired" log lines seen (a firing whose log a kill cut off is not among them). */
  readonly timerFiringsLogged: number;
  readonly heartbeats: number;
  readonly anomalies: readonly string[];
}

/** Where a kill lands. */
export type KillMode = "load" | "startup" | "recovery";

/** A seeded generator (the server's own `SeededRandom`): the same seed gives the same sequence. */
export function seededRandom(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A raw-protocol client of the ledger application. */
class LedgerConnection {
  private readonly reader = new FrameReader();
  private readonly answers: ((bytes: Uint8Array) => void)[] = [];
  private loginOutcome: ((ok: boolean) => void) | undefined;
  readonly whenClosed: Promise<void>;
  closed = false;
  /** Called with every session message not taken by {@link ask}. */
  onMessage: (bytes: Uint8Array) => void = () => undefined;

  private constructor(private readonly socket: Socket) {
    socket.on("error", () => undefined);
    socket.on("data", (chunk: Buffer) => {
      for (const payload of this.reader.push(chunk)) {
        const message = decodeServerMessage(payload.slice());
        if (message.op === "LOGIN_SUCCESS" || message.op === "LOGIN_FAILURE") this.loginOutcome?.(message.op === "LOGIN_SUCCESS");
        else if (message.op === "SESSION_MESSAGE") {
          const answer = this.answers.shift();
          if (answer !== undefined) answer(message.message);
          else this.onMessage(message.message);
        }
      }
    });
    this.whenClosed = new Promise((resolve) =>
      socket.once("close", () => {
        this.closed = true;
        this.loginOutcome?.(false);
        resolve();
      }),
    );
  }

  /** Connects and logs in; rejects if the login fails or the connection drops first. */
  static async open(port: number, name: string): Promise<LedgerConnection> {
    const socket = connect({ port, host: "127.0.0.1", noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const connection = new LedgerConnection(socket);
    const ok = await new Promise<boolean>((resolve) => {
      connection.loginOutcome = resolve;
      socket.write(encodeFrame(encodeMessage({ op: "LOGIN_REQUEST", version: 5, name, password: "" })));
    });
    connection.loginOutcome = undefined;
    if (!ok) {
      socket.destroy();
      throw new Error(`login of ${name} failed`);
    }
    return connection;
  }

  send(message: Uint8Array): void {
    if (!this.closed) this.socket.write(encodeFrame(encodeMessage({ op: "SESSION_MESSAGE", message })));
  }

  /** Sends a query and resolves with its reply (replies to one session come in order). */
  ask(message: Uint8Array, timeoutMs = 60_000): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply to query kind ${message[0]} within ${timeoutMs} ms`)), timeoutMs);
      this.answers.push((bytes) => {
        clearTimeout(timer);
        resolve(bytes);
      });
      void this.whenClosed.then(() => {
        clearTimeout(timer);
        reject(new Error("the connection closed before the reply"));
      });
      this.send(message);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

interface TransferState {
  readonly from: number;
  readonly to: number;
  readonly amount: number;
  sends: number;
  acked: boolean;
  status: number;
  inFlightOn: LedgerConnection | undefined;
}

interface TimerState {
  readonly delayMs: number;
  sends: number;
  acked: boolean;
  inFlightOn: LedgerConnection | undefined;
}

function transferRequest(id: number, transfer: TransferState): Uint8Array {
  const bytes = new Uint8Array(13);
  const view = new DataView(bytes.buffer);
  bytes[0] = LedgerOp.transfer;
  view.setUint32(1, id);
  view.setUint16(5, transfer.from);
  view.setUint16(7, transfer.to);
  view.setUint32(9, transfer.amount);
  return bytes;
}

function timerRequest(id: number, timer: TimerState): Uint8Array {
  const bytes = new Uint8Array(9);
  const view = new DataView(bytes.buffer);
  bytes[0] = LedgerOp.timer;
  view.setUint32(1, id);
  view.setUint32(5, timer.delayMs);
  return bytes;
}

function statesRequest(kind: number, ids: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(1 + ids.length * 4);
  const view = new DataView(bytes.buffer);
  bytes[0] = kind;
  ids.forEach((id, i) => view.setUint32(1 + i * 4, id));
  return bytes;
}

/** Ids per state query: 4 bytes each, well inside one message. */
const QUERY_BATCH = 8000;

/**
 * Runs the workload with `options.kills` SIGKILLs, then a clean run that drains everything and
 * stops the server with SIGTERM. Never throws for an anomaly: each one is a line of the report.
 * Throws only if the harness itself cannot go on (the server will not start, say).
 */
export async function runCrashHarness(options: CrashHarnessOptions): Promise<CrashHarnessReport> {
  // Two generators: the kill plan draws a fixed number of values per run, so it is the same for a
  // seed however many requests the workload (the second) happens to draw before each kill.
  const plan = seededRandom(options.seed);
  const random = seededRandom((options.seed ^ 0x5bd1e995) >>> 0);
  const accounts = options.accounts ?? 32;
  const clientCount = options.clients ?? 4;
  const window = options.window ?? 8;
  const maxLoadMs = options.maxLoadMs ?? 1200;
  const log = options.log ?? (() => undefined);
  const anomalies: string[] = [];
  const anomaly = (text: string) => {
    anomalies.push(text);
    log(`ANOMALY: ${text}`);
  };
  const args = [
    "start", APP, "--data-dir", options.dataDir, "--durability", options.durability ?? "sync", "--tcp-port", "0", "--http-port", "0", "--host", "127.0.0.1",
    // The audit reads every record in one task: give it time.
    "--txn-timeout-ms", "60000", "--prop", `accounts=${accounts}`, "--prop", "beatMs=50",
    "--workers", String(options.workers ?? 0),
  ];

  const transfers = new Map<number, TransferState>();
  const timers = new Map<number, TimerState>();
  let nextTransferId = 1;
  let nextTimerId = 1;
  let acknowledgementsLostToKills = 0;
  const killsByMode: Record<KillMode, number> = { load: 0, startup: 0, recovery: 0 };
  let killsBeforeStarted = 0;
  let checkedStarts = 0;
  let lastBeat = 0;
  let heartbeats = 0;
  const timerFireLogs = new Map<number, number>();
  let startupMs = 1500;
  let timersFired = 0;

  /** After a run ends: the heartbeat's and the timers' logs, which are effects too. */
  const readLogs = (child: ChildServer, run: number) => {
    const values = child.messages("beat").map((record) => record.value as number);
    for (let i = 0; i < values.length; i++) {
      const expected = i === 0 ? undefined : values[i - 1]! + 1;
      if (i === 0 && values[0]! <= lastBeat) anomaly(`run ${run}: heartbeat logged ${values[0]} after ${lastBeat} had been logged (a commit's effect came out twice or was lost)`);
      if (expected !== undefined && values[i] !== expected) anomaly(`run ${run}: heartbeat logged ${values[i]} after ${values[i - 1]}`);
    }
    if (values.length > 0) lastBeat = Math.max(lastBeat, values.at(-1)!);
    heartbeats += values.length;
    for (const record of child.messages("timer fired")) {
      const id = record.timer as number;
      const times = (timerFireLogs.get(id) ?? 0) + 1;
      timerFireLogs.set(id, times);
      if (times > 1 || record.fired !== 1) anomaly(`timer ${id} fired again (log #${times}, stored count ${String(record.fired)})`);
    }
  };

  /** Opens `clientCount` tellers that resend what was never acknowledged, then send new work. */
  const startLoad = async (port: number, run: number) => {
    const retry: ({ kind: "transfer"; id: number } | { kind: "timer"; id: number })[] = [];
    for (const [id, state] of transfers) if (!state.acked) retry.push({ kind: "transfer", id });
    for (const [id, state] of timers) if (!state.acked) retry.push({ kind: "timer", id });
    let running = true;
    const tellers: LedgerConnection[] = [];
    const inFlight = new Map<LedgerConnection, number>();
    const sendNext = (teller: LedgerConnection) => {
      const again = retry.shift();
      let request: Uint8Array;
      if (again?.kind === "transfer" || (again === undefined && random() >= 0.05)) {
        const id = again?.id ?? nextTransferId++;
        let state = transfers.get(id);
        if (state === undefined) {
          const from = Math.floor(random() * accounts);
          const to = (from + 1 + Math.floor(random() * (accounts - 1))) % accounts;
          state = { from, to, amount: 1 + Math.floor(random() * 60), sends: 0, acked: false, status: 0, inFlightOn: undefined };
          transfers.set(id, state);
        }
        state.sends++;
        state.inFlightOn = teller;
        request = transferRequest(id, state);
      } else {
        const id = again?.id ?? nextTimerId++;
        let state = timers.get(id);
        if (state === undefined) {
          state = { delayMs: 20 + Math.floor(random() * 1500), sends: 0, acked: false, inFlightOn: undefined };
          timers.set(id, state);
        }
        state.sends++;
        state.inFlightOn = teller;
        request = timerRequest(id, state);
      }
      inFlight.set(teller, (inFlight.get(teller) ?? 0) + 1);
      teller.send(request);
    };
    const received = (teller: LedgerConnection, bytes: Uint8Array) => {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const id = view.getUint32(1);
      const flag = bytes[5]!;
      if (bytes[0] === LedgerOp.transfer) {
        const state = transfers.get(id);
        if (state === undefined) return anomaly(`run ${run}: acknowledgement of transfer ${id}, never sent`);
        if (state.acked) return anomaly(`run ${run}: second acknowledgement of transfer ${id}`);
        if (state.inFlightOn !== teller) return anomaly(`run ${run}: transfer ${id} acknowledged on a connection it was not sent on`);
        const status = flag & ~DUPLICATE_FLAG;
        if (status !== 1 && status !== 2) anomaly(`run ${run}: transfer ${id} acknowledged with status ${flag}`);
        if ((flag & DUPLICATE_FLAG) !== 0) {
          if (state.sends === 1) anomaly(`run ${run}: transfer ${id}, sent once, was already recorded`);
          else acknowledgementsLostToKills++;
        }
        state.acked = true;
        state.status = status;
        state.inFlightOn = undefined;
      } else if (bytes[0] === LedgerOp.timer) {
        const state = timers.get(id);
        if (state === undefined) return anomaly(`run ${run}: acknowledgement of timer ${id}, never sent`);
        if (state.acked) return anomaly(`run ${run}: second acknowledgement of timer ${id}`);
        if (state.inFlightOn !== teller) return anomaly(`run ${run}: timer ${id} acknowledged on a connection it was not sent on`);
        if (flag === 1 && state.sends === 1) anomaly(`run ${run}: timer ${id}, sent once, was already recorded`);
        state.acked = true;
        state.inFlightOn = undefined;
      } else {
        return anomaly(`run ${run}: unexpected reply kind ${bytes[0]}`);
      }
      inFlight.set(teller, inFlight.get(teller)! - 1);
      if (running) sendNext(teller);
    };
    for (let k = 0; k < clientCount; k++) {
      let teller: LedgerConnection;
      try {
        teller = await LedgerConnection.open(port, `teller-${run}-${k}`);
      } catch {
        break; // the server was killed while the tellers were connecting
      }
      tellers.push(teller);
      teller.onMessage = (bytes) => received(teller, bytes);
      for (let i = 0; i < window; i++) sendNext(teller);
    }
    return {
      /** Stops sending new requests and waits until everything sent is answered. */
      drain: async (timeoutMs: number) => {
        running = false;
        const deadline = Date.now() + timeoutMs;
        // Requests still queued for resending go out now, then everything is awaited.
        while (retry.length > 0 && tellers.length > 0) sendNext(tellers[retry.length % tellers.length]!);
        while ([...inFlight.values()].some((n) => n > 0) && Date.now() < deadline) await sleep(20);
        return [...inFlight.values()].reduce((sum, n) => sum + n, 0);
      },
      /** Waits until every teller's connection is closed (after a kill). */
      closed: async () => {
        running = false;
        await Promise.all(tellers.map((teller) => teller.whenClosed));
      },
      close: () => {
        running = false;
        for (const teller of tellers) teller.close();
      },
    };
  };

  /** The application's own audit: totals, and balances recomputed from the records. */
  const audit = async (auditor: LedgerConnection) => {
    const bytes = await auditor.ask(Uint8Array.of(LedgerOp.audit));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const at = (i: number) => view.getUint32(1 + i * 4);
    return { total: at(0), records: at(1), mismatched: at(2), timerRecords: at(3), fired: at(4), firedTwice: at(5), initRuns: at(6) };
  };

  /** The checks run at a start: the audit, then the state of every acknowledged id. */
  const check = async (child: ChildServer, port: number, run: number, final: boolean) => {
    // The periodic task must resume: a beat above the last one logged before this start.
    const before = lastBeat;
    try {
      await child.waitFor("the heartbeat to resume", () => child.messages("beat").some((record) => (record.value as number) > before), 15_000);
    } catch (error) {
      anomaly(`run ${run}: the periodic heartbeat did not resume (${(error as Error).message.split("\n")[0]})`);
    }
    const auditor = await LedgerConnection.open(port, `auditor-${run}`);
    try {
      let totals = await audit(auditor);
      if (final) {
        // Every acknowledged timer must fire: the longest delay is 1.5 s of application time.
        const deadline = Date.now() + 20_000;
        while (totals.fired < timers.size && Date.now() < deadline) {
          await sleep(100);
          totals = await audit(auditor);
        }
        timersFired = totals.fired;
      }
      const { total, records, mismatched, timerRecords, fired, firedTwice, initRuns } = totals;
      const ackedTransfers = [...transfers].filter(([, state]) => state.acked);
      const ackedTimers = [...timers].filter(([, state]) => state.acked);
      if (total !== accounts * LEDGER_INITIAL_BALANCE) anomaly(`run ${run}: money not conserved: total ${total}, expected ${accounts * LEDGER_INITIAL_BALANCE}`);
      if (mismatched !== 0) anomaly(`run ${run}: ${mismatched} account(s) disagree with the recorded transfers`);
      if (initRuns !== 1) anomaly(`run ${run}: initialize ran ${initRuns} times`);
      if (records < ackedTransfers.length) anomaly(`run ${run}: ${records} transfer records, fewer than the ${ackedTransfers.length} acknowledged`);
      if (records > transfers.size) anomaly(`run ${run}: ${records} transfer records, more than the ${transfers.size} ids ever sent`);
      if (timerRecords < ackedTimers.length || timerRecords > timers.size) anomaly(`run ${run}: ${timerRecords} timer records; ${ackedTimers.length} acknowledged, ${timers.size} sent`);
      if (firedTwice !== 0) anomaly(`run ${run}: ${firedTwice} timer(s) fired more than once`);
      if (final) {
        if (records !== transfers.size) anomaly(`final: ${records} transfer records for ${transfers.size} transfers, all acknowledged`);
        if (timerRecords !== timers.size || fired !== timers.size) anomaly(`final: ${timerRecords} timer records, ${fired} fired, for ${timers.size} timers`);
      }
      // One anomaly per kind of fault, naming the first few ids: a lost store loses thousands.
      const faults = new Map<string, number[]>();
      const fault = (what: string, id: number) => faults.set(what, [...(faults.get(what) ?? []), id]);
      for (let at = 0; at < ackedTransfers.length; at += QUERY_BATCH) {
        const batch = ackedTransfers.slice(at, at + QUERY_BATCH);
        const states = await auditor.ask(statesRequest(LedgerOp.transferStates, batch.map(([id]) => id)));
        batch.forEach(([id, state], i) => {
          const stored = states[1 + i];
          if (stored === 0) fault("acknowledged transfer(s) lost", id);
          else if (stored !== state.status) fault("transfer(s) stored with another outcome than acknowledged", id);
        });
      }
      for (let at = 0; at < ackedTimers.length; at += QUERY_BATCH) {
        const batch = ackedTimers.slice(at, at + QUERY_BATCH);
        const states = await auditor.ask(statesRequest(LedgerOp.timerStates, batch.map(([id]) => id)));
        batch.forEach(([id], i) => {
          const stored = states[1 + i]!;
          if (stored === 255) fault("acknowledged timer(s) lost", id);
          else if (stored > 1) fault("timer(s) fired more than once", id);
          else if (final && stored !== 1) fault("acknowledged timer(s) never fired", id);
        });
      }
      for (const [what, ids] of faults) anomaly(`run ${run}: ${ids.length} ${what}, e.g. ${ids.slice(0, 5).join(", ")}`);
    } finally {
      auditor.close();
    }
    checkedStarts++;
  };

  const modeFor = (kill: number): KillMode => {
    // The first few kills cover every mode; the rest are drawn.
    if (kill === 0 || kill === 2) return "load";
    if (kill === 1) return "startup";
    if (kill === 3) return "recovery";
    const draw = plan();
    return draw < 0.2 ? "startup" : draw < 0.35 ? "recovery" : "load";
  };

  for (let run = 0; run <= options.kills; run++) {
    const final = run === options.kills;
    const mode = final ? undefined : modeFor(run);
    const began = Date.now();
    const child = ChildServer.start(args);
    let load: Awaited<ReturnType<typeof startLoad>> | undefined;
    try {
      if (mode === "startup") {
        // Anywhere from loading the code to the first commits after the start.
        await sleep(plan() * startupMs * 1.2);
        if (child.messages("server started").length === 0) killsBeforeStarted++;
      } else {
        await child.waitFor("server start", () => child.messages("server started").length > 0 && child.stdout.includes("tcp://"), 30_000);
        if (run === 0) startupMs = Date.now() - began;
        const started = child.messages("server started")[0]!;
        // Only a store nothing durable was seen from may be initialized (a start-up kill before the
        // first commit leaves the store empty, and the next start initializes it: that is fine).
        const seenDurable = lastBeat > 0 || [...transfers.values()].some((state) => state.acked);
        if (started.initialized === true && seenDurable) anomaly(`run ${run}: a used store was initialized again`);
        const port = child.tcpPort();
        if (mode === "recovery") {
          // Kill while sessions from before are being ended, overdue timers fire, and tellers
          // reconnect and resend.
          load = await startLoad(port, run);
          await sleep(plan() * 150);
        } else {
          await check(child, port, run, false);
          load = await startLoad(port, run);
          if (final) {
            await sleep(Math.min(maxLoadMs, 500));
            const left = await load.drain(30_000);
            if (left > 0) anomaly(`final: ${left} request(s) never answered`);
            load.close();
            await check(child, port, run, true);
          } else {
            await sleep(plan() * plan() * maxLoadMs);
          }
        }
      }
    } catch (error) {
      // The child's own last words say why it stopped: what it wrote to stderr that is not a log
      // record (the CLI's "shardless: …" message, or an uncaught error).
      const lastWords = child.stderrText.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("{")).slice(-3).join(" | ");
      anomaly(`run ${run} (${mode ?? "final"}): ${(error as Error).message.split("\n")[0]}${lastWords === "" ? "" : ` — ${lastWords}`}`);
    }
    const exit = await child.stop(final ? "SIGTERM" : "SIGKILL");
    if (final ? exit.code !== 0 : exit.signal !== "SIGKILL") anomaly(`run ${run}: the server ended with code ${exit.code} and signal ${exit.signal}`);
    if (!final) killsByMode[mode!]++;
    await load?.closed();
    readLogs(child, run);
    const acked = [...transfers.values()].filter((state) => state.acked).length;
    log(`run ${run}: ${final ? "clean stop" : `killed (${mode})`} after ${Date.now() - began} ms; transfers sent ${transfers.size}, acknowledged ${acked}; timers ${timers.size}; heartbeat at ${lastBeat}; anomalies ${anomalies.length}`);
  }

  const acked = [...transfers.values()].filter((state) => state.acked);
  return {
    seed: options.seed,
    kills: options.kills,
    killsByMode,
    killsBeforeStarted,
    checkedStarts,
    transfersSent: transfers.size,
    transfersAcknowledged: acked.length,
    transfersRefused: acked.filter((state) => state.status === 2).length,
    acknowledgementsLostToKills,
    timersAcknowledged: [...timers.values()].filter((state) => state.acked).length,
    timersFired,
    timerFiringsLogged: [...timerFireLogs.values()].reduce((sum, n) => sum + n, 0),
    heartbeats,
    anomalies,
  };
}
