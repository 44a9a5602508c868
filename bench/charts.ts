// Plain SVG charts for docs/benchmarks.md: no dependency, readable in any browser or on GitHub.

const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#9c755f"];
const FONT = 'font-family="sans-serif"';

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function text(x: number, y: number, content: string, anchor: "start" | "middle" | "end" = "start", extra = ""): string {
  // An attribute may appear once in a tag: the size is 12 unless `extra` sets its own.
  const size = extra.includes("font-size=") ? "" : ' font-size="12"';
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" text-anchor="${anchor}" ${FONT}${size} ${extra}>${escapeXml(content)}</text>`;
}

function svg(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    text(width / 2, 20, title, "middle", 'font-weight="bold" font-size="14"'),
    ...body,
    "</svg>",
    "",
  ].join("\n");
}

/** Powers of ten covering [low, high], for a log axis. */
function decades(low: number, high: number): number[] {
  const ticks: number[] = [];
  for (let exponent = Math.floor(Math.log10(low)); exponent <= Math.ceil(Math.log10(high)); exponent++) ticks.push(10 ** exponent);
  return ticks;
}

function compact(value: number): string {
  if (value >= 1e6) return `${+(value / 1e6).toFixed(1)}M`;
  if (value >= 1e3) return `${+(value / 1e3).toFixed(1)}k`;
  return `${+value.toFixed(value < 10 ? 1 : 0)}`;
}

/** One group of bars: a label and one value per series (null: not measured). */
export interface BarGroup {
  readonly label: string;
  readonly values: readonly (number | null)[];
}

/**
 * Horizontal grouped bars on a log axis (the systems compared differ by orders of magnitude), each
 * bar labelled with its value.
 */
export function barChart(title: string, unit: string, series: readonly string[], groups: readonly BarGroup[]): string {
  const barHeight = 14;
  const left = 170;
  const plotWidth = 520;
  const top = 60;
  const groupHeight = series.length * barHeight + 14;
  const height = top + groups.length * groupHeight + 40;
  const values = groups.flatMap((group) => group.values).filter((value): value is number => value !== null && value > 0);
  if (values.length === 0) return svg(left + plotWidth + 80, 100, title, [text(20, 60, "no data")]);
  const ticks = decades(Math.min(...values), Math.max(...values));
  const [low, high] = [ticks[0]!, ticks.at(-1)!];
  const x = (value: number) => left + (plotWidth * (Math.log10(value) - Math.log10(low))) / (Math.log10(high) - Math.log10(low) || 1);
  const body: string[] = [];
  // Legend entries as wide as their names (about 7 px a character at 12 px), from the left edge.
  let legendX = 20;
  series.forEach((name, index) => {
    body.push(`<rect x="${legendX}" y="32" width="10" height="10" fill="${PALETTE[index % PALETTE.length]}"/>`);
    body.push(text(legendX + 14, 41, name));
    legendX += 14 + name.length * 7 + 18;
  });
  for (const tick of ticks) {
    body.push(`<line x1="${x(tick).toFixed(1)}" x2="${x(tick).toFixed(1)}" y1="${top - 6}" y2="${height - 34}" stroke="#ddd"/>`);
    body.push(text(x(tick), height - 20, compact(tick), "middle"));
  }
  body.push(text(left + plotWidth / 2, height - 5, `${unit} (log scale)`, "middle"));
  groups.forEach((group, groupIndex) => {
    const groupTop = top + groupIndex * groupHeight;
    body.push(text(left - 8, groupTop + (series.length * barHeight) / 2 + 4, group.label, "end"));
    group.values.forEach((value, index) => {
      if (value === null || value <= 0) return;
      const y = groupTop + index * barHeight;
      body.push(`<rect x="${left}" y="${y}" width="${Math.max(1, x(value) - left).toFixed(1)}" height="${barHeight - 2}" fill="${PALETTE[index % PALETTE.length]}"/>`);
      body.push(text(x(value) + 4, y + barHeight - 4, compact(value), "start", 'font-size="10"'));
    });
  });
  return svg(left + plotWidth + 80, height, title, body);
}

/** One line: a name and its points. */
export interface Line {
  readonly name: string;
  readonly points: readonly { x: number; y: number }[];
}

/** Lines on linear x and log y axes, with an optional horizontal bound drawn dashed. */
export function lineChart(title: string, xLabel: string, yLabel: string, lines: readonly Line[], bound: number | null): string {
  const [left, top, plotWidth, plotHeight] = [70, 50, 560, 300];
  const points = lines.flatMap((line) => line.points).filter((point) => Number.isFinite(point.y) && point.y > 0);
  if (points.length === 0) return svg(left + plotWidth + 40, 100, title, [text(20, 60, "no data")]);
  const maxX = Math.max(...points.map((point) => point.x));
  const yValues = [...points.map((point) => point.y), ...(bound === null ? [] : [bound])];
  const ticks = decades(Math.min(...yValues), Math.max(...yValues));
  const [low, high] = [ticks[0]!, ticks.at(-1)!];
  const x = (value: number) => left + (plotWidth * value) / maxX;
  const y = (value: number) => top + plotHeight - (plotHeight * (Math.log10(value) - Math.log10(low))) / (Math.log10(high) - Math.log10(low) || 1);
  const body: string[] = [];
  for (const tick of ticks) {
    body.push(`<line x1="${left}" x2="${left + plotWidth}" y1="${y(tick).toFixed(1)}" y2="${y(tick).toFixed(1)}" stroke="#ddd"/>`);
    body.push(text(left - 6, y(tick) + 4, compact(tick), "end"));
  }
  for (let step = 0; step <= 5; step++) {
    const value = (maxX * step) / 5;
    body.push(text(x(value), top + plotHeight + 16, compact(value), "middle"));
  }
  body.push(`<line x1="${left}" x2="${left + plotWidth}" y1="${top + plotHeight}" y2="${top + plotHeight}" stroke="#333"/>`);
  body.push(text(left + plotWidth / 2, top + plotHeight + 34, xLabel, "middle"));
  body.push(text(16, top + plotHeight / 2, yLabel, "middle", `transform="rotate(-90 16 ${top + plotHeight / 2})"`));
  if (bound !== null) {
    body.push(`<line x1="${left}" x2="${left + plotWidth}" y1="${y(bound).toFixed(1)}" y2="${y(bound).toFixed(1)}" stroke="#e15759" stroke-dasharray="6 4"/>`);
    body.push(text(left + plotWidth, y(bound) - 4, `bound ${bound}`, "end"));
  }
  lines.forEach((line, index) => {
    const color = PALETTE[index % PALETTE.length]!;
    const drawn = line.points.filter((point) => Number.isFinite(point.y) && point.y > 0);
    body.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${drawn.map((point) => `${x(point.x).toFixed(1)},${y(point.y).toFixed(1)}`).join(" ")}"/>`);
    for (const point of drawn) body.push(`<circle cx="${x(point.x).toFixed(1)}" cy="${y(point.y).toFixed(1)}" r="3" fill="${color}"/>`);
    body.push(`<rect x="${left + 10 + index * 150}" y="${top - 18}" width="10" height="10" fill="${color}"/>`);
    body.push(text(left + 24 + index * 150, top - 9, line.name));
  });
  return svg(left + plotWidth + 40, top + plotHeight + 50, title, body);
}
