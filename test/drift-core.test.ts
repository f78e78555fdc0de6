import { describe, expect, it } from 'vitest';
import { binCount, binnerFor, fitCategorical, fitNumeric, type Bins, type NumericBins } from '../src/drift/bins.js';
import { ColumnCounter, emptyCounts, mean, mergeCounts, std, type ColumnCounts } from '../src/drift/counts.js';
import { canonicalSum, ExactSum, mergeSums, sumValue } from '../src/drift/exact-sum.js';
import { PSI_EPSILON } from '../src/drift/measures.js';
import { DEFAULT_POLICY, policyFor, type DriftPolicy } from '../src/drift/policy.js';
import { compareColumn, overallStatus, type ColumnProfileLike, type ColumnReport } from '../src/drift/statistics.js';
import { NightscoreError } from '../src/errors.js';
import { formatDrift } from '../src/observe/progress.js';
import { seededRandom } from '../src/random.js';

/**
 * Drift's pure core: exact sums, bin layouts, per-column counts that merge to the same bytes in
 * any grouping and order, and the statistics and status of a run's column against its reference.
 */

/** A seeded generator: the same cases on every run, and a failure names its seed. */
const random = seededRandom;
const int = (next: () => number, n: number) => Math.floor(next() * n);
const shuffle = <T>(next: () => number, items: readonly T[]): T[] => {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = int(next, i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
};
/** Cut `items` into runs of random length (each at least one item). */
const cut = <T>(next: () => number, items: readonly T[]): T[][] => {
  const out: T[][] = [];
  for (let at = 0; at < items.length;) {
    const size = 1 + int(next, Math.min(items.length - at, 12));
    out.push(items.slice(at, at + size));
    at += size;
  }
  return out;
};
/** `parts` merged in a random order and a random grouping: groups merged on their own first, then together. */
function mergeRandomly<T>(next: () => number, parts: readonly T[], merge: (parts: T[]) => T): T {
  const order = shuffle(next, parts);
  if (order.length <= 2) return merge(order);
  const groups = cut(next, order);
  return merge(shuffle(next, groups.map((g) => (g.length > 2 && next() < 0.5 ? mergeRandomly(next, g, merge) : merge(g)))));
}

/** A double with random sign, random significand and its exponent field drawn from [lo, hi] (0 gives subnormals). */
function wildDouble(next: () => number, lo: number, hi: number): number {
  const view = new DataView(new ArrayBuffer(8));
  const exponent = lo + int(next, hi - lo + 1);
  view.setUint32(0, ((next() < 0.5 ? 1 : 0) << 31) | (exponent << 20) | int(next, 2 ** 20));
  view.setUint32(4, int(next, 2 ** 32));
  return view.getFloat64(0);
}

/** `x` times 2^1074 as a BigInt: every finite double is a whole multiple of 2^-1074. */
function exactOf(x: number): bigint {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const exponent = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  const magnitude = exponent === 0 ? fraction : (fraction | (1n << 52n)) << BigInt(exponent - 1);
  return bits >> 63n ? -magnitude : magnitude;
}
const exactTotal = (xs: readonly number[]) => xs.reduce((t, x) => t + exactOf(x), 0n);

/** Whether `s` is the double nearest the exact value `e` (× 2^1074), ties to an even significand. */
function isCorrectlyRounded(e: bigint, s: number): boolean {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, s);
  const bits = view.getBigUint64(0);
  const at = (b: bigint) => {
    view.setBigUint64(0, b);
    return exactOf(view.getFloat64(0));
  };
  const abs = (b: bigint) => (b < 0n ? -b : b);
  const here = abs(e - exactOf(s));
  const neighbours = [at(bits + 1n), ...((bits & ~(1n << 63n)) > 0n ? [at(bits - 1n)] : [exactOf(-Number.MIN_VALUE * Math.sign(s || 1))])];
  return neighbours.every((n) => here < abs(e - n) || (here === abs(e - n) && (bits & 1n) === 0n));
}

describe('exact sums', () => {
  const valuesFor = (next: () => number): number[] => {
    const xs = Array.from({ length: 150 }, () => wildDouble(next, 0, 1900));
    // Cancellations: values that come back negated, and the classic fsum cases.
    xs.push(...xs.slice(0, 30).map((x) => -x), 1e16, 1, -1e16, 1e-16, 1, 1e16, 2 ** -1074, -(2 ** 1000), 2 ** 1000);
    return xs;
  };

  it('give one canonical expansion, the exact sum, whatever the order and grouping', () => {
    let rawDiffer = false;
    for (let seed = 1; seed <= 5; seed++) {
      const next = random(seed);
      const xs = valuesFor(next);
      const exact = exactTotal(xs);
      const chunk = (part: number[]) => {
        const acc = new ExactSum();
        for (const x of part) acc.add(x);
        return acc.partials;
      };
      const once = JSON.stringify(canonicalSum(chunk(xs)));
      for (let trial = 0; trial < 100; trial++) {
        const parts = cut(next, shuffle(next, xs)).map(chunk);
        const raw = mergeRandomly(next, parts, (ps) => chunk(ps.flat()));
        if (JSON.stringify(raw) !== JSON.stringify(chunk(xs))) rawDiffer = true;
        const merged = mergeRandomly(next, parts.map(canonicalSum), (ps) => mergeSums(...ps));
        expect(JSON.stringify(merged), `seed ${seed}, trial ${trial}`).toBe(once);
        expect(exactTotal(merged)).toBe(exact);
      }
      const value = sumValue(xs);
      expect(isCorrectlyRounded(exact, value), `seed ${seed}`).toBe(true);
      expect(canonicalSum(xs)[0]).toBe(value);
    }
    // Without the canonical form, the same exact sum is held by different doubles.
    expect(rawDiffer).toBe(true);
  });

  it('add squares exactly', () => {
    for (let seed = 11; seed <= 15; seed++) {
      const next = random(seed);
      // Squares of these keep every bit above the smallest subnormal, so they can be exact.
      const xs = Array.from({ length: 150 }, () => wildDouble(next, 1023 - 480, 1023 + 500));
      const exact = xs.reduce((t, x) => t + exactOf(x) ** 2n, 0n) / 2n ** 1074n;
      const once = JSON.stringify(canonicalSum(squares(xs)));
      for (let trial = 0; trial < 100; trial++) {
        const parts = cut(next, shuffle(next, xs)).map((p) => canonicalSum(squares(p)));
        const merged = mergeRandomly(next, parts, (ps) => mergeSums(...ps));
        expect(JSON.stringify(merged)).toBe(once);
        expect(exactTotal(merged)).toBe(exact);
      }
    }
  });

  it('are exactly zero as the empty list, and correctly rounded on ties', () => {
    expect(canonicalSum([1e16, 1, -1e16, -1])).toEqual([]);
    expect(sumValue([])).toBe(0);
    // 1e16 + 1 is a tie between two doubles; the tiny positive term tips it up.
    expect(sumValue([1e-16, 1, 1e16])).toBe(1e16 + 2);
    const expansion = canonicalSum([1e-16, 1, 1e16]);
    expect(expansion[0]).toBe(1e16 + 2);
    expect(exactTotal(expansion)).toBe(exactTotal([1e-16, 1, 1e16]));
  });

  it('refuse to overflow rather than lose exactness', () => {
    const acc = new ExactSum();
    acc.add(Number.MAX_VALUE);
    expect(() => acc.add(Number.MAX_VALUE)).toThrow(expect.objectContaining({ code: 'STATS_NOT_EXACT' }));
    expect(() => new ExactSum().addSquare(1e200)).toThrow(NightscoreError);
    expect(() => new ExactSum().add(NaN)).toThrow(expect.objectContaining({ code: 'STATS_NOT_EXACT' }));
  });
});

function squares(xs: readonly number[]): number[] {
  const acc = new ExactSum();
  for (const x of xs) acc.addSquare(x);
  return acc.partials;
}

describe('bin layouts', () => {
  it('put numeric edges at the lower quantiles, and values in the last bin whose edge they reach', () => {
    const values = Array.from({ length: 1000 }, (_, i) => 999 - i);
    const bins = fitNumeric(values) as NumericBins;
    expect(bins.kind).toBe('numeric');
    // The edge at p% is the value of rank floor(p * 999 / 100), from 0.
    expect(bins.edges.slice(0, 3)).toEqual([0, 9, 19]);
    expect(bins.edges[100]).toBe(999);
    const bin = binnerFor(bins);
    expect([bin(-1), bin(0), bin(8.5), bin(9), bin(999), bin(1000)]).toEqual([0, 1, 1, 2, 100, 101]);
    expect(binCount(bins)).toBe(102);
    // Equal edges: edges 0 to 90 are all 0, and of that run only the last bin (bin 90) fills.
    const zeros = fitNumeric([...new Array<number>(900).fill(0), ...Array.from({ length: 100 }, (_, i) => i + 1)]) as NumericBins;
    expect(zeros.edges.lastIndexOf(0)).toBe(90);
    expect(binnerFor(zeros)(0)).toBe(1 + 90);
  });

  it('give a column of few values a bin per value, and an empty column only "other"', () => {
    const flags = fitNumeric([1, 0, -0, 1, NaN, Infinity, 2]);
    expect(flags).toEqual({ kind: 'discrete', values: [0, 1, 2] });
    const bin = binnerFor(flags as Bins & { kind: 'discrete' });
    expect([bin(0), bin(-0), bin(2), bin(3)]).toEqual([0, 0, 2, 3]);
    expect(fitNumeric([NaN])).toEqual({ kind: 'discrete', values: [] });
  });

  it('bin probabilities on twentieths, 1 in the last', () => {
    const bin = binnerFor({ kind: 'probability' });
    expect([bin(-0.1), bin(0), bin(0.05), bin(0.999), bin(1), bin(1.1)]).toEqual([0, 1, 2, 20, 20, 21]);
  });

  it('keep the most frequent strings, then tell OTHER from UNSEEN by the vocabulary', () => {
    const counts = new Map<string, number>([['b', 5], ['a', 5], ['c', 9], ...Array.from({ length: 150 }, (_, i) => [`v${i}`, 1] as [string, number])]);
    const bins = fitCategorical(counts);
    expect(bins.values.slice(0, 3)).toEqual(['c', 'a', 'b']);
    expect(bins.values).toHaveLength(100);
    expect(bins.vocabulary).toHaveLength(53);
    const bin = binnerFor(bins);
    expect([bin('c'), bin(bins.vocabulary![0]!), bin('never')]).toEqual([0, 100, 101]);
    const huge = fitCategorical(new Map(Array.from({ length: 10_101 }, (_, i) => [`v${i}`, 1])));
    expect(huge.vocabulary).toBeNull();
    expect(binnerFor(huge)('never')).toBe(100);
  });
});

describe('column counts', () => {
  const POOL = ['a', 'b', 'é', '', '__proto__', 'constructor', 'z', 'unseen-1', 'unseen-2'];
  const numericLayout = fitNumeric(Array.from({ length: 500 }, (_, i) => (i - 250) * 0.37));
  const categoricalLayout = fitCategorical(new Map([['a', 9], ['b', 3], ['é', 2], ['', 1], ['__proto__', 1], ['constructor', 1], ['z', 1]]));

  function randomNumber(next: () => number): number | null {
    const r = next();
    if (r < 0.05) return null;
    if (r < 0.1) return NaN;
    if (r < 0.13) return next() < 0.5 ? Infinity : -Infinity;
    if (r < 0.16) return next() < 0.5 ? 0 : -0;
    if (r < 0.5) return (int(next, 1000) - 500) * 0.1;
    // Wild magnitudes, subnormals among them: their sums are where order would show.
    return wildDouble(next, 0, 1023 + 400);
  }
  const count = (bins: Bins, values: readonly (number | string | null)[]): ColumnCounts => {
    const counter = new ColumnCounter(bins);
    for (const v of values) {
      if (typeof v === 'string') counter.addString(v);
      else counter.addNumber(v);
    }
    return counter.result();
  };

  it('merge to identical bytes in any grouping and order (50 seeds)', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const next = random(seed);
      const numbers = Array.from({ length: 50 + int(next, 400) }, () => randomNumber(next));
      const strings = Array.from({ length: 50 + int(next, 200) }, () => (next() < 0.1 ? null : POOL[int(next, POOL.length)]!));
      const columns: [Bins, (number | string | null)[]][] = [[numericLayout, numbers], [categoricalLayout, strings]];
      for (const [bins, values] of columns) {
        const whole = JSON.stringify(count(bins, values));
        for (let trial = 0; trial < 10; trial++) {
          const chunks = cut(next, shuffle(next, values)).map((c) => count(bins, c));
          const merged = mergeRandomly(next, chunks, mergeCounts);
          expect(JSON.stringify(merged), `seed ${seed}, ${bins.kind}, trial ${trial}`).toBe(whole);
        }
      }
    }
  });

  it('count missing, NaN and infinities apart, and keep exact moments of the finite values', () => {
    const c = count(numericLayout, [1, 2, null, NaN, Infinity, -Infinity, -Infinity, 3, -0]);
    expect({ missing: c.missing, nan: c.nan, pos_inf: c.pos_inf, neg_inf: c.neg_inf, n: c.n, min: c.min, max: c.max }).toEqual({ missing: 1, nan: 1, pos_inf: 1, neg_inf: 2, n: 4, min: 0, max: 3 });
    expect(c.bins.reduce((a, b) => a + b)).toBe(4);
    expect(c.sum).toEqual([6]);
    expect(c.sum_sq).toEqual([14]);
    expect(mean(c)).toBe(1.5);
    expect(std(c)).toBe(Math.sqrt(1.25));
    const labels = count(categoricalLayout, ['a', null, 'x']);
    expect(labels).toMatchObject({ n: 2, missing: 1, sum: [], sum_sq: [], min: null, max: null });
    expect(JSON.stringify(mergeCounts([emptyCounts(categoricalLayout), labels]))).toBe(JSON.stringify(labels));
  });

  it('give the standard deviation of a tight spread far from zero, where the textbook formula cancels', () => {
    const values = Array.from({ length: 1000 }, (_, i) => 1e9 + (i % 2 === 0 ? 0.5 : -0.5));
    const c = count(numericLayout, values);
    expect(std(c)).toBe(0.5);
    expect(mean(c)).toBe(1e9);
  });

  it('refuse to merge counts on different layouts', () => {
    expect(() => mergeCounts([emptyCounts(numericLayout), emptyCounts({ kind: 'probability' })])).toThrow(expect.objectContaining({ code: 'STATS_NOT_EXACT' }));
  });
});

/** Plain re-computations from shares, to check the module's statistics against. */
const sharesOf = (counts: readonly number[]) => {
  const n = counts.reduce((a, b) => a + b, 0);
  return counts.map((c) => c / n);
};
function plainPsi(ref: readonly number[], run: readonly number[]): number {
  const p = sharesOf(ref);
  const q = sharesOf(run);
  let total = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i] === 0 ? 1e-4 : p[i]!;
    const b = q[i] === 0 ? 1e-4 : q[i]!;
    total += (b - a) * Math.log(b / a);
  }
  return total;
}
function plainJs(ref: readonly number[], run: readonly number[]): number {
  const p = sharesOf(ref);
  const q = sharesOf(run);
  let klP = 0;
  let klQ = 0;
  for (let i = 0; i < p.length; i++) {
    const m = (p[i]! + q[i]!) / 2;
    if (p[i]! > 0) klP += p[i]! * Math.log2(p[i]! / m);
    if (q[i]! > 0) klQ += q[i]! * Math.log2(q[i]! / m);
  }
  return Math.sqrt((klP + klQ) / 2);
}
function plainKs(ref: readonly number[], run: readonly number[]): number {
  const p = sharesOf(ref);
  const q = sharesOf(run);
  let d = 0;
  for (let i = 0; i < p.length; i++) {
    const cp = p.slice(0, i + 1).reduce((a, b) => a + b, 0);
    const cq = q.slice(0, i + 1).reduce((a, b) => a + b, 0);
    d = Math.max(d, Math.abs(cp - cq));
  }
  return d;
}
/** Index in the numeric layout by a linear scan of the edges. */
function plainNumericBin(edges: readonly number[], x: number): number {
  if (x < edges[0]!) return 0;
  if (x > edges[100]!) return 101;
  let bin = 0;
  for (let i = 0; i < 100; i++) if (edges[i]! <= x) bin = i;
  return bin + 1;
}
function histogram(size: number, indices: readonly number[]): number[] {
  const h = new Array<number>(size).fill(0);
  for (const i of indices) h[i]!++;
  return h;
}

function profileOf(name: string, role: 'feature' | 'prediction', bins: Bins, values: readonly (number | string | null)[]): ColumnProfileLike {
  return { name, role, bins, counts: countValues(bins, values) };
}
function countValues(bins: Bins, values: readonly (number | string | null)[]): ColumnCounts {
  const counter = new ColumnCounter(bins);
  for (const v of values) {
    if (typeof v === 'string') counter.addString(v);
    else counter.addNumber(v);
  }
  return counter.result();
}
/** Standard normal draws (Box-Muller) from a seeded generator. */
function normals(next: () => number, n: number, shift = 0): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = shift + Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  return out;
}

describe('a run column against its reference', () => {
  it('numeric: PSI on deciles, JS and KS on the percentile layout, as computed plainly', () => {
    const refValues = Array.from({ length: 1000 }, (_, i) => i);
    const runValues = Array.from({ length: 600 }, (_, i) => i * 1.3 - 50);
    const ref = profileOf('tenure', 'feature', fitNumeric(refValues), refValues);
    const report = compareColumn(ref, countValues(ref.bins, runValues), DEFAULT_POLICY);
    const edges = (ref.bins as NumericBins).edges;
    const refLayout = histogram(102, refValues.map((x) => plainNumericBin(edges, x)));
    const runLayout = histogram(102, runValues.map((x) => plainNumericBin(edges, x)));
    const decile = (i: number) => (i === 0 ? 0 : i === 101 ? 9 : Math.floor((i - 1) / 10));
    const refDeciles = histogram(10, refValues.map((x) => decile(plainNumericBin(edges, x))));
    const runDeciles = histogram(10, runValues.map((x) => decile(plainNumericBin(edges, x))));
    expect(report.psi).toBeCloseTo(plainPsi(refDeciles, runDeciles), 12);
    expect(report.js).toBeCloseTo(plainJs(refLayout, runLayout), 12);
    expect(report.ks).toBeCloseTo(plainKs(refLayout, runLayout), 12);
    expect(report).toMatchObject({ statistic: 'psi', value: report.psi, kind: 'numeric', n_ref: 1000, n_run: 600 });
    // Below the reference minimum: i * 1.3 - 50 < 0 for i < 39; above its maximum: none.
    expect(report.out_of_range_share).toBeCloseTo(39 / 600, 12);
    const refStd = Math.sqrt((1000 * 1000 - 1) / 12);
    expect(report.mean_shift).toBeCloseTo((599 * 1.3 / 2 - 50 - 499.5) / refStd, 10);
    expect(report.wasserstein).toBeGreaterThan(0);
  });

  it('discrete: PSI, JS and KS by hand, and a value never seen is unseen', () => {
    const ref = profileOf('plan', 'feature', fitNumeric([...new Array<number>(50).fill(0), ...new Array<number>(50).fill(1)]), [...new Array<number>(50).fill(0), ...new Array<number>(50).fill(1)]);
    const shifted = compareColumn(ref, countValues(ref.bins, [...new Array<number>(25).fill(0), ...new Array<number>(75).fill(1)]), DEFAULT_POLICY);
    // (0.25 − 0.5) ln(0.25 / 0.5) + (0.75 − 0.5) ln(0.75 / 0.5), and "other", empty on both sides, adds 0.
    expect(PSI_EPSILON).toBe(1e-4);
    expect(shifted.psi).toBeCloseTo(0.25 * Math.log(3), 12);
    expect(shifted.js).toBeCloseTo(plainJs([50, 50, 0], [25, 75, 0]), 12);
    expect(shifted.ks).toBeCloseTo(0.25, 12);
    expect(shifted.mean_shift).toBeCloseTo((0.75 - 0.5) / 0.5, 12);
    // Exact W1 between the two: the cumulative gap 0.25 over the distance 1 between the values, over std 0.5.
    expect(shifted.wasserstein).toBeCloseTo(0.5, 12);
    const unseen = compareColumn(ref, countValues(ref.bins, [...new Array<number>(45).fill(0), ...new Array<number>(45).fill(1), ...new Array<number>(10).fill(2)]), DEFAULT_POLICY);
    expect(unseen.psi).toBeCloseTo(plainPsi([50, 50, 0], [45, 45, 10]), 12);
    expect(unseen.unseen_share).toBeCloseTo(0.1, 12);
    expect(unseen.status).toBe('drift');
    expect(unseen.reasons.join('; ')).toContain('unseen share 0.1');
  });

  it('categorical: JS distance on [values, OTHER, UNSEEN], with unseen values counted apart', () => {
    const bins = fitCategorical(new Map([['a', 50], ['b', 30], ['c', 20]]));
    const refValues = [...new Array<string>(50).fill('a'), ...new Array<string>(30).fill('b'), ...new Array<string>(20).fill('c')];
    const runValues = [...new Array<string>(20).fill('a'), ...new Array<string>(30).fill('b'), ...new Array<string>(30).fill('c'), ...new Array<string>(20).fill('d')];
    const report = compareColumn(profileOf('region', 'feature', bins, refValues), countValues(bins, runValues), DEFAULT_POLICY);
    expect(report.statistic).toBe('js');
    expect(report.value).toBeCloseTo(plainJs([50, 30, 20, 0, 0], [20, 30, 30, 0, 20]), 12);
    expect(report.psi).toBeCloseTo(plainPsi([50, 30, 20, 0, 0], [20, 30, 30, 0, 20]), 12);
    expect([report.ks, report.wasserstein, report.out_of_range_share, report.mean_shift]).toEqual([null, null, null, null]);
    expect(report.unseen_share).toBeCloseTo(0.2, 12);
    expect(report.status).toBe('drift');
  });

  it('probability: JS and KS on the fixed twentieths, and the share outside [0, 1]', () => {
    const refValues = Array.from({ length: 400 }, (_, i) => i / 400);
    const runValues = [...Array.from({ length: 380 }, (_, i) => (i / 380) ** 2), 1.5, -0.5, ...new Array<number>(18).fill(1)];
    const bins: Bins = { kind: 'probability' };
    const report = compareColumn(profileOf('p_churn', 'prediction', bins, refValues), countValues(bins, runValues), DEFAULT_POLICY);
    const bin = (x: number) => (x < 0 ? 0 : x > 1 ? 21 : x === 1 ? 20 : Math.floor(x * 20) + 1);
    const refLayout = histogram(22, refValues.map(bin));
    const runLayout = histogram(22, runValues.map(bin));
    expect(report.statistic).toBe('js');
    expect(report.js).toBeCloseTo(plainJs(refLayout, runLayout), 12);
    expect(report.ks).toBeCloseTo(plainKs(refLayout, runLayout), 12);
    expect(report.psi).toBeCloseTo(plainPsi(refLayout, runLayout), 12);
    expect(report.out_of_range_share).toBeCloseTo(2 / 400, 12);
  });

  it('count a change in the missing share as drift, and name it', () => {
    const next = random(3);
    const values = Array.from(normals(next, 20_000));
    const ref = profileOf('income', 'feature', fitNumeric(values), values);
    const run = Array.from(normals(next, 20_000), (x, i) => (i % 5 === 0 ? null : x));
    const report = compareColumn(ref, countValues(ref.bins, run), DEFAULT_POLICY);
    expect(report.missing_delta).toBeCloseTo(0.2, 12);
    expect(report.status).toBe('drift');
    expect(report.reasons.join('; ')).toContain('missing share moved by 0.2');
  });

  it('size guard: 200 rows against a million are inconclusive, never ok; a clear shift with many rows drifts', () => {
    const next = random(7);
    const refValues = normals(next, 1_000_000);
    const ref = profileOf('amount', 'feature', fitNumeric(refValues), Array.from(refValues));
    const small = compareColumn(ref, countValues(ref.bins, Array.from(normals(next, 200))), DEFAULT_POLICY);
    expect(small.status).toBe('inconclusive');
    expect(3 * small.floor!).toBeGreaterThan(DEFAULT_POLICY.psi.warn);
    expect(small.reasons.join('; ')).toContain('too few values to tell');
    const same = compareColumn(ref, countValues(ref.bins, Array.from(normals(next, 100_000))), DEFAULT_POLICY);
    expect(same.status).toBe('ok');
    const moved = compareColumn(ref, countValues(ref.bins, Array.from(normals(next, 100_000, 1))), DEFAULT_POLICY);
    expect(moved.status).toBe('drift');
    expect(moved.value!).toBeGreaterThan(DEFAULT_POLICY.psi.drift);
    expect(moved.mean_shift).toBeCloseTo(1, 1);
  });

  it('takes a column\'s own thresholds over the job\'s', () => {
    const policy: DriftPolicy = { ...DEFAULT_POLICY, columns: { plan: { psi: { warn: 0.5 } } } };
    expect(policyFor(policy, 'plan').psi).toEqual({ warn: 0.5, drift: 0.25 });
    expect(policyFor(policy, 'toString')).toEqual(policyFor(DEFAULT_POLICY, 'x'));
    const big = (zeros: number, ones: number) => [...new Array<number>(zeros).fill(0), ...new Array<number>(ones).fill(1)];
    const ref = profileOf('plan', 'feature', fitNumeric([0, 1]), big(50_000, 50_000));
    const run = countValues(ref.bins, big(40_000, 60_000));
    // PSI 0.04: ok by default; with warn lowered to 0.03 for this column, it warns.
    expect(compareColumn(ref, run, DEFAULT_POLICY).status).toBe('ok');
    expect(compareColumn(ref, run, { ...DEFAULT_POLICY, columns: { plan: { psi: { warn: 0.03 } } } }).status).toBe('warn');
  });
});

describe('a run\'s overall status', () => {
  const report = (name: string, role: 'feature' | 'prediction', status: ColumnReport['status']): ColumnReport => ({
    name, role, kind: 'numeric', status, statistic: 'psi', value: null, floor: null, psi: null, js: null, ks: null, wasserstein: null,
    missing_delta: null, unseen_share: null, out_of_range_share: null, mean_shift: null, n_ref: 0, n_run: 0, reasons: [],
  });

  it('drifts when max_drifted_share of the features drift, or any prediction does', () => {
    expect(overallStatus([report('a', 'feature', 'drift'), report('b', 'feature', 'ok')], DEFAULT_POLICY)).toEqual({ status: 'drift', drifted: ['a'] });
    expect(overallStatus([report('a', 'feature', 'drift'), report('b', 'feature', 'ok'), report('c', 'feature', 'ok')], DEFAULT_POLICY)).toEqual({ status: 'warn', drifted: ['a'] });
    expect(overallStatus([report('a', 'feature', 'ok'), report('score', 'prediction', 'drift')], DEFAULT_POLICY)).toEqual({ status: 'drift', drifted: ['score'] });
  });

  it('warns on any warning; is inconclusive only when nothing warned; else ok', () => {
    expect(overallStatus([report('a', 'feature', 'warn'), report('b', 'feature', 'inconclusive')], DEFAULT_POLICY).status).toBe('warn');
    expect(overallStatus([report('a', 'feature', 'ok'), report('b', 'feature', 'inconclusive')], DEFAULT_POLICY).status).toBe('inconclusive');
    expect(overallStatus([report('a', 'feature', 'ok')], DEFAULT_POLICY).status).toBe('ok');
    expect(overallStatus([], DEFAULT_POLICY).status).toBe('ok');
  });
});

describe("a run's drift in one line (the run summary)", () => {
  it('names the first four drifted columns and segments, and how many more there are, also of segments the manifest does not list', () => {
    const line = formatDrift({
      status: 'drift',
      mode: 'warn',
      drifted: ['f1', 'f2', 'f3', 'f4', 'f5'],
      warned: [],
      inconclusive: [],
      file: '_drift.json',
      profile: { uri: 'file:///p.json', sha256: '0'.repeat(64) },
      // The manifest lists ten drifted segments at most; the total says how many drifted.
      segments: { column: 'store', drifted: [...'abcdefghij'].map((value) => ({ kind: 'value' as const, value })), drifted_total: 12 },
    });
    expect(line).toBe('drift · drifted: f1, f2, f3, f4 and 1 more · segments of store drifted: "a", "b", "c", "d" and 8 more  (_drift.json; drift.mode warn)');
  });
});
