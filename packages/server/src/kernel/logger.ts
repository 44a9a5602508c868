/** Where the server writes its log records. */
export interface Logger {
  debug(message: string, fields?: Readonly<Record<string, unknown>>): void;
  info(message: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void;
  error(message: string, fields?: Readonly<Record<string, unknown>>): void;
}

/** The level names, least severe first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/** Writes one JSON object per line: `{time, level, msg, ...fields}`; errors become `{name, message, code}`. */
export class JsonLineLogger implements Logger {
  private readonly minimum: number;

  constructor(
    private readonly write: (line: string) => void,
    level: LogLevel = "info",
  ) {
    this.minimum = LEVELS.indexOf(level);
  }

  debug(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.emit("debug", message, fields);
  }
  info(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.emit("info", message, fields);
  }
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.emit("warn", message, fields);
  }
  error(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.emit("error", message, fields);
  }

  private emit(level: LogLevel, message: string, fields: Readonly<Record<string, unknown>> | undefined): void {
    if (LEVELS.indexOf(level) < this.minimum) return;
    const record = { time: new Date().toISOString(), level, msg: message, ...fields };
    this.write(`${JSON.stringify(record, jsonSafe)}\n`);
  }
}

function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: value.message, ...(code === undefined ? {} : { code }), ...(value.cause === undefined ? {} : { cause: value.cause }) };
  }
  return value;
}

/** Discards everything. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
