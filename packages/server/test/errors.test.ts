import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import * as shardless from "shardless";

const catalogue = readFileSync(new URL("../../../docs/errors.md", import.meta.url), "utf8");

describe("error catalogue", () => {
  it("makes conflict errors without a stack trace, and leaves other errors' traces alone", () => {
    const limit = Error.stackTraceLimit;
    const conflict = new shardless.TransactionConflictError("object 1 was changed", { on: { kind: "object", id: 1n } });
    assert.doesNotMatch(conflict.stack ?? "", /\n\s+at /);
    assert.equal(conflict.message, "object 1 was changed");
    assert.deepEqual(conflict.on, { kind: "object", id: 1n });
    assert.equal(Error.stackTraceLimit, limit);
    assert.match(new shardless.TransactionTimeoutError("slow").stack ?? "", /\n\s+at /);
  });

  it("documents exactly the codes Shardless uses", () => {
    const documented = [...catalogue.matchAll(/^\| `(ERR_[A-Z_]+)` \|/gm)].map((match) => match[1]);
    assert.deepEqual([...documented].sort(), [...shardless.ERROR_CODES].sort());
  });

  it("gives every exported error class a catalogued code and the documented retryability", () => {
    type ErrorClass = (new (message: string) => shardless.ShardlessError) & { name: string };
    const classes = (Object.values(shardless) as unknown[]).filter(
      (value): value is ErrorClass => typeof value === "function" && (value as { prototype?: unknown }).prototype instanceof shardless.ShardlessError,
    );
    assert.ok(classes.length >= 14);
    for (const cls of classes) {
      const error = new cls("example");
      assert.ok(shardless.ERROR_CODES.includes(error.code), `${cls.name} has code ${error.code}`);
      const row = catalogue.split("\n").find((line) => line.startsWith(`| \`${error.code}\``));
      assert.ok(row !== undefined && row.includes(`\`${cls.name}\``), `docs name ${cls.name} for ${error.code}`);
      assert.equal(row.includes("| yes |"), error.retryable, `${cls.name} retryable as documented`);
      assert.equal(error.name, cls.name);
    }
  });
});
