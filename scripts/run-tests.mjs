// Runs every *.test.ts file of the repository with node's test runner (Node 20 has no globs in
// --test, and a directory argument finds no .ts files). Extra arguments are passed to node --test,
// e.g. `npm test -- --test-name-pattern=periodic`.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const roots = ["packages", "examples", "bench"];
const skip = new Set(["node_modules", "dist", "data", ".git"]);

function findTests(directory, found = []) {
  let entries;
  try {
    entries = readdirSync(directory, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const entry of entries) {
    const path = join(directory, entry.name);
    if (entry.isDirectory() && !skip.has(entry.name)) findTests(path, found);
    else if (entry.isFile() && entry.name.endsWith(".test.ts")) found.push(path);
  }
  return found;
}

const files = roots.flatMap((root) => findTests(root)).sort();
if (files.length === 0) {
  console.error("run-tests: no test files found");
  process.exit(1);
}
const result = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=2", ...process.argv.slice(2), ...files], {
  stdio: "inherit",
  // The server's own records skip the commit-time comparison; in tests they are compared anyway,
  // so that a change the server forgot to mark fails loudly.
  env: { ...process.env, SHARDLESS_CHECK_MARKED_WRITES: "1" },
});
process.exit(result.status ?? 1);
