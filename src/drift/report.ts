/**
 * A run's drift, from its merged counts and its pinned profile: a report per column, the
 * run's overall status, and `_drift.json`, the file that holds them with the counts they came
 * from. Everything in the file follows from the counts, the profile and the policy (no time,
 * host or attempt), so the same date scored by one worker or seven writes the same bytes.
 */
import { z } from 'zod';
import { NightscoreError } from '../errors.js';
import type { Location } from '../storage/open.js';
import { readJsonObject } from '../storage/storage.js';
import type { ColumnCounts } from './counts.js';
import { emptyCounts, mergeCounts } from './counts.js';
import { PSI_EPSILON } from './measures.js';
import type { DriftPolicy } from './policy.js';
import { columnKey, isColumnCounts, MAX_PROFILE_BYTES, segmentKey, segmentOfSchema, type Profile, type ProfileColumn, type ProfilePin, type SegmentOf } from './profile.js';
import type { SegmentCounts } from './segment.js';
import { compareColumn, FLOOR_FACTOR, overallStatus, type ColumnReport, type DriftStatus } from './statistics.js';

export const DRIFT_FILE = '_drift.json';

/** `_drift.json`. */
export interface DriftReport {
  format: 'nightscore.drift';
  version: 1;
  job: string;
  date: string;
  model: { sha256: string };
  profile: ProfilePin;
  policy: DriftPolicy;
  /** How the statistics were computed: the share an empty bin counts as, and the guard's factor on the noise floor. */
  method: { psi_epsilon: number; floor_factor: number; psi_bins: 'deciles' };
  status: DriftStatus;
  /** Columns whose status is drift, by name. */
  drifted: string[];
  /** Per column, in the profile's order (features, then predictions). */
  columns: ColumnReport[];
  /** The run's counts on the profile's bins, by column key: what every statistic was computed from. */
  counts: Record<string, ColumnCounts>;
  /** What the status is judged against: the reference, or the last N succeeded dates (drift.baseline). */
  baseline: 'reference' | { previous: number };
  /** With baseline previous: the comparison with the union of those dates' counts (reported beside the reference's). */
  previous?: PreviousComparison;
  /** With drift.segment: the column the segments are of. */
  segment_column?: string;
  /**
   * With drift.segment: each segment the reference or the run has rows in, in the profile's
   * order, compared with that segment's reference counts. Reported only: the run's status is
   * the whole run's.
   */
  segments?: SegmentReport[];
}

/** A segment of the run against the same segment of the reference. */
export interface SegmentReport {
  segment: SegmentOf;
  /** The run's scored rows in the segment, and the reference's. */
  rows: number;
  rows_ref: number;
  /** As a run's status, from the segment's columns (a small segment is inconclusive, never ok). */
  status: DriftStatus;
  drifted: string[];
  columns: ColumnReport[];
  /** The segment's counts in the run, by column key. */
  counts: Record<string, ColumnCounts>;
}

/** A run compared with the union of earlier dates counted on the same profile. */
export interface PreviousComparison {
  /** The dates found (newest first), at most the N asked for. */
  dates: string[];
  /** Dates looked at and passed over, with the reason. */
  skipped: Array<{ date: string; reason: string }>;
  status: DriftStatus;
  drifted: string[];
  columns: ColumnReport[];
  /** The union of their counts, by column key: itself a reference on the profile's bins. */
  counts: Record<string, ColumnCounts>;
}

/** The manifest's drift block: the overall status and the names that matter, the rest in `_drift.json`. */
export interface DriftSummary {
  status: DriftStatus;
  mode: DriftPolicy['mode'];
  drifted: string[];
  warned: string[];
  inconclusive: string[];
  file: typeof DRIFT_FILE;
  profile: ProfilePin;
  /** With drift.baseline previous: how many earlier dates were found, and the status against the reference (`status` is against them). */
  baseline?: { previous: number };
  reference_status?: DriftStatus;
  /** With drift.segment: the segments that drifted (the first MAX_SUMMARY_SEGMENTS, in the profile's order) and how many did. */
  segments?: { column: string; drifted: SegmentOf[]; drifted_total: number };
}

/** Drifted segments the manifest names, at most; `_drift.json` has them all. */
export const MAX_SUMMARY_SEGMENTS = 10;

/**
 * Compares a run's merged counts with its profile, and with `previous` dates' counts when the
 * baseline is previous. A column not counted (no chunk scored a row) compares as empty.
 */
export function reportDrift(
  run: { job: string; date: string; model: string },
  profile: Profile,
  pin: ProfilePin,
  policy: DriftPolicy,
  counts: Record<string, ColumnCounts> = {},
  previous?: { wanted: number; dates: string[]; skipped: Array<{ date: string; reason: string }>; counts: Array<Record<string, ColumnCounts>> },
  segments?: Record<string, SegmentCounts>,
): DriftReport {
  const columns = profile.columns.map((column) => compareColumn(column, countsOf(counts, column), policy));
  const { status, drifted } = overallStatus(columns, policy);
  let compared: PreviousComparison | undefined;
  if (previous) {
    const union = Object.fromEntries(profile.columns.map((c) => [columnKey(c), mergeCounts([emptyCounts(c.bins), ...previous.counts.map((day) => countsOf(day, c))])]));
    const against = profile.columns.map((c) => compareColumn({ ...c, counts: union[columnKey(c)]! }, countsOf(counts, c), policy));
    compared = { dates: previous.dates, skipped: previous.skipped, ...overallStatus(against, policy), columns: against, counts: union };
  }
  return {
    format: 'nightscore.drift',
    version: 1,
    job: run.job,
    date: run.date,
    model: { sha256: run.model },
    profile: pin,
    policy,
    method: { psi_epsilon: PSI_EPSILON, floor_factor: FLOOR_FACTOR, psi_bins: 'deciles' },
    status,
    drifted,
    columns,
    counts,
    baseline: previous ? { previous: previous.wanted } : 'reference',
    ...(compared ? { previous: compared } : {}),
    ...(segments && profile.segment ? { segment_column: profile.segment.column, segments: compareSegments(profile, policy, segments) } : {}),
  };
}

/** A column's counts among `all`, by its key; empty on its bins when nothing counted it (no chunk scored a row). */
function countsOf(all: Record<string, ColumnCounts>, column: ProfileColumn): ColumnCounts {
  return Object.hasOwn(all, columnKey(column)) ? all[columnKey(column)]! : emptyCounts(column.bins);
}

/**
 * Each segment against the reference's same segment, with the statistics and guard of the
 * run's columns. Segments neither side has rows in are left out. With baseline previous too,
 * segments are compared with the reference: the previous dates' segment counts are not summed.
 */
function compareSegments(profile: Profile, policy: DriftPolicy, counted: Record<string, SegmentCounts>): SegmentReport[] {
  return profile.segment!.segments.flatMap((ref) => {
    const run = Object.hasOwn(counted, segmentKey(ref.segment)) ? counted[segmentKey(ref.segment)]! : { rows: 0, counts: {} };
    if (ref.rows === 0 && run.rows === 0) return [];
    const counts = Object.fromEntries(profile.columns.map((c) => [columnKey(c), countsOf(run.counts, c)]));
    const columns = profile.columns.map((c) => compareColumn({ ...c, counts: ref.counts[columnKey(c)]! }, counts[columnKey(c)]!, policy));
    return [{ segment: ref.segment, rows: run.rows, rows_ref: ref.rows, ...overallStatus(columns, policy), columns, counts }];
  });
}

/** The comparison a run's status is judged on: with the previous dates when the baseline is previous, else with the reference. */
export function judged(report: DriftReport): Pick<DriftReport, 'status' | 'drifted' | 'columns'> {
  return report.previous ?? report;
}

export function summarizeDrift(report: DriftReport): DriftSummary {
  const { status, drifted, columns } = judged(report);
  const named = (s: DriftStatus) => columns.filter((c) => c.status === s).map((c) => c.name);
  return {
    status,
    mode: report.policy.mode,
    drifted,
    warned: named('warn'),
    inconclusive: named('inconclusive'),
    file: DRIFT_FILE,
    profile: report.profile,
    ...(report.previous ? { baseline: { previous: report.previous.dates.length }, reference_status: report.status } : {}),
    ...(report.segments ? { segments: segmentSummary(report.segment_column!, report.segments) } : {}),
  };
}

function segmentSummary(column: string, segments: SegmentReport[]): NonNullable<DriftSummary['segments']> {
  const drifted = segments.filter((s) => s.status === 'drift').map((s) => s.segment);
  return { column, drifted: drifted.slice(0, MAX_SUMMARY_SEGMENTS), drifted_total: drifted.length };
}

/** `_drift.json`'s bytes. */
export function driftBytes(report: DriftReport): string {
  return `${JSON.stringify(report, null, 1)}\n`;
}

/** Under drift.mode: enforce, a run that drifts fails, naming the columns. */
export function enforceDrift(report: DriftReport): void {
  const { status, columns } = judged(report);
  if (report.policy.mode !== 'enforce' || status !== 'drift') return;
  const against = report.previous ? `the last ${report.previous.dates.length} succeeded date(s)` : 'its reference profile';
  const worst = columns
    .filter((c) => c.status === 'drift')
    .map((c) => `${c.name} (${c.reasons.join('; ')})`);
  throw new NightscoreError('DRIFT_DETECTED', `${report.job} ${report.date} drifted from ${against}: ${worst.join(', ')}`, {
    source: report.profile.uri,
    hint: `See ${DRIFT_FILE} in the output folder for every column's statistics. If the change is expected, build a new profile from recent data; to publish the day anyway, run it again with drift.mode: warn.`,
  });
}

const share = z.number().nullable();
const statusSchema = z.enum(['ok', 'warn', 'drift', 'inconclusive']);
const columnReportSchema = z.looseObject({
  name: z.string(),
  role: z.enum(['feature', 'prediction']),
  kind: z.enum(['numeric', 'discrete', 'categorical', 'probability']),
  status: statusSchema,
  statistic: z.enum(['psi', 'js']),
  value: share,
  floor: share,
  psi: share,
  js: share,
  ks: share,
  wasserstein: share,
  missing_delta: share,
  unseen_share: share,
  out_of_range_share: share,
  mean_shift: share,
  n_ref: z.number().int().nonnegative(),
  n_run: z.number().int().nonnegative(),
  reasons: z.array(z.string()),
});
const countsRecord = z.record(z.string(), z.unknown().refine(isColumnCounts, 'expected a column\'s counts as nightscore writes them'));
const reportSchema = z.looseObject({
  format: z.literal('nightscore.drift'),
  version: z.literal(1),
  job: z.string(),
  date: z.string(),
  status: statusSchema,
  drifted: z.array(z.string()),
  columns: z.array(columnReportSchema),
  counts: countsRecord,
  segment_column: z.string().optional(),
  segments: z
    .array(z.looseObject({ segment: segmentOfSchema, rows: z.number().int().nonnegative(), rows_ref: z.number().int().nonnegative(), status: statusSchema, drifted: z.array(z.string()), columns: z.array(columnReportSchema), counts: countsRecord }))
    .optional(),
});

/**
 * A run's `_drift.json`, read back from its output folder (the name is ours, never taken from
 * the manifest) and checked as its type: anyone who can write the folder may have written it.
 * Undefined when the run measured no drift.
 */
export async function readDriftReport(out: Location): Promise<DriftReport | undefined> {
  const key = out.storage.join(out.key, DRIFT_FILE);
  const source = out.storage.uri(key);
  const data = await readJsonObject(out.storage, key, MAX_PROFILE_BYTES, (what) => invalidReport(source, what));
  if (data === undefined) return undefined;
  const parsed = reportSchema.safeParse(data);
  if (parsed.success) return parsed.data as unknown as DriftReport;
  const issue = parsed.error.issues[0]!;
  throw invalidReport(source, `${issue.path.map(String).join('.') || '(the whole document)'}: ${issue.message}`);
}

function invalidReport(source: string, what: string): NightscoreError {
  return new NightscoreError('MANIFEST_INVALID', `${source} is not a drift report nightscore writes: ${what}`, {
    source,
    hint: 'Something other than nightscore wrote or damaged it. Run the date again to write a new one; find out who else writes to the output folder.',
  });
}
