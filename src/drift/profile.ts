/**
 * A reference profile: the bins of every column a model reads and writes, fitted on reference
 * data (nightscore profile build), with the reference's counts on them. A run counts its own
 * values on the same bins, so the two compare bin for bin (statistics.ts).
 *
 * A profile is read back from storage, where anyone may have written it: it is pinned by the
 * sha256 of its bytes at plan time, as a model is, and validated as its type when read, so a
 * hand-edited or damaged file is one clear PROFILE_INVALID naming the field, never a statistic
 * computed from a count that is not a count.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { NightscoreError, toNightscoreError } from '../errors.js';
import { openLocation } from '../storage/open.js';
import { readAll } from '../storage/storage.js';
import { binCount, MAX_CATEGORIES, MAX_DISCRETE_VALUES, MAX_VOCABULARY, NUMERIC_BINS, type Bins } from './bins.js';
import { mergeCounts, type ColumnCounts } from './counts.js';
import type { ColumnRole } from './statistics.js';

export const PROFILE_FORMAT = 'nightscore.profile';
export const PROFILE_VERSION = 1;
/** A profile larger than this is not read: a hundred columns with full vocabularies stay well under it. */
export const MAX_PROFILE_BYTES = 64 * 1024 * 1024;

/** One column of a profile: what it is to the model, its bins, and the reference's counts on them. */
export interface ProfileColumn {
  name: string;
  role: ColumnRole;
  bins: Bins;
  counts: ColumnCounts;
}

export interface Profile {
  format: typeof PROFILE_FORMAT;
  version: typeof PROFILE_VERSION;
  /** The model the profile was built with: its sha256, the columns it reads (batch order) and the prediction columns it writes. */
  model: { sha256: string; features: string[]; outputs: string[] };
  /** Where the reference came from, its rows, and how many of them the bins were fitted on. */
  reference: { uri: string; rows: { read: number; scored: number; rejected: number }; fitted_on: number };
  /** Features in the model's order, then predictions in output order. */
  columns: ProfileColumn[];
  /** With drift.segment: the segment column's fixed values, and the reference's counts per segment on the same bins. */
  segment?: ProfileSegments;
}

/**
 * One segment: a value of the segment column, or OTHER (a value not among the fixed ones), or
 * NULL (missing or empty). Tagged, so no value, whatever its text, can be taken for OTHER or NULL.
 */
export type SegmentOf = { kind: 'value'; value: string } | { kind: 'other' } | { kind: 'null' };

/** A segment of the reference: its scored rows, and its counts on the profile's bins, by column key. */
export interface ProfileSegment {
  segment: SegmentOf;
  rows: number;
  counts: Record<string, ColumnCounts>;
}

/**
 * The segment block. Its values are fixed when the profile is built, so every worker of every
 * run puts a row in the same segment; `segments` lists each value in order, then OTHER, then NULL.
 */
export interface ProfileSegments {
  column: string;
  values: string[];
  segments: ProfileSegment[];
}

/** At most this many values are a segment of their own; the rest are OTHER. */
export const MAX_SEGMENT_VALUES = 50;

/** A profile as a run pins it: where it is and the sha256 of its bytes. */
export interface ProfilePin {
  uri: string;
  sha256: string;
}

/** The key of a column in a run's counts and reports: role and name, so a feature and a prediction may share a name. */
export function columnKey(column: { role: ColumnRole; name: string }): string {
  return `${column.role}:${column.name}`;
}

const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const finite = z.number().refine(Number.isFinite, 'expected a finite number');
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits');

const ascending = (strict: boolean) => (values: number[]) => values.every((v, i) => i === 0 || (strict ? v > values[i - 1]! : v >= values[i - 1]!));
const unique = (values: string[]) => new Set(values).size === values.length;

const binsSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('numeric'), edges: z.array(finite).length(NUMERIC_BINS + 1).refine(ascending(false), 'expected edges in ascending order') }),
  z.strictObject({ kind: z.literal('discrete'), values: z.array(finite).max(MAX_DISCRETE_VALUES).refine(ascending(true), 'expected distinct values in ascending order') }),
  z.strictObject({
    kind: z.literal('categorical'),
    values: z.array(z.string()).max(MAX_CATEGORIES).refine(unique, 'expected distinct values'),
    vocabulary: z.array(z.string()).max(MAX_VOCABULARY).refine((v) => v.every((s, i) => i === 0 || s > v[i - 1]!), 'expected distinct values in code-unit order').nullable(),
  }),
  z.strictObject({ kind: z.literal('probability') }),
]);

const countsSchema = z.strictObject({
  bins: z.array(count),
  missing: count,
  nan: count,
  pos_inf: count,
  neg_inf: count,
  n: count,
  sum: z.array(finite),
  sum_sq: z.array(finite),
  min: finite.nullable(),
  max: finite.nullable(),
});

/** A column's counts read back (a kept chunk's, in a failed run's manifest) are what nightscore writes. */
export function isColumnCounts(value: unknown): boolean {
  const parsed = countsSchema.safeParse(value);
  return parsed.success && parsed.data.bins.reduce((a, b) => a + b, 0) === parsed.data.n;
}

const columnSchema = z
  .strictObject({ name: z.string().min(1), role: z.enum(['feature', 'prediction']), bins: binsSchema, counts: countsSchema })
  .superRefine((c, ctx) => {
    if (c.counts.bins.length !== binCount(c.bins)) ctx.addIssue({ code: 'custom', path: ['counts', 'bins'], message: `expected ${binCount(c.bins)} counts for ${c.bins.kind} bins, got ${c.counts.bins.length}` });
    else if (c.counts.bins.reduce((a, b) => a + b, 0) !== c.counts.n) ctx.addIssue({ code: 'custom', path: ['counts', 'n'], message: 'expected the sum of the bin counts' });
  });

/** A segment as every file that names one writes it (the profile, `_drift.json`, the manifest). */
export const segmentOfSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('value'), value: z.string().min(1) }),
  z.strictObject({ kind: z.literal('other') }),
  z.strictObject({ kind: z.literal('null') }),
]);

const segmentsSchema = z.strictObject({
  column: z.string().min(1),
  values: z.array(z.string().min(1, 'expected a non-empty value (an empty one is the NULL segment)')).max(MAX_SEGMENT_VALUES).refine(unique, 'expected distinct values'),
  segments: z.array(z.strictObject({ segment: segmentOfSchema, rows: count, counts: z.record(z.string(), countsSchema) })),
});

const profileSchema = z
  .strictObject({
    format: z.literal(PROFILE_FORMAT),
    version: z.literal(PROFILE_VERSION),
    model: z.strictObject({ sha256, features: z.array(z.string().min(1)), outputs: z.array(z.string().min(1)) }),
    reference: z.strictObject({ uri: z.string(), rows: z.strictObject({ read: count, scored: count, rejected: count }), fitted_on: count }),
    columns: z.array(columnSchema),
    segment: segmentsSchema.optional(),
  })
  .superRefine((p, ctx) => {
    const seen = new Set<string>();
    p.columns.forEach((c, i) => {
      if (seen.has(columnKey(c))) ctx.addIssue({ code: 'custom', path: ['columns', i, 'name'], message: `expected one ${c.role} column named "${c.name}"` });
      seen.add(columnKey(c));
    });
    if (p.segment) checkSegments(p.segment, p as Profile, (path, message) => ctx.addIssue({ code: 'custom', path: ['segment', ...path], message }));
  });

/**
 * A segment block adds up as a build writes it: every value, then OTHER, then NULL, in that
 * order; each segment's counts on exactly the profile's columns and layouts, each column
 * counting the segment's rows; and, column by column, the segments' counts merge to the
 * profile's own (every scored row is in one segment).
 */
function checkSegments(block: ProfileSegments, p: Profile, issue: (path: (string | number)[], message: string) => void): void {
  const expected = segmentsOf(block.values);
  if (block.segments.length !== expected.length) return issue(['segments'], `expected ${expected.length} segments (each value, then OTHER, then NULL), got ${block.segments.length}`);
  for (const [i, s] of block.segments.entries()) {
    if (segmentKey(s.segment) !== segmentKey(expected[i]!)) return issue(['segments', i, 'segment'], `expected ${JSON.stringify(expected[i])}`);
    const keys = Object.keys(s.counts).sort();
    const wanted = p.columns.map(columnKey).sort();
    if (keys.join('\n') !== wanted.join('\n')) return issue(['segments', i, 'counts'], `expected counts of exactly the profile's columns (${wanted.join(', ')})`);
    for (const c of p.columns) {
      const counts = s.counts[columnKey(c)]!;
      const at = ['segments', i, 'counts', columnKey(c)];
      if (counts.bins.length !== binCount(c.bins)) return issue([...at, 'bins'], `expected ${binCount(c.bins)} counts for ${c.bins.kind} bins, got ${counts.bins.length}`);
      if (counts.bins.reduce((a, b) => a + b, 0) !== counts.n) return issue([...at, 'n'], 'expected the sum of the bin counts');
      if (counts.n + counts.missing + counts.nan + counts.pos_inf + counts.neg_inf !== s.rows) return issue([...at, 'n'], `expected the segment's ${s.rows} rows counted`);
    }
  }
  const rows = block.segments.reduce((a, s) => a + s.rows, 0);
  if (rows !== p.reference.rows.scored) return issue(['segments'], `expected the segments' rows to add up to the reference's ${p.reference.rows.scored} scored rows, got ${rows}`);
  for (const c of p.columns) {
    let merged: ColumnCounts;
    try {
      merged = mergeCounts(block.segments.map((s) => s.counts[columnKey(c)]!));
    } catch {
      return issue(['segments'], `expected the segments' counts of ${columnKey(c)} to add up exactly`);
    }
    if (countsText(merged) !== countsText(c.counts)) return issue(['segments'], `expected the segments' counts of ${columnKey(c)} to add up to the column's counts`);
  }
}

/** Every segment of a block's values, in a profile's order: each value, then OTHER, then NULL. */
export function segmentsOf(values: readonly string[]): SegmentOf[] {
  return [...values.map((value) => ({ kind: 'value' as const, value })), { kind: 'other' }, { kind: 'null' }];
}

/** A segment's key among a run's counts (ChunkStats.drift_segments): a value's is prefixed, so none can be OTHER's or NULL's. */
export function segmentKey(s: SegmentOf): string {
  return s.kind === 'value' ? `value:${s.value}` : s.kind;
}

/** Whether `key` is one segmentKey gives (a chunk's counts read back are checked by it). */
export function isSegmentKey(key: string): boolean {
  return /^(value:.+|other|null)$/s.test(key);
}

/** Counts as text in one field order, to compare two. */
function countsText(c: ColumnCounts): string {
  return JSON.stringify([c.bins, c.missing, c.nan, c.pos_inf, c.neg_inf, c.n, c.sum, c.sum_sq, c.min, c.max]);
}

/** Checks a parsed profile as its type; `source` names it in the error. */
export function checkProfile(data: unknown, source: string): Profile {
  const parsed = profileSchema.safeParse(data);
  if (parsed.success) return parsed.data as Profile;
  const issue = parsed.error.issues[0]!;
  const field = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
  throw new NightscoreError('PROFILE_INVALID', `${source}: ${field || 'the profile'}: ${issue.message}`, {
    source,
    column: field || undefined,
    hint: 'Build the profile again with nightscore profile build; a profile is written by nightscore and not edited by hand.',
  });
}

/**
 * Reads a profile and the sha256 of its bytes. With `pinned`, bytes of any other sha256 are
 * PROFILE_CHANGED: a run is compared with the profile it was planned with, or not at all.
 */
export async function readProfile(uri: string, pinned?: string): Promise<{ profile: Profile; sha256: string }> {
  const { storage, key } = openLocation(uri);
  let bytes: Buffer;
  try {
    const info = await storage.stat(key);
    if (!info) throw new NightscoreError('NOT_FOUND', `${uri} does not exist`);
    if (info.size > MAX_PROFILE_BYTES) {
      throw new NightscoreError('PROFILE_INVALID', `${uri} is ${info.size} bytes; a profile is at most ${MAX_PROFILE_BYTES}`, { source: uri, hint: 'Point drift.profile at a profile written by nightscore profile build.' });
    }
    bytes = await readAll(await storage.read(key), MAX_PROFILE_BYTES);
  } catch (err) {
    const e = toNightscoreError(err);
    if (e.code === 'PROFILE_INVALID' || e.retryable) throw e;
    throw new NightscoreError('PROFILE_NOT_FOUND', `cannot read the drift profile ${uri}: ${e.message}`, {
      source: uri,
      hint: 'Build one with nightscore profile build <job.yaml> <reference data> -o <profile.json>, and name it in drift.profile (or attach it to the model version).',
      cause: e,
    });
  }
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (pinned !== undefined && sha !== pinned) {
    throw new NightscoreError('PROFILE_CHANGED', `the drift profile ${uri} changed after the run was planned: sha256 ${sha}, planned with ${pinned}`, {
      source: uri,
      hint: 'Replace a profile between runs, not during one; run the date again to compare it with the profile as it is now.',
    });
  }
  let data: unknown;
  try {
    data = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new NightscoreError('PROFILE_INVALID', `${uri} is not JSON: ${(err as Error).message}`, { source: uri, hint: 'Build the profile again with nightscore profile build.' });
  }
  return { profile: checkProfile(data, uri), sha256: sha };
}

/** A profile's bytes, as written: the same profile gives the same bytes, and so the same sha256. */
export function profileBytes(profile: Profile): string {
  return `${JSON.stringify(profile, null, 1)}\n`;
}
