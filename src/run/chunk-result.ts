/**
 * What a chunk hands back: where it wrote, and what it counted, as one plain-JSON value (in
 * the queue it is the chunk job's return value; a failed run's manifest keeps those of its
 * finished chunks). Chunks finish in any order, on any worker, and a run's figures must not
 * depend on which, so the counts have a merge that is exact and order-independent: every
 * field is an integer count (a floating-point sum, whose last bits depend on the order it
 * was added in, has no place here), and every map comes out of a merge in key order, so
 * that any grouping and order of the same chunks gives the same bytes.
 */
import { mergeCounts, type ColumnCounts } from '../drift/counts.js';
import { exactAdd } from '../drift/exact-sum.js';
import { mergeSegmentCounts, type SegmentCounts } from '../drift/segment.js';
import { mergeComparisons, type ComparisonCounts } from '../shadow/compare.js';

export interface RowCounts {
  read: number;
  scored: number;
  rejected: number;
}

/**
 * One stage's counts, by name. A stage that needs a sum of reals (a comparison's total
 * difference, say) counts it in whole units of a fixed size, so that it still adds exactly.
 */
export type StageCounts = Record<string, number>;

export interface ChunkStats {
  rows: RowCounts;
  /** Rows read per input object URI (a split object's rows come from several chunks). */
  inputs: Record<string, number>;
  /**
   * Counts a stage of the chunk adds, by the stage's name (drift's profiles, a challenger's
   * comparison with the champion), merged name by name and count by count. No stage counts
   * yet: absent when no stage counted, so a result reads as it did before stages had a place.
   */
  stages?: Record<string, StageCounts>;
  /**
   * The values the champion scored, and its predictions, counted on the run's drift profile's
   * bins, by column key (drift/profile.ts): integer counts and exact sums, merged exactly
   * (drift/counts.ts). Absent when the run measures no drift.
   */
  drift?: Record<string, ColumnCounts>;
  /**
   * With drift.segment: the same counts per segment the chunk met, by segment key
   * (drift/profile.ts segmentKey), with the segment's scored rows; merged as exactly. Absent
   * when the run measures no segments.
   */
  drift_segments?: Record<string, SegmentCounts>;
  /**
   * Each challenger's comparison with the champion, by its name (shadow/compare.ts): counts and
   * exact sums, merged exactly. Absent when the run has no challenger.
   */
  shadow?: Record<string, ComparisonCounts>;
}

/** Per segment: where it starts and how many newlines it held, for absolute reject line numbers. */
export interface SegmentResult {
  uri: string;
  start: number;
  newlines: number;
}

/** A chunk's outcome; plain JSON, because in the queue it is the chunk job's return value. */
export interface ChunkResult {
  index: number;
  stats: ChunkStats;
  /**
   * The part, with the size and sha256 of the bytes the chunk wrote: a retry keeps a failed
   * run's part only while it still holds exactly those (absent from older nightscores).
   */
  part: { uri: string; rows: number; bytes?: number; sha256?: string };
  /** Staged rejects (lines relative to their segment) when any row was rejected, with the bytes written and their sha256. */
  stagedRejects: { uri: string; rows: number; bytes?: number; sha256?: string } | null;
  segments: SegmentResult[];
}

export function emptyRows(): RowCounts {
  return { read: 0, scored: 0, rejected: 0 };
}

export function emptyStats(): ChunkStats {
  return { rows: emptyRows(), inputs: {} };
}

/** The stats of all `parts` together: the same value, and the same JSON bytes, whatever their order or grouping. */
export function mergeStats(parts: Iterable<ChunkStats>): ChunkStats {
  let rows = emptyRows();
  const inputs = new Map<string, number>();
  const stages = new Map<string, Map<string, number>>();
  const drift = new Map<string, ColumnCounts[]>();
  const segments: Array<Record<string, SegmentCounts>> = [];
  const shadow = new Map<string, ComparisonCounts[]>();
  for (const s of parts) {
    for (const [name, counts] of Object.entries(s.shadow ?? {})) {
      if (!shadow.has(name)) shadow.set(name, []);
      shadow.get(name)!.push(counts);
    }
    if (s.drift_segments) segments.push(s.drift_segments);
    for (const [column, counts] of Object.entries(s.drift ?? {})) {
      if (!drift.has(column)) drift.set(column, []);
      drift.get(column)!.push(counts);
    }
    rows = addRows(rows, s.rows);
    addInto(inputs, s.inputs, 'row count');
    for (const [stage, counts] of Object.entries(s.stages ?? {})) {
      if (!stages.has(stage)) stages.set(stage, new Map());
      addInto(stages.get(stage)!, counts, `${stage} count`);
    }
  }
  const merged: ChunkStats = { rows, inputs: sortedObject(inputs) };
  if (stages.size > 0) merged.stages = Object.fromEntries([...stages.keys()].sort().map((stage) => [stage, sortedObject(stages.get(stage)!)]));
  if (drift.size > 0) merged.drift = Object.fromEntries([...drift.keys()].sort().map((column) => [column, mergeCounts(drift.get(column)!)]));
  if (segments.length > 0) merged.drift_segments = mergeSegmentCounts(segments);
  if (shadow.size > 0) merged.shadow = Object.fromEntries([...shadow.keys()].sort().map((name) => [name, mergeComparisons(shadow.get(name)!)]));
  return merged;
}

/** Seconds a model (by its role) spent inside its scoring calls, over the chunks of `stats`, when the run timed them (ChunkSpec.timed); else 0. */
export function modelSeconds(stats: ChunkStats, role: string): number {
  return (stats.stages?.[`score.${role}`]?.time_us ?? 0) / 1e6;
}

export function addRows(a: RowCounts, b: RowCounts): RowCounts {
  return { read: exactAdd(a.read, b.read), scored: exactAdd(a.scored, b.scored), rejected: exactAdd(a.rejected, b.rejected) };
}

function addInto(total: Map<string, number>, counts: Record<string, number>, what: string): void {
  for (const [name, n] of Object.entries(counts)) total.set(name, exactAdd(total.get(name) ?? 0, n, what));
}

/**
 * In key order, whatever order the keys were first seen in. (Integer-like keys the engine
 * puts first in numeric order itself: also independent of the merge's order.) fromEntries,
 * unlike assignment, makes a key such as `__proto__` a plain property.
 */
function sortedObject(counts: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...counts.keys()].sort().map((k) => [k, counts.get(k)!]));
}
