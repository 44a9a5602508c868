// A TCP proxy the tests can cut, as a network failure would: both ends see their peer vanish,
// neither side chose to close. New connections can be held until the test lets them through.
import { createServer, connect, type AddressInfo, type Server, type Socket } from "node:net";

export class TcpProxy {
  private readonly pairs = new Set<[Socket, Socket | undefined]>();
  private held: (() => void)[] | undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** Listens on a free port of 127.0.0.1 and forwards to `targetPort`. */
  static async start(targetPort: number): Promise<TcpProxy> {
    // Connections are only accepted once listening, by which time `proxy` is set.
    const server = createServer((client) => proxy.accept(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const proxy = new TcpProxy(server, (server.address() as AddressInfo).port);
    return proxy;
  }

  /** Destroys every forwarded connection on both sides; new ones are held until {@link release}. */
  cut(): void {
    this.held ??= [];
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream?.destroy();
    }
    this.pairs.clear();
  }

  /** Lets held and future connections through. */
  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const open of held) open();
  }

  async close(): Promise<void> {
    this.cut();
    this.release();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, targetPort: number): void {
    const pair: [Socket, Socket | undefined] = [client, undefined];
    this.pairs.add(pair);
    client.on("error", () => client.destroy());
    client.pause(); // nothing is lost while the connection is held
    const open = () => {
      if (client.destroyed) return;
      const upstream = connect({ port: targetPort, host: "127.0.0.1" });
      pair[1] = upstream;
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    };
    if (this.held !== undefined) this.held.push(open);
    else open();
  }
}
