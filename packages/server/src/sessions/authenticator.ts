import { readFileSync } from "node:fs";
import { scrypt, timingSafeEqual } from "node:crypto";
import { ConfigError } from "../api/errors.js";

/** Who is asking to log in. */
export interface LoginAttempt {
  readonly name: string;
  readonly password: string;
  /** The client's address, for logs and rate limits. */
  readonly remoteAddress: string;
}

/**
 * Decides whether a login may proceed. Implementations may be asynchronous (a database, a web
 * service): the session service waits, outside any task. Return false (or throw) to refuse; the
 * reason is logged, and the client only sees "login refused".
 */
export interface Authenticator {
  authenticate(attempt: LoginAttempt): boolean | Promise<boolean>;
}

/** Lets everyone in under any name. For development: the server warns when it starts with it. */
export class AcceptAllAuthenticator implements Authenticator {
  authenticate(): boolean {
    return true;
  }
}

interface ScryptEntry {
  readonly cost: number;
  readonly blockSize: number;
  readonly parallelization: number;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

/**
 * Names and scrypt password hashes, one per line: `name:scrypt:N:r:p:<salt base64>:<hash base64>`
 * (`#` starts a comment). Passwords are never stored; {@link PasswordFileAuthenticator.hashLine}
 * makes a line.
 */
export class PasswordFileAuthenticator implements Authenticator {
  private constructor(private readonly entries: ReadonlyMap<string, ScryptEntry>) {}

  /**
   * Reads a password file.
   * @throws {ConfigError} naming the file and line of any malformed entry.
   */
  static fromFile(path: string): PasswordFileAuthenticator {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (cause) {
      throw new ConfigError(`cannot read password file ${path}: ${(cause as Error).message}`);
    }
    return PasswordFileAuthenticator.fromText(text, path);
  }

  /** Parses password-file text (see the class comment). */
  static fromText(text: string, source = "password file"): PasswordFileAuthenticator {
    const entries = new Map<string, ScryptEntry>();
    text.split("\n").forEach((raw, index) => {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) return;
      const parts = line.split(":");
      const [name, scheme, n, r, p, salt, hash] = parts;
      const numbers = [n, r, p].map(Number);
      const where = `${source} line ${index + 1}`;
      if (parts.length !== 7 || !name || scheme !== "scrypt" || numbers.some((v) => !Number.isInteger(v) || v <= 0)) {
        throw new ConfigError(`${where}: expected name:scrypt:N:r:p:salt:hash`);
      }
      const cost = numbers[0]!;
      if (cost < 2 || (cost & (cost - 1)) !== 0) throw new ConfigError(`${where}: N must be a power of 2 greater than 1`);
      const saltBytes = decodeBase64(salt ?? "", where, "salt");
      const hashBytes = decodeBase64(hash ?? "", where, "hash");
      entries.set(name, { cost, blockSize: numbers[1]!, parallelization: numbers[2]!, salt: saltBytes, hash: hashBytes });
    });
    return new PasswordFileAuthenticator(entries);
  }

  /** A password-file line for `name` and `password`, with a fresh random salt. */
  static async hashLine(name: string, password: string, cost = 16384, blockSize = 8, parallelization = 1): Promise<string> {
    if (name.includes(":") || name.includes("\n")) throw new RangeError("names in a password file cannot contain ':' or a newline");
    const { randomBytes } = await import("node:crypto");
    const salt = randomBytes(16);
    const hash = await derive(password, salt, 32, cost, blockSize, parallelization);
    return `${name}:scrypt:${cost}:${blockSize}:${parallelization}:${salt.toString("base64")}:${hash.toString("base64")}`;
  }

  async authenticate(attempt: LoginAttempt): Promise<boolean> {
    const known = this.entries.get(attempt.name);
    // An unknown name costs as much as a known one, so timing does not tell which names exist.
    const entry = known ?? this.decoy();
    const hash = await derive(attempt.password, entry.salt, entry.hash.length, entry.cost, entry.blockSize, entry.parallelization);
    return timingSafeEqual(hash, entry.hash) && known !== undefined;
  }

  private decoyEntry: ScryptEntry | undefined;

  /** An entry with the costs most real entries use, for unknown names. */
  private decoy(): ScryptEntry {
    if (this.decoyEntry === undefined) {
      const model = this.entries.values().next().value ?? { cost: 16384, blockSize: 8, parallelization: 1 };
      this.decoyEntry = { cost: model.cost, blockSize: model.blockSize, parallelization: model.parallelization, salt: Buffer.alloc(16), hash: Buffer.alloc(32) };
    }
    return this.decoyEntry;
  }
}

/** Salts and hashes shorter than this are refused: an empty hash would match any password. */
const MIN_SALT_OR_HASH_BYTES = 16;

function decodeBase64(text: string, where: string, what: string): Buffer {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw new ConfigError(`${where}: the ${what} is not base64`);
  const bytes = Buffer.from(text, "base64");
  if (bytes.length < MIN_SALT_OR_HASH_BYTES) throw new ConfigError(`${where}: the ${what} must have at least ${MIN_SALT_OR_HASH_BYTES} bytes`);
  return bytes;
}

function derive(password: string, salt: Buffer, length: number, cost: number, blockSize: number, parallelization: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, length, { N: cost, r: blockSize, p: parallelization, maxmem: 256 * cost * blockSize + 1024 * 1024 }, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}
