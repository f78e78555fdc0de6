/**
 * A job's drift over a range of dates, from the reports its runs wrote: the columns that matter
 * most per date, a table for a terminal, the data of the PSI-over-time chart, and the bounded
 * set of PSI values a worker's /metrics exports. Plain transforms of reports already read.
 */
import type { OutputState } from '../run/output-folder.js';
import { formatTable } from '../observe/table.js';
import { DEFAULT_POLICY } from './policy.js';
import type { DriftReport } from './report.js';
import type { ColumnReport, DriftStatus } from './statistics.js';

/** One date of a job: what its output folder says, and its drift report when the run measured drift. */
export interface DateDrift {
  date: string;
  state: OutputState;
  report: DriftReport | undefined;
}

/** Columns shown per date in the table. */
export const TABLE_COLUMNS = 5;
/** Lines in the chart: past a handful, colours repeat and the lines cannot be told apart. */
export const CHART_COLUMNS = 8;

/** Names for one line: the first four, and how many more of `total` (when only the first of them are at hand). */
export function namesInBrief(names: readonly string[], total = names.length): string {
  const shown = names.slice(0, 4);
  return total > shown.length ? `${shown.join(', ')} and ${total - shown.length} more` : shown.join(', ');
}

// "Top" means the columns to look at, and a status says that before a value does (PSI and JS
// distance are not on one scale): in the order of the overall status they make (statistics.ts).
const SEVERITY: Record<DriftStatus, number> = { drift: 3, warn: 2, inconclusive: 1, ok: 0 };

/** The `n` columns of a report to look at first: by status (drift, warn, inconclusive, ok), then by their primary statistic, highest first. */
export function rankColumns(report: DriftReport, n: number): ColumnReport[] {
  return [...report.columns].sort((a, b) => SEVERITY[b.status] - SEVERITY[a.status] || (b.value ?? -1) - (a.value ?? -1)).slice(0, n);
}

/** `f1 psi 0.512 drift`: a column's primary statistic and status, for a terminal. */
export function describeColumn(c: ColumnReport): string {
  return `${c.name} ${c.statistic} ${c.value === null ? '-' : formatValue(c.value)} ${c.status}`;
}

function formatValue(v: number): string {
  return v >= 100 ? v.toFixed(0) : String(+v.toPrecision(3));
}

/** One line per date: date, run state, drift status, and the columns that matter most (or why there is no drift to show). */
export function formatDriftTable(rows: DateDrift[]): string {
  return formatTable(
    ['DATE', 'RUN', 'DRIFT', 'TOP COLUMNS'],
    rows.map(({ date, state, report }) => {
      if (state === 'missing') return [date, 'missing', '-', ''];
      if (!report) return [date, state, '-', 'no drift measured'];
      return [date, state, report.status, rankColumns(report, TABLE_COLUMNS).map(describeColumn).join(', ')];
    }),
  );
}

/** The PSI-over-time chart of `rows`: the columns with the highest PSI on any date, at most `max` of them. */
export function driftChartData(rows: DateDrift[], max = CHART_COLUMNS): { data: { dates: string[]; series: Array<{ column: string; values: Array<number | null> }>; thresholds: { warn: number; drift: number } }; left: number } {
  const highest = new Map<string, number>();
  for (const { report } of rows) for (const c of report?.columns ?? []) if (c.psi !== null) highest.set(c.name, Math.max(highest.get(c.name) ?? 0, c.psi));
  const columns = [...highest.entries()].sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1)).map(([name]) => name);
  const shown = columns.slice(0, max);
  const series = shown.map((column) => ({ column, values: rows.map(({ report }) => report?.columns.find((c) => c.name === column)?.psi ?? null) }));
  // The job-wide thresholds of the latest date that has a report (a column's own override is not drawn).
  const latest = rows.findLast((r) => r.report)?.report;
  const { warn, drift } = latest?.policy.psi ?? DEFAULT_POLICY.psi;
  return { data: { dates: rows.map((r) => r.date), series, thresholds: { warn, drift } }, left: columns.length - shown.length };
}

/** A report's columns with the highest PSI, at most `max`, one value per column name: what /metrics exports of a run. */
export function topPsi(report: DriftReport, max: number): Array<{ column: string; psi: number }> {
  const seen = new Set<string>();
  const out: Array<{ column: string; psi: number }> = [];
  for (const c of [...report.columns].sort((a, b) => (b.psi ?? -1) - (a.psi ?? -1))) {
    if (c.psi === null || seen.has(c.name)) continue;
    seen.add(c.name);
    out.push({ column: c.name, psi: c.psi });
    if (out.length === max) break;
  }
  return out;
}
