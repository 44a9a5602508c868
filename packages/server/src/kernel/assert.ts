/** Thrown when an internal invariant fails: a bug in Shardless, never a user error. */
export class AssertionError extends Error {
  override name = "AssertionError";
}

/** Checks an invariant; stays on in production, because a broken invariant can corrupt the world. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(`invariant failed: ${message}`);
}
