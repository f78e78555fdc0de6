/**
 * What a chunk counts while it scores, as one value whose merge is exact and
 * order-independent: chunks finish in any order, on any worker, and a run's figures must not
 * depend on which. Every field is an integer count or an exact sum; a floating-point sum
 * (whose last bits depend on the order it was added in) has no place here. The merge runs
 * once, at commit, over every chunk's stats.
 */
import { NightscoreError } from '../errors.js';
import type { RowCounts } from './manifest.js';

export interface ChunkStats {
  rows: RowCounts;
  /** Rows read per input object URI (a split object's rows come from several chunks). */
  inputs: Record<string, number>;
}

export function emptyStats(): ChunkStats {
  return { rows: { read: 0, scored: 0, rejected: 0 }, inputs: {} };
}

/** The stats of all `parts` together: the same whatever their order or grouping. */
export function mergeStats(parts: Iterable<ChunkStats>): ChunkStats {
  const total = emptyStats();
  for (const s of parts) {
    total.rows = addRows(total.rows, s.rows);
    for (const [uri, rows] of Object.entries(s.inputs)) total.inputs[uri] = exactAdd(total.inputs[uri] ?? 0, rows);
  }
  return total;
}

export function addRows(a: RowCounts, b: RowCounts): RowCounts {
  return { read: exactAdd(a.read, b.read), scored: exactAdd(a.scored, b.scored), rejected: exactAdd(a.rejected, b.rejected) };
}

/** Integer addition that refuses to round: past 2^53 a count would silently lose rows. */
function exactAdd(a: number, b: number): number {
  const sum = a + b;
  if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || !Number.isSafeInteger(sum)) {
    throw new NightscoreError('STATS_NOT_EXACT', `a row count of ${a} + ${b} is not an exact integer`, {
      hint: 'A chunk reported a count that is not a whole number, or the total passed 2^53; report this with the run\'s manifest.',
    });
  }
  return sum;
}
