// The SDK in a real browser (Debian's Chromium, driven by playwright-core): bundled for the web,
// it logs in over WebSocket, joins channels, talks and logs out.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { build } from "esbuild";
import { chromium } from "playwright-core";
import { silentLogger, startServer } from "shardless";
import HelloChannels from "../../../examples/hello-channels/app.ts";
import { withWorkers } from "../../server/test/test-workers.ts";

const CHROMIUM = "/usr/bin/chromium";
const SDK_ENTRY = fileURLToPath(new URL("../src/index.ts", import.meta.url));
/** What worker threads import to learn the application's classes (when the test run has workers). */
const APP_MODULE = new URL("../../../examples/hello-channels/app.ts", import.meta.url).href;

/** The SDK as one browser module; the Node-only transports stay out (they load lazily). */
async function bundleSdk(): Promise<string> {
  const result = await build({ entryPoints: [SDK_ENTRY], bundle: true, format: "esm", platform: "browser", target: "es2022", write: false, external: ["node:net", "ws"] });
  return result.outputFiles[0]!.text;
}

function page(wsUrl: string): string {
  return `<!doctype html><meta charset="utf-8"><title>sdk</title><script type="module">
import { connect } from "/sdk.js";
const log = [];
try {
  const session = await connect({ url: ${JSON.stringify(wsUrl)}, name: "browser" });
  session.on("channelJoin", (channel) => log.push("join " + channel.name));
  session.on("message", (message) => log.push("echo " + new TextDecoder().decode(message)));
  session.on("channelMessage", (channel, message) => log.push(channel.name + " " + new TextDecoder().decode(message)));
  await new Promise((resolve) => setTimeout(resolve, 100));
  session.send("hello from the browser");
  session.channel("Foo").send("on Foo");
  await new Promise((resolve) => setTimeout(resolve, 200));
  await session.logout();
  log.push("connected " + session.connected);
} catch (error) {
  log.push("error " + error);
}
window.result = log;
</script>`;
}

async function serve(html: string, sdk: string): Promise<HttpServer> {
  const http = createServer((request, response) => {
    const body = request.url === "/sdk.js" ? sdk : html;
    response.writeHead(200, { "content-type": request.url === "/sdk.js" ? "text/javascript" : "text/html" });
    response.end(body);
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  return http;
}

describe("client SDK in a browser", () => {
  it("logs in over WebSocket, joins channels, talks and logs out", async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium package (.ci/run does)`);
    const server = await startServer(withWorkers({ app: HelloChannels, durability: "memory", tcpPort: null, httpPort: 0, host: "127.0.0.1", logger: silentLogger }, APP_MODULE));
    after(() => server.close());
    const http = await serve(page(`ws://127.0.0.1:${server.httpPort}/ws`), await bundleSdk());
    after(() => http.close());
    const profile = mkdtempSync(join(tmpdir(), "chromium-"));
    after(() => rmSync(profile, { recursive: true, force: true }));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    try {
      const tab = await browser.newPage();
      await tab.goto(`http://127.0.0.1:${(http.address() as AddressInfo).port}/`);
      await tab.waitForFunction(() => (globalThis as unknown as { result?: unknown }).result !== undefined, undefined, { timeout: 15_000 });
      const log = (await tab.evaluate(() => (globalThis as unknown as { result: string[] }).result)).sort();
      assert.deepEqual(log, ["Foo on Foo", "connected false", "echo hello from the browser", "join Bar", "join Foo"]);
    } finally {
      await browser.close();
    }
  });
});
