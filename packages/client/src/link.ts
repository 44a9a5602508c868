import { FrameReader, ProtocolError, encodeFrame } from "@shardless/protocol";
import { ConnectError } from "./errors.js";

/** A connection that moves frame payloads, whatever carries it. */
export interface Link {
  send(payload: Uint8Array): void;
  close(): void;
  onPayload: (payload: Uint8Array) => void;
  onClose: (error?: Error) => void;
}

/** Minimal shape of a WebSocket, as browsers and the `ws` package both provide it. */
interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** A WebSocket constructor: the browser's, or `ws`'s in Node. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** Opens a link over WebSocket: one frame per binary message, no length prefix. */
export async function openWebSocketLink(url: string, timeoutMs: number, implementation?: WebSocketConstructor): Promise<Link> {
  const WebSocketClass = implementation ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? (await loadWs());
  const socket = new WebSocketClass(url);
  socket.binaryType = "arraybuffer";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new ConnectError(`connecting to ${url} took longer than ${timeoutMs} ms`));
    }, timeoutMs);
    const settle = (outcome: () => void) => {
      clearTimeout(timer);
      outcome();
    };
    socket.onopen = () => settle(resolve);
    socket.onerror = () => settle(() => reject(new ConnectError(`cannot connect to ${url}`)));
    socket.onclose = () => settle(() => reject(new ConnectError(`connection to ${url} closed while opening`)));
  });
  const link: Link = {
    send: (payload) => socket.send(payload),
    close: () => socket.close(1000),
    onPayload: () => undefined,
    onClose: () => undefined,
  };
  socket.onmessage = (event) => {
    if (event.data instanceof ArrayBuffer) link.onPayload(new Uint8Array(event.data));
    else {
      link.onClose(new ProtocolError("unknown-opcode", "the server sent a text message"));
      socket.close(1003);
    }
  };
  socket.onerror = () => undefined; // onclose follows
  socket.onclose = () => link.onClose();
  return link;
}

async function loadWs(): Promise<WebSocketConstructor> {
  try {
    const module = (await import("ws")) as unknown as { WebSocket: WebSocketConstructor };
    return module.WebSocket;
  } catch (cause) {
    throw new ConnectError("no WebSocket available: install the `ws` package, or pass a WebSocket implementation", { cause });
  }
}

/** Opens a link over TCP (Node only): 2-byte length-prefixed frames. */
export async function openTcpLink(host: string, port: number, timeoutMs: number): Promise<Link> {
  const net = await import("node:net");
  const socket = net.connect({ host, port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ConnectError(`connecting to tcp://${host}:${port} took longer than ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once("error", (cause) => {
      clearTimeout(timer);
      reject(new ConnectError(`cannot connect to tcp://${host}:${port}`, { cause }));
    });
  });
  const reader = new FrameReader();
  const link: Link = {
    send: (payload) => socket.write(encodeFrame(payload)),
    close: () => socket.end(),
    onPayload: () => undefined,
    onClose: () => undefined,
  };
  let closed = false;
  const close = (error?: Error) => {
    if (closed) return;
    closed = true;
    link.onClose(error);
  };
  socket.on("data", (chunk: Uint8Array) => {
    try {
      for (const payload of reader.push(chunk)) link.onPayload(payload.slice());
    } catch (error) {
      socket.destroy();
      close(error as Error);
    }
  });
  socket.on("error", (error) => close(error));
  socket.on("close", () => close());
  return link;
}
