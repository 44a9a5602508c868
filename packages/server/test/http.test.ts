// The HTTP port besides WebSocket: a game's files from staticDir, the SDK as a browser module, the
// status as JSON, and nothing outside the directory whatever the path says.
import assert from "node:assert/strict";
import { request } from "node:http";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { managed, type AppListener } from "shardless";
import { resolveStaticPath } from "../src/http/static-files.ts";
import { tempDir, testServer } from "./helpers.ts";

@managed("http.App")
class App implements AppListener {
  initialize(): void {}
}

/** A GET (or other method) with the path sent exactly as given, unlike fetch, which normalises it. */
function raw(port: number, path: string, method = "GET"): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode!, headers: response.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function gameServer(): Promise<{ port: number; root: string }> {
  const root = tempDir();
  const site = join(root, "site");
  mkdirSync(join(site, "art"), { recursive: true });
  writeFileSync(join(site, "index.html"), "<!doctype html><title>game</title>");
  writeFileSync(join(site, "game.js"), "export const answer = 42;\n");
  writeFileSync(join(site, "art", "index.html"), "art");
  writeFileSync(join(root, "secret.txt"), "not for players");
  const server = await testServer({ app: App, httpPort: 0, host: "127.0.0.1", staticDir: site }, import.meta.url);
  return { port: server.httpPort!, root };
}

describe("the HTTP port", () => {
  it("serves a game's files with their content types, index.html for directories", async () => {
    const { port } = await gameServer();
    const page = await raw(port, "/");
    assert.equal(page.status, 200);
    assert.equal(page.headers["content-type"], "text/html; charset=utf-8");
    assert.equal(page.body, "<!doctype html><title>game</title>");
    const script = await raw(port, "/game.js?v=3");
    assert.equal(script.headers["content-type"], "text/javascript; charset=utf-8");
    assert.equal(script.body, "export const answer = 42;\n");
    assert.equal((await raw(port, "/art")).body, "art");
    assert.equal((await raw(port, "/art/")).body, "art");
    const head = await raw(port, "/game.js", "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.headers["content-length"], String("export const answer = 42;\n".length));
    assert.equal(head.body, "");
    assert.equal((await raw(port, "/missing.js")).status, 404);
  });

  it("never serves a file outside staticDir, however the path is written", async () => {
    const { port } = await gameServer();
    for (const path of ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/art/..%2f..%2fsecret.txt", "/%2e%2e%5csecret.txt", "/secret.txt%00.html", "/%E0%A4%A"]) {
      const response = await raw(port, path);
      assert.equal(response.status, 404, path);
      assert.ok(!response.body.includes("not for players"), path);
    }
  });

  it("answers only GET and HEAD, and 426 to plain HTTP on the WebSocket path", async () => {
    const { port } = await gameServer();
    const post = await raw(port, "/", "POST");
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, "GET, HEAD");
    assert.equal((await raw(port, "/ws")).status, 426);
  });

  it("serves the server's status as JSON", async () => {
    const { port } = await gameServer();
    const status = await raw(port, "/status");
    assert.equal(status.headers["content-type"], "application/json; charset=utf-8");
    const body = JSON.parse(status.body) as Record<string, unknown>;
    assert.equal(typeof body.committedTasks, "number");
    assert.ok((body.committedTasks as number) >= 1, "initialize committed");
    assert.equal(body.sessions, 0);
    assert.equal(typeof body.uptimeMs, "number");
  });

  it("serves the client SDK as one browser module, also without a staticDir", async () => {
    const server = await testServer({ app: App, httpPort: 0, host: "127.0.0.1" }, import.meta.url);
    const sdk = await raw(server.httpPort!, "/sdk/shardless-client.js");
    assert.equal(sdk.status, 200);
    assert.equal(sdk.headers["content-type"], "text/javascript; charset=utf-8");
    assert.match(sdk.body, /export\s*\{[^}]*\bconnect\b/);
    assert.ok(!/from\s*["']node:/.test(sdk.body), "no Node import is left in the browser bundle");
    assert.equal((await raw(server.httpPort!, "/")).status, 404, "no staticDir, no files");
  });

  it("resolves URL paths only to files inside the root", () => {
    assert.equal(resolveStaticPath("/srv/game", "/a/b.js"), "/srv/game/a/b.js");
    assert.equal(resolveStaticPath("/srv/game", "/a/"), "/srv/game/a/index.html");
    assert.equal(resolveStaticPath("/srv/game", "/"), "/srv/game/index.html");
    assert.equal(resolveStaticPath("/srv/game", "/../game2/x"), null);
    assert.equal(resolveStaticPath("/srv/game", "/%2e%2e/x"), null);
    assert.equal(resolveStaticPath("/srv/game", "/x%00"), null);
    assert.equal(resolveStaticPath("/srv/game", "/%zz"), null);
  });
});
