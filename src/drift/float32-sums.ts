/**
 * Exact sums of float32 values and of their squares, at the cost of a few integer operations per
 * value. A finite float32 is `m · 2^(k - 150)` with an integer `|m| < 2^24` and k in 1…254 (its
 * biased exponent, subnormals taking k = 1), so its `m` can be added into an integer bucket kept
 * per k; its square is `m² · 2^(2k - 300)` with `m² < 2^48`, added into the bucket of 2k. Buckets
 * are doubles, exact for integers below 2^53: an `m` below 2^24 can be added 2^29 times before a
 * sum bucket could pass it, and a square bucket is emptied into the exact sum of squares when the
 * next square could take it past (every few dozen values of one exponent): a comparison per
 * value, where cutting each square in two halves took a division. Each bucket, scaled by its
 * power of two (exact), goes into an ExactSum then, when the buckets could overflow and before a
 * result, so the sums are the exact values ExactSum.add and addSquare would reach value by value,
 * and their canonical expansions the same bytes.
 */
import type { ExactSum } from './exact-sum.js';

/** Values the buckets take before they are flushed: each adds less than 2^24 to a bucket, and 2^29 · 2^24 = 2^53. */
export const MAX_PENDING = 2 ** 29;

const SUM_BUCKETS = 255;
const SQUARE_BUCKETS = 2 * 254 + 1;
/** A square bucket at or past this is emptied before the next square (below 2^48) goes in, so it stays an integer below 2^53. */
const SQUARE_ROOM = 2 ** 53 - 2 ** 48;

/** 2^(i - offset) for i in [0, length), by doubling and halving, which are exact. */
function powersOfTwo(length: number, offset: number): Float64Array {
  const out = new Float64Array(length);
  let p = 1;
  for (let i = offset; i < length; i++, p *= 2) out[i] = p;
  p = 1;
  for (let i = offset - 1; i >= 0; i--) out[i] = p /= 2;
  return out;
}
const SUM_UNIT = powersOfTwo(SUM_BUCKETS, 150);
const SQUARE_UNIT = powersOfTwo(SQUARE_BUCKETS, 300);

/** Running exact sums of finite float32 values, and of their squares, given as their bits. */
export class Float32Sums {
  private readonly sums = new Float64Array(SUM_BUCKETS);
  private readonly squares = new Float64Array(SQUARE_BUCKETS);
  private pending = 0;
  /** The sum of squares a full square bucket is emptied into, between reserve and flush. */
  private spillTo: ExactSum | null = null;

  /** Makes room for `count` (at most MAX_PENDING) more values: flushes into `sum` and `sumSq` when the buckets could overflow. */
  reserve(count: number, sum: ExactSum, sumSq: ExactSum): void {
    if (this.pending + count > MAX_PENDING) this.flush(sum, sumSq);
    this.pending += count;
    this.spillTo = sumSq;
  }

  /** Adds the finite float32 whose bits are `u` (not NaN nor an infinity), after reserve made room for it. */
  add(u: number): void {
    const biased = (u >>> 23) & 0xff;
    const k = biased === 0 ? 1 : biased;
    const m = biased === 0 ? u & 0x7fffff : (u & 0x7fffff) | 0x800000;
    if (u >>> 31) this.sums[k]! -= m;
    else this.sums[k]! += m;
    if (this.squares[2 * k]! >= SQUARE_ROOM) this.spill(2 * k);
    this.squares[2 * k]! += m * m;
  }

  /**
   * Adds the product of the finite float32s whose bits are `ux` and `uy` into the squares'
   * buckets (after reserve): a product `mx·my · 2^(kx + ky - 300)` is kept exactly as a square
   * is, so an instance used this way sums products exactly (flushed as its sum of squares).
   */
  addProduct(ux: number, uy: number): void {
    const bx = (ux >>> 23) & 0xff;
    const by = (uy >>> 23) & 0xff;
    const kx = bx === 0 ? 1 : bx;
    const ky = by === 0 ? 1 : by;
    const mx = bx === 0 ? ux & 0x7fffff : (ux & 0x7fffff) | 0x800000;
    const my = by === 0 ? uy & 0x7fffff : (uy & 0x7fffff) | 0x800000;
    const j = kx + ky;
    if (Math.abs(this.squares[j]!) >= SQUARE_ROOM) this.spill(j);
    if ((ux ^ uy) >>> 31) this.squares[j]! -= mx * my;
    else this.squares[j]! += mx * my;
  }

  /** Empties square bucket `j` into the exact sum of squares: done when it reaches SQUARE_ROOM, before the next square goes in. */
  private spill(j: number): void {
    this.spillTo!.add(this.squares[j]! * SQUARE_UNIT[j]!);
    this.squares[j] = 0;
  }

  /** Moves every bucket into `sum` and `sumSq` (exactly) and empties them. */
  flush(sum: ExactSum, sumSq: ExactSum): void {
    for (let k = 0; k < SUM_BUCKETS; k++) {
      if (this.sums[k] !== 0) sum.add(this.sums[k]! * SUM_UNIT[k]!);
    }
    for (let k = 0; k < SQUARE_BUCKETS; k++) {
      if (this.squares[k] !== 0) sumSq.add(this.squares[k]! * SQUARE_UNIT[k]!);
    }
    this.sums.fill(0);
    this.squares.fill(0);
    this.pending = 0;
  }
}
