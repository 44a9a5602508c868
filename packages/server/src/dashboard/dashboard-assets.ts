import { readFile } from "node:fs/promises";

/** Path of the dashboard page on the HTTP port. */
export const DASHBOARD_PATH = "/dashboard";

/** The dashboard's files: URL path to the file beside this module and its content type. */
const ASSETS: ReadonlyMap<string, { readonly file: string; readonly contentType: string }> = new Map([
  [DASHBOARD_PATH, { file: "dashboard.html", contentType: "text/html; charset=utf-8" }],
  [`${DASHBOARD_PATH}/`, { file: "dashboard.html", contentType: "text/html; charset=utf-8" }],
  [`${DASHBOARD_PATH}/dashboard.js`, { file: "dashboard.js", contentType: "text/javascript; charset=utf-8" }],
  [`${DASHBOARD_PATH}/dashboard-math.js`, { file: "dashboard-math.js", contentType: "text/javascript; charset=utf-8" }],
  [`${DASHBOARD_PATH}/dashboard.css`, { file: "dashboard.css", contentType: "text/css; charset=utf-8" }],
]);

/**
 * The dashboard page and its script and style, shipped as plain files beside this module (the
 * package runs from its sources, so there is nothing to build). Each file is read on its first
 * request and kept: the page is static, only `/dashboard/data` changes.
 */
export class DashboardAssets {
  private readonly loaded = new Map<string, Promise<string>>();

  /**
   * The file a URL path names, or undefined when the path is not one of the dashboard's. A failed
   * read is not kept, so the next request tries again.
   */
  asset(path: string): Promise<{ contentType: string; body: string }> | undefined {
    const entry = ASSETS.get(path);
    if (entry === undefined) return undefined;
    let body = this.loaded.get(entry.file);
    if (body === undefined) {
      body = readFile(new URL(entry.file, import.meta.url), "utf8");
      this.loaded.set(entry.file, body);
      body.catch(() => this.loaded.delete(entry.file));
    }
    return body.then((text) => ({ contentType: entry.contentType, body: text }));
  }
}
