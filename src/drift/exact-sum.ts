/**
 * Exact sums of doubles, so that a column's moments merge like its counts: the same values
 * added on one worker or on seven, in any order and grouping, give the same JSON bytes.
 *
 * A running sum is kept as Shewchuk's expansion (as Python's `math.fsum` keeps it): a list of
 * non-overlapping doubles, smallest first, whose exact real sum is the exact sum of every value
 * added. Which doubles make up that list depends on the order the values came in, so what is
 * stored or compared is the canonical expansion of the exact value (see canonicalSum), which
 * depends on the value only.
 */
import { NightscoreError } from '../errors.js';

/** Veltkamp's splitter for doubles: 2^27 + 1 cuts a 53-bit significand into two 26-bit halves. */
const SPLITTER = 134217729;

/** A running exact sum of finite doubles. */
export class ExactSum {
  private readonly parts: number[] = [];

  /** Adds `x` exactly; throws STATS_NOT_EXACT when `x` is not finite or a partial sum would pass the largest double. */
  add(x: number): void {
    if (!Number.isFinite(x)) throw notExact(`a sum was given ${x}`);
    const p = this.parts;
    let i = 0;
    for (let j = 0; j < p.length; j++) {
      let y = p[j]!;
      if (Math.abs(x) < Math.abs(y)) {
        const t = x;
        x = y;
        y = t;
      }
      const hi = x + y;
      if (hi === Infinity || hi === -Infinity) throw overflow();
      // Two-sum with |x| >= |y|: `lo` is exactly what rounding `x + y` dropped.
      const lo = y - (hi - x);
      if (lo !== 0) p[i++] = lo;
      x = hi;
    }
    p.length = i;
    p.push(x);
  }

  /**
   * Adds `x * x` exactly: the rounded product and the error Dekker's product recovers. When the
   * square's lowest bits fall below the smallest subnormal (|x| under about 2^-485) they cannot be
   * held by any double and are rounded away; that rounding depends on `x` alone, so sums of
   * squares stay independent of order and grouping.
   */
  addSquare(x: number): void {
    const [hi, lo] = squareOf(x);
    this.add(hi);
    if (lo !== 0) this.add(lo);
  }

  /** The expansion as it stands (smallest first, non-overlapping); which doubles it holds depends on the order of the adds. */
  get partials(): number[] {
    return [...this.parts];
  }
}

/**
 * `x * x` as `hi + lo` exactly (Dekker's product with Veltkamp's split). JavaScript never fuses a
 * multiply and an add, so every engine computes the same two doubles.
 */
function squareOf(x: number): [number, number] {
  if (!Number.isFinite(x)) throw notExact(`a sum of squares was given ${x}`);
  const p = x * x;
  if (p === Infinity) throw overflow();
  const c = SPLITTER * x;
  const xh = c - (c - x);
  const xl = x - xh;
  const err = xh * xh - p + 2 * xh * xl + xl * xl;
  if (!Number.isFinite(err)) throw overflow();
  return [p, err];
}

/**
 * `a * b` as `hi + lo` exactly, for the variance (see counts.ts, std). Both factors stay far from
 * the largest double there, so the split cannot overflow.
 */
export function productOf(a: number, b: number): [number, number] {
  const p = a * b;
  if (!Number.isFinite(p)) throw overflow();
  const ca = SPLITTER * a;
  const ah = ca - (ca - a);
  const al = a - ah;
  const cb = SPLITTER * b;
  const bh = cb - (cb - b);
  const bl = b - bh;
  return [p, ah * bh - p + ah * bl + al * bh + al * bl];
}

/**
 * The unique canonical expansion of the exact sum of `partials` (any finite doubles, in any
 * order): largest first, each term the correctly rounded value of what the terms before it left,
 * so the first term is the correctly rounded total; an exact zero is the empty list. The same
 * exact value always gives the same list, whatever order or grouping produced it.
 */
export function canonicalSum(partials: readonly number[]): number[] {
  const rest = new ExactSum();
  for (const x of partials) rest.add(x);
  const out: number[] = [];
  for (;;) {
    // A non-zero sum of doubles is a multiple of the smallest subnormal, so it never rounds to 0.
    const s = roundExpansion(rest.partials);
    if (s === 0) return out;
    out.push(s);
    rest.add(-s);
  }
}

/** The canonical expansion of the sum of every list together (see canonicalSum). */
export function mergeSums(...lists: (readonly number[])[]): number[] {
  return canonicalSum(lists.flat());
}

/** The exact sum of `partials` (any finite doubles, in any order), correctly rounded to a double, as `math.fsum`. */
export function sumValue(partials: readonly number[]): number {
  const acc = new ExactSum();
  for (const x of partials) acc.add(x);
  return roundExpansion(acc.partials);
}

/**
 * The correctly rounded value (ties to even) of a Shewchuk expansion, smallest first: CPython's
 * fsum ending. Adding from the top stops at the first inexact addition; the half-even fix then
 * looks one partial further, since the partials below can tip a tie.
 */
function roundExpansion(expansion: readonly number[]): number {
  // A cancellation can leave a zero partial on top, which the walk down must not meet.
  const p = expansion.filter((x) => x !== 0);
  let n = p.length;
  if (n === 0) return 0;
  let hi = p[--n]!;
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = p[--n]!;
    hi = x + y;
    lo = y - (hi - x);
    if (lo !== 0) break;
  }
  if (n > 0 && ((lo < 0 && p[n - 1]! < 0) || (lo > 0 && p[n - 1]! > 0))) {
    const y = lo * 2;
    const x = hi + y;
    if (y === x - hi) hi = x;
  }
  if (!Number.isFinite(hi)) throw overflow();
  return hi;
}

function notExact(message: string): NightscoreError {
  return new NightscoreError('STATS_NOT_EXACT', message, {
    hint: 'Only finite values are summed (NaN and infinities are counted apart); this is a bug to report with the run\'s manifest.',
  });
}

function overflow(): NightscoreError {
  return new NightscoreError('STATS_NOT_EXACT', 'a column\'s sum (or sum of squares) passes the largest double, so it cannot be kept exactly', {
    hint: 'A column holds values too large to sum (or to square); scale the column, or leave it out of drift.',
  });
}

/** Integer addition that refuses to round: past 2^53 a count (of rows, of a bin) would silently lose some. */
export function exactAdd(a: number, b: number, what = 'row count'): number {
  const sum = a + b;
  if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || !Number.isSafeInteger(sum)) {
    throw new NightscoreError('STATS_NOT_EXACT', `a ${what} of ${a} + ${b} is not an exact integer`, {
      hint: 'A chunk reported a count that is not a whole number, or the total passed 2^53; report this with the run\'s manifest.',
    });
  }
  return sum;
}
