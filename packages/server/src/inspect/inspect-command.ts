import { parseArgs } from "node:util";
import * as queries from "./queries.js";
import { renderBindings, renderChannels, renderFind, renderObject, renderSessions, renderStats, renderTasks } from "./render.js";
import { StoreReader } from "./store-reader.js";

/** Usage of `shardless inspect`. */
export const INSPECT_USAGE = `Usage: shardless inspect <data dir> [what] [options]

Shows what a data store holds, read-only: it takes no lock and writes nothing, so it
works on a stopped store and on one a running server is writing to.

What:
  stats                  counts, size on disk, metadata, whether a server runs (default)
  bindings [prefix]      the application's bindings (names starting with prefix)
  object <id>            one object decoded: class tag, version, fields, bindings, Refs
  find <class tag>       objects of a class tag (a scan in id order)
  tasks                  pending one-shot and periodic tasks
  sessions               stored client sessions
  channels               channels and their member counts

Options:
  --json                 machine-readable output
  --all                  bindings: every binding under its full key (a. application, s. services)
  --follow               object: show the fields of the objects its Refs point to
  --limit <n>            bindings, find, tasks, sessions, channels: at most n items (default 100)
  --after <cursor>       continue a listing after this name or id (printed when more follow)
  -h, --help             this text
`;

/** Where `inspect` writes: standard output and standard error in the command. */
export interface InspectIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** A command line that asks for something `inspect` cannot do: exit code 2. */
class UsageError extends Error {}

/** The store holds nothing answering the request (an unknown object id): exit code 1. */
class NotFoundError extends Error {}

type Option = "all" | "follow" | "limit" | "after";

/** Each subcommand's positional arguments (a trailing `?` marks an optional one) and options. */
const SUBCOMMANDS: Readonly<Record<string, { readonly args: readonly string[]; readonly options: readonly Option[] }>> = {
  stats: { args: [], options: [] },
  bindings: { args: ["prefix?"], options: ["all", "limit", "after"] },
  object: { args: ["id"], options: ["follow"] },
  find: { args: ["class tag"], options: ["limit", "after"] },
  tasks: { args: [], options: ["limit", "after"] },
  sessions: { args: [], options: ["limit", "after"] },
  channels: { args: [], options: ["limit", "after"] },
};

const DEFAULT_LIMIT = 100;
const MAX_ID = 2n ** 64n - 1n;

/** A parsed `inspect` command line. */
interface InspectRequest {
  readonly dataDir: string;
  readonly what: string;
  readonly args: readonly string[];
  readonly json: boolean;
  readonly all: boolean;
  readonly follow: boolean;
  readonly limit: number;
  readonly after: string | undefined;
}

/**
 * Runs `shardless inspect` with the arguments after `inspect`. Resolves with the exit code: 0 when
 * the answer was printed, 1 when the store is missing, unreadable or of another format (or the
 * object asked for does not exist), 2 on a usage error. Never rejects.
 */
export async function inspect(argv: readonly string[], io: InspectIo): Promise<number> {
  let request: InspectRequest | "help";
  try {
    request = parse(argv);
  } catch (error) {
    io.err(`shardless inspect: ${(error as Error).message}\n\n${INSPECT_USAGE}`);
    return 2;
  }
  if (request === "help") {
    io.out(INSPECT_USAGE);
    return 0;
  }
  try {
    io.out(await answer(request));
    return 0;
  } catch (error) {
    io.err(`shardless inspect: ${(error as Error).message}\n`);
    return error instanceof UsageError ? 2 : 1;
  }
}

function parse(argv: readonly string[]): InspectRequest | "help" {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      json: { type: "boolean" },
      all: { type: "boolean" },
      follow: { type: "boolean" },
      limit: { type: "string" },
      after: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help === true) return "help";
  const [dataDir, what = "stats", ...args] = positionals;
  if (dataDir === undefined) throw new UsageError("missing the data directory to inspect");
  const spec = SUBCOMMANDS[what];
  if (spec === undefined) throw new UsageError(`unknown thing to inspect ${JSON.stringify(what)} (one of ${Object.keys(SUBCOMMANDS).join(", ")})`);
  checkArguments(what, spec.args, args);
  for (const option of ["all", "follow", "limit", "after"] as const) {
    if (values[option] !== undefined && !spec.options.includes(option)) throw new UsageError(`--${option} does not apply to ${what}`);
  }
  const after = values.after;
  if (after !== undefined && what === "find") parseId("--after", after);
  return {
    dataDir,
    what,
    args,
    json: values.json === true,
    all: values.all === true,
    follow: values.follow === true,
    limit: values.limit === undefined ? DEFAULT_LIMIT : parseLimit(values.limit),
    after,
  };
}

function checkArguments(what: string, expected: readonly string[], given: readonly string[]): void {
  const required = expected.filter((name) => !name.endsWith("?"));
  if (given.length < required.length) throw new UsageError(`${what} needs the ${required[given.length]!}`);
  if (given.length > expected.length) throw new UsageError(`unexpected argument ${JSON.stringify(given[expected.length])}`);
}

function parseLimit(text: string): number {
  const limit = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(limit) || limit < 1) throw new UsageError(`--limit needs a whole number >= 1, got ${JSON.stringify(text)}`);
  return limit;
}

function parseId(what: string, text: string): bigint {
  const id = /^\d+$/.test(text) ? BigInt(text) : -1n;
  if (id < 0n || id > MAX_ID) throw new UsageError(`${what} needs an object id (a whole number of at most 64 bits), got ${JSON.stringify(text)}`);
  return id;
}

/** Opens the store, answers the request from one read transaction and closes it again. */
async function answer(request: InspectRequest): Promise<string> {
  // Parsed before the store is opened, so that a bad id is a usage error whatever the store.
  const id = request.what === "object" ? parseId("object", request.args[0]!) : undefined;
  const reader = StoreReader.open(request.dataDir);
  try {
    return run(reader, request, id);
  } finally {
    await reader.close();
  }
}

function run(reader: StoreReader, request: InspectRequest, id: bigint | undefined): string {
  const page = { limit: request.limit, after: request.after };
  const output = (report: unknown, human: () => string) => (request.json ? `${JSON.stringify(report, null, 2)}\n` : human());
  switch (request.what) {
    case "bindings": {
      const report = queries.bindings(reader, request.args[0] ?? "", request.all, page);
      return output(report, () => renderBindings(report));
    }
    case "object": {
      const report = objectReport(reader, id!, request.follow);
      return output(report, () => renderObject(report));
    }
    case "find": {
      const report = queries.find(reader, request.args[0]!, page);
      return output(report, () => renderFind(request.args[0]!, report));
    }
    case "tasks": {
      const report = queries.tasks(reader, page);
      return output(report, () => renderTasks(report));
    }
    case "sessions": {
      const report = queries.sessions(reader, page);
      return output(report, () => renderSessions(report));
    }
    case "channels": {
      const report = queries.channels(reader, page);
      return output(report, () => renderChannels(report));
    }
    default: {
      const report = queries.stats(reader);
      return output(report, () => renderStats(report));
    }
  }
}

function objectReport(reader: StoreReader, id: bigint, follow: boolean): queries.ObjectReport {
  let report: queries.ObjectReport | undefined;
  try {
    report = queries.object(reader, id, follow);
  } catch (error) {
    throw new Error(`object #${id} in ${reader.directory} cannot be decoded: ${(error as Error).message}`, { cause: error });
  }
  if (report === undefined) throw new NotFoundError(`${reader.directory} holds no object #${id}`);
  return report;
}
