import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Logger } from "../kernel/logger.js";
import type { ConnectionHandler, TransportLimits } from "./connection.js";
import { listen } from "./queued-connection.js";
import { WsTransport } from "./ws-transport.js";

/** Path of the WebSocket endpoint on the HTTP port. */
export const WEBSOCKET_PATH = "/ws";

/** The HTTP port: WebSocket clients at `/ws`; other paths answer 404 for now. */
export class HttpListener {
  private readonly server: Server;
  private readonly ws: WsTransport;

  constructor(handler: ConnectionHandler, limits: TransportLimits, logger: Logger, nextId: () => number) {
    this.server = createServer((request, response) => this.serve(request, response));
    this.ws = new WsTransport(this.server, WEBSOCKET_PATH, handler, limits, logger, nextId);
  }

  /** Starts listening; resolves with the port (useful when `port` is 0). */
  listen(port: number, host: string): Promise<number> {
    return listen(this.server, port, host);
  }

  /** Closes WebSocket connections and the HTTP server. */
  async close(): Promise<void> {
    await this.ws.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(request: IncomingMessage, response: ServerResponse): void {
    const body = request.url === WEBSOCKET_PATH ? "this endpoint speaks WebSocket\n" : "not found\n";
    response.writeHead(request.url === WEBSOCKET_PATH ? 426 : 404, { "content-type": "text/plain; charset=utf-8" });
    response.end(body);
  }
}
