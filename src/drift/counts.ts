/**
 * A column's counts on its layout: one shape for a reference and for a run, plain JSON, with
 * a merge that is exact (integer counts, canonical exact sums), so that a run's counts come out
 * as the same bytes from one worker or seven, and the sum of past runs is itself a reference.
 */
import { NightscoreError } from '../errors.js';
import { binColumn, binCount, binnerFor, lookupFor, type Bins, type NumberLookup } from './bins.js';
import { canonicalSum, ExactSum, mergeSums, productOf, sumValue } from './exact-sum.js';
import { Float32Sums, MAX_PENDING } from './float32-sums.js';

export interface ColumnCounts {
  /** Finite values (strings for a categorical layout) per bin of the layout. */
  bins: number[];
  /** Null or absent values. */
  missing: number;
  nan: number;
  pos_inf: number;
  neg_inf: number;
  /** The values binned: the sum of `bins`. */
  n: number;
  /** The exact sum of the finite values, as a canonical expansion (exact-sum.ts); [] for strings. */
  sum: number[];
  /** The exact sum of their squares, likewise. */
  sum_sq: number[];
  /** Over finite values; null when there are none (and for strings). */
  min: number | null;
  max: number | null;
}

/** No values yet, on the layout of `bins`. */
export function emptyCounts(bins: Bins): ColumnCounts {
  return { bins: new Array<number>(binCount(bins)).fill(0), missing: 0, nan: 0, pos_inf: 0, neg_inf: 0, n: 0, sum: [], sum_sq: [], min: null, max: null };
}

/** Where a column's values sit in a Float32Array: `values[offset + r * stride]` for each row r. */
export interface Float32Slice {
  stride: number;
  offset: number;
  rows: number;
  /** Rows not to count, ascending. */
  skip: readonly number[];
  /** Counts NaN as missing (how a missing feature reaches the model) rather than as NaN. */
  nanIsMissing: boolean;
}

/** Each value's bin in the column being counted: one buffer per thread, as counters count one at a time. */
let binned = new Int32Array(0);

/** Counts one column's values of a chunk into its layout. */
export class ColumnCounter {
  private readonly bins: Float64Array;
  private readonly toBin: ((x: number) => number) | null;
  private readonly toCategory: ((s: string) => number) | null;
  private readonly sum = new ExactSum();
  private readonly sumSq = new ExactSum();
  private readonly lookup: NumberLookup | null;
  private readonly float32Sums = new Float32Sums();
  private missing = 0;
  private nan = 0;
  private posInf = 0;
  private negInf = 0;
  private n = 0;
  private min = Infinity;
  private max = -Infinity;

  constructor(private readonly layout: Bins) {
    this.bins = new Float64Array(binCount(layout));
    this.toBin = layout.kind === 'categorical' ? null : binnerFor(layout);
    this.toCategory = layout.kind === 'categorical' ? binnerFor(layout) : null;
    this.lookup = lookupFor(layout);
  }

  /**
   * Counts a float32 column's values of `slice` as addNumber would count each one (the same
   * counts, the same exact sums): every bin first (binColumn), then one loop: the class of a value
   * from its bits, its moments into Float32Sums.
   */
  addFloat32Column(values: Float32Array, slice: Float32Slice): void {
    const { stride, offset, rows, skip, nanIsMissing } = slice;
    const lookup = this.lookup;
    if (lookup === null || rows > MAX_PENDING) {
      let s = 0;
      for (let r = 0, i = offset; r < rows; r++, i += stride) {
        if (s < skip.length && skip[s] === r) s++;
        else this.addNumber(nanIsMissing && Number.isNaN(values[i]!) ? null : values[i]!);
      }
      return;
    }
    if (binned.length < rows) binned = new Int32Array(rows);
    binColumn(lookup, values, stride, offset, rows, binned);
    this.float32Sums.reserve(rows, this.sum, this.sumSq);
    const tally = float32Tally;
    tally[MIN] = this.min;
    tally[MAX] = this.max;
    tally[N] = this.n;
    tally[POS_INF] = this.posInf;
    tally[NEG_INF] = this.negInf;
    tally[NAN] = 0;
    countFloat32(values, slice, binned, this.bins, this.float32Sums, tally);
    if (nanIsMissing) this.missing += tally[NAN]!;
    else this.nan += tally[NAN]!;
    this.min = tally[MIN]!;
    this.max = tally[MAX]!;
    this.n = tally[N]!;
    this.posInf = tally[POS_INF]!;
    this.negInf = tally[NEG_INF]!;
  }

  /**
   * Counts a number: null or undefined as missing, NaN and infinities apart, a finite value into
   * its bin and the moments. On a categorical layout (labels) a finite number is counted as its
   * decimal string, and has no moments.
   */
  addNumber(x: number | null | undefined): void {
    if (x === null || x === undefined) this.missing++;
    else if (Number.isNaN(x)) this.nan++;
    else if (x === Infinity) this.posInf++;
    else if (x === -Infinity) this.negInf++;
    else if (this.toCategory) this.countCategory(String(x));
    else {
      // -0 as 0, so that which of the two a chunk met first cannot show in min or max.
      const v = x === 0 ? 0 : x;
      this.bins[this.toBin!(v)]!++;
      this.n++;
      this.sum.add(v);
      this.sumSq.addSquare(v);
      if (v < this.min) this.min = v;
      if (v > this.max) this.max = v;
    }
  }

  /** Counts a string (null or undefined as missing); only a categorical layout takes strings. */
  addString(s: string | null | undefined): void {
    if (s === null || s === undefined) this.missing++;
    else if (this.toCategory) this.countCategory(s);
    else {
      throw new NightscoreError('INTERNAL', `a string was counted into a ${this.layout.kind} layout`, {
        hint: 'A numeric column\'s values reach drift as numbers; this is a bug to report.',
      });
    }
  }

  private countCategory(s: string): void {
    this.bins[this.toCategory!(s)]!++;
    this.n++;
  }

  /** The counts so far, as plain JSON (sums canonical). */
  result(): ColumnCounts {
    this.float32Sums.flush(this.sum, this.sumSq);
    return {
      bins: Array.from(this.bins),
      missing: this.missing,
      nan: this.nan,
      pos_inf: this.posInf,
      neg_inf: this.negInf,
      n: this.n,
      sum: canonicalSum(this.sum.partials),
      sum_sq: canonicalSum(this.sumSq.partials),
      min: this.n > 0 && this.toBin ? this.min : null,
      max: this.n > 0 && this.toBin ? this.max : null,
    };
  }
}

/** Slots of float32Tally: what countFloat32 reads and updates besides the bins and sums. */
const MIN = 0;
const MAX = 1;
const N = 2;
const POS_INF = 3;
const NEG_INF = 4;
const NAN = 5;
const float32Tally = new Float64Array(6);

/**
 * The one loop of addFloat32Column, on its own: in the method, the loop was compiled on the
 * stack mid-call and the method's property writes after it, never seen by then, threw the
 * compiled code away on every call (a deoptimization per column and batch). Here it reads and
 * writes only its arguments.
 */
function countFloat32(values: Float32Array, slice: Float32Slice, binned: Int32Array, counts: Float64Array, sums: Float32Sums, tally: Float64Array): void {
  const { stride, offset, rows, skip } = slice;
  // Signed, so that every value stays a small integer to V8 (an unsigned one past 2^31 is a heap number).
  const bits = new Int32Array(values.buffer, values.byteOffset, values.length);
  let min = tally[MIN]!;
  let max = tally[MAX]!;
  let n = tally[N]!;
  let posInf = tally[POS_INF]!;
  let negInf = tally[NEG_INF]!;
  let nan = 0;
  let s = 0;
  for (let r = 0, i = offset; r < rows; r++, i += stride) {
    if (s < skip.length && skip[s] === r) {
      s++;
      continue;
    }
    const u = bits[i]!;
    if ((u & 0x7f800000) === 0x7f800000) {
      if ((u & 0x7fffff) !== 0) nan++;
      else if (u >>> 31) negInf++;
      else posInf++;
      continue;
    }
    const x = values[i]!;
    // -0 as 0, as addNumber.
    const v = x === 0 ? 0 : x;
    counts[binned[r]!]!++;
    n++;
    sums.add(u);
    if (v < min) min = v;
    if (v > max) max = v;
  }
  tally[MIN] = min;
  tally[MAX] = max;
  tally[N] = n;
  tally[POS_INF] = posInf;
  tally[NEG_INF] = negInf;
  tally[NAN] = nan;
}

/**
 * The counts of all `parts` together, on their one layout: integers added exactly, sums merged
 * to their canonical expansion, so any grouping and order of the same parts gives the same JSON
 * bytes. At least one part is needed (it carries the layout's length; see emptyCounts).
 */
export function mergeCounts(parts: readonly ColumnCounts[]): ColumnCounts {
  const first = parts[0];
  if (!first) throw new NightscoreError('INTERNAL', 'no column counts to merge', { hint: 'Merge emptyCounts(bins) when no chunk counted; this is a bug to report.' });
  const bins = new Array<number>(first.bins.length).fill(0);
  const total = { missing: 0, nan: 0, pos_inf: 0, neg_inf: 0, n: 0 };
  let min: number | null = null;
  let max: number | null = null;
  for (const c of parts) {
    if (c.bins.length !== bins.length) {
      throw new NightscoreError('STATS_NOT_EXACT', `column counts on ${c.bins.length} bins cannot merge with counts on ${bins.length}`, {
        hint: 'Counts of one column were made on two layouts (two profiles); report this with the run\'s manifest.',
      });
    }
    for (let i = 0; i < bins.length; i++) bins[i] = exactAdd(bins[i]!, c.bins[i]!);
    for (const k of ['missing', 'nan', 'pos_inf', 'neg_inf', 'n'] as const) total[k] = exactAdd(total[k], c[k]);
    if (c.min !== null && (min === null || c.min < min)) min = c.min;
    if (c.max !== null && (max === null || c.max > max)) max = c.max;
  }
  return {
    bins,
    ...total,
    sum: mergeSums(...parts.map((c) => c.sum)),
    sum_sq: mergeSums(...parts.map((c) => c.sum_sq)),
    min,
    max,
  };
}

/** The mean of the finite values (their exact sum, rounded once, over n); null when there are none. */
export function mean(c: ColumnCounts): number | null {
  return c.n > 0 ? sumValue(c.sum) / c.n : null;
}

/**
 * The population standard deviation of the finite values; null when there are none. With m the
 * rounded mean, `Σ(x − m)² = Σx² − 2m·Σx + n·m²` holds for any m, and each term is formed
 * exactly (products split by Dekker's method) and summed exactly, so the one rounding is of a
 * true sum of squares: never negative, and free of the cancellation that `Σx²/n − m²` suffers
 * when the spread is small next to the mean.
 */
export function std(c: ColumnCounts): number | null {
  const m = mean(c);
  if (m === null) return null;
  const terms: number[] = [...c.sum_sq];
  for (const s of c.sum) terms.push(...productOf(-2 * m, s));
  const [sqHi, sqLo] = productOf(m, m);
  terms.push(...productOf(c.n, sqHi), ...productOf(c.n, sqLo));
  return Math.sqrt(Math.max(0, sumValue(terms)) / c.n);
}

/** Integer addition that refuses to round (as chunk-result.ts's): past 2^53 a count would silently lose values. */
function exactAdd(a: number, b: number): number {
  const sum = a + b;
  if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || !Number.isSafeInteger(sum)) {
    throw new NightscoreError('STATS_NOT_EXACT', `a drift count of ${a} + ${b} is not an exact integer`, {
      hint: 'A chunk reported a count that is not a whole number, or the total passed 2^53; report this with the run\'s manifest.',
    });
  }
  return sum;
}
