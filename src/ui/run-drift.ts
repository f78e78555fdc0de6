/**
 * A run's drift for its page: `_drift.json` read back from the run's own folder, its columns
 * sorted by PSI, and per column the reference's and the run's counts on bins people can read
 * (deciles, values, probability steps), ready for a histogram.
 *
 * The reference counts come from the profile the job names, read with the sha256 the run was
 * compared with: never from a location found in `_drift.json`, which anyone who can write the
 * output folder may have written. A profile that is gone, replaced or not the one the run
 * used leaves the run's counts alone on the chart, and the page says why.
 */
import { toNightscoreError } from '../errors.js';
import { locateRun, resolveLocation, type JobDefinition } from '../job/load.js';
import type { HistogramChartData } from '../observe/charts.js';
import { openLocation } from '../storage/open.js';
import { binCount, type Bins } from '../drift/bins.js';
import { attachedProfileUri } from '../drift/pin.js';
import { columnKey, readProfile, type Profile, type ProfileColumn, type ProfilePin } from '../drift/profile.js';
import { readDriftReport, type DriftSummary } from '../drift/report.js';
import type { ColumnReport, DriftStatus } from '../drift/statistics.js';

/** One column of the run page's drift table. */
export interface DriftColumnView {
  report: ColumnReport;
  /** The bins to draw; `reference` is all zeros when the profile could not be read. */
  histogram: HistogramChartData;
}

export interface RunDrift {
  /** From the manifest's drift block (checked when the manifest was read). */
  status: DriftStatus;
  mode: DriftSummary['mode'];
  profile: ProfilePin;
  /** Why the chart shows the run's counts alone, when it does. */
  reference_problem: string | null;
  /** Sorted by PSI, highest first; columns with no PSI (nothing to compare) last, in the report's order. */
  columns: DriftColumnView[];
}

/**
 * The drift of a run whose manifest has a drift block (`summary`), or undefined when its
 * `_drift.json` is gone. A malformed file is MANIFEST_INVALID.
 */
export async function readRunDrift(job: JobDefinition, date: string, summary: DriftSummary, manifestModel: { name: string | null; version: number | null } = { name: null, version: null }): Promise<RunDrift | undefined> {
  const report = await readDriftReport(openLocation(locateRun(job, date).outputUri));
  if (!report) return undefined;
  const { profile, problem } = await readReference(job, summary.profile, manifestModel);
  const byKey = new Map((profile?.columns ?? []).map((c) => [columnKey(c), c]));
  const columns = report.columns.map((c) => {
    const counts = Object.hasOwn(report.counts, columnKey(c)) ? report.counts[columnKey(c)]!.bins : [];
    return { report: c, histogram: histogramOf(c, byKey.get(columnKey(c)), counts) };
  });
  return { status: summary.status, mode: summary.mode, profile: summary.profile, reference_problem: problem, columns: sortByPsi(columns) };
}

/**
 * The profile the job names, or the one attached to the registry version the run scored with
 * (its place follows from the registry's layout), if it is the one the run was compared with,
 * byte for byte. The URI in the manifest is only compared with, never read.
 */
async function readReference(job: JobDefinition, pin: ProfilePin, model: { name: string | null; version: number | null }): Promise<{ profile?: Profile; problem: string | null }> {
  const named = job.drift?.profile;
  const uri = named !== undefined ? resolveLocation(named, job.dir) : model.name !== null && model.version !== null ? attachedProfileUri(job, { name: model.name, version: model.version }) : undefined;
  if (uri === undefined) return { problem: 'the job names no drift profile now' };
  if (uri !== pin.uri) return { problem: `the run was compared with ${pin.uri}; the job names ${uri} now` };
  try {
    return { profile: (await readProfile(uri, pin.sha256)).profile, problem: null };
  } catch (err) {
    const e = toNightscoreError(err);
    return { problem: `${e.code}: ${e.message}` };
  }
}

function sortByPsi(columns: DriftColumnView[]): DriftColumnView[] {
  const psi = (c: DriftColumnView) => c.report.psi ?? -Infinity;
  // Array.prototype.sort is stable: equal PSIs keep the report's order.
  return [...columns].sort((a, b) => psi(b) - psi(a));
}

/**
 * A column's bins as a chart draws them: numeric columns on their deciles (the statistic's
 * bins) with what fell below the reference minimum or above its maximum apart, the others on
 * their layout. Bins for values outside the reference (under, over, other, unseen) are left out
 * when both sides are empty there. Without the profile's column, or when its layout does not
 * fit the run's counts, bins are numbered.
 */
export function histogramOf(report: Pick<ColumnReport, 'name' | 'kind'>, column: ProfileColumn | undefined, run: readonly number[]): HistogramChartData {
  const fits = column !== undefined && column.bins.kind === report.kind && binCount(column.bins) === run.length && column.counts.bins.length === run.length;
  const reference = fits ? column.counts.bins : run.map(() => 0);
  const layout = fits ? column.bins : undefined;
  const bins = labelled(report.kind, layout, run.length);
  const drawn = bins
    .map((b) => ({ label: b.label, extra: b.extra, reference: sum(reference, b.from, b.to), run: sum(run, b.from, b.to) }))
    .filter((b) => !b.extra || b.reference > 0 || b.run > 0);
  return { title: report.name, labels: drawn.map((b) => b.label), reference: drawn.map((b) => b.reference), run: drawn.map((b) => b.run) };
}

/** A bin as drawn: the counts from index `from` to `to` (exclusive), and whether it holds values outside the reference. */
interface DrawnBin {
  label: string;
  from: number;
  to: number;
  extra: boolean;
}

function labelled(kind: Bins['kind'], bins: Bins | undefined, n: number): DrawnBin[] {
  const one = (label: string, i: number, extra = false): DrawnBin => ({ label, from: i, to: i + 1, extra });
  if (kind === 'numeric' && n === 102) {
    const edges = bins?.kind === 'numeric' ? bins.edges : undefined;
    const deciles = Array.from({ length: 10 }, (_, d) => ({ label: edges ? `${showNumber(edges[10 * d]!)}–${showNumber(edges[10 * d + 10]!)}` : `decile ${d + 1}`, from: 1 + 10 * d, to: 11 + 10 * d, extra: false }));
    return [one(edges ? `< ${showNumber(edges[0]!)}` : 'below min', 0, true), ...deciles, one(edges ? `> ${showNumber(edges[100]!)}` : 'above max', 101, true)];
  }
  if (kind === 'probability' && n === 22) {
    const steps = Array.from({ length: 20 }, (_, b) => one(`${(b / 20).toFixed(2)}–${((b + 1) / 20).toFixed(2)}`, b + 1));
    return [one('< 0', 0, true), ...steps, one('> 1', 21, true)];
  }
  if (bins?.kind === 'discrete') return [...bins.values.map((v, i) => one(showNumber(v), i)), one('other', bins.values.length, true)];
  if (bins?.kind === 'categorical') return [...bins.values.map((v, i) => one(v, i)), one('OTHER', bins.values.length, true), one('UNSEEN', bins.values.length + 1, true)];
  return Array.from({ length: n }, (_, i) => one(`bin ${i + 1}`, i));
}

function sum(counts: readonly number[], from: number, to: number): number {
  let total = 0;
  for (let i = from; i < to; i++) total += counts[i] ?? 0;
  return total;
}

/** A bin edge short enough for an axis: three significant digits. */
function showNumber(x: number): string {
  return String(Number(x.toPrecision(3)));
}
