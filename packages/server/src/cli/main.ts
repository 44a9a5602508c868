import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { AppLoadError, ConfigError, ShardlessError } from "../api/errors.js";
import { inspect } from "../inspect/inspect-command.js";
import { JsonLineLogger, type LogLevel } from "../kernel/logger.js";
import { startServer, type AppListenerClass, type StartupProgress } from "../server.js";

const USAGE = `Usage: shardless start <app module> [options]
       shardless inspect <data dir> [what] [options]   (see shardless inspect --help)

Runs the application whose module's default export is its AppListener class
(a @managed class). TypeScript modules run directly.

Options:
  --data-dir <path>        where the data lives (default ./data)
  --durability <mode>      sync (default) | relaxed | memory
  --config <file.json>     configuration file (fields as in docs/configuration.md)
  --prop <key=value>       application property passed to initialize (repeatable)
  --tcp-port <n>           TCP port of the Darkstar protocol (default 62964; 0 picks a free one)
  --http-port <n>          HTTP port, WebSocket clients at /ws (default 8080; 0 picks a free one)
  --host <address>         address to listen on (default 0.0.0.0)
  --password-file <file>   names and scrypt hashes; without it every login is accepted
  --static-dir <dir>       files the HTTP port serves at / (a browser game's pages)
  --txn-timeout-ms <n>     a task's time budget in ms (default 100)
  --workers <n>            worker threads that run tasks (default 0: the main thread runs them)
  --log-level <level>      debug | info (default) | warn | error
  -h, --help               this text
`;

/** What `main` needs from the outside world; tests substitute their own. */
export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM). */
  readonly stopSignal: Promise<string>;
}

/**
 * Runs the command line. Resolves with the process exit code: 0 after a clean stop, 1 on a runtime
 * failure, 2 on a usage or configuration error.
 */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  if (argv[0] === "inspect") return inspect(argv.slice(1), io);
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    io.err(`shardless: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.help) {
    io.out(USAGE);
    return 0;
  }
  try {
    return await start(parsed, io);
  } catch (error) {
    io.err(`shardless: ${describe(error)}\n`);
    return error instanceof ConfigError || error instanceof AppLoadError ? 2 : 1;
  }
}

interface ParsedArgs {
  readonly help: boolean;
  readonly appModule: string;
  readonly config: Record<string, unknown>;
  readonly logLevel: LogLevel;
}

function parse(argv: readonly string[]): ParsedArgs {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      "data-dir": { type: "string" },
      durability: { type: "string" },
      config: { type: "string" },
      prop: { type: "string", multiple: true },
      "txn-timeout-ms": { type: "string" },
      "tcp-port": { type: "string" },
      "http-port": { type: "string" },
      host: { type: "string" },
      "password-file": { type: "string" },
      "static-dir": { type: "string" },
      workers: { type: "string" },
      "log-level": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help === true) return { help: true, appModule: "", config: {}, logLevel: "info" };
  const [command, appModule, ...extra] = positionals;
  if (command !== "start") throw new Error(command === undefined ? "missing command" : `unknown command ${JSON.stringify(command)}`);
  if (appModule === undefined) throw new Error("missing the application module to start");
  if (extra.length > 0) throw new Error(`unexpected argument ${JSON.stringify(extra[0])}`);
  const config: Record<string, unknown> = values.config === undefined ? {} : readConfigFile(values.config);
  if (values["data-dir"] !== undefined) config.dataDir = values["data-dir"];
  if (values.durability !== undefined) config.durability = values.durability;
  if (values["txn-timeout-ms"] !== undefined) config.txnTimeoutMs = numberFlag("--txn-timeout-ms", values["txn-timeout-ms"]);
  if (values["tcp-port"] !== undefined) config.tcpPort = numberFlag("--tcp-port", values["tcp-port"]);
  if (values["http-port"] !== undefined) config.httpPort = numberFlag("--http-port", values["http-port"]);
  if (values.host !== undefined) config.host = values.host;
  if (values["password-file"] !== undefined) config.passwordFile = values["password-file"];
  if (values["static-dir"] !== undefined) config.staticDir = values["static-dir"];
  if (values.workers !== undefined) config.workers = numberFlag("--workers", values.workers);
  if (values.prop !== undefined) config.appProperties = { ...(config.appProperties as object | undefined), ...properties(values.prop) };
  const logLevel = values["log-level"] ?? "info";
  if (!["debug", "info", "warn", "error"].includes(logLevel)) throw new Error(`--log-level must be debug, info, warn or error, got ${JSON.stringify(logLevel)}`);
  return { help: false, appModule, config, logLevel: logLevel as LogLevel };
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new ConfigError(`cannot read config file ${path}: ${(cause as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(cause as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ConfigError(`config file ${path} must hold a JSON object`);
  return value as Record<string, unknown>;
}

function numberFlag(flag: string, text: string): number {
  const value = Number(text);
  if (text.trim() === "" || Number.isNaN(value)) throw new Error(`${flag} needs a number, got ${JSON.stringify(text)}`);
  return value;
}

function properties(pairs: readonly string[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (const pair of pairs) {
    const equals = pair.indexOf("=");
    if (equals <= 0) throw new Error(`--prop needs key=value, got ${JSON.stringify(pair)}`);
    result[pair.slice(0, equals)] = pair.slice(equals + 1);
  }
  return result;
}

async function start(args: ParsedArgs, io: CliIo): Promise<number> {
  const app = await loadApp(args.appModule);
  const logger = new JsonLineLogger(io.err, args.logLevel);
  let fatal: ((error: unknown) => void) | undefined;
  const failed = new Promise<unknown>((resolveFailure) => (fatal = resolveFailure));
  const server = await startServer({ ...args.config, app, appModule: resolve(args.appModule), logger, onFatal: (error) => fatal?.(error), onStartupProgress: progressLines(io) });
  io.out(
    `Shardless is running ${app.name} from ${args.appModule}\n` +
      `  tasks: ${server.config.workers === 0 ? "on the main thread" : `on ${server.config.workers} worker thread(s)`}\n` +
      `  data: ${server.config.durability === "memory" ? "in memory (nothing is kept)" : resolve(server.config.dataDir)} (durability ${server.config.durability})\n` +
      `  ${server.initialized ? "new data store: initialize() ran" : `existing data store: ${server.resumedTasks} scheduled task(s) resumed`}\n` +
      `  ${server.tcpPort === null ? "no TCP listener" : `Darkstar protocol on tcp://${server.config.host}:${server.tcpPort}`}\n` +
      `  ${server.httpPort === null ? "no HTTP listener" : `WebSocket clients at ws://${server.config.host}:${server.httpPort}/ws`}\n` +
      `  stop with Ctrl-C\n`,
  );
  const outcome = await Promise.race([io.stopSignal.then((signal) => ({ signal })), failed.then((error) => ({ error }))]);
  await server.close().catch((error: unknown) => io.err(`shardless: error while stopping: ${describe(error)}\n`));
  if ("error" in outcome) {
    io.err(`shardless: stopped after a store failure: ${describe(outcome.error)}\n`);
    return 1;
  }
  io.out(`Shardless stopped (${outcome.signal}); everything committed is saved.\n`);
  return 0;
}

/**
 * Start-up's recovery work as live lines on standard error, at most one a second: a small store
 * starts in silence, a big one shows that it is moving and how far it has got.
 */
function progressLines(io: CliIo): (progress: StartupProgress) => void {
  let shown = Date.now();
  return (progress) => {
    const now = Date.now();
    if (now - shown < 1000) return;
    shown = now;
    io.err(`starting: ${progress.phase}: ${progress.done}${progress.total === undefined ? "" : ` of ${progress.total}`}\n`);
  };
}

async function loadApp(modulePath: string): Promise<AppListenerClass> {
  const absolute = resolve(modulePath);
  if (!existsSync(absolute)) throw new AppLoadError(`cannot find the application module ${modulePath} (looked at ${absolute})`);
  let module: { default?: unknown };
  try {
    module = (await import(pathToFileURL(absolute).href)) as { default?: unknown };
  } catch (cause) {
    throw new AppLoadError(`cannot load ${modulePath}: ${describe(cause)}`, { cause });
  }
  if (typeof module.default !== "function") {
    throw new AppLoadError(`${modulePath} must default-export its AppListener class (export default class MyApp ...)`);
  }
  return module.default as AppListenerClass;
}

function describe(error: unknown): string {
  if (error instanceof ShardlessError) {
    const cause = error.cause instanceof Error && !error.message.includes(error.cause.message) ? ` (${error.cause.message})` : "";
    return `${error.message}${cause} [${error.code}]`;
  }
  return error instanceof Error ? error.message : String(error);
}

function processIo(): CliIo {
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    stopSignal: new Promise((resolveSignal) => {
      const stop = (signal: string) => resolveSignal(signal);
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    }),
  };
}
