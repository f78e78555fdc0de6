/**
 * Medians, the targets of issue #5, the markdown table and .bench/results.json.
 */
import type { Measured } from './cases.js';

export interface CaseResult extends Measured {
  id: string;
  title: string;
  rows: number;
}

export interface Summary {
  id: string;
  title: string;
  rows: number;
  runs: number;
  median_seconds: number;
  median_rows_per_s: number | null;
  /** In process, ORT and parse alone: the process; queue: the largest worker's VmHWM. */
  peak_rss_mb: number;
  /** Queue: median over runs of the largest worker's p99 event-loop delay during the run. */
  eld_p99_ms?: number;
  /** Chunk overhead: median ms per chunk. */
  ms_per_chunk?: number;
  /** Chunk overhead: median time of a queued run of one empty chunk (the fixed cost), in s. */
  one_chunk_run_seconds?: number;
  /** Queue: median wall time of the enqueuing CLI, its start-up included, in s. */
  median_cli_seconds?: number;
  /** The page: median of the first page as the server starts, and of a page whose cache has lapsed, in s. */
  ui_cold_seconds?: number;
  ui_revalidate_seconds?: number;
  /** Drift cases: the median over pairs of (with drift / without), less 1: drift's share of the run's time. */
  drift_cost?: number;
  /** Shadow case: the median over pairs of the extra CPU seconds a challenger costs over its own inference seconds. */
  shadow_cost?: number;
}

export interface TargetCheck {
  case: string;
  target: string;
  measured: number;
  /** 1 or more is met, whichever way the target points. */
  ratio: number;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

export function summarise(r: CaseResult): Summary {
  const seconds = median(r.samples.map((s) => s.seconds));
  const overhead = r.id.startsWith('overhead/');
  const eld = r.samples.every((s) => s.eldP99Ms?.length) ? median(r.samples.map((s) => Math.max(...s.eldP99Ms!))) : undefined;
  return {
    id: r.id,
    title: r.title,
    rows: r.rows,
    runs: r.samples.length,
    median_seconds: seconds,
    median_rows_per_s: overhead || seconds === 0 || r.rows === 0 ? null : Math.round(r.rows / seconds),
    peak_rss_mb: Math.round(r.workerPeakRssMb ? Math.max(...r.workerPeakRssMb) : median(r.samples.map((s) => s.peakRssMb))),
    ...(eld === undefined ? {} : { eld_p99_ms: Math.round(eld * 10) / 10 }),
    ...(r.samples.every((s) => s.cliSeconds !== undefined) ? { median_cli_seconds: median(r.samples.map((s) => s.cliSeconds!)) } : {}),
    ...(r.id.startsWith('ui/') ? uiPages(r) : {}),
    ...(r.id.endsWith('+shadow') ? { shadow_cost: median((r.detail?.pairs as Array<{ plain_cpu_s: number; shadow_cpu_s: number; challenger_s: number }>).map((p) => (p.shadow_cpu_s - p.plain_cpu_s) / p.challenger_s)) } : {}),
    ...(r.id.endsWith('+drift') ? { drift_cost: median((r.detail?.pairs as Array<{ plain_s: number; drift_s: number }>).map((p) => p.drift_s / p.plain_s)) - 1 } : {}),
    ...(overhead ? { ms_per_chunk: Math.round(seconds * 1e4) / 10, one_chunk_run_seconds: median((r.detail?.pairs as Array<{ one_chunk_s: number }>).map((p) => p.one_chunk_s)) } : {}),
  };
}

function uiPages(r: CaseResult): Pick<Summary, 'ui_cold_seconds' | 'ui_revalidate_seconds'> {
  const pages = r.detail?.pages as Array<{ cold: number; revalidate: number }>;
  return { ui_cold_seconds: median(pages.map((p) => p.cold)), ui_revalidate_seconds: median(pages.map((p) => p.revalidate)) };
}

/**
 * The targets that apply to what was measured. "Flat" memory is read as: the peak at 4× the
 * rows is at most 10% above the peak at 1×.
 */
export function checkTargets(all: Summary[], cpus: number): TargetCheck[] {
  const by = new Map(all.map((s) => [s.id, s]));
  const rps = (id: string) => by.get(id)?.median_rows_per_s ?? undefined;
  const out: TargetCheck[] = [];
  const atLeast = (id: string, target: string, measured: number | undefined, goal: number | undefined) => {
    if (measured !== undefined && goal !== undefined) out.push({ case: id, target, measured, ratio: measured / goal });
  };
  const atMost = (id: string, target: string, measured: number | undefined, limit: number | undefined) => {
    if (measured !== undefined && limit !== undefined) out.push({ case: id, target, measured, ratio: measured === 0 ? Infinity : limit / measured });
  };
  atLeast('queue2/csv/tree', '≥550,000 rows/s', rps('queue2/csv/tree'), 550_000);
  atLeast('queue2/csv/linear', '≥1,500,000 rows/s', rps('queue2/csv/linear'), 1_500_000);
  // In process against 2 workers like for like: both as the command's wall time, start-up
  // included (an in-process run cannot be timed any other way from outside).
  const cliRps = (id: string) => {
    const q = by.get(id);
    return q?.median_cli_seconds ? q.rows / q.median_cli_seconds : undefined;
  };
  for (const f of ['csv', 'parquet']) {
    for (const m of ['tree', 'linear']) {
      const q2 = cliRps(`queue2/${f}/${m}`);
      atLeast(`run/${f}/${m}`, '≥80% of 2 workers (both CLI wall time)', rps(`run/${f}/${m}`), q2 === undefined ? undefined : 0.8 * q2);
    }
  }
  const ort = rps(`ort/tree/t${cpus}`);
  atLeast('queue2/parquet/tree', `≥75% of ORT alone (${cpus} threads)`, rps('queue2/parquet/tree'), ort === undefined ? undefined : 0.75 * ort);
  for (const s of all) {
    if (s.id.startsWith('queue')) {
      atMost(s.id, 'peak RSS ≤200 MB per worker', s.peak_rss_mb, 200);
      atMost(s.id, 'event-loop delay p99 ≤100 ms', s.eld_p99_ms, 100);
    }
    if (s.id.endsWith('@4x')) {
      const base = by.get(s.id.slice(0, -3));
      atMost(s.id, 'peak RSS flat: ≤110% of the 1× peak', s.peak_rss_mb, base ? 1.1 * base.peak_rss_mb : undefined);
    }
    // Issue #27: drift costs at most 10% of the run on the logistic model, 5% on the tree.
    // Issue #28: a challenger costs at most its own inference time plus 10%.
    if (s.shadow_cost !== undefined) atMost(s.id, 'challenger ≤1.1× its own inference time', s.shadow_cost, 1.1);
    if (s.drift_cost !== undefined) atMost(s.id, `drift ≤${s.id.includes('/tree') ? 5 : 10}% of the run`, Math.max(s.drift_cost, 0), s.id.includes('/tree') ? 0.05 : 0.1);
    if (s.ms_per_chunk !== undefined) atMost(s.id, 'queue overhead ≤10 ms per chunk (median)', s.ms_per_chunk, 10);
  }
  return out;
}

const n = (x: number) => x.toLocaleString('en-US');

/** The markdown table: one row per case, with the targets that apply to it. */
export function formatTable(all: Summary[], targets: TargetCheck[]): string {
  const lines = ['| case | rows | median s | median rows/s | peak RSS | other | target | ratio |', '| --- | ---: | ---: | ---: | ---: | --- | --- | --- |'];
  for (const s of all) {
    const mine = targets.filter((t) => t.case === s.id);
    const cli = s.median_cli_seconds === undefined ? '' : `; CLI wall ${s.median_cli_seconds.toFixed(3)} s${s.median_rows_per_s === null ? '' : ` (${n(Math.round(s.rows / s.median_cli_seconds))} rows/s)`}`;
    const ui = s.ui_cold_seconds === undefined ? '' : `warm page; first page at start ${s.ui_cold_seconds.toFixed(3)} s; cache lapsed (served while re-checked) ${s.ui_revalidate_seconds!.toFixed(3)} s`;
    const drift = s.drift_cost === undefined ? (s.shadow_cost === undefined ? '' : `challenger: extra CPU ${s.shadow_cost.toFixed(2)}× its own inference time (median of pairs)`) : `drift ${s.drift_cost >= 0 ? '+' : ''}${(s.drift_cost * 100).toFixed(1)}% (median of paired ratios)`;
    const other = drift ? drift : s.ms_per_chunk !== undefined ? `${s.ms_per_chunk} ms/chunk; a 1-chunk run takes ${s.one_chunk_run_seconds?.toFixed(2)} s${cli}` : s.eld_p99_ms !== undefined ? `ELD p99 ${s.eld_p99_ms} ms${cli}` : ui;
    const seconds = s.ms_per_chunk !== undefined ? '' : s.median_seconds.toFixed(3);
    lines.push(
      `| ${s.title} | ${n(s.rows)} | ${seconds} | ${s.median_rows_per_s === null ? '' : n(s.median_rows_per_s)} | ${s.peak_rss_mb} MB | ${other} | ${mine.map((t) => t.target).join('; ')} | ${mine.map((t) => `${t.ratio === Infinity ? '∞' : t.ratio.toFixed(2)} ${t.ratio >= 1 ? '✓' : '✗'}`).join('; ')} |`,
    );
  }
  return lines.join('\n');
}
