/**
 * A run's comparison of each challenger with the champion, from the merged counts: what
 * `_shadow.json` holds (the counts and every figure, the same bytes however the chunks were
 * spread: no timing is in it) and the summary the manifest carries (with each model's time).
 */
import type { ErrorRecord } from '../errors.js';
import { sumValue } from '../drift/exact-sum.js';
import { jsDistance } from '../drift/measures.js';
import { modelSeconds, type ChunkStats } from '../run/chunk-result.js';
import { challengerName, champion, type ModelSpec, type RunSpec } from '../run/spec.js';
import { emptyComparison, type CompareRule, type ComparisonCounts } from './compare.js';

export const SHADOW_FORMAT = 'nightscore.shadow';
export const SHADOW_VERSION = 1;

export interface ChallengerReport {
  name: string;
  /** As the job names it. */
  uri: string;
  /** The model compared; null when it did not load at plan time. */
  model: { sha256: string; location: string; ref: string | null; version: number | null } | null;
  /** `compared` when at least one row was; `no data` otherwise (see `error` and `counts.errors`). */
  status: 'compared' | 'no data';
  /** What kept the challenger out of the run at plan time. */
  error: ErrorRecord | null;
  rows_compared: number;
  /** Share of compared rows whose decisions (labels) are the same; null when none was compared. */
  agreement: number | null;
  /** Scores: shares of compared rows whose decision the challenger turns positive, and negative. */
  flips: { to_positive: number; to_negative: number } | null;
  /** Scores: rows by the champion's and the challenger's decision at the threshold. */
  decisions: { both_negative: number; challenger_positive: number; champion_positive: number; both_positive: number } | null;
  mean_abs_diff: number | null;
  max_abs_diff: number | null;
  /** Pearson correlation of the two scores, from exact sums; null when either is constant. */
  pearson: number | null;
  /** Jensen-Shannon distance (base 2) of the challenger's scores against the champion's, on the fixed probability bins. */
  score_js: number | null;
  counts: ComparisonCounts;
}

export interface ShadowReport {
  format: typeof SHADOW_FORMAT;
  version: typeof SHADOW_VERSION;
  job: string;
  date: string;
  champion: { sha256: string; ref: string | null; version: number | null };
  compare: CompareRule;
  challengers: ChallengerReport[];
}

/** What the manifest says of the comparison; `_shadow.json` has the rest. */
export interface ShadowSummary {
  file: '_shadow.json';
  compare: CompareRule;
  /** Seconds the champion spent in the model, over every chunk. */
  champion_seconds: number;
  challengers: Array<{ name: string; sha256: string | null; status: ChallengerReport['status']; rows_compared: number; agreement: number | null; error: string | null; seconds: number }>;
}

/** The report of a run whose merged stats are `stats`. */
export function reportShadow(spec: RunSpec, stats: ChunkStats): ShadowReport {
  const shadow = spec.shadow!;
  const models = new Map(spec.models.flatMap((m) => (challengerName(m.role) === null ? [] : [[challengerName(m.role)!, m] as const])));
  const lead = champion(spec);
  return {
    format: SHADOW_FORMAT,
    version: SHADOW_VERSION,
    job: spec.job.name,
    date: spec.date,
    champion: { sha256: lead.sha256, ref: lead.registry?.ref ?? null, version: lead.registry?.version ?? null },
    compare: shadow.compare,
    challengers: shadow.challengers.map((c) => challengerReport(c, models.get(c.name), stats.shadow?.[c.name] ?? emptyComparison(), shadow.compare)),
  };
}

function challengerReport(entry: { name: string; uri: string; error: ErrorRecord | null }, model: ModelSpec | undefined, counts: ComparisonCounts, rule: CompareRule): ChallengerReport {
  const n = counts.compared;
  const score = rule.kind === 'score' && n > 0;
  const [nn, np, pn, pp] = counts.decisions as [number, number, number, number];
  return {
    name: entry.name,
    uri: entry.uri,
    model: model ? { sha256: model.sha256, location: model.location, ref: model.registry?.ref ?? null, version: model.registry?.version ?? null } : null,
    status: n > 0 ? 'compared' : 'no data',
    error: entry.error,
    rows_compared: n,
    agreement: n > 0 ? counts.agree / n : null,
    flips: score ? { to_positive: np / n, to_negative: pn / n } : null,
    decisions: score ? { both_negative: nn, challenger_positive: np, champion_positive: pn, both_positive: pp } : null,
    mean_abs_diff: score ? sumValue(counts.sums.abs_diff) / n : null,
    max_abs_diff: score ? counts.max_abs_diff : null,
    pearson: score ? pearson(counts) : null,
    score_js: score ? jsDistance(counts.bins.champion, counts.bins.challenger) : null,
    counts,
  };
}

/**
 * r = (n Σxy − Σx Σy) / √((n Σx² − (Σx)²)(n Σy² − (Σy)²)), from the exact sums each rounded
 * once: the same bytes on any spread of chunks. Identical scores give exactly 1.
 */
function pearson(c: ComparisonCounts): number | null {
  const n = c.compared;
  const [x, y, xx, yy, xy] = [c.sums.x, c.sums.y, c.sums.xx, c.sums.yy, c.sums.xy].map(sumValue) as [number, number, number, number, number];
  const vx = n * xx - x * x;
  const vy = n * yy - y * y;
  if (!(vx > 0 && vy > 0)) return null;
  const r = (n * xy - x * y) / Math.sqrt(vx * vy);
  return Math.max(-1, Math.min(1, r));
}

/** `_shadow.json` as written: two-space JSON and a newline. */
export function shadowBytes(report: ShadowReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** The manifest's shadow block: the report's figures that matter at a glance, and each model's time from the stage counts. */
export function summarizeShadow(report: ShadowReport, stats: ChunkStats): ShadowSummary {
  return {
    file: '_shadow.json',
    compare: report.compare,
    champion_seconds: modelSeconds(stats, 'champion'),
    challengers: report.challengers.map((c) => ({
      name: c.name,
      sha256: c.model?.sha256 ?? null,
      status: c.status,
      rows_compared: c.rows_compared,
      agreement: c.agreement,
      error: c.error?.message ?? Object.keys(c.counts.errors)[0] ?? null,
      seconds: modelSeconds(stats, `challenger:${c.name}`),
    })),
  };
}
