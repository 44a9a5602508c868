/** A source of uniform numbers in [0, 1), injected so that tests can fix the sequence. */
export interface Random {
  next(): number;
}

/** `Math.random`. */
export const systemRandom: Random = { next: () => Math.random() };

/** A small seeded generator (mulberry32): the same seed gives the same sequence. */
export class SeededRandom implements Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}
