/** nightscore drift: a job's drift over a range of dates, from what its runs wrote (no queue, no Redis). */
import { NightscoreError } from '../errors.js';
import { dateRange, yesterday } from '../job/dates.js';
import { loadJob, locateRun, resolveLocation, type JobDefinition } from '../job/load.js';
import { parseLogicalDate } from '../job/template.js';
import { driftChartData, formatDriftTable, CHART_COLUMNS, type DateDrift } from '../drift/history.js';
import { readDriftReport } from '../drift/report.js';
import { outputStateOf, readOutputFolder } from '../run/output-folder.js';
import { openLocation } from '../storage/open.js';

export interface DriftOptions {
  /** First date. @defaultValue six days before `to` */
  from?: string;
  /** Last date. @defaultValue yesterday (UTC) */
  to?: string;
  /** Where to write the PSI-over-time chart as SVG. */
  svg?: string;
  /** Where to write it as PNG. */
  png?: string;
  json?: boolean;
}

/** Output folders read at once: a year of dates on S3 should neither crawl nor flood. */
const READS_AT_ONCE = 16;

/**
 * nightscore drift <job.yaml>: per date, the run's overall drift status and the columns that
 * matter most; with --svg/--png, PSI per column over the dates. Exit 1 when any date in range
 * drifted (its overall status is drift), as `status` exits 1 on a failed date: a script or cron
 * check can act on it. Dates without a run, or without drift measured, do not count.
 */
export async function driftCommand(jobFile: string, opts: DriftOptions): Promise<number> {
  const to = parseLogicalDate(opts.to ?? yesterday());
  const from = opts.from ?? new Date(Date.parse(`${to}T00:00:00Z`) - 6 * 86_400_000).toISOString().slice(0, 10);
  const dates = dateRange(from, to);
  const job = await loadJob(jobFile);
  const rows: DateDrift[] = [];
  for (let i = 0; i < dates.length; i += READS_AT_ONCE) rows.push(...(await Promise.all(dates.slice(i, i + READS_AT_ONCE).map((date) => readDateDrift(job, date)))));
  if (opts.json) process.stdout.write(`${JSON.stringify(rows.map(jsonRow), null, 2)}\n`);
  else process.stdout.write(`${job.name}  output ${job.output.uri}  (${job.file})\n${formatDriftTable(rows)}\n`);
  if (opts.svg !== undefined || opts.png !== undefined) await writeChart(rows, opts);
  return rows.some((r) => r.report?.status === 'drift') ? 1 : 0;
}

/**
 * A date's state and drift report. The report is read only when the manifest says this attempt
 * measured drift: a `_drift.json` left by an earlier attempt does not speak for the date.
 */
async function readDateDrift(job: JobDefinition, date: string): Promise<DateDrift> {
  const out = openLocation(locateRun(job, date).outputUri);
  const folder = await readOutputFolder(out);
  const state = outputStateOf(folder);
  const report = folder.manifest?.drift && state !== 'running' ? await readDriftReport(out) : undefined;
  if (report && report.date !== date) {
    throw new NightscoreError('MANIFEST_INVALID', `${out.storage.uri(out.storage.join(out.key, '_drift.json'))} is the drift report of ${report.date}, in the folder of ${date}`, {
      source: out.storage.uri(out.key),
      hint: 'Something other than this job\'s runs wrote it. Run the date again to write a new one; find out who else writes to the output folder.',
    });
  }
  return { date, state, report };
}

/** A date for --json: its state, and every column's statistic and status (the counts stay in `_drift.json`). */
function jsonRow({ date, state, report }: DateDrift) {
  if (!report) return { date, state, drift: null };
  const { status, drifted, columns } = report;
  return { date, state, drift: { status, drifted, columns: columns.map(({ name, role, status, statistic, value, psi }) => ({ name, role, status, statistic, value, psi })) } };
}

/** Writes the chart where --svg and --png say, and names what it left out. */
async function writeChart(rows: DateDrift[], opts: DriftOptions): Promise<void> {
  // Plot, linkedom and resvg load only when a chart is drawn (observe/charts.ts).
  const charts = await import('../observe/charts.js');
  const { data, left } = driftChartData(rows, CHART_COLUMNS);
  const svg = charts.driftOverTimeSvg(data);
  for (const [target, bytes] of [
    [opts.svg, () => svg],
    [opts.png, () => Buffer.from(charts.svgToPng(svg))],
  ] as const) {
    if (target === undefined) continue;
    const where = resolveLocation(target, process.cwd());
    const { storage, key } = openLocation(where);
    await storage.put(key, bytes());
    process.stderr.write(`chart    ${where}: PSI per column, ${data.series.length} column${data.series.length === 1 ? '' : 's'}${left > 0 ? ` (the ${CHART_COLUMNS} with the highest PSI; ${left} more left out)` : ''}\n`);
  }
}
