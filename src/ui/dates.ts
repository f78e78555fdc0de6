/**
 * The states of a job's dates, as `nightscore status` reports them, for the grid. Dates the
 * queue holds a run for (in flight, or finished within its retention) are read by readStatus
 * itself; the others, most of a month, are what their output folder says, from the output
 * cache. Succeeded dates are then checked for a stale model.
 */
import type { DriftStatus } from '../drift/statistics.js';
import { fromErrorRecord } from '../errors.js';
import type { JobDefinition } from '../job/load.js';
import { runId } from '../queue/config.js';
import { outputStateOf } from '../run/output-folder.js';
import { dateDriftOf, readStatus, type DateState, type DateStatus } from '../queue/status.js';
import { noticeOf, type Notice, type UiContext } from './context.js';
import type { OutputSnapshot } from './output.js';

/**
 * A cell's state: the date's state, or `stale` (succeeded, scored by another model than the
 * job's reference resolves to now), or `unreadable` (its output or run could not be read).
 * Drift is not a state but a mark beside it (UiDateStatus.drift): a date that drifted is still
 * succeeded, stale or failed, and the cell says both.
 */
export type CellState = DateState | 'stale' | 'unreadable';

/** Every cell state, in the order legends and totals list them. */
export const CELL_STATES: CellState[] = ['succeeded', 'stale', 'failed', 'interrupted', 'running', 'scheduled', 'missing', 'cancelled', 'unreadable'];

/** Every drift status, in the order legends and totals list them: the worst first. */
export const DRIFT_STATUSES: DriftStatus[] = ['drift', 'warn', 'inconclusive', 'ok'];

export interface UiDateStatus extends DateStatus {
  cell: CellState;
  /** For a succeeded date: why it is, or is not, stale (backfill --reprocess stale's reason). */
  model_check?: string;
}

export interface JobDates {
  job: string;
  dates: UiDateStatus[];
  /** Dates by cell state. */
  totals: Partial<Record<CellState, number>>;
  /** Dates by drift status, of those that measured drift. */
  drift_totals: Partial<Record<DriftStatus, number>>;
  notices: Notice[];
}

/**
 * The dates of one job, with whatever could not be read as notices rather than an error.
 * `redis` is the page's one readiness check (UiContext.redisReady): when it failed, the dates
 * are what their output folders say.
 */
export async function readJobDates(ctx: UiContext, job: JobDefinition, dates: string[], redis: Promise<void>): Promise<JobDates> {
  const notices: Notice[] = [];
  const note = (scope: string, err: unknown) => {
    const n = noticeOf(scope, err);
    if (!notices.some((o) => o.error.code === n.error.code && o.scope === n.scope)) notices.push(n);
  };
  const redisUp = await redis.then(
    () => true,
    (err: unknown) => (note('redis', err), false),
  );
  const queued = redisUp ? await queueStates(ctx, job, dates).catch((err: unknown) => (note('redis', err), undefined)) : undefined;
  const known = queued ? dates.filter((d) => queued.get(d) !== 'unknown') : [];
  for (const date of known) ctx.outputs.forget(job, date);
  const byDate = new Map<string, UiDateStatus>();
  if (known.length > 0) {
    try {
      for (const s of await ctx.bounded(readStatus(ctx.queues, job, known), 'reading the runs')) byDate.set(s.date, { ...s, cell: s.state });
    } catch (err) {
      note(job.name, err);
      for (const date of known) byDate.set(date, { date, state: 'missing', cell: 'unreadable' });
    }
  }
  await Promise.all(
    dates
      .filter((d) => !byDate.has(d))
      .map(async (date) => {
        try {
          byDate.set(date, withCell(statusFromOutput(date, await ctx.outputs.get(job, date))));
        } catch (err) {
          note(job.name, err);
          byDate.set(date, { date, state: 'missing', cell: 'unreadable' });
        }
      }),
  );
  const statuses = dates.map((d) => byDate.get(d)!);
  // The check reads the queue too: only when it answered for this page.
  if (queued) await markStale(ctx, job, statuses).catch((err: unknown) => note(`${job.name}: model check`, err));
  const totals: Partial<Record<CellState, number>> = {};
  const drift_totals: Partial<Record<DriftStatus, number>> = {};
  for (const s of statuses) {
    totals[s.cell] = (totals[s.cell] ?? 0) + 1;
    if (s.drift) drift_totals[s.drift.status] = (drift_totals[s.drift.status] ?? 0) + 1;
  }
  return { job: job.name, dates: statuses, totals, drift_totals, notices };
}

/** The queue's state of each date's run ('unknown': Redis holds none). */
async function queueStates(ctx: UiContext, job: JobDefinition, dates: string[]): Promise<Map<string, string>> {
  const states = await ctx.bounded(Promise.all(dates.map((d) => ctx.queues.runs.getJobState(runId(job.name, d)))), 'reading run states');
  return new Map(dates.map((d, i) => [d, states[i]!]));
}

/**
 * A date Redis holds no run for, from its output folder: readStatus's rule for such dates
 * (outputStateOf: `_SUCCESS` is succeeded, a failed manifest failed), but for a running manifest,
 * which readStatus calls running or interrupted by the output lock: the page reads no locks, and
 * calls it missing.
 */
function statusFromOutput(date: string, { success, manifest }: OutputSnapshot): DateStatus {
  const origin = manifest ? { started_at: manifest.started_at } : {};
  const fromManifest =
    manifest && manifest.status !== 'running'
      ? {
          rows: manifest.rows,
          duration_ms: manifest.duration_ms,
          sha256: manifest.model.sha256,
          ...(manifest.model.name ? { model: `${manifest.model.name}@${manifest.model.version}` } : {}),
          ...(manifest.error ? { error: `${manifest.error.code}: ${fromErrorRecord(manifest.error).message}` } : {}),
          ...dateDriftOf(manifest),
        }
      : {};
  const state = outputStateOf({ success, manifest });
  if (state === 'succeeded' || state === 'failed') return { date, state, ...fromManifest, ...origin };
  return { date, state: 'missing', ...origin };
}

function withCell(s: DateStatus): UiDateStatus {
  return { ...s, cell: s.state };
}

async function markStale(ctx: UiContext, job: JobDefinition, statuses: UiDateStatus[]): Promise<void> {
  const verdicts = await ctx.bounded(ctx.stale.check(ctx.queues, job, statuses), 'checking the models of succeeded dates', 15_000);
  for (const s of statuses) {
    const v = verdicts.get(s.date);
    if (!v) continue;
    s.model_check = v.reason;
    if (v.stale) s.cell = 'stale';
  }
}
