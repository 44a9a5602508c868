import { fileURLToPath } from "node:url";

/** Where browsers load the client SDK from: an ES module exporting `connect`. */
export const SDK_PATH = "/sdk/shardless-client.js";

/**
 * The client SDK (`@shardless/client`) bundled into one browser module, built on first request and
 * kept: game pages import it from the server they play on, with no build step of their own. The
 * Node-only transports load lazily in the SDK and stay out of the bundle.
 */
export class SdkBundle {
  private built: Promise<string> | undefined;

  /** The bundle's source; a build failure is not cached, so the next request tries again. */
  source(): Promise<string> {
    this.built ??= buildSdk().catch((error: unknown) => {
      this.built = undefined;
      throw error;
    });
    return this.built;
  }
}

async function buildSdk(): Promise<string> {
  // esbuild is loaded only when a page asks for the SDK: servers without browsers never pay for it.
  const { build } = await import("esbuild");
  const entry = fileURLToPath(import.meta.resolve("@shardless/client"));
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    minify: true,
    external: ["node:net", "ws"],
    logLevel: "silent",
  });
  return result.outputFiles[0]!.text;
}
