/**
 * A run's column against its reference, on the reference's layout: every statistic, and a
 * status that a sample-size guard keeps honest. P-values are not used: on large data they call
 * every column drifted; the guard instead asks whether a distance is larger than what chance
 * gives at these sample sizes, and says `inconclusive` when the run is too small to tell.
 */
import type { Bins } from './bins.js';
import { mean, std, type ColumnCounts } from './counts.js';
import { jsDistance, jsFloor, ksDistance, occupiedBins, psi, psiFloor, rollUpDeciles, shareFloor, wasserstein } from './measures.js';
import { policyFor, type DriftPolicy, type Thresholds } from './policy.js';

/** What a column is to the model: an input feature, or a prediction output (scores, probabilities, labels). */
export type ColumnRole = 'feature' | 'prediction';

/** A column of a reference profile, as far as a comparison reads it. */
export interface ColumnProfileLike {
  name: string;
  role: ColumnRole;
  bins: Bins;
  counts: ColumnCounts;
}

export type DriftStatus = 'ok' | 'warn' | 'drift' | 'inconclusive';

/** One column's comparison; null where a statistic does not apply or there are no values to compare. */
export interface ColumnReport {
  name: string;
  role: ColumnRole;
  kind: Bins['kind'];
  status: DriftStatus;
  /** The statistic the status is judged on: PSI for numeric and discrete columns, JS distance for categorical (labels) and probability ones. */
  statistic: 'psi' | 'js';
  /** Its value. */
  value: number | null;
  /** Its noise floor at these sample sizes; a threshold counts as passed only at 3 × floor or more. */
  floor: number | null;
  /** On the 10 deciles for numeric columns, on the layout otherwise. */
  psi: number | null;
  /** Jensen-Shannon distance, base 2, on the layout. */
  js: number | null;
  /** Binned KS D on the layout, where its order means something (not categorical). */
  ks: number | null;
  /** Binned Wasserstein distance over the reference standard deviation (null when that is 0). */
  wasserstein: number | null;
  /** Run's share of missing (null or NaN) rows minus the reference's. */
  missing_delta: number | null;
  /** Run's share of values the reference never had (categorical with a vocabulary; discrete "other"). */
  unseen_share: number | null;
  /** Run's share of values below the reference minimum or above its maximum (numeric; probability: outside [0, 1]). */
  out_of_range_share: number | null;
  /** (Run mean − reference mean) / reference standard deviation. */
  mean_shift: number | null;
  /** Values binned (missing, NaN and infinities apart). */
  n_ref: number;
  n_run: number;
  /** Why the status is what it is, one clause per finding. */
  reasons: string[];
}

/** The guard's factor: a distance counts only at this many noise floors or more. */
export const FLOOR_FACTOR = 3;

/** Compares a run's counts of a column with the reference's, on the reference's layout, under `policy`. */
export function compareColumn(ref: ColumnProfileLike, run: ColumnCounts, policy: DriftPolicy): ColumnReport {
  const limits = policyFor(policy, ref.name);
  const { bins } = ref;
  const a = ref.counts;
  const both = a.n > 0 && run.n > 0;
  const statistic = bins.kind === 'categorical' || bins.kind === 'probability' ? 'js' : 'psi';
  const psiRef = bins.kind === 'numeric' ? rollUpDeciles(a.bins) : a.bins;
  const psiRun = bins.kind === 'numeric' ? rollUpDeciles(run.bins) : run.bins;
  const ordered = bins.kind !== 'categorical';
  const spread = std(a);
  const report: ColumnReport = {
    name: ref.name,
    role: ref.role,
    kind: bins.kind,
    status: 'ok',
    statistic,
    value: null,
    floor: null,
    psi: both ? psi(psiRef, psiRun) : null,
    js: both ? jsDistance(a.bins, run.bins) : null,
    ks: both && ordered ? ksDistance(a.bins, run.bins) : null,
    wasserstein: both && ordered && spread ? wasserstein(a.bins, run.bins, positionsOf(bins)) / spread : null,
    missing_delta: null,
    unseen_share: run.n > 0 ? unseenShare(bins, run) : null,
    out_of_range_share: run.n > 0 && (bins.kind === 'numeric' || bins.kind === 'probability') ? (run.bins[0]! + run.bins[run.bins.length - 1]!) / run.n : null,
    mean_shift: both && ordered && spread ? (mean(run)! - mean(a)!) / spread : null,
    n_ref: a.n,
    n_run: run.n,
    reasons: [],
  };
  if (both) {
    report.value = report[statistic];
    report.floor = statistic === 'psi' ? psiFloor(occupiedBins(psiRef, psiRun), a.n, run.n) : jsFloor(occupiedBins(a.bins, run.bins), a.n, run.n);
    report.status = judge(statistic, report.value!, report.floor, limits[statistic], report.reasons);
  } else if (a.n > 0 || run.n > 0) {
    report.status = 'inconclusive';
    report.reasons.push(`no values to compare (${a.n} in the reference, ${run.n} in the run)`);
  }
  if (bins.kind === 'categorical' && bins.vocabulary === null) report.reasons.push('unseen unknown: the reference had too many distinct values to keep them all, so unseen values count as OTHER');
  let drifts = false;
  const rowsRef = rowsOf(a);
  const rowsRun = rowsOf(run);
  if (rowsRef > 0 && rowsRun > 0) {
    const delta = (report.missing_delta = (run.missing + run.nan) / rowsRun - (a.missing + a.nan) / rowsRef);
    const floor = shareFloor(a.missing + a.nan, rowsRef, run.missing + run.nan, rowsRun);
    if (Math.abs(delta) >= limits.missing_delta && Math.abs(delta) >= FLOOR_FACTOR * floor) {
      drifts = true;
      report.reasons.push(`missing share moved by ${show(delta)} (threshold ${limits.missing_delta}, ${FLOOR_FACTOR} × floor ${show(FLOOR_FACTOR * floor)})`);
    }
  } else if (rowsRun === 0) {
    report.status = 'inconclusive';
    report.reasons.push('no rows in the run');
  }
  if (report.unseen_share !== null && report.unseen_share >= limits.unseen) {
    drifts = true;
    report.reasons.push(`unseen share ${show(report.unseen_share)} (threshold ${limits.unseen})`);
  }
  if (drifts) report.status = 'drift';
  return report;
}

/** The primary statistic's status, with its reason: a threshold passed only counts at FLOOR_FACTOR floors or more. */
function judge(statistic: 'psi' | 'js', value: number, floor: number, limits: Thresholds, reasons: string[]): DriftStatus {
  const confident = FLOOR_FACTOR * floor;
  const guard = `${FLOOR_FACTOR} × floor ${show(confident)}`;
  if (value >= limits.drift && value >= confident) {
    reasons.push(`${statistic} ${show(value)} at or over drift threshold ${limits.drift} and ${guard}`);
    return 'drift';
  }
  if (value >= limits.warn && value >= confident) {
    reasons.push(`${statistic} ${show(value)} at or over warn threshold ${limits.warn} and ${guard}`);
    return 'warn';
  }
  if (confident > limits.warn) {
    reasons.push(`too few values to tell: ${guard} is over warn threshold ${limits.warn} (${statistic} ${show(value)})`);
    return 'inconclusive';
  }
  return 'ok';
}

/** Where each bin's values sit, for the Wasserstein distance: a bin at its lower edge, underflow at the minimum, overflow (other) at the maximum. */
function positionsOf(bins: Exclude<Bins, { kind: 'categorical' }>): number[] {
  switch (bins.kind) {
    case 'numeric': return [bins.edges[0]!, ...bins.edges];
    case 'discrete': return [...bins.values, bins.values[bins.values.length - 1] ?? 0];
    case 'probability': return [0, ...Array.from({ length: 20 }, (_, b) => b / 20), 1];
  }
}

function unseenShare(bins: Bins, run: ColumnCounts): number | null {
  const last = run.bins[run.bins.length - 1]!;
  // A discrete layout has a bin for every reference value, so its "other" holds only unseen values.
  if (bins.kind === 'discrete' || (bins.kind === 'categorical' && bins.vocabulary !== null)) return last / run.n;
  return null;
}

function rowsOf(c: ColumnCounts): number {
  return c.n + c.missing + c.nan + c.pos_inf + c.neg_inf;
}

function show(x: number): string {
  return String(Number(x.toPrecision(3)));
}

/** A run's overall status, and the columns that drifted (in report order). */
export interface OverallStatus {
  status: DriftStatus;
  drifted: string[];
}

/**
 * The run's status from its columns' (the policy's mode is the caller's to act on): `drift` when
 * at least max_drifted_share of the feature columns drift, or any prediction column drifts (it is
 * what downstream reads); `warn` when any column warns or drifts; `inconclusive` when any column
 * is and none warned or drifted; else `ok`.
 */
export function overallStatus(reports: readonly ColumnReport[], policy: DriftPolicy): OverallStatus {
  const drifted = reports.filter((r) => r.status === 'drift').map((r) => r.name);
  const features = reports.filter((r) => r.role === 'feature');
  const featuresDrifted = features.filter((r) => r.status === 'drift').length;
  const predictionDrifted = reports.some((r) => r.role === 'prediction' && r.status === 'drift');
  if (predictionDrifted || (featuresDrifted > 0 && featuresDrifted / features.length >= policy.max_drifted_share)) return { status: 'drift', drifted };
  if (reports.some((r) => r.status === 'warn' || r.status === 'drift')) return { status: 'warn', drifted };
  if (reports.some((r) => r.status === 'inconclusive')) return { status: 'inconclusive', drifted };
  return { status: 'ok', drifted };
}
