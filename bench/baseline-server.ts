// Servers that speak the same frames as Shardless, for the baselines: each request handled by a
// function, one at a time per connection (the per-client order Shardless also keeps).
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { FrameReader, decodeClientMessage, encodeFrame, encodeMessage } from "@shardless/protocol";
import { INITIAL_BALANCE, decodeRequest, encodeReply } from "./workload.ts";

/** Handles one request's bytes; returns the reply's bytes. */
export type RequestHandler = (request: Uint8Array) => Uint8Array | Promise<Uint8Array>;

/** A transfer handler as a request handler. */
export function transferHandler(transfer: (from: number, to: number, amount: number) => boolean | Promise<boolean>): RequestHandler {
  return (bytes) => {
    const request = decodeRequest(bytes);
    const result = transfer(request.from, request.to, request.amount);
    return typeof result === "boolean" ? encodeReply(request.requestId, result) : result.then((ok) => encodeReply(request.requestId, ok));
  };
}

/** The accounts in a plain array: the "no framework" upper bound, with the Shardless app's rule. */
export class MemoryBank {
  readonly balances: Int32Array;

  constructor(accounts: number) {
    this.balances = new Int32Array(accounts).fill(INITIAL_BALANCE);
  }

  transfer(from: number, to: number, amount: number): boolean {
    if (this.balances[from]! < amount) return false;
    this.balances[from]! -= amount;
    this.balances[to]! += amount;
    return true;
  }

  total(): number {
    return this.balances.reduce((sum, balance) => sum + balance, 0);
  }
}

/** Serves `handler` over TCP with Darkstar's framing; writes are coalesced per event-loop turn. */
export async function startFramedServer(handler: RequestHandler): Promise<{ port: number; server: Server }> {
  const server = createServer({ noDelay: true }, (socket) => serve(socket, handler));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as AddressInfo).port, server };
}

function serve(socket: Socket, handler: RequestHandler): void {
  const reader = new FrameReader();
  let pending: Uint8Array[] = [];
  const flush = () => {
    socket.write(Buffer.concat(pending));
    pending = [];
  };
  const send = (payload: Uint8Array) => {
    if (pending.length === 0) queueMicrotask(flush);
    pending.push(encodeFrame(payload));
  };
  const queue: Uint8Array[] = [];
  let busy = false;
  const next = (): void => {
    while (!busy && queue.length > 0) {
      const answer = (reply: Uint8Array) => send(encodeMessage({ op: "SESSION_MESSAGE", message: reply }));
      const result = handler(queue.shift()!);
      if (result instanceof Uint8Array) {
        answer(result);
        continue;
      }
      busy = true;
      void result.then(answer, () => undefined).finally(() => {
        busy = false;
        next();
      });
    }
  };
  socket.on("error", () => socket.destroy());
  socket.on("data", (chunk: Buffer) => {
    for (const payload of reader.push(chunk)) {
      const message = decodeClientMessage(payload);
      if (message.op === "LOGIN_REQUEST") send(encodeMessage({ op: "LOGIN_SUCCESS", reconnectKey: new Uint8Array(16) }));
      else if (message.op === "SESSION_MESSAGE") {
        queue.push(message.message.slice());
        next();
      } else if (message.op === "LOGOUT_REQUEST") socket.end(encodeFrame(encodeMessage({ op: "LOGOUT_SUCCESS" })));
    }
  });
}
