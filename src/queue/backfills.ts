/**
 * Backfills as objects: each has an id and a record in Redis (its job, dates and options),
 * and every run it enqueues carries the id. Progress is read from the runs and manifests of
 * its dates (status), so it is what `status` says; cancelling removes the dates still
 * queued and stops its feeder, and lets the running ones finish (nothing is half-published).
 */
import { randomBytes } from 'node:crypto';
import { NightscoreError } from '../errors.js';
import { loadJob } from '../job/load.js';
import { redactSecrets } from '../redact.js';
import { addRows, emptyRows, type RowCounts } from '../run/chunk-result.js';
import { runId } from './config.js';
import { isQueued, type Queues, type RunJobData } from './queues.js';
import { readStatus, statesLine, type DateStatus } from './status.js';

export interface BackfillRecord {
  id: string;
  job: string;
  file: string;
  /** Every date asked for, in the order given; `enqueued` the ones this backfill runs. */
  dates: string[];
  enqueued: string[];
  reprocess: string;
  model_as_of: string | null;
  max_parallel: number | null;
  created_at: string;
  cancelled_at: string | null;
}

/** How many backfill records are kept (the oldest are forgotten; their runs are not touched). */
const KEEP = 200;

function key(queues: Queues): string {
  return `${queues.config.prefix}:nightscore:backfills`;
}

export function newBackfillId(now = new Date()): string {
  return `bf-${now.toISOString().replace(/[-:]/g, '').slice(0, 15)}-${randomBytes(2).toString('hex')}`;
}

export async function saveBackfill(queues: Queues, record: BackfillRecord): Promise<void> {
  const client = await queues.runs.getBackend().client;
  await client.hset(key(queues), { [record.id]: JSON.stringify(record) });
  const all = Object.keys(await client.hgetall(key(queues))).sort();
  if (all.length > KEEP) await client.hdel(key(queues), ...all.slice(0, all.length - KEEP));
}

export async function listBackfills(queues: Queues): Promise<BackfillRecord[]> {
  const client = await queues.runs.getBackend().client;
  return Object.values(await client.hgetall(key(queues)))
    .map((v) => JSON.parse(v) as BackfillRecord)
    .sort((a, b) => (a.id < b.id ? 1 : -1));
}

/** A backfill's record, or undefined when the queue holds none by that id. */
export async function findBackfill(queues: Queues, id: string): Promise<BackfillRecord | undefined> {
  const client = await queues.runs.getBackend().client;
  const text = await client.hget(key(queues), id);
  return text ? (JSON.parse(text) as BackfillRecord) : undefined;
}

export async function getBackfill(queues: Queues, id: string): Promise<BackfillRecord> {
  const record = await findBackfill(queues, id);
  if (!record) {
    throw new NightscoreError('BAD_OPTION', `there is no backfill ${id} on this queue (queue prefix ${queues.config.prefix})`, {
      hint: 'nightscore backfills lists the recent ones.',
    });
  }
  return record;
}

export interface BackfillProgress {
  record: BackfillRecord;
  dates: DateStatus[];
  counts: Record<string, number>;
  rows: RowCounts;
  /** Estimated time left, from the pace of the dates finished since it started (ms), or null. */
  eta_ms: number | null;
  done: boolean;
}

/** Where a backfill is: its dates' states (a cancelled date never run is `cancelled`), rows, ETA. */
export async function backfillProgress(queues: Queues, record: BackfillRecord, now = Date.now()): Promise<BackfillProgress> {
  const job = await loadJob(record.file);
  const created = Date.parse(record.created_at);
  const statuses = await readStatus(queues, job, record.enqueued);
  // A date is this backfill's once its run carries the backfill's id or its output was
  // written since the backfill began; until then what its output says is an older run's.
  const dates = statuses.map((d): DateStatus => {
    const ours = d.backfill === record.id || Date.parse(d.started_at ?? '') >= created;
    if (ours && !(record.cancelled_at && d.state === 'missing')) return d;
    return { date: d.date, state: record.cancelled_at ? 'cancelled' : 'scheduled' };
  });
  const counts: Record<string, number> = {};
  for (const d of dates) counts[d.state] = (counts[d.state] ?? 0) + 1;
  const rows = dates.flatMap((d) => (d.rows ? [d.rows] : [])).reduce(addRows, emptyRows());
  const finished = (counts.succeeded ?? 0) + (counts.failed ?? 0);
  // An interrupted date has no run left to finish it: it ends the backfill's wait, as a failure would.
  const left = dates.length - finished - (counts.cancelled ?? 0) - (counts.interrupted ?? 0);
  const elapsed = now - Date.parse(record.created_at);
  return { record, dates, counts, rows, eta_ms: finished > 0 && left > 0 ? Math.round((elapsed / finished) * left) : null, done: left === 0 };
}

/**
 * A backfill whose record vanished while it was followed: the queue lost it (Redis restarted
 * without its data, or was flushed), and its runs with it, so nothing will finish its dates.
 * Returns each date as its output folder says (the queue holds nothing of it now; a date
 * left half-run is `interrupted`) and the error that says so and how to resume.
 */
export async function lostBackfill(queues: Queues, record: BackfillRecord): Promise<{ dates: DateStatus[]; error: NightscoreError }> {
  const dates = await readStatus(queues, await loadJob(record.file), record.enqueued);
  const counts: Record<string, number> = {};
  for (const d of dates) counts[d.state] = (counts[d.state] ?? 0) + 1;
  const asked = [...record.dates].sort();
  const again = [
    `nightscore backfill ${record.file} --from ${asked[0]} --to ${asked.at(-1)}`,
    ...(record.model_as_of && record.model_as_of !== 'now' ? [`--model-as-of ${record.model_as_of}`] : []),
    ...(record.max_parallel ? [`--max-parallel-runs ${record.max_parallel}`] : []),
  ].join(' ');
  const error = new NightscoreError(
    'BACKFILL_LOST',
    `backfill ${record.id} (${record.job}) is no longer on the queue (${redactSecrets(queues.config.redisUrl)}, prefix ${queues.config.prefix}): Redis lost it, and its runs, while it was followed. Its dates, as their output folders say: ${statesLine(counts) || 'none'} of ${dates.length}`,
    {
      hint: `Run it again: ${again} (--reprocess missing, the default, keeps the dates that succeeded and scores the others). Redis keeps its queue across a restart only with persistence (appendonly yes).`,
    },
  );
  return { dates, error };
}

/** What cancelling did to each date of the backfill that still has a run on the queue. */
export interface CancelOutcome {
  /** Queued dates removed: they never run. */
  removed: string[];
  /** Dates being run (planned: they hold the output lock): they finish whole. */
  running: string[];
  /** Dates whose run had already ended, as the queue says (succeeded or failed). */
  finished: { date: string; state: 'succeeded' | 'failed' }[];
}

/**
 * Cancels a backfill: its feeder stops, its dates still queued (waiting, delayed, waiting
 * for input) are removed, and its running ones finish. Says what became of each date the
 * queue still holds a run of.
 */
export async function cancelBackfill(queues: Queues, id: string): Promise<CancelOutcome> {
  const record = await getBackfill(queues, id);
  await saveBackfill(queues, { ...record, cancelled_at: record.cancelled_at ?? new Date().toISOString() });
  const outcome: CancelOutcome = { removed: [], running: [], finished: [] };
  for (const date of record.enqueued) {
    const run = await queues.runs.getJob(runId(record.job, date));
    if (!run || (run.data as RunJobData).backfill !== id) continue;
    const state = await run.getState();
    // An ended run keeps its plan in its data: its state, not the plan, says it is done.
    if (state === 'completed' || state === 'failed') outcome.finished.push({ date, state: state === 'completed' ? 'succeeded' : 'failed' });
    else if (isQueued(state) && !(run.data as RunJobData).plan) {
      // A worker may take it between the two reads: then it is running, and finishes.
      await run.remove().then(() => outcome.removed.push(date), () => outcome.running.push(date));
    } else if (state !== 'unknown') outcome.running.push(date);
  }
  return outcome;
}
