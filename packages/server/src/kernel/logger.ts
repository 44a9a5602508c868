import { pino, type Logger as PinoLogger } from "pino";

/** Where the server writes its log records. */
export interface Logger {
  debug(message: string, fields?: Readonly<Record<string, unknown>>): void;
  info(message: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void;
  error(message: string, fields?: Readonly<Record<string, unknown>>): void;
}

/** The level names, least severe first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/**
 * Writes one JSON object per line through pino: `{level, time, msg, ...fields}`, the level as its
 * name and the time in ISO 8601. Errors in fields become `{type, message, stack, code, ...}`;
 * bigints (object ids) become decimal strings, exact whatever their size.
 */
export class JsonLineLogger implements Logger {
  private readonly pino: PinoLogger;

  constructor(write: (line: string) => void, level: LogLevel = "info") {
    this.pino = pino(
      {
        level,
        base: undefined,
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
        serializers: { error: pino.stdSerializers.err, cause: pino.stdSerializers.err },
      },
      { write },
    );
  }

  debug(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.pino.debug(exact(fields), message);
  }
  info(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.pino.info(exact(fields), message);
  }
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.pino.warn(exact(fields), message);
  }
  error(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.pino.error(exact(fields), message);
  }
}

/** `fields` with bigint values as strings: JSON numbers past 2^53 lose digits in most readers. */
function exact(fields: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  if (fields === undefined) return copy;
  for (const [key, value] of Object.entries(fields)) copy[key] = typeof value === "bigint" ? value.toString() : value;
  return copy;
}

/** Discards everything. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
