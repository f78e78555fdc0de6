/**
 * Drift per segment (drift.segment): each scored row is counted into the counters of its
 * segment as well as the run's. The segments are fixed in the profile (its most frequent
 * reference values, the rest OTHER, a missing or empty value NULL), so every worker puts a row
 * in the same one, and the per-segment counts merge as exactly as the run's.
 *
 * A batch is split once: each scored row's segment found, the rows grouped by segment with a
 * counting sort, and each segment's rows gathered into a small batch of their own that the
 * segment's ProfileCounter counts as it would any batch. The rows are looked at a fixed number
 * of times, however many segments there are.
 */
import { NightscoreError } from '../errors.js';
import type { TensorData } from '../engine/engine.js';
import type { Batch } from '../formats/batch.js';
import { keyText } from '../formats/key-values.js';
import { float16Value, formatFloat32 } from '../formats/numbers.js';
import { float32Offsets, type ColumnValues, type FeatureBatch, type FeatureColumn } from '../model/features.js';
import type { OutputValues } from '../model/scorer.js';
import { emptyCounts, mergeCounts, type ColumnCounts } from './counts.js';
import { columnKey, MAX_SEGMENT_VALUES, segmentKey, segmentsOf, type Profile, type ProfileSegments, type SegmentOf } from './profile.js';
import { ProfileCounter, type ProfiledModel } from './profile-counter.js';

/** A segment's share of a chunk's drift (ChunkStats.drift_segments): its scored rows, and its columns' counts by column key. */
export interface SegmentCounts {
  rows: number;
  counts: Record<string, ColumnCounts>;
}

/** Where the segment column's values are: a column the model reads (by its canonical value), else a key column (by its text). */
export type SegmentColumn = { kind: 'feature'; index: number; type: FeatureColumn['type']; float32: number } | { kind: 'key'; index: number };

/**
 * Finds the segment column among the model's feature columns, then the job's key columns. A
 * feature is taken first: its value is what the model read, and its text canonical ("1.50" and
 * "1.5" are one segment), where a key's is its text as read.
 */
export function locateSegmentColumn(column: string, keys: readonly string[], features: readonly FeatureColumn[], source?: string): SegmentColumn {
  const j = features.findIndex((c) => c.name === column);
  if (j >= 0) return { kind: 'feature', index: j, type: features[j]!.type, float32: float32Offsets(features)[j]! };
  const k = keys.indexOf(column);
  if (k >= 0) return { kind: 'key', index: k };
  const named = (names: readonly string[]) => (names.length === 0 ? 'none' : names.map((n) => `"${n}"`).join(', '));
  throw new NightscoreError('JOB_INVALID', `drift.segment: "${column}" is neither a key column (input.key: ${named(keys)}) nor a column the model reads (${named(features.map((c) => c.name))})`, {
    source,
    column: 'drift.segment',
    hint: "Segment by one of the job's key columns or one of the columns the model reads (a region, a channel, a product).",
  });
}

/** Reads a row's segment text from a batch: null for a missing or empty value. */
export class SegmentReader {
  private readonly float32Width: number;

  constructor(
    readonly at: SegmentColumn,
    features: readonly FeatureColumn[],
  ) {
    this.float32Width = features.filter((c) => c.type === 'float32').length;
  }

  /**
   * Whether the column holds numbers whose text is worth remembering by value: not strings, nor
   * int64s, two of which past 2^53 can be one number and two segments.
   */
  get numeric(): boolean {
    return this.at.kind === 'feature' && this.at.type !== 'string' && this.at.type !== 'int64';
  }

  /** Row r's number (NaN when missing), for a numeric column. */
  number(batch: FeatureBatch, r: number): number {
    const at = this.at as Extract<SegmentColumn, { kind: 'feature' }>;
    const values = batch.columns[at.index];
    if (values === undefined) return batch.features[r * this.float32Width + at.float32]!;
    if (at.type === 'float16') return float16Value((values as Uint16Array)[r]!);
    if (values instanceof BigInt64Array) return Number(values[r]!);
    return (values as Float64Array | Int32Array | Uint8Array)[r]!;
  }

  text(batch: Batch, r: number): string | null {
    const { at } = this;
    if (at.kind === 'key') {
      if (batch.keys.isNull(r, at.index)) return null;
      const value = batch.keys.value(r, at.index);
      const text = typeof value === 'string' ? value : keyText(value);
      return text === '' ? null : text;
    }
    const values = batch.columns[at.index];
    if (Array.isArray(values)) {
      const s = values[r];
      return s === undefined || s === null || s === '' ? null : s;
    }
    // An int64 past 2^53 keeps its exact digits.
    if (values instanceof BigInt64Array) return String(values[r]!);
    return numberText(this.number(batch, r), at.type);
  }
}

/** A number's canonical text: the shortest that reads back at its type, -0 as 0; NaN (a missing value) is null. */
function numberText(x: number, type: FeatureColumn['type']): string | null {
  if (Number.isNaN(x)) return null;
  if (x === 0) return '0';
  return type === 'float32' || type === 'float16' ? formatFloat32(x) : String(x);
}

/** Distinct values a build tallies; past it new values are not counted, and the segments are chosen among those it kept. */
const MAX_TALLIED = 1_000_000;

/** The segment column's values over a reference, counted, to choose the segments from. */
export class SegmentTally {
  private readonly counts = new Map<string, number>();

  add(text: string | null): void {
    if (text === null) return;
    const n = this.counts.get(text);
    if (n !== undefined) this.counts.set(text, n + 1);
    else if (this.counts.size < MAX_TALLIED) this.counts.set(text, 1);
  }

  /** The most frequent values, at most MAX_SEGMENT_VALUES; ties in code-unit order, so the same reference gives the same segments. */
  values(): string[] {
    return [...this.counts]
      .sort(([a, m], [b, n]) => n - m || (a < b ? -1 : a > b ? 1 : 0))
      .slice(0, MAX_SEGMENT_VALUES)
      .map(([value]) => value);
  }
}

/** Remembered numbers' segments, at most; past it the memory starts again. */
const MEMO_SIZE = 65_536;

/**
 * Counts a batch into the run's counters and into its rows' segments' counters. A segment's
 * counter is made when its first row comes, so a chunk's result holds the segments it met.
 */
export class SegmentedCounter {
  readonly overall: ProfileCounter;
  private readonly index: Map<string, number>;
  private readonly segments: SegmentOf[];
  private readonly counters: (ProfileCounter | undefined)[];
  private readonly rows: number[];
  private readonly reader: SegmentReader;
  private readonly memo = new Map<number, number>();
  private readonly float32Width: number;

  constructor(
    private readonly profile: Pick<Profile, 'columns'>,
    values: readonly string[],
    private readonly model: ProfiledModel,
    at: SegmentColumn,
  ) {
    this.overall = new ProfileCounter(profile, model);
    this.index = new Map(values.map((v, i) => [v, i]));
    this.segments = segmentsOf(values);
    this.counters = this.segments.map(() => undefined);
    this.rows = this.segments.map(() => 0);
    this.reader = new SegmentReader(at, model.columns);
    this.float32Width = model.columns.filter((c) => c.type === 'float32').length;
  }

  private segmentOf(batch: Batch, r: number): number {
    const other = this.segments.length - 2;
    if (!this.reader.numeric) {
      const text = this.reader.text(batch, r);
      return text === null ? other + 1 : (this.index.get(text) ?? other);
    }
    const x = this.reader.number(batch, r);
    let id = this.memo.get(x);
    if (id === undefined) {
      const text = this.reader.text(batch, r);
      id = text === null ? other + 1 : (this.index.get(text) ?? other);
      if (this.memo.size >= MEMO_SIZE) this.memo.clear();
      this.memo.set(x, id);
    }
    return id;
  }

  /** Counts a scored batch as ProfileCounter.add does, overall and per segment. */
  add(batch: Batch, failed: readonly number[], scored: readonly OutputValues[]): void {
    this.overall.add(batch, failed, scored);
    const n = batch.rows - failed.length;
    if (n === 0) return;
    // Each scored row's segment, then the rows grouped by segment (a counting sort, stable: ascending within a segment).
    const ids = new Int32Array(n);
    const batchRow = new Int32Array(n);
    const starts = new Int32Array(this.segments.length + 1);
    let skip = 0;
    for (let r = 0, o = 0; r < batch.rows; r++) {
      if (skip < failed.length && failed[skip] === r) {
        skip++;
        continue;
      }
      const id = this.segmentOf(batch, r);
      ids[o] = id;
      batchRow[o] = r;
      starts[id + 1]!++;
      o++;
    }
    for (let s = 0; s < this.segments.length; s++) starts[s + 1]! += starts[s]!;
    const next = starts.slice(0, -1);
    const rowsBy = new Int32Array(n);
    const outputsBy = new Int32Array(n);
    for (let o = 0; o < n; o++) {
      const at = next[ids[o]!]!++;
      rowsBy[at] = batchRow[o]!;
      outputsBy[at] = o;
    }
    for (let s = 0; s < this.segments.length; s++) {
      const from = starts[s]!;
      const to = starts[s + 1]!;
      if (from === to) continue;
      const counter = (this.counters[s] ??= new ProfileCounter(this.profile, this.model));
      const sub: FeatureBatch = {
        rows: to - from,
        features: gatherRows(batch.features, rowsBy, from, to, this.float32Width),
        columns: batch.columns.map((values) => (values === undefined ? undefined : gatherRows(values, rowsBy, from, to, 1))),
      };
      counter.add(sub, [], scored.map((o) => ({ columns: o.columns, data: gatherRows(o.data, outputsBy, from, to, o.columns.names.length) })));
      this.rows[s] = this.rows[s]! + (to - from);
    }
  }

  /** The counts of every segment met so far, by segment key, in key order. */
  result(): Record<string, SegmentCounts> {
    const met = this.segments.flatMap((segment, s) => (this.counters[s] ? [[segmentKey(segment), { rows: this.rows[s]!, counts: this.counters[s].result() }] as const] : []));
    return Object.fromEntries(met.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
}

/** Rows `rows[from..to)` of a row-major array of `width` values a row, gathered into an array of the same kind. */
function gatherRows<T extends TensorData | ColumnValues>(values: T, rows: Int32Array, from: number, to: number, width: number): T {
  const n = to - from;
  const out = (Array.isArray(values) ? new Array<string>(n * width) : new (values.constructor as new (length: number) => T)(n * width)) as unknown as ArrayLike<unknown> & Record<number, unknown>;
  const source = values as unknown as ArrayLike<unknown>;
  for (let i = 0; i < n; i++) {
    const r = rows[from + i]! * width;
    for (let k = 0; k < width; k++) out[i * width + k] = source[r + k];
  }
  return out as unknown as T;
}

/** The exact merge of chunks' segment counts: rows added, counts merged column by column, keys in order. */
export function mergeSegmentCounts(parts: ReadonlyArray<Record<string, SegmentCounts>>): Record<string, SegmentCounts> {
  const bySegment = new Map<string, SegmentCounts[]>();
  for (const part of parts) {
    for (const [key, counts] of Object.entries(part)) {
      if (!bySegment.has(key)) bySegment.set(key, []);
      bySegment.get(key)!.push(counts);
    }
  }
  return Object.fromEntries(
    [...bySegment.keys()].sort().map((key) => {
      const all = bySegment.get(key)!;
      const columns = [...new Set(all.flatMap((s) => Object.keys(s.counts)))].sort();
      const rows = all.reduce((a, s) => exactRows(a, s.rows), 0);
      return [key, { rows, counts: Object.fromEntries(columns.map((c) => [c, mergeCounts(all.flatMap((s) => (Object.hasOwn(s.counts, c) ? [s.counts[c]!] : [])))])) }];
    }),
  );
}

function exactRows(a: number, b: number): number {
  const sum = a + b;
  if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || !Number.isSafeInteger(sum)) {
    throw new NightscoreError('STATS_NOT_EXACT', `a segment's row count of ${a} + ${b} is not an exact integer`, {
      hint: 'A chunk reported a count that is not a whole number, or the total passed 2^53; report this with the run\'s manifest.',
    });
  }
  return sum;
}

/**
 * A profile's segment block from a reference's counts: every segment of `values` in order,
 * those the reference never met with no rows and empty counts on each column's bins.
 */
export function segmentBlock(column: string, values: readonly string[], profile: Pick<Profile, 'columns'>, counted: Record<string, SegmentCounts>): ProfileSegments {
  return {
    column,
    values: [...values],
    segments: segmentsOf(values).map((segment) => {
      const met = Object.hasOwn(counted, segmentKey(segment)) ? counted[segmentKey(segment)] : undefined;
      return { segment, rows: met?.rows ?? 0, counts: Object.fromEntries(profile.columns.map((c) => [columnKey(c), met?.counts[columnKey(c)] ?? emptyCounts(c.bins)])) };
    }),
  };
}

/**
 * A job that segments needs a profile whose segment values were fixed for that column: the
 * values are what every worker buckets by, and the reference's counts per segment are what
 * each segment is compared with. Refused at plan time, before any row is read.
 */
export function checkProfileSegments(profile: Profile, uri: string, column: string): void {
  if (profile.segment?.column === column) return;
  const has = profile.segment ? `is segmented by "${profile.segment.column}"` : 'has no segments';
  throw new NightscoreError('PROFILE_MISMATCH', `the job sets drift.segment: ${column}, and the drift profile ${uri} ${has}`, {
    source: uri,
    column,
    hint: `Build the profile again with this job (nightscore profile build <job.yaml> <reference data>), which fixes the segments of "${column}"; or remove drift.segment.`,
  });
}
