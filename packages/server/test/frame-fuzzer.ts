/**
 * Hostile connection scripts for fuzzing the server over real sockets. Script `i` of a seed is a
 * pure function of the seed and `i`, so a failing connection is replayed from the printed seed
 * whatever order the connections ran in.
 *
 * A script starts with frames sent before login: valid frames the server ignores before login
 * (SESSION_MESSAGE, CHANNEL_MESSAGE, SUSPEND_MESSAGES_COMPLETE), the same mutated (bits flipped,
 * truncated, extended, bytes overwritten) where the result still decodes to one of those, and, at a
 * rate the script draws, hostile pieces: mutations of every client opcode kept whatever they
 * decode to, valid frames of every opcode, random garbage, and over TCP broken framing (wrong and
 * huge length prefixes, zero lengths, frames cut short or extended). The client-side decoder then
 * predicts what the server must do: the stream is cut after the first frame that ends the
 * connection, and the script records whether that counts as a protocol error. A script whose
 * stream stays benign may go on to log in, send more (echoed) benign frames and a sentinel whose
 * echo proves every earlier frame was handled, in order, and may end with one more fatal frame.
 */
import { ProtocolError, decodeClientMessage, encodeMessage, type ClientMessage } from "@shardless/protocol";
import { seededRandom } from "./crash-harness.ts";

/** How the frames sent before login end. */
export type PreOutcome =
  /** A frame that fails decoding, or a zero-length frame: the server closes and counts a protocol error. */
  | "fatal"
  /** A frame the server answers by closing, without counting an error (wrong version, logout, reconnect, relocate). */
  | "closing"
  /** A mutation that happens to be a valid version-5 login: it may succeed. */
  | "stray-login"
  /** The stream ends inside a frame: the server holds the partial frame. */
  | "partial"
  /** Every frame was benign. */
  | "clean";

/** A connection's script. TCP pieces are length-prefixed stream bytes; WebSocket pieces are messages. */
export interface FuzzScript {
  readonly index: number;
  readonly transport: "tcp" | "ws";
  /** Before login: TCP stream bytes (one element per piece), or WebSocket messages. */
  readonly pre: readonly WirePiece[];
  readonly preOutcome: PreOutcome;
  /** When `preOutcome` is clean: the login, then benign pieces after it, and the echoes they must produce. */
  readonly login: { readonly name: string; readonly post: readonly WirePiece[]; readonly echoes: readonly Uint8Array[]; readonly sentinel: Uint8Array } | undefined;
  /** After the sentinel's echo: one more piece that closes the connection as a protocol error. */
  readonly postFatal: WirePiece | undefined;
  /** How a script that logged in and has no `postFatal` ends. */
  readonly end: "logout" | "drop";
  /** Protocol errors the server must count for this connection (0 or 1). */
  readonly protocolErrors: number;
  /** Frames the script sends (a garbage piece counts as one; the login, sentinel and logout too). */
  readonly frames: number;
  /** Of those, how many were mutated or random. */
  readonly mutated: number;
}

/** One piece on the wire. `text` marks a WebSocket text message. */
export interface WirePiece {
  readonly bytes: Uint8Array;
  readonly text?: boolean;
  /** A WebSocket message sent in this many fragments (1: unfragmented). */
  readonly fragments?: number;
}

type Verdict = "benign" | "fatal" | "closing" | "stray-login";

const BENIGN = new Set(["SESSION_MESSAGE", "CHANNEL_MESSAGE", "SUSPEND_MESSAGES_COMPLETE"]);

/** What the server does with one payload on a connection that has not logged in. */
export function verdictBeforeLogin(payload: Uint8Array): Verdict {
  let message: ClientMessage;
  try {
    message = decodeClientMessage(payload);
  } catch (error) {
    if (error instanceof ProtocolError) return "fatal";
    // Anything else is a decoder bug: let the test fail on it, with the payload.
    throw new Error(`the decoder threw ${String(error)} for ${Buffer.from(payload).toString("hex")}`, { cause: error });
  }
  if (BENIGN.has(message.op)) return "benign";
  if (message.op === "LOGIN_REQUEST" && message.version === 5) return "stray-login";
  return "closing";
}

const frame = (payload: Uint8Array) => {
  const bytes = new Uint8Array(2 + payload.length);
  bytes[0] = payload.length >> 8;
  bytes[1] = payload.length & 0xff;
  bytes.set(payload, 2);
  return bytes;
};

/** Builds the scripts of one seed. */
export class FrameFuzzer {
  constructor(readonly seed: number) {}

  /** Script `index`; every fourth one runs over WebSocket. */
  script(index: number): FuzzScript {
    const random = seededRandom((this.seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
    const transport = index % 4 === 3 ? "ws" : "tcp";
    return new ScriptBuilder(random, index, transport, this.seed).build();
  }
}

class ScriptBuilder {
  private frames = 0;
  private mutated = 0;

  constructor(
    private readonly random: () => number,
    private readonly index: number,
    private readonly transport: "tcp" | "ws",
    private readonly seed: number,
  ) {}

  build(): FuzzScript {
    const hostility = this.pick([0, 0.01, 0.04, 0.15]);
    const count = 1 + this.int(60);
    const pre: WirePiece[] = [];
    let preOutcome: PreOutcome = "clean";
    let protocolErrors = 0;
    if (this.transport === "tcp") {
      const stream: { bytes: Uint8Array; mutated: number }[] = [];
      for (let i = 0; i < count; i++) {
        const before = this.mutated;
        const bytes = this.random() < hostility ? this.hostileTcp() : frame(this.benignPayload());
        stream.push({ bytes, mutated: this.mutated - before });
      }
      // Predict, frame by frame as the server will cut them, and stop after the first that ends it.
      const bytes = Buffer.concat(stream.map((piece) => piece.bytes));
      let at = 0;
      for (;;) {
        if (bytes.length - at < 2) {
          if (at < bytes.length) preOutcome = "partial";
          break;
        }
        const length = (bytes[at]! << 8) | bytes[at + 1]!;
        if (length === 0) {
          preOutcome = "fatal";
          at += 2;
          break;
        }
        if (bytes.length - at - 2 < length) {
          preOutcome = "partial";
          at = bytes.length;
          break;
        }
        const verdict = verdictBeforeLogin(bytes.subarray(at + 2, at + 2 + length));
        at += 2 + length;
        if (verdict !== "benign") {
          preOutcome = verdict;
          break;
        }
      }
      // The stream as sent: cut after the deciding frame; garbage after a fatal one is never read.
      const sent = bytes.subarray(0, at);
      const tail = preOutcome === "fatal" && this.random() < 0.5 ? this.garbage(1 + this.int(200)) : new Uint8Array(0);
      pre.push({ bytes: Buffer.concat([sent, tail]) });
      // Count only what is sent: the pieces that start before the cut, and the garbage tail.
      this.frames = 0;
      this.mutated = 0;
      for (let offset = 0, i = 0; i < stream.length && offset < at; offset += stream[i]!.bytes.length, i++) {
        this.frames++;
        this.mutated += stream[i]!.mutated;
      }
      if (tail.length > 0) {
        this.frames++;
        this.mutated++;
      }
    } else {
      for (let i = 0; i < count; i++) {
        const piece = this.random() < hostility ? this.hostileWs() : { bytes: this.benignPayload(), fragments: this.fragments() };
        pre.push(piece);
        const verdict = wsVerdict(piece);
        if (verdict !== "benign") {
          preOutcome = verdict;
          break;
        }
      }
    }
    if (preOutcome === "fatal") protocolErrors = 1;
    let login: FuzzScript["login"];
    let postFatal: WirePiece | undefined;
    if (preOutcome === "clean" && this.random() < 0.85) {
      const post: WirePiece[] = [];
      const echoes: Uint8Array[] = [];
      const more = this.int(40);
      for (let i = 0; i < more; i++) {
        const payload = this.benignPayload();
        const message = decodeClientMessage(payload);
        if (message.op === "SESSION_MESSAGE") echoes.push(message.message.slice());
        post.push(this.transport === "tcp" ? { bytes: frame(payload) } : { bytes: payload, fragments: this.fragments() });
      }
      const sentinel = new TextEncoder().encode(`sentinel ${this.seed}/${this.index}`);
      login = { name: `fuzz-${this.seed}-${this.index}`, post, echoes, sentinel };
      if (this.random() < 0.3) {
        postFatal = this.postLoginFatal();
        protocolErrors = 1;
      }
    }
    const end = this.random() < 0.5 ? "logout" : "drop";
    // The login and the sentinel are frames too, and so is the logout.
    if (login !== undefined) this.frames += postFatal === undefined && end === "logout" ? 3 : 2;
    return {
      index: this.index,
      transport: this.transport,
      pre,
      preOutcome,
      login,
      postFatal,
      end,
      protocolErrors,
      frames: this.frames,
      mutated: this.mutated,
    };
  }

  // ---- pieces ----

  /** A frame payload the server ignores before login and handles after it, possibly mutated. */
  private benignPayload(): Uint8Array {
    this.frames++;
    const valid = this.validPayload(this.pick(["SESSION_MESSAGE", "SESSION_MESSAGE", "SESSION_MESSAGE", "CHANNEL_MESSAGE", "SUSPEND_MESSAGES_COMPLETE"]));
    if (this.random() < 0.25) return valid;
    for (let attempt = 0; attempt < 4; attempt++) {
      const mutant = this.mutate(valid);
      if (mutant.length > 0 && verdictBeforeLogin(mutant) === "benign") {
        this.mutated++;
        return mutant;
      }
    }
    return valid;
  }

  /** A hostile TCP piece: a mutation of any opcode, any valid frame, garbage, or broken framing. */
  private hostileTcp(): Uint8Array {
    this.frames++;
    this.mutated++;
    const payload = this.validPayload(this.anyOp());
    switch (this.int(9)) {
      case 0:
        this.mutated--;
        return frame(payload); // a valid frame of any opcode, logins and logouts included
      case 1:
      case 2: {
        const mutant = this.mutate(payload);
        return mutant.length === 0 ? new Uint8Array(2) : frame(mutant.subarray(0, 0xffff));
      }
      case 3:
        return this.garbage(1 + this.int(64));
      case 4: {
        // A wrong length prefix: off by a little, or anything at all.
        const framed = frame(payload);
        const length = this.random() < 0.5 ? Math.max(0, payload.length + this.int(7) - 3) : this.int(0x10000);
        framed[0] = length >> 8;
        framed[1] = length & 0xff;
        return framed;
      }
      case 5: {
        // A huge length: the rest of the stream disappears into it, or the frame never completes.
        const framed = frame(payload);
        framed[0] = 0xff;
        framed[1] = this.random() < 0.5 ? 0xff : this.int(256);
        return framed;
      }
      case 6:
        return new Uint8Array(2); // a zero-length frame
      case 7: {
        const framed = frame(payload);
        return framed.subarray(0, this.int(framed.length)); // cut short: the next frame's bytes fill it
      }
      default: {
        const framed = frame(payload);
        framed[this.int(2)]! ^= 1 << this.int(8); // a bit flipped in the length prefix
        return framed;
      }
    }
  }

  /** A hostile WebSocket message. */
  private hostileWs(): WirePiece {
    this.frames++;
    this.mutated++;
    const payload = this.validPayload(this.anyOp());
    switch (this.int(7)) {
      case 0:
        this.mutated--;
        return { bytes: payload };
      case 1:
      case 2:
        return { bytes: this.mutate(payload), fragments: this.fragments() };
      case 3:
        return { bytes: this.garbage(1 + this.int(64)) };
      case 4:
        return { bytes: new Uint8Array(0) };
      case 5:
        return { bytes: this.garbage(0x10000 + this.int(4000)) }; // over the largest frame
      default:
        return { bytes: this.garbage(1 + this.int(32)), text: true };
    }
  }

  /** After login: a frame that must close the connection as a protocol error. */
  private postLoginFatal(): WirePiece {
    this.frames++;
    this.mutated++;
    const choice = this.int(4);
    if (choice === 0) {
      // A second login on a logged-in connection is a violation.
      const login = encodeMessage({ op: "LOGIN_REQUEST", version: 5, name: `again-${this.index}`, password: "" });
      return this.transport === "tcp" ? { bytes: frame(login) } : { bytes: login };
    }
    if (choice === 1) return this.transport === "tcp" ? { bytes: new Uint8Array(2) } : { bytes: new Uint8Array(0) };
    if (choice === 2 && this.transport === "ws") return { bytes: this.garbage(8), text: true };
    for (;;) {
      const mutant = this.mutate(this.validPayload(this.anyOp()));
      if (mutant.length > 0 && verdictBeforeLogin(mutant) === "fatal") return this.transport === "tcp" ? { bytes: frame(mutant) } : { bytes: mutant };
    }
  }

  private validPayload(op: ClientMessage["op"]): Uint8Array {
    switch (op) {
      case "LOGIN_REQUEST":
        return encodeMessage({ op, version: this.random() < 0.8 ? 5 : this.int(256), name: this.text(), password: this.text() });
      case "RELOCATE_REQUEST":
        return encodeMessage({ op, version: this.random() < 0.8 ? 5 : this.int(256), relocationKey: this.garbage(this.int(24)) });
      case "RECONNECT_REQUEST":
        return encodeMessage({ op, version: this.random() < 0.8 ? 5 : this.int(256), reconnectKey: this.garbage(this.int(24)) });
      case "SESSION_MESSAGE":
        return encodeMessage({ op, message: this.garbage(this.random() < 0.02 ? this.int(20_000) : this.int(48)) });
      case "CHANNEL_MESSAGE":
        return encodeMessage({ op, channelId: BigInt(this.int(2 ** 30)) * BigInt(1 + this.int(2 ** 20)), message: this.garbage(this.int(48)) });
      case "SUSPEND_MESSAGES_COMPLETE":
      case "LOGOUT_REQUEST":
        return encodeMessage({ op });
    }
  }

  /** One mutation: bits flipped, truncated, extended, bytes overwritten or inserted. */
  private mutate(payload: Uint8Array): Uint8Array {
    const bytes = Uint8Array.from(payload);
    switch (this.int(6)) {
      case 0: {
        for (let flips = 1 + this.int(3); flips > 0 && bytes.length > 0; flips--) bytes[this.int(bytes.length)]! ^= 1 << this.int(8);
        return bytes;
      }
      case 1:
        return bytes.subarray(0, this.int(bytes.length));
      case 2:
        return Buffer.concat([bytes, this.garbage(1 + this.int(16))]);
      case 3: {
        if (bytes.length > 0) bytes[this.int(bytes.length)] = this.pick([0x00, 0xff, 0x7f, 0x80, 0xc0, 0xed, this.int(256)]);
        return bytes;
      }
      case 4: {
        const at = this.int(bytes.length + 1);
        return Buffer.concat([bytes.subarray(0, at), this.garbage(1 + this.int(8)), bytes.subarray(at)]);
      }
      default:
        // Another opcode on the same body: client, server-only or unknown.
        if (bytes.length > 0) bytes[0] = this.int(256);
        return bytes;
    }
  }

  private anyOp(): ClientMessage["op"] {
    return this.pick(["LOGIN_REQUEST", "SUSPEND_MESSAGES_COMPLETE", "RELOCATE_REQUEST", "RECONNECT_REQUEST", "SESSION_MESSAGE", "LOGOUT_REQUEST", "CHANNEL_MESSAGE"] as const);
  }

  private fragments(): number {
    return this.random() < 0.2 ? 2 + this.int(3) : 1;
  }

  private text(): string {
    const chars: string[] = [];
    for (let i = this.int(12); i > 0; i--) chars.push(String.fromCharCode(this.random() < 0.8 ? 0x20 + this.int(95) : this.int(0x10000)));
    return chars.join("");
  }

  private garbage(length: number): Uint8Array {
    const bytes = new Uint8Array(length);
    for (let i = 0; i < length; i++) bytes[i] = this.int(256);
    return bytes;
  }

  private int(bound: number): number {
    return Math.floor(this.random() * bound);
  }

  private pick<T>(choices: readonly T[]): T {
    return choices[this.int(choices.length)]!;
  }
}

/** What the server does with one WebSocket message before login. */
function wsVerdict(piece: WirePiece): Verdict {
  if (piece.text === true || piece.bytes.length === 0 || piece.bytes.length > 0xffff) return "fatal";
  return verdictBeforeLogin(piece.bytes);
}
