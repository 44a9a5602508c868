import { closeSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DataLockedError } from "../api/errors.js";

const LOCK_FILE = "shardless.lock";

/**
 * An exclusive claim on a data directory, held by one server at a time. LMDB itself lets several
 * processes write one environment; two servers validating commits independently would corrupt the
 * world, so each takes this lock first. A lock left by a process that no longer exists (after
 * `kill -9`) is taken over.
 */
export class DirectoryLock {
  private released = false;

  private constructor(private readonly path: string) {}

  /**
   * Takes the lock of `directory`.
   * @throws {DataLockedError} if a live process (this one included) holds it.
   */
  static acquire(directory: string): DirectoryLock {
    const path = join(directory, LOCK_FILE);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, "wx");
        writeSync(fd, `${process.pid}\n`);
        closeSync(fd);
        return new DirectoryLock(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      const holder = DirectoryLock.holder(directory);
      if (holder !== undefined) {
        throw new DataLockedError(`data directory ${directory} is in use by process ${holder}`);
      }
      rmSync(path, { force: true }); // stale: its process is gone
    }
    throw new DataLockedError(`could not lock data directory ${directory}`);
  }

  /** The pid of the live process holding `directory`'s lock (a running server), if any. Takes nothing. */
  static holder(directory: string): number | undefined {
    const pid = readHolder(join(directory, LOCK_FILE));
    return pid !== undefined && isAlive(pid) ? pid : undefined;
  }

  /** Gives the lock up. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    rmSync(this.path, { force: true });
  }
}

function readHolder(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, "utf8"), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
