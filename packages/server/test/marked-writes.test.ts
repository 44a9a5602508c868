// Records that change only when marked: the server's own session and channel records skip the
// commit-time comparison of their encodings. The test suites run with SHARDLESS_CHECK_MARKED_WRITES=1,
// which compares them anyway and fails a commit that changed one without a mark.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { managed } from "shardless";
import { changesOnlyWhenMarked } from "../src/kernel/transaction.ts";
import { failure, testKernel } from "./helpers.ts";

@managed("marked.Record")
class MarkedRecord {
  members: number[] = [];
}
changesOnlyWhenMarked(MarkedRecord);

type TestKernel = ReturnType<typeof testKernel>["kernel"];

async function seed(kernel: TestKernel): Promise<void> {
  await kernel.run("seed", (ctx) => ctx.data.setBinding("record", new MarkedRecord()));
}

function members(kernel: TestKernel): Promise<number[]> {
  return kernel.run("read", (ctx) => [...ctx.data.getBinding<MarkedRecord>("record").members]);
}

describe("records that change only when marked", () => {
  it("runs with the check on, as every test suite does", () => {
    assert.equal(process.env.SHARDLESS_CHECK_MARKED_WRITES, "1", "run the tests with npm test (scripts/run-tests.mjs sets it)");
  });

  it("stores a change made with a mark, and later tasks read it", async () => {
    const { kernel } = testKernel();
    await seed(kernel);
    await kernel.run("join", (ctx) => {
      const record = ctx.data.getBinding<MarkedRecord>("record");
      record.members.push(7);
      ctx.data.markForUpdate(record);
    });
    assert.deepEqual(await members(kernel), [7]);
    await kernel.run("join again", (ctx) => {
      const record = ctx.data.getBinding<MarkedRecord>("record");
      ctx.data.markForUpdate(record); // marking first, as getBinding's forUpdate does, works too
      record.members.push(8);
    });
    assert.deepEqual(await members(kernel), [7, 8]);
  });

  it("fails the commit of a change made without a mark, naming the record", async () => {
    const { kernel } = testKernel({ maxTaskAttempts: 1 });
    await seed(kernel);
    const error = await failure(
      kernel.run("forgets", (ctx) => {
        ctx.data.getBinding<MarkedRecord>("record").members.push(9);
      }),
    );
    assert.match(String(error), /MarkedRecord \(object \d+\) changed without markForUpdate/);
    assert.deepEqual(await members(kernel), []);
  });

  it("still writes a new record whole, and removes one", async () => {
    const { kernel } = testKernel();
    await kernel.run("create", (ctx) => {
      const record = new MarkedRecord();
      record.members.push(1, 2);
      ctx.data.setBinding("record", record);
    });
    assert.deepEqual(await members(kernel), [1, 2]);
    assert.equal(await kernel.run("first name", (ctx) => ctx.data.nextBoundName()), "record");
    await kernel.run("remove", (ctx) => {
      ctx.data.removeObject(ctx.data.getBinding<MarkedRecord>("record"));
      ctx.data.removeBinding("record");
    });
    assert.equal(await kernel.run("gone", (ctx) => ctx.data.nextBoundName()), undefined);
  });
});
