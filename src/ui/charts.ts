/**
 * The pages' charts, drawn by observe/charts.ts and kept by what they were drawn from: the
 * same data draws the same bytes, so a page that refreshes, or a run page opened again,
 * draws nothing new. The charting module takes a while to load; it is loaded on the first
 * chart, not with the server.
 */
import { createHash } from 'node:crypto';
import type { AgreementChartData, HistogramChartData, RunHealthChartData } from '../observe/charts.js';
import type { AgreementSeries } from './models.js';
import { BoundedCache } from './cache.js';
import type { UiDateStatus } from './dates.js';
import type { RunDrift } from './run-drift.js';

/** Histograms a run page draws at most: the columns of highest PSI; the table lists the rest without one. */
export const MAX_HISTOGRAMS = 40;

type Charts = typeof import('../observe/charts.js');

/** Rendered SVG by the hash of its data (one instance per UI server). */
export class ChartCache {
  private readonly svgs = new BoundedCache<string>({ maxEntries: 2_000, maxBytes: 32 * 1024 * 1024 });
  private charts: Promise<Charts> | undefined;

  /** Per column of `drift`, in its order, the histogram's SVG; undefined past MAX_HISTOGRAMS. */
  async drawHistograms(drift: RunDrift): Promise<Array<string | undefined>> {
    const charts = await this.load();
    return drift.columns.map((c, i) => (i < MAX_HISTOGRAMS ? this.draw('histogram', c.histogram, (d: HistogramChartData) => charts.histogramSvg(d)) : undefined));
  }

  /** Rows read, reject rate and duration per date, of the dates a finished run measured; undefined when none did. */
  async drawRunHealth(dates: readonly UiDateStatus[]): Promise<string | undefined> {
    const data = runHealthOf(dates);
    if (!data.rows.some((r) => r !== null)) return undefined;
    const charts = await this.load();
    return this.draw('health', data, (d: RunHealthChartData) => charts.runHealthSvg(d));
  }

  /** Each challenger's agreement per date, as one chart per model; undefined when no day compared. */
  async drawAgreement(series: readonly AgreementSeries[]): Promise<string | undefined> {
    if (!series.some((s) => s.values.some((v) => v !== null))) return undefined;
    const charts = await this.load();
    const data: AgreementChartData = { dates: series[0]!.dates, series: series.map((s) => ({ name: `${s.challenger} (${s.job})`, values: s.values })) };
    return this.draw('agreement', data, (d: AgreementChartData) => charts.agreementSvg(d));
  }

  private draw<T>(kind: string, data: T, render: (data: T) => string): string {
    const key = createHash('sha256').update(kind).update('\0').update(JSON.stringify(data)).digest('hex');
    let svg = this.svgs.get(key);
    if (svg === undefined) {
      svg = render(data);
      this.svgs.set(key, svg, svg.length * 2);
    }
    return svg;
  }

  private load(): Promise<Charts> {
    // A failed import is not kept: the next page tries again.
    this.charts ??= import('../observe/charts.js').catch((err: unknown) => {
      this.charts = undefined;
      throw err;
    });
    return this.charts;
  }
}

/**
 * The health chart's series: a date's values when its manifest is a finished run's (succeeded,
 * stale or failed), null otherwise: a running date's rows are those of its chunks so far.
 */
export function runHealthOf(dates: readonly UiDateStatus[]): RunHealthChartData {
  const finished = (s: UiDateStatus) => (s.state === 'succeeded' || s.state === 'failed') && s.rows !== undefined;
  return {
    dates: dates.map((s) => s.date),
    rows: dates.map((s) => (finished(s) ? s.rows!.read : null)),
    rejectRate: dates.map((s) => (finished(s) && s.rows!.read > 0 ? s.rows!.rejected / s.rows!.read : null)),
    durationMs: dates.map((s) => (finished(s) && s.duration_ms != null ? s.duration_ms : null)),
  };
}
