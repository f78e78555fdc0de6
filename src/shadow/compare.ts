/**
 * Comparing a challenger with the champion row by row, on the batches both scored: counts
 * that merge exactly across chunks (integers, canonical exact sums, a maximum), so a run's
 * comparison is the same bytes from one worker or seven (see chunk-result.ts).
 */
import { NightscoreError } from '../errors.js';
import type { TensorData } from '../engine/engine.js';
import { binCount, binOf, lookupFor, type NumberLookup } from '../drift/bins.js';
import { canonicalSum, exactAdd, ExactSum, mergeSums, productOf } from '../drift/exact-sum.js';
import { Float32Sums } from '../drift/float32-sums.js';
import type { OutputValues, RowFailure } from '../model/scorer.js';

/**
 * What is compared: one column of one output, which both models have. A `score` (a float
 * output) is a positive decision at `threshold` or above; a `label` (any other) agrees when
 * the two values are equal.
 */
export interface CompareRule {
  output: string;
  column: number;
  threshold: number;
  kind: 'score' | 'label';
}

/** The exact sums a comparison of scores keeps, by name: Σx, Σy, Σx², Σy², Σxy and Σ|x − y| (x the champion's). */
export const SUM_NAMES = ['x', 'y', 'xx', 'yy', 'xy', 'abs_diff'] as const;
export type SumName = (typeof SUM_NAMES)[number];

export interface ComparisonCounts {
  /** Rows both models scored, with a finite score from each (a label from each). */
  compared: number;
  /** Rows whose decisions (labels) are the same. */
  agree: number;
  /** Scores: rows by [champion's decision, challenger's]: negative/negative, negative/positive, positive/negative, positive/positive. */
  decisions: number[];
  /** Labels: rows by the pair of labels, `champion → challenger`. */
  labels: Record<string, number>;
  /** Rows the champion scored and the challenger failed on alone. */
  failed: number;
  /** Rows both scored whose scores are not both finite, so not compared. */
  not_finite: number;
  /** Scores on the fixed probability bins (drift's layout: below 0, twentieths of [0, 1], above 1): the champion's and the challenger's. */
  bins: { champion: number[]; challenger: number[] };
  /** Canonical exact sums (exact-sum.ts), by SUM_NAMES. */
  sums: Record<SumName, number[]>;
  /** The largest |x − y| compared; null when none was. */
  max_abs_diff: number | null;
  /** Batches the challenger could not score at all, by the engine's message. */
  errors: Record<string, number>;
}

const PROBABILITY = { kind: 'probability' } as const;
const PROBABILITY_BINS = binCount(PROBABILITY);

export function emptyComparison(): ComparisonCounts {
  const zeros = () => new Array<number>(PROBABILITY_BINS).fill(0);
  return {
    compared: 0,
    agree: 0,
    decisions: [0, 0, 0, 0],
    labels: {},
    failed: 0,
    not_finite: 0,
    bins: { champion: zeros(), challenger: zeros() },
    sums: Object.fromEntries(SUM_NAMES.map((n) => [n, []])) as unknown as Record<SumName, number[]>,
    max_abs_diff: null,
    errors: {},
  };
}

/** Counts one challenger's comparison over a chunk's batches. */
export class Comparer {
  private readonly counts = emptyComparison();
  private readonly lookup: NumberLookup = lookupFor(PROBABILITY)!;
  private readonly exact: Record<SumName, ExactSum> = Object.fromEntries(SUM_NAMES.map((n) => [n, new ExactSum()])) as unknown as Record<SumName, ExactSum>;
  /** Float32 scores take the fast exact way: x with x², y with y², x·y, and ±x ∓ y for |x − y|. */
  private readonly xs = new Float32Sums();
  private readonly ys = new Float32Sums();
  private readonly xy = new Float32Sums();
  private readonly diff = new Float32Sums();
  /** What the float32 sums flush into that nothing reads: the products' plain sum, the differences' squares. */
  private readonly unused = [new ExactSum(), new ExactSum()] as const;
  private readonly bits = new Int32Array(2);
  private readonly floats = new Float32Array(this.bits.buffer);

  constructor(private readonly rule: CompareRule) {}

  /** A batch of `rows` rows: each model's compared output (its rows that scored, in order) and the rows it failed on. */
  add(rows: number, champion: Scored, challenger: Scored): void {
    const c = this.counts;
    const a = columnOf(champion, this.rule);
    const b = columnOf(challenger, this.rule);
    const fa = failedRows(champion.failed);
    const fb = failedRows(challenger.failed);
    const float32 = a.data instanceof Float32Array && b.data instanceof Float32Array;
    if (float32) this.forEachFloat32((sums, sum, squares) => sums.reserve(2 * rows, sum, squares));
    let ia = 0;
    let ib = 0;
    for (let r = 0; r < rows; r++) {
      const scoredA = !fa.has(r);
      const scoredB = !fb.has(r);
      if (scoredA && !scoredB) c.failed++;
      if (scoredA && scoredB) {
        const at = ia * a.width + a.column;
        const bt = ib * b.width + b.column;
        if (this.rule.kind === 'label') this.addLabels(String(a.data[at]), String(b.data[bt]));
        else if (float32) this.addFloat32(a.data as Float32Array, at, b.data as Float32Array, bt);
        else this.addScores(Number(a.data[at]), Number(b.data[bt]));
      }
      if (scoredA) ia++;
      if (scoredB) ib++;
    }
  }

  /** A batch the challenger could not score: its rows are not compared, its message counted. */
  addError(message: string): void {
    const e = this.counts.errors;
    e[message] = (e[message] ?? 0) + 1;
  }

  private addLabels(x: string, y: string): void {
    const c = this.counts;
    c.compared++;
    if (x === y) c.agree++;
    const pair = `${x} → ${y}`;
    c.labels[pair] = (c.labels[pair] ?? 0) + 1;
  }

  private decide(x: number, y: number): void {
    const c = this.counts;
    const t = this.rule.threshold;
    const dx = x >= t ? 1 : 0;
    const dy = y >= t ? 1 : 0;
    c.compared++;
    if (dx === dy) c.agree++;
    c.decisions[dx * 2 + dy]!++;
    c.bins.champion[binOf(this.lookup, x)]!++;
    c.bins.challenger[binOf(this.lookup, y)]!++;
    const d = Math.abs(x - y);
    if (c.max_abs_diff === null || d > c.max_abs_diff) c.max_abs_diff = d;
  }

  private addFloat32(a: Float32Array, at: number, b: Float32Array, bt: number): void {
    const x = a[at]!;
    const y = b[bt]!;
    if (!Number.isFinite(x) || !Number.isFinite(y)) return void this.counts.not_finite++;
    this.decide(x, y);
    this.floats[0] = x;
    this.floats[1] = y;
    const ux = this.bits[0]!;
    const uy = this.bits[1]!;
    this.xs.add(ux);
    this.ys.add(uy);
    this.xy.addProduct(ux, uy);
    // |x − y| as +x − y or +y − x: a sign bit flipped negates a float32 exactly.
    if (x >= y) {
      this.diff.add(ux);
      this.diff.add(uy ^ 0x80000000);
    } else {
      this.diff.add(uy);
      this.diff.add(ux ^ 0x80000000);
    }
  }

  private addScores(x: number, y: number): void {
    if (!Number.isFinite(x) || !Number.isFinite(y)) return void this.counts.not_finite++;
    this.decide(x, y);
    const e = this.exact;
    e.x.add(x);
    e.y.add(y);
    e.xx.addSquare(x);
    e.yy.addSquare(y);
    const [hi, lo] = productOf(x, y);
    e.xy.add(hi);
    if (lo !== 0) e.xy.add(lo);
    if (x >= y) {
      e.abs_diff.add(x);
      e.abs_diff.add(-y);
    } else {
      e.abs_diff.add(y);
      e.abs_diff.add(-x);
    }
  }

  /** Each float32 accumulator with the exact sums it flushes into. */
  private forEachFloat32(f: (sums: Float32Sums, sum: ExactSum, squares: ExactSum) => void): void {
    const e = this.exact;
    f(this.xs, e.x, e.xx);
    f(this.ys, e.y, e.yy);
    f(this.xy, this.unused[0], e.xy);
    f(this.diff, e.abs_diff, this.unused[1]);
  }

  /** The counts so far, plain JSON, sums canonical. */
  result(): ComparisonCounts {
    this.forEachFloat32((sums, sum, squares) => sums.flush(sum, squares));
    const c = this.counts;
    return {
      ...c,
      decisions: [...c.decisions],
      labels: sortedRecord(c.labels),
      bins: { champion: [...c.bins.champion], challenger: [...c.bins.challenger] },
      sums: Object.fromEntries(SUM_NAMES.map((n) => [n, canonicalSum(this.exact[n].partials)])) as unknown as Record<SumName, number[]>,
      errors: sortedRecord(c.errors),
    };
  }
}

/** One model's scored batch as the comparer reads it. */
export interface Scored {
  outputs: readonly OutputValues[];
  failed: readonly RowFailure[];
}

function columnOf(scored: Scored, rule: CompareRule): { data: TensorData; width: number; column: number } {
  const out = scored.outputs.find((o) => o.columns.output === rule.output);
  if (!out) {
    throw new NightscoreError('INTERNAL', `a scored batch has no output "${rule.output}" to compare`, { hint: 'The plan checks each challenger\'s outputs; this is a bug to report.' });
  }
  return { data: out.data, width: out.columns.names.length, column: rule.column };
}

function failedRows(failed: readonly RowFailure[]): Set<number> {
  return new Set(failed.map((f) => f.row));
}

/** The comparisons of `parts` together, exactly: the same bytes in any grouping and order. */
export function mergeComparisons(parts: readonly ComparisonCounts[]): ComparisonCounts {
  const out = emptyComparison();
  const add = (a: number, b: number) => exactAdd(a, b, 'comparison count');
  const addRecord = (into: Record<string, number>, from: Record<string, number>) => {
    for (const [k, n] of Object.entries(from)) into[k] = add(into[k] ?? 0, n);
  };
  const sums: Record<SumName, number[][]> = Object.fromEntries(SUM_NAMES.map((n) => [n, []])) as unknown as Record<SumName, number[][]>;
  for (const p of parts) {
    out.compared = add(out.compared, p.compared);
    out.agree = add(out.agree, p.agree);
    out.failed = add(out.failed, p.failed);
    out.not_finite = add(out.not_finite, p.not_finite);
    p.decisions.forEach((n, i) => (out.decisions[i] = add(out.decisions[i]!, n)));
    p.bins.champion.forEach((n, i) => (out.bins.champion[i] = add(out.bins.champion[i]!, n)));
    p.bins.challenger.forEach((n, i) => (out.bins.challenger[i] = add(out.bins.challenger[i]!, n)));
    addRecord(out.labels, p.labels);
    addRecord(out.errors, p.errors);
    for (const n of SUM_NAMES) sums[n].push(p.sums[n]);
    if (p.max_abs_diff !== null && (out.max_abs_diff === null || p.max_abs_diff > out.max_abs_diff)) out.max_abs_diff = p.max_abs_diff;
  }
  out.sums = Object.fromEntries(SUM_NAMES.map((n) => [n, mergeSums(...sums[n])])) as unknown as Record<SumName, number[]>;
  out.labels = sortedRecord(out.labels);
  out.errors = sortedRecord(out.errors);
  return out;
}

function sortedRecord(r: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(r).sort().map((k) => [k, r[k]!]));
}
