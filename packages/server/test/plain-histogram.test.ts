// The histograms /metrics counts with plain arrays scrape to exactly the text prom-client's own
// histogram gives for the same observations.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Histogram, Registry } from "prom-client";
import { PlainHistogram } from "../src/metrics/plain-histogram.ts";

const BUCKETS = [0.1, 1, 10, 100];
const OBSERVED = [0, 0.05, 0.1, 0.2, 1, 3.5, 10, 99, 100, 100.5, 5000];

describe("plain histograms", () => {
  it("scrape like prom-client's labelled histogram", async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const reference = new Histogram({ name: "h_ms", help: "Latency.", labelNames: ["type"], buckets: BUCKETS, registers: [theirs] });
    const plain = new PlainHistogram("h_ms", "Latency.", "type", BUCKETS, ours);
    for (const [i, value] of OBSERVED.entries()) {
      const type = i % 3 === 0 ? "login" : "message";
      reference.observe({ type }, value);
      plain.labelled(type).observe(value);
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
    // prom-client adds an `exemplar` field (null) that nothing here reads.
    const withoutExemplars = ({ values, ...rest }: Awaited<ReturnType<typeof reference.get>>) => ({
      ...rest,
      values: values.map(({ metricName, labels, value }) => ({ metricName, labels, value })),
    });
    assert.deepEqual(await plain.get(), withoutExemplars(await reference.get()));
  });

  it("scrape like prom-client's unlabelled histogram, zero buckets included before any observation", async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const reference = new Histogram({ name: "batch", help: "Tasks per batch.", buckets: BUCKETS, registers: [theirs] });
    const plain = new PlainHistogram("batch", "Tasks per batch.", undefined, BUCKETS, ours);
    assert.equal(await ours.metrics(), await theirs.metrics());
    for (const value of OBSERVED) {
      reference.observe(value);
      plain.observe(value);
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
    assert.match(await ours.metrics(), /^batch_bucket\{le="\+Inf"\} 11$/m);
  });

  it("ignores a value that is not a finite number (prom-client throws on it)", async () => {
    const registry = new Registry();
    const plain = new PlainHistogram("h", "H.", undefined, BUCKETS, registry);
    plain.observe(Number.NaN);
    plain.observe(Infinity);
    plain.observe(2);
    assert.match(await registry.metrics(), /^h_count 1$/m);
    assert.match(await registry.metrics(), /^h_sum 2$/m);
  });
});
