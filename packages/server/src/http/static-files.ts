import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { extname, join, resolve, sep } from "node:path";
import type { ServerResponse } from "node:http";

/** Content types of the files a browser game is made of; anything else is sent as bytes. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".wasm": "application/wasm",
  ".txt": "text/plain; charset=utf-8",
  ".map": "application/json; charset=utf-8",
};

/**
 * The file under `root` that the URL path `urlPath` names, or null when it names nothing servable:
 * a path that does not decode, holds a NUL, or would leave `root` (`..`, encoded or not). A path
 * ending in `/` names its directory's `index.html`.
 */
export function resolveStaticPath(root: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes("\0") || !decoded.startsWith("/")) return null;
  const base = resolve(root);
  const file = resolve(join(base, decoded.endsWith("/") ? `${decoded}index.html` : decoded));
  return file === base || !file.startsWith(base + sep) ? null : file;
}

/**
 * Serves `urlPath` from `root` (GET or HEAD): 200 with the file, or 404. A directory is served as
 * its `index.html`. Files are streamed, never held whole in memory.
 */
export async function serveStatic(root: string, urlPath: string, method: string, response: ServerResponse): Promise<void> {
  let file = resolveStaticPath(root, urlPath);
  let size = file === null ? undefined : await fileSize(file);
  if (file !== null && size === "directory") {
    file = join(file, "index.html");
    size = await fileSize(file);
  }
  if (file === null || typeof size !== "number") {
    response.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found\n");
    return;
  }
  response.writeHead(200, {
    "content-type": CONTENT_TYPES[extname(file).toLowerCase()] ?? "application/octet-stream",
    "content-length": size,
    // A game's files change when it is redeployed; revalidating keeps players from a stale client.
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
  });
  if (method === "HEAD") {
    response.end();
    return;
  }
  createReadStream(file)
    .on("error", () => response.destroy())
    .pipe(response);
}

async function fileSize(file: string): Promise<number | "directory" | undefined> {
  try {
    const info = await stat(file);
    if (info.isDirectory()) return "directory";
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}
