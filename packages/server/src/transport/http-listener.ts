import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { DashboardAssets } from "../dashboard/dashboard-assets.js";
import { DASHBOARD_DATA_PATH } from "../dashboard/dashboard-data.js";
import { SDK_PATH, SdkBundle } from "../http/sdk-bundle.js";
import { serveStatic } from "../http/static-files.js";
import type { Logger } from "../kernel/logger.js";
import type { ConnectionHandler, TransportLimits } from "./connection.js";
import { listen } from "./queued-connection.js";
import { WsTransport } from "./ws-transport.js";

/** Path of the WebSocket endpoint on the HTTP port. */
export const WEBSOCKET_PATH = "/ws";

/** Path of the server's metrics, in Prometheus text format. */
export const METRICS_PATH = "/metrics";

/** Path of the conflict profile, as JSON. */
export const CONFLICTS_PATH = "/conflicts";

/** Path of the server's status, as JSON. */
export const STATUS_PATH = "/status";

/** What the HTTP port serves besides WebSocket clients. */
export interface HttpContent {
  /** Files served at `/` (a game's pages), or null for none. */
  readonly staticDir: string | null;
  /** The server's status at this moment, served as JSON at `/status`. */
  readonly status: () => Readonly<Record<string, unknown>>;
  /** The server's metrics in Prometheus text format, served at `/metrics`. */
  readonly metrics: () => Promise<{ contentType: string; body: string }>;
  /** What tasks fought over lately, served as JSON at `/conflicts`. */
  readonly conflicts: () => unknown;
  /** The figures the dashboard at `/dashboard` shows, served as JSON at `/dashboard/data`. */
  readonly dashboard: () => Promise<unknown>;
}

/**
 * The HTTP port: WebSocket clients at `/ws`, the client SDK as a browser module at
 * `/sdk/shardless-client.js`, the server's status at `/status`, metrics at `/metrics`, the
 * conflict profile at `/conflicts`, a live dashboard at `/dashboard` (its figures at
 * `/dashboard/data`), and a game's files from its
 * `staticDir` at every other path (404 without one). Only GET and HEAD are answered (405 else).
 */
export class HttpListener {
  private readonly server: Server;
  private readonly ws: WsTransport;
  private readonly sdk = new SdkBundle();
  private readonly dashboard = new DashboardAssets();

  constructor(
    handler: ConnectionHandler,
    limits: TransportLimits,
    private readonly logger: Logger,
    nextId: () => number,
    private readonly content: HttpContent = NOTHING_BUT_WEBSOCKETS,
  ) {
    this.server = createServer((request, response) => {
      this.serve(request, response).catch((error: unknown) => {
        this.logger.warn("an HTTP request failed", { url: request.url, error });
        if (!response.headersSent) response.writeHead(500, TEXT).end("internal error\n");
        else response.destroy();
      });
    });
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

  private async serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const method = request.method ?? "GET";
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (path === WEBSOCKET_PATH) return void response.writeHead(426, TEXT).end("this endpoint speaks WebSocket\n");
    if (method !== "GET" && method !== "HEAD") return void response.writeHead(405, { ...TEXT, allow: "GET, HEAD" }).end("method not allowed\n");
    if (path === STATUS_PATH) return send(response, method, JSON_TYPE, `${JSON.stringify(this.content.status())}\n`, "no-store");
    if (path === CONFLICTS_PATH) return send(response, method, JSON_TYPE, `${JSON.stringify(this.content.conflicts())}\n`, "no-store");
    if (path === METRICS_PATH) {
      const { contentType, body } = await this.content.metrics();
      return send(response, method, contentType, body, "no-store");
    }
    if (path === DASHBOARD_DATA_PATH) return send(response, method, JSON_TYPE, `${JSON.stringify(await this.content.dashboard())}\n`, "no-store");
    const page = this.dashboard.asset(path);
    if (page !== undefined) {
      const { contentType, body } = await page;
      return send(response, method, contentType, body, "no-cache");
    }
    if (path === SDK_PATH) return send(response, method, "text/javascript; charset=utf-8", await this.sdk.source(), "no-cache");
    if (this.content.staticDir === null) return void response.writeHead(404, TEXT).end("not found\n");
    await serveStatic(this.content.staticDir, path, method, response);
  }
}

const TEXT = { "content-type": "text/plain; charset=utf-8" };
const JSON_TYPE = "application/json; charset=utf-8";

const NOTHING_BUT_WEBSOCKETS: HttpContent = {
  staticDir: null,
  status: () => ({}),
  metrics: () => Promise.resolve({ contentType: "text/plain; charset=utf-8", body: "" }),
  conflicts: () => ({}),
  dashboard: () => Promise.resolve({}),
};

function send(response: ServerResponse, method: string, contentType: string, body: string, cacheControl: string): void {
  response.writeHead(200, { "content-type": contentType, "content-length": Buffer.byteLength(body), "cache-control": cacheControl });
  response.end(method === "HEAD" ? undefined : body);
}
