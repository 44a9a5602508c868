// The charts are well-formed SVG (browsers refuse a tag with a repeated attribute) and show what
// they are given.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { barChart, lineChart } from "./charts.ts";

/** Fails on a tag that repeats an attribute, or on unbalanced tags. */
function assertWellFormed(svg: string): void {
  const open: string[] = [];
  for (const [tag, closing, name, attributes, selfClosing] of svg.matchAll(/<(\/?)([a-z]+)([^>]*?)(\/?)>/g)) {
    const names = [...attributes!.matchAll(/\s([a-z-]+)="/g)].map((match) => match[1]);
    assert.equal(new Set(names).size, names.length, `repeated attribute in ${tag}`);
    if (closing === "/") assert.equal(open.pop(), name, `unbalanced ${tag}`);
    else if (selfClosing !== "/") open.push(name!);
  }
  assert.deepEqual(open, [], "every tag is closed");
}

describe("benchmark charts", () => {
  it("draws grouped bars on a log axis, labelled, escaping text", () => {
    const svg = barChart("a <title> & more", "tps", ["one", "two"], [
      { label: "first", values: [10, 1000] },
      { label: "second", values: [null, 50] },
    ]);
    assertWellFormed(svg);
    assert.ok(svg.includes("a &lt;title&gt; &amp; more"));
    assert.equal((svg.match(/height="12"/g) ?? []).length, 3, "one bar per value given");
  });

  it("draws lines with a dashed bound", () => {
    const svg = lineChart("p99", "players", "ms", [{ name: "s", points: [{ x: 100, y: 5 }, { x: 200, y: 80 }] }], 50);
    assertWellFormed(svg);
    assert.ok(svg.includes("stroke-dasharray"));
    assert.ok(svg.includes("<polyline"));
  });
});
