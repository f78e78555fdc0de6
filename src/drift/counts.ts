/**
 * A column's counts on its layout: one shape for a reference and for a run, plain JSON, with
 * a merge that is exact (integer counts, canonical exact sums), so that a run's counts come out
 * as the same bytes from one worker or seven, and the sum of past runs is itself a reference.
 */
import { NightscoreError } from '../errors.js';
import { binColumn, binCount, binnerFor, lookupFor, NAN_SLOT, NEG_INF_SLOT, POS_INF_SLOT, type Bins, type NumberLookup } from './bins.js';
import { canonicalSum, exactAdd, ExactSum, mergeSums, productOf, sumValue } from './exact-sum.js';
import { Float32Sums } from './float32-sums.js';

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

/**
 * Rows a float32 column is counted in at a time: few enough that the sums of a block's values
 * and of their squares stay exact in doubles (see momentsOf).
 */
const BLOCK_ROWS = 2048;
/** Slots past a layout's bins: binColumn's NaN and infinities (bins.ts), and rejected rows. */
const REJECTED = 3;
const SPECIAL_SLOTS = 4;
/** Each value's slot in the block being counted: one buffer per thread, as counters count one at a time. */
const binned = new Int32Array(BLOCK_ROWS);

/** Counts one column's values of a chunk into its layout. */
export class ColumnCounter {
  /** The layout's bins, then SPECIAL_SLOTS slots that the float32 path counts into. */
  private readonly bins: Float64Array;
  private readonly finite: number;
  /** The biased float32 exponent the moments of a block are split on (see momentsOf): the largest seen so far. */
  private scale: number;
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
    this.finite = binCount(layout);
    this.bins = new Float64Array(this.finite + SPECIAL_SLOTS);
    this.toBin = layout.kind === 'categorical' ? null : binnerFor(layout);
    this.toCategory = layout.kind === 'categorical' ? binnerFor(layout) : null;
    this.lookup = lookupFor(layout);
    this.scale = initialScale(layout);
  }

  /**
   * Counts a float32 column's values of `slice` as addNumber would count each one (the same
   * counts, the same exact sums), a block of rows at a time in three loops that each do one
   * thing: every value's slot (its bin, or NaN, ±Inf, or a rejected row: binColumn), the slots
   * counted, then min, max and the moments of the finite ones (float32Moments).
   */
  addFloat32Column(values: Float32Array, slice: Float32Slice): void {
    const { stride, offset, rows, skip, nanIsMissing } = slice;
    const lookup = this.lookup;
    if (lookup === null) {
      let s = 0;
      for (let r = 0, i = offset; r < rows; r++, i += stride) {
        if (s < skip.length && skip[s] === r) s++;
        else this.addNumber(nanIsMissing && Number.isNaN(values[i]!) ? null : values[i]!);
      }
      return;
    }
    const slots = this.bins;
    const finite = this.finite;
    let s = 0;
    for (let from = 0; from < rows; from += BLOCK_ROWS) {
      const n = Math.min(BLOCK_ROWS, rows - from);
      const at = offset + from * stride;
      binColumn(lookup, values, stride, at, n, binned);
      for (; s < skip.length && skip[s]! < from + n; s++) binned[skip[s]! - from] = finite + REJECTED;
      countSlots(binned, n, slots);
      if (nanIsMissing) {
        this.missing += slots[finite + NAN_SLOT]!;
        slots[finite + NAN_SLOT] = 0;
      }
      this.addMoments(values, stride, at, n, finite);
    }
  }

  /** min, max and the exact sums of the finite values among `rows` rows (at most BLOCK_ROWS) binned into `binned`. */
  private addMoments(values: Float32Array, stride: number, offset: number, rows: number, finite: number): void {
    const m = float32Moments;
    momentsOf(values, stride, offset, rows, binned, finite, splitterFor(this.scale), m);
    if (m[COUNT] === 0) return;
    this.n += m[COUNT]!;
    // -0 as 0, as addNumber.
    const min = m[MIN] === 0 ? 0 : m[MIN]!;
    const max = m[MAX] === 0 ? 0 : m[MAX]!;
    if (min < this.min) this.min = min;
    if (max > this.max) this.max = max;
    // Every value is 0 (no sum to add), or the block's values span float32 exponents low…top.
    if (m[MIN_ABS] === Infinity) return;
    const top = exponentOf(Math.max(-min, max));
    const low = exponentOf(m[MIN_ABS]!);
    if (top - low > MAX_SPAN) {
      // Values too far apart in size for a double's 53 bits: the exact, slower way.
      this.float32Sums.reserve(rows, this.sum, this.sumSq);
      addFloat32Sums(values, stride, offset, rows, binned, finite, this.float32Sums);
      return;
    }
    if (top > this.scale || this.scale - low > MAX_SPAN) {
      // Split on a scale that did not fit this block: again, on the block's own.
      this.scale = top;
      momentsOf(values, stride, offset, rows, binned, finite, splitterFor(top), m);
    }
    this.sum.add(m[SUM]!);
    this.sumSq.add(m[HIGH_SQ]!);
    this.sumSq.add(2 * m[CROSS]!);
    this.sumSq.add(m[LOW_SQ]!);
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
    const f = this.finite;
    return {
      bins: Array.from(this.bins.subarray(0, f)),
      missing: this.missing,
      nan: this.nan + this.bins[f + NAN_SLOT]!,
      pos_inf: this.posInf + this.bins[f + POS_INF_SLOT]!,
      neg_inf: this.negInf + this.bins[f + NEG_INF_SLOT]!,
      n: this.n,
      sum: canonicalSum(this.sum.partials),
      sum_sq: canonicalSum(this.sumSq.partials),
      min: this.n > 0 && this.toBin ? this.min : null,
      max: this.n > 0 && this.toBin ? this.max : null,
    };
  }
}

/** Slots of float32Moments: what momentsOf finds in a block. */
const COUNT = 0;
const MIN = 1;
const MAX = 2;
const MIN_ABS = 3;
const SUM = 4;
const HIGH_SQ = 5;
const CROSS = 6;
const LOW_SQ = 7;
const float32Moments = new Float64Array(8);

/** Adds one to the slot of each of the first `rows` entries of `binned`. */
function countSlots(binned: Int32Array, rows: number, slots: Float64Array): void {
  for (let r = 0; r < rows; r++) slots[binned[r]!]!++;
}

/**
 * The widest span of float32 exponents, from a block's largest value to its smallest nonzero
 * one, whose sums momentsOf keeps exact. A float32 of biased exponent k is a multiple of
 * 2^(k−150) below 2^(k−126); with `scale` E at least the largest k and the smallest L, a
 * block of at most 2^11 values sums to below 2^(E−115) on a grid of 2^(L−150): exact in a
 * double's 53 bits while E − L ≤ 18. Squares are split the same way (momentsOf).
 */
const MAX_SPAN = 18;

/**
 * Over the finite values of a block (binned below `finite`): their count, min, max, smallest
 * nonzero magnitude, and, in plain doubles, their sum and their squares' sum in three parts.
 * Each x is split at 2^g, g = E − 146 (E the scale `splitter` was made for, 1.5 · 2^(g+52)),
 * into xh, a multiple of 2^g of at most 21 bits, and xl = x − xh, both exact; then
 * x² = xh² + 2·xh·xl + xl², and each part's products and block sums fit in 53 bits when
 * E − L ≤ MAX_SPAN (xh² below 2^51 units of 2^2g; xh·xl below 2^(E−L+34) units of
 * 2^(g+L−150); xl² below 2^(2(E−L)+17) units of 2^(2L−300)). The caller checks the span
 * afterwards and otherwise counts the block the slower exact way.
 */
function momentsOf(values: Float32Array, stride: number, offset: number, rows: number, binned: Int32Array, finite: number, splitter: number, m: Float64Array): void {
  let count = 0;
  let min = Infinity;
  let max = -Infinity;
  let minAbs = Infinity;
  let sum = 0;
  let highSq = 0;
  let cross = 0;
  let lowSq = 0;
  for (let r = 0, i = offset; r < rows; r++, i += stride) {
    if (binned[r]! >= finite) continue;
    const x = values[i]!;
    count++;
    if (x < min) min = x;
    if (x > max) max = x;
    const a = Math.abs(x);
    if (a < minAbs && a !== 0) minAbs = a;
    sum += x;
    const xh = x + splitter - splitter;
    const xl = x - xh;
    highSq += xh * xh;
    cross += xh * xl;
    lowSq += xl * xl;
  }
  m[COUNT] = count;
  m[MIN] = min;
  m[MAX] = max;
  m[MIN_ABS] = minAbs;
  m[SUM] = sum;
  m[HIGH_SQ] = highSq;
  m[CROSS] = cross;
  m[LOW_SQ] = lowSq;
}

/** The exact sums of a block's finite values through Float32Sums, for values too far apart in size for momentsOf. */
function addFloat32Sums(values: Float32Array, stride: number, offset: number, rows: number, binned: Int32Array, finite: number, sums: Float32Sums): void {
  const bits = new Int32Array(values.buffer, values.byteOffset, values.length);
  for (let r = 0, i = offset; r < rows; r++, i += stride) {
    if (binned[r]! < finite) sums.add(bits[i]!);
  }
}

/** 1.5 · 2^(E − 94) for each biased exponent E: the splitter momentsOf takes for scale E. */
const SPLITTERS = (() => {
  const out = new Float64Array(256);
  let p = 1.5;
  for (let e = 94; e < 256; e++, p *= 2) out[e] = p;
  p = 1.5;
  for (let e = 93; e >= 0; e--) out[e] = p /= 2;
  return out;
})();

function splitterFor(scale: number): number {
  return SPLITTERS[scale]!;
}

const exponentBits = new Float32Array(1);
const exponentWord = new Int32Array(exponentBits.buffer);

/** The biased exponent of a finite float32 magnitude, subnormals (and 0) taking 1, the exponent of their grid. */
function exponentOf(a: number): number {
  exponentBits[0] = a;
  return Math.max((exponentWord[0]! >>> 23) & 0xff, 1);
}

/** A column's first scale: its layout's largest magnitude, so that most blocks are split once. */
function initialScale(layout: Bins): number {
  const values = layout.kind === 'numeric' ? layout.edges : layout.kind === 'discrete' ? layout.values : layout.kind === 'probability' ? [1] : [];
  let largest = 0;
  for (const v of values) if (Number.isFinite(v) && Math.abs(v) <= MAX_FLOAT32) largest = Math.max(largest, Math.abs(v));
  return exponentOf(largest);
}

const MAX_FLOAT32 = 3.4028234663852886e38;

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
    for (let i = 0; i < bins.length; i++) bins[i] = exactAdd(bins[i]!, c.bins[i]!, 'drift count');
    for (const k of ['missing', 'nan', 'pos_inf', 'neg_inf', 'n'] as const) total[k] = exactAdd(total[k], c[k], 'drift count');
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
