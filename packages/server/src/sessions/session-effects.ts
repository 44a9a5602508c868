import type { EffectData } from "../kernel/effects.js";

/**
 * What committed tasks ask of the session service, as data (released on the main thread, where the
 * connections are): frames to deliver, channel membership as clients see it, sessions that begin
 * and end.
 */
export type SessionEffect = EffectData &
  (
    | { readonly to: "session"; readonly op: "send"; readonly session: bigint; readonly payload: Uint8Array }
    | { readonly to: "session"; readonly op: "fan-out"; readonly sessions: readonly bigint[]; readonly payload: Uint8Array }
    | { readonly to: "session"; readonly op: "joined"; readonly session: bigint; readonly channel: bigint; readonly payload: Uint8Array }
    | { readonly to: "session"; readonly op: "left"; readonly session: bigint; readonly channel: bigint; readonly payload: Uint8Array }
    /** A login task's session exists: the connection waiting under `login` is that session now. */
    | { readonly to: "session"; readonly op: "attach"; readonly session: bigint; readonly login: number }
    /** The session has ended (its stored record is gone). */
    | { readonly to: "session"; readonly op: "detach"; readonly session: bigint }
    /** The application asked for the session's client to be disconnected. */
    | { readonly to: "session"; readonly op: "disconnect"; readonly session: bigint }
    /** The application removed the session object: it ends now, and its connection closes. */
    | { readonly to: "session"; readonly op: "close"; readonly session: bigint }
  );

/** What the transactional half of the session service needs to know of live connections. */
export interface SessionView {
  /**
   * Bytes waiting to be written to session `id`'s client, or undefined when its client is gone or
   * going (what it is sent is dropped). On a worker thread this is as of the last report from the
   * main thread.
   */
  backlogOf(id: bigint): number | undefined;
  /** Cuts off session `id`'s client at once, whatever becomes of the task: it is not reading. */
  cutOff(id: bigint, backlog: number): void;
}
