// The load generator: its own process, so that it competes with the server for the cores as a
// real client fleet would not, and so that its CPU is measured apart. Closed loop: each connection
// keeps `window` requests outstanding; latency is request to reply.
import { connect, type Socket } from "node:net";
import { FrameReader, decodeServerMessage, encodeFrame, encodeMessage } from "@shardless/protocol";
import { Latencies } from "./stats.ts";
import { accountPicker, encodeEcho, encodeRequest, pickPair, replyId } from "./workload.ts";

/**
 * How long replies to the window's requests are still awaited after it: long enough for a system
 * that retries for seconds under contention (PostgreSQL at Zipf 1.5) to answer some of them.
 */
const LATE_REPLY_GRACE_MS = 10_000;

export interface LoadOptions {
  readonly workload: "transfer" | "echo";
  /** Requests per second for an open loop (sent on schedule, whatever the replies); null: closed loop. */
  readonly rate: number | null;
  readonly port: number;
  readonly connections: number;
  readonly window: number;
  readonly seconds: number;
  readonly accounts: number;
  readonly zipf: number;
  /** Seconds of load before the measured window (a cold server's backlog is not measured). */
  readonly warmupSeconds: number;
}

export interface LoadResult {
  readonly requests: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly seconds: number;
  /** The measured window, in wall-clock milliseconds (to match the server's CPU samples). */
  readonly wallStart: number;
  readonly wallEnd: number;
  readonly cpuMs: number;
  readonly bytesPerRequest: number;
  /** Requests still unanswered 10 s after the end (lost or stuck). */
  readonly unanswered: number;
}

class Client {
  private readonly reader = new FrameReader();
  private readonly sentAt = new Map<number, number>();
  private nextId = 1;
  private loggedIn: () => void = () => undefined;
  bytesOut = 0;

  constructor(
    private readonly socket: Socket,
    private readonly workload: "transfer" | "echo",
    private readonly pick: () => number,
    /** Called with each answered request's scheduled send time and its latency. */
    private readonly onReply: (scheduledAt: number, latencyMs: number) => void,
    private readonly running: () => boolean,
  ) {
    socket.on("data", (chunk: Buffer) => {
      for (const payload of this.reader.push(chunk)) this.receive(payload);
    });
  }

  login(name: string): Promise<void> {
    const done = new Promise<void>((resolve) => (this.loggedIn = resolve));
    this.write(encodeMessage({ op: "LOGIN_REQUEST", version: 5, name, password: "" }));
    return done;
  }

  /** Requests not yet answered. */
  get outstanding(): number {
    return this.sentAt.size;
  }

  fill(window: number): void {
    this.refill = true;
    while (this.sentAt.size < window && this.running()) this.request();
  }

  /**
   * Sends one request, counting its latency from `scheduledAt` (open loop): a server that stalls
   * delays the requests behind it, and that wait is part of their latency.
   */
  request(scheduledAt = performance.now()): void {
    const id = this.nextId++;
    this.sentAt.set(id, scheduledAt);
    const message = this.workload === "echo" ? encodeEcho(id) : encodeRequest(id, ...pickPair(this.pick), 1);
    this.write(encodeMessage({ op: "SESSION_MESSAGE", message }));
  }

  private refill = false;

  private receive(payload: Uint8Array): void {
    const message = decodeServerMessage(payload);
    if (message.op === "LOGIN_SUCCESS") this.loggedIn();
    if (message.op !== "SESSION_MESSAGE") return;
    const id = replyId(message.message);
    const sent = this.sentAt.get(id);
    if (sent === undefined) return;
    this.sentAt.delete(id);
    this.onReply(sent, performance.now() - sent);
    if (this.refill && this.running()) this.request();
  }

  private write(payload: Uint8Array): void {
    const frame = encodeFrame(payload);
    this.bytesOut += frame.length;
    this.socket.write(frame);
  }
}

/** Runs the load against `options.port` and reports what it measured. */
export async function runLoad(options: LoadOptions, progress: (done: number) => void = () => undefined): Promise<LoadResult> {
  const pick = accountPicker(options.accounts, options.zipf);
  const latencies = new Latencies();
  // Requests count by when they were scheduled, not when they are answered: a reply that arrives in
  // the window to a request from the warm-up would otherwise carry the warm-up's backlog into it.
  const window = { start: Number.POSITIVE_INFINITY, end: Number.POSITIVE_INFINITY };
  let running = true;
  const clients: Client[] = [];
  const sockets: Socket[] = [];
  for (let i = 0; i < options.connections; i++) {
    const socket = connect({ port: options.port, host: "127.0.0.1", noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    sockets.push(socket);
    const onReply = (scheduledAt: number, ms: number) => scheduledAt >= window.start && scheduledAt < window.end && latencies.add(ms);
    const client = new Client(socket, options.workload, pick, onReply, () => running);
    await client.login(`bench-${i}`);
    clients.push(client);
  }
  let scheduler: NodeJS.Timeout | undefined;
  if (options.rate === null) {
    for (const client of clients) client.fill(options.window);
  } else {
    const rate = options.rate;
    const origin = performance.now();
    let sent = 0;
    const tick = () => {
      const due = Math.floor(((performance.now() - origin) / 1000) * rate);
      for (; sent < due && running; sent++) clients[sent % clients.length]!.request(origin + (sent * 1000) / rate);
    };
    scheduler = setInterval(tick, 1);
  }
  await new Promise((resolve) => setTimeout(resolve, options.warmupSeconds * 1000));
  const cpuBefore = process.cpuUsage();
  const bytesBefore = clients.reduce((sum, client) => sum + client.bytesOut, 0);
  const wallStart = Date.now();
  window.start = performance.now();
  const ticker = setInterval(() => progress(latencies.size), 1000);
  await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000));
  window.end = performance.now();
  const wallEnd = Date.now();
  clearInterval(ticker);
  const seconds = (window.end - window.start) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  running = false;
  if (scheduler !== undefined) clearInterval(scheduler);
  const bytesOut = clients.reduce((sum, client) => sum + client.bytesOut, 0) - bytesBefore;
  // Late replies to the window's requests still count, with their latency.
  for (let waited = 0; waited < LATE_REPLY_GRACE_MS && clients.some((client) => client.outstanding > 0); waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const unanswered = clients.reduce((sum, client) => sum + client.outstanding, 0);
  for (const socket of sockets) socket.destroy();
  const [p50Ms, p99Ms, p999Ms] = latencies.percentiles(0.5, 0.99, 0.999);
  return {
    wallStart,
    wallEnd,
    requests: latencies.size,
    p50Ms: p50Ms!,
    p99Ms: p99Ms!,
    p999Ms: p999Ms!,
    seconds,
    cpuMs: (cpu.user + cpu.system) / 1000,
    bytesPerRequest: latencies.size === 0 ? 0 : bytesOut / latencies.size,
    unanswered,
  };
}

// As a child process: one run, options from the parent, result back over IPC.
if (process.send !== undefined && process.argv.includes("--child")) {
  process.once("message", (options: LoadOptions) => {
    void runLoad(options, (done) => process.send!({ progress: done })).then((result) => {
      process.send!({ result }, () => process.exit(0));
    });
  });
}
