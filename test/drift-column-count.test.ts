import { describe, expect, it } from 'vitest';
import { fitNumeric, type Bins } from '../src/drift/bins.js';
import { ColumnCounter, type ColumnCounts, type Float32Slice } from '../src/drift/counts.js';

/**
 * Counting a float32 column in one pass (ColumnCounter.addFloat32Column, what a run does per
 * batch) gives the very bytes that counting its values one by one with addNumber gives: the same
 * bins, counts, min and max, and the same exact sums, on any data, NaN, infinities, -0,
 * subnormals and the largest float32 among it.
 */

/** A seeded generator (mulberry32): the same cases on every run, and a failure names its seed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const int = (next: () => number, n: number) => Math.floor(next() * n);

const MAX_FLOAT32 = 3.4028234663852886e38;
const SPECIAL = [NaN, Infinity, -Infinity, 0, -0, 2 ** -149, -(2 ** -149), 2 ** -126 - 2 ** -149, MAX_FLOAT32, -MAX_FLOAT32, 1, 0.5, 0.05];

/** Float32 values of every kind: any bit pattern (NaNs with payloads, subnormals, huge), specials, and the small whole numbers and decimals of real data. */
function randomFloats(next: () => number, length: number): Float32Array {
  const out = new Float32Array(length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < length; i++) {
    const r = next();
    if (r < 0.3) bits[i] = int(next, 2 ** 32);
    else if (r < 0.45) out[i] = SPECIAL[int(next, SPECIAL.length)]!;
    else if (r < 0.55) bits[i] = int(next, 2 ** 23) | (next() < 0.5 ? 0x80000000 : 0);
    else if (r < 0.7) out[i] = int(next, 60) - 10;
    else out[i] = (int(next, 20_000) - 10_000) / 100;
  }
  return out;
}

const numeric = fitNumeric(Array.from({ length: 1000 }, (_, i) => Math.fround((i - 500) * 0.37)));
const LAYOUTS: Record<string, Bins> = {
  numeric,
  // Equal neighbouring edges, and edges at the extremes of float32.
  'numeric, repeated edges': { kind: 'numeric', edges: Array.from({ length: 101 }, (_, i) => (i < 10 ? -MAX_FLOAT32 : i > 90 ? MAX_FLOAT32 : Math.fround(Math.floor(i / 7) - 7))) },
  // Edges whose span no double holds, and edges out of order (a profile not written by fitNumeric).
  'numeric, widest edges': { kind: 'numeric', edges: Array.from({ length: 101 }, (_, i) => (i === 0 ? -1e308 : i === 100 ? 1e308 : Math.fround((i - 50) * 3))) },
  'numeric, not ascending': { kind: 'numeric', edges: Array.from({ length: 101 }, (_, i) => Math.fround(((i * 37) % 101) - 50)) },
  discrete: { kind: 'discrete', values: [-2, 0, 0.5, 1, 3, 2 ** -149].sort((a, b) => a - b) },
  'discrete, whole values': { kind: 'discrete', values: [-3, 0, 1, 2, 7, 40] },
  'discrete, whole values far apart': { kind: 'discrete', values: [-1e6, 0, 1e6] },
  'discrete, not ascending': { kind: 'discrete', values: [1, 0, 1, -2] },
  'discrete, empty': { kind: 'discrete', values: [] },
  probability: { kind: 'probability' },
  categorical: { kind: 'categorical', values: ['0', '1', 'NaN'], vocabulary: ['2'] },
};

/** What addNumber, value by value, counts of the slice. */
function countOneByOne(bins: Bins, values: Float32Array, parts: readonly Float32Slice[]): ColumnCounts {
  const counter = new ColumnCounter(bins);
  for (const { stride, offset, rows, skip, nanIsMissing } of parts) {
    for (let r = 0; r < rows; r++) {
      if (skip.includes(r)) continue;
      const x = values[offset + r * stride]!;
      counter.addNumber(nanIsMissing && Number.isNaN(x) ? null : x);
    }
  }
  return counter.result();
}

describe('a float32 column counted in one pass', () => {
  for (const [name, bins] of Object.entries(LAYOUTS)) {
    it(`gives the bytes of value-by-value counting on a ${name} layout (40 seeds)`, () => {
      for (let seed = 1; seed <= 40; seed++) {
        const next = random(seed);
        const width = 1 + int(next, 4);
        const rows = int(next, 600);
        const values = randomFloats(next, rows * width + 3);
        // A batch's columns: each a stride through the row-major block, some rows rejected.
        const skip = Array.from({ length: rows }, (_, r) => r).filter(() => next() < 0.1);
        const nanIsMissing = next() < 0.5;
        const half = int(next, rows + 1);
        const column = int(next, width);
        const parts: Float32Slice[] = [
          { stride: width, offset: column, rows: half, skip: skip.filter((r) => r < half), nanIsMissing },
          { stride: width, offset: column + half * width, rows: rows - half, skip: skip.filter((r) => r >= half).map((r) => r - half), nanIsMissing },
        ];
        const fast = new ColumnCounter(bins);
        for (const part of parts) fast.addFloat32Column(values, part);
        expect(JSON.stringify(fast.result()), `seed ${seed}`).toBe(JSON.stringify(countOneByOne(bins, values, parts)));
      }
    });
  }

  // Real columns: values of one size range, where a block's sums are kept in doubles; spans
  // around the widest such a block allows (2^18), values that grow and shrink from block to
  // block, and a rare tiny or huge value that sends a block the slower way.
  const REAL: Record<string, (next: () => number, i: number) => number> = {
    'prices with cents': (next) => Math.fround((int(next, 20_000) + 1) / 100),
    'tenure in months, some 0': (next) => int(next, 73),
    'negative and positive around 0': (next) => Math.fround((next() - 0.5) * 8),
    'magnitudes over a span of 2^18': (next) => Math.fround((next() < 0.5 ? 2 ** -18 : 1) * (1 + next())),
    'magnitudes over a span of 2^19': (next) => Math.fround((next() < 0.5 ? 2 ** -19 : 1) * (1 + next())),
    'growing by block': (next, i) => Math.fround(next() * 2 ** Math.floor(i / 3000)),
    'shrinking by block': (next, i) => Math.fround(next() * 2 ** -Math.floor(i / 3000)),
    'a rare tiny or huge value': (next) => (next() < 0.001 ? (next() < 0.5 ? 1e-30 : 1e30) : Math.fround(next() * 100)),
    probabilities: (next) => Math.fround(next() ** 8),
  };
  for (const [name, draw] of Object.entries(REAL)) {
    it(`gives the bytes of value-by-value counting on real data: ${name} (10 seeds, blocks of any size)`, () => {
      for (let seed = 1; seed <= 10; seed++) {
        const next = random(seed);
        const width = 1 + int(next, 3);
        const rows = int(next, 12_000);
        const values = new Float32Array(rows * width).map((_, i) => (next() < 0.01 ? NaN : draw(next, Math.floor(i / width))));
        const skip = Array.from({ length: rows }, (_, r) => r).filter(() => next() < 0.02);
        const column = int(next, width);
        const slice: Float32Slice = { stride: width, offset: column, rows, skip, nanIsMissing: next() < 0.5 };
        for (const bins of [numeric, { kind: 'probability' } as Bins, fitNumeric(Array.from({ length: 500 }, () => draw(next, int(next, rows))))]) {
          const fast = new ColumnCounter(bins);
          fast.addFloat32Column(values, slice);
          expect(JSON.stringify(fast.result()), `seed ${seed}`).toBe(JSON.stringify(countOneByOne(bins, values, [slice])));
        }
      }
    });
  }

  it('keeps counting exactly after a result (its sums flushed)', () => {
    const next = random(7);
    const values = randomFloats(next, 2000);
    const slice = (offset: number): Float32Slice => ({ stride: 1, offset, rows: 1000, skip: [], nanIsMissing: false });
    const counter = new ColumnCounter(numeric);
    counter.addFloat32Column(values, slice(0));
    const first = JSON.stringify(counter.result());
    expect(first).toBe(JSON.stringify(countOneByOne(numeric, values, [slice(0)])));
    counter.addFloat32Column(values, slice(1000));
    expect(JSON.stringify(counter.result())).toBe(JSON.stringify(countOneByOne(numeric, values, [slice(0), slice(1000)])));
  });

  it('sums many values of one exponent exactly, where a double accumulator would round', () => {
    // 2^24 - 1 ulps at every step: the buckets' integers grow past 2^24 and must stay exact.
    const values = new Float32Array(100_000).map((_, i) => (i % 2 ? 1 - 2 ** -24 : -(2 ** -149)));
    const counter = new ColumnCounter({ kind: 'probability' });
    counter.addFloat32Column(values, { stride: 1, offset: 0, rows: values.length, skip: [], nanIsMissing: false });
    expect(JSON.stringify(counter.result())).toBe(JSON.stringify(countOneByOne({ kind: 'probability' }, values, [{ stride: 1, offset: 0, rows: values.length, skip: [], nanIsMissing: false }])));
  });
});
