// The "no framework" upper bound: a hand-written Node server speaking the same frames, holding the
// accounts in a plain array. No transactions, no persistence, no per-session ordering machinery.
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { FrameReader, decodeClientMessage, encodeFrame, encodeMessage } from "@shardless/protocol";
import { INITIAL_BALANCE, decodeRequest, encodeReply } from "./workload.ts";

/** The accounts, and the same transfer rule as the Shardless application. */
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

/** Serves `bank` over TCP with Darkstar's framing; writes are coalesced per event-loop turn. */
export async function startBaselineServer(bank: MemoryBank): Promise<{ port: number; server: Server }> {
  const server = createServer({ noDelay: true }, (socket) => serve(socket, bank));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as AddressInfo).port, server };
}

function serve(socket: Socket, bank: MemoryBank): void {
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
  socket.on("error", () => socket.destroy());
  socket.on("data", (chunk: Buffer) => {
    for (const payload of reader.push(chunk)) {
      const message = decodeClientMessage(payload);
      if (message.op === "LOGIN_REQUEST") send(encodeMessage({ op: "LOGIN_SUCCESS", reconnectKey: new Uint8Array(16) }));
      else if (message.op === "SESSION_MESSAGE") {
        const request = decodeRequest(message.message);
        send(encodeMessage({ op: "SESSION_MESSAGE", message: encodeReply(request.requestId, bank.transfer(request.from, request.to, request.amount)) }));
      } else if (message.op === "LOGOUT_REQUEST") socket.end(encodeFrame(encodeMessage({ op: "LOGOUT_SUCCESS" })));
    }
  });
}
