/** Latency samples in milliseconds, kept whole (runs are short enough) for exact percentiles. */
export class Latencies {
  private samples = new Float64Array(1 << 16);
  private count = 0;

  add(ms: number): void {
    if (this.count === this.samples.length) {
      const grown = new Float64Array(this.samples.length * 2);
      grown.set(this.samples);
      this.samples = grown;
    }
    this.samples[this.count++] = ms;
  }

  get size(): number {
    return this.count;
  }

  /** The values at the given quantiles (0..1). */
  percentiles(...quantiles: number[]): number[] {
    const sorted = this.samples.slice(0, this.count).sort();
    return quantiles.map((q) => (this.count === 0 ? Number.NaN : sorted[Math.min(this.count - 1, Math.floor(q * this.count))]!));
  }
}

/** The median of `values`. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
