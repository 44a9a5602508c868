// The world's page in a real browser (Debian's Chromium, driven by playwright-core), served by the
// server itself: two players log in, one walks with the arrow keys, the other sees it walk, they
// chat, and the panel shows latency and the server's tasks per second. A screenshot is kept in
// .tmp/artifacts/world.png; docs/world.png is made from it when missing (delete it to refresh it).
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { chromium, type Page } from "playwright-core";
import { connect, type Session } from "@shardless/client";
import { silentLogger, startServer } from "shardless";
import WorldApp from "./app.ts";
import { withWorkers } from "../../packages/server/test/test-workers.ts";

/** What worker threads import to learn the application's classes (when the test run has workers). */
const APP_MODULE = new URL("./app.ts", import.meta.url).href;

const CHROMIUM = "/usr/bin/chromium";
const PUBLIC_DIR = fileURLToPath(new URL("./public", import.meta.url));
const ARTIFACT = fileURLToPath(new URL("../../.tmp/artifacts/world.png", import.meta.url));
const DOCS_SCREENSHOT = fileURLToPath(new URL("../../docs/world.png", import.meta.url));
const WAIT_MS = 10_000;
/** Checks in a page poll on a timer: a page in the background may get no animation frames. */
const POLL_MS = 50;

/**
 * The little of the DOM that the checks run in the page use. This file is type-checked without the
 * DOM's types; each check reaches the page's document through `globalThis` with this shape.
 */
interface PageDocument {
  querySelector(selector: string): { dataset: Record<string, string | undefined>; textContent: string | null } | null;
}

/** Opens the page, logs in as `name`, and waits until the player shows in its own region's list. */
async function play(page: Page, baseUrl: string, name: string): Promise<void> {
  await page.goto(baseUrl);
  await page.fill("#name", name);
  await page.click("#login-form button");
  await page.waitForSelector(`#players li[data-name="${name}"]`);
}

/** Where `page` shows the player `name`, from the region's player list. */
async function shownAt(page: Page, name: string): Promise<{ x: number; y: number }> {
  const row = page.locator(`#players li[data-name="${name}"]`);
  return { x: Number(await row.getAttribute("data-x")), y: Number(await row.getAttribute("data-y")) };
}

/** Waits until `page` shows `name` at or past (minX, minY). */
async function waitUntilPast(page: Page, name: string, minX: number, minY: number): Promise<void> {
  await page.waitForFunction(
    ([who, x, y]) => {
      const row = (globalThis as unknown as { document: PageDocument }).document.querySelector(`#players li[data-name="${who}"]`);
      return row !== null && Number(row.dataset.x) >= x && Number(row.dataset.y) >= y;
    },
    [name, minX, minY] as const,
    { polling: POLL_MS },
  );
}

/** Waits until `page` shows `name` exactly at `at`. */
async function waitUntilAt(page: Page, name: string, at: { x: number; y: number }): Promise<void> {
  await page.waitForFunction(
    ([who, x, y]) => {
      const row = (globalThis as unknown as { document: PageDocument }).document.querySelector(`#players li[data-name="${who}"]`);
      return row?.dataset.x === String(x) && row.dataset.y === String(y);
    },
    [name, at.x, at.y] as const,
    { polling: POLL_MS },
  );
}

describe("the world in a browser", () => {
  it("shows one player's keyboard moves to another, with chat, latency and tasks/s", async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium package (.ci/run does)`);
    const server = await startServer(withWorkers({ app: WorldApp, durability: "memory", tcpPort: null, httpPort: 0, host: "127.0.0.1", logger: silentLogger, staticDir: PUBLIC_DIR }, APP_MODULE));
    after(() => server.close());
    const baseUrl = `http://127.0.0.1:${server.httpPort}/`;

    // A few players from Node, so that the region (and the screenshot) is not empty.
    const extras: Session[] = [];
    after(() => extras.forEach((session) => session.close()));
    for (const name of ["mia", "ned", "ola"]) extras.push(await connect({ url: `ws://127.0.0.1:${server.httpPort}/ws`, name }));

    const profile = mkdtempSync(join(tmpdir(), "chromium-"));
    after(() => rmSync(profile, { recursive: true, force: true }));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 920, height: 600 },
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    try {
      const [ann, bob] = [await browser.newPage(), await browser.newPage()];
      for (const page of [ann, bob]) page.setDefaultTimeout(WAIT_MS);
      await play(ann, baseUrl, "ann");
      await play(bob, baseUrl, "bob");
      await bob.waitForSelector('#players li[data-name="ann"]');
      await ann.waitForSelector('#players li[data-name="bob"]');
      const before = await shownAt(bob, "ann");
      assert.deepEqual(await shownAt(ann, "ann"), before, "both pages start from the server's position");

      await ann.bringToFront();
      await ann.keyboard.down("ArrowRight");
      await waitUntilPast(bob, "ann", before.x + 40, before.y);
      await ann.keyboard.up("ArrowRight");
      await ann.keyboard.down("ArrowDown");
      await waitUntilPast(bob, "ann", before.x + 40, before.y + 20);
      await ann.keyboard.up("ArrowDown");
      // With the keys up, ann stands still: bob's page comes to show her exactly where her own does.
      const end = await shownAt(ann, "ann");
      await waitUntilAt(bob, "ann", end);

      await ann.keyboard.press("Enter");
      await ann.keyboard.type("hello from ann");
      await ann.keyboard.press("Enter");
      await bob.waitForSelector('#chat-log li:has-text("hello from ann")');
      extras[0]!.channel("region 1,1")?.send("welcome, ann and bob!");
      await bob.waitForSelector('#chat-log li:has-text("welcome, ann and bob!")');

      await bob.waitForFunction(() => /^\d+(\.\d+)? ms$/.test((globalThis as unknown as { document: PageDocument }).document.querySelector("#latency")?.textContent ?? ""), undefined, { polling: POLL_MS });
      await bob.waitForFunction(() => /^[\d,]+$/.test((globalThis as unknown as { document: PageDocument }).document.querySelector("#tasks")?.textContent ?? ""), undefined, { polling: POLL_MS });
      assert.equal(await bob.textContent("#online"), "5");

      mkdirSync(dirname(ARTIFACT), { recursive: true });
      await bob.bringToFront();
      await bob.screenshot({ path: ARTIFACT });
      if (!existsSync(DOCS_SCREENSHOT)) copyFileSync(ARTIFACT, DOCS_SCREENSHOT);
    } finally {
      await browser.close();
    }
  });
});
