/**
 * The queue as the front page shows it: runs in flight with their chunk progress, the
 * recent failures, the recent backfills, and job counts per state. Read only, every call
 * bounded in time; kept a few seconds, so several open pages cost Redis one read.
 */
import type { JobType } from 'bullmq';
import { decodeFailure, type ErrorRecord } from '../errors.js';
import { loadJob, type JobDefinition } from '../job/load.js';
import { backfillProgress, listBackfills, type BackfillProgress } from '../queue/backfills.js';
import { IN_FLIGHT_STATES, type RunJobData } from '../queue/queues.js';
import { readStatus, type DateStatus } from '../queue/status.js';
import { noticeOf, type Notice, type UiContext } from './context.js';

export interface InFlightRun {
  id: string;
  job: string;
  date: string;
  /** BullMQ's state: waiting, delayed, active, waiting-children… */
  queue_state: string;
  /** As `status` says it (running k/n chunks, scheduled, waiting for input), when the job file could be read. */
  status?: DateStatus;
}

export interface QueueFailure {
  id: string;
  name: string;
  job: string;
  date: string | undefined;
  finished_at: string | undefined;
  attempts: number;
  error: ErrorRecord;
}

export interface BackfillSummary {
  id: string;
  job: string;
  dates: number;
  first: string | undefined;
  last: string | undefined;
  created_at: string;
  cancelled_at: string | null;
  counts: Record<string, number>;
  done: boolean;
  eta_ms: number | null;
}

export interface QueuePanels {
  in_flight: InFlightRun[];
  failures: QueueFailure[];
  backfills: BackfillSummary[];
  /** Jobs per BullMQ state, per queue. */
  counts: Record<string, Record<string, number>>;
  notices: Notice[];
}

const COUNTED: JobType[] = ['waiting', 'prioritized', 'delayed', 'active', 'waiting-children', 'failed', 'completed'];

/** How many of each the panels show. */
const SHOWN = { inFlight: 50, failures: 20, backfills: 10 };

export class QueuePanelReader {
  private last: { at: number; panels: Promise<QueuePanels> } | undefined;

  /** @param ttlMs how long one reading of the queue is shown to every page. */
  constructor(private readonly ttlMs = 3_000) {}

  read(ctx: UiContext, jobs: JobDefinition[]): Promise<QueuePanels> {
    if (!this.last || Date.now() - this.last.at > this.ttlMs) this.last = { at: Date.now(), panels: readPanels(ctx, jobs) };
    return this.last.panels;
  }
}

async function readPanels(ctx: UiContext, jobs: JobDefinition[]): Promise<QueuePanels> {
  const panels: QueuePanels = { in_flight: [], failures: [], backfills: [], counts: {}, notices: [] };
  try {
    await ctx.redisReady();
  } catch (err) {
    panels.notices.push(noticeOf('redis', err));
    return panels;
  }
  const { runs, chunks } = ctx.queues;
  const parts = await Promise.allSettled([
    ctx.bounded(Promise.all([runs.getJobCounts(...COUNTED), chunks.getJobCounts(...COUNTED)]), 'counting jobs').then(([r, c]) => void (panels.counts = { runs: r, chunks: c })),
    ctx.bounded(inFlight(ctx, jobs), 'reading the runs in flight').then((v) => void (panels.in_flight = v)),
    ctx.bounded(failures(ctx, jobs), 'reading the failed runs').then((v) => void (panels.failures = v)),
    ctx.bounded(backfills(ctx), 'reading the backfills', 10_000).then((v) => void (panels.backfills = v)),
  ]);
  for (const p of parts) if (p.status === 'rejected' && !panels.notices.some((n) => n.error.message === noticeOf('queue', p.reason).error.message)) panels.notices.push(noticeOf('queue', p.reason));
  return panels;
}

/** A run's date as `status` says it, or undefined when its job file cannot be read. */
async function statusOf(ctx: UiContext, jobs: JobDefinition[], name: string, data: Partial<RunJobData>): Promise<DateStatus | undefined> {
  if (data.date === undefined) return undefined;
  // A run of a job file outside the jobs folder is shown too, read from its own file.
  const job = jobs.find((j) => j.name === name) ?? (data.jobFile ? await loadJob(data.jobFile).catch(() => undefined) : undefined);
  return job ? (await readStatus(ctx.queues, job, [data.date]).catch(() => undefined))?.[0] : undefined;
}

async function inFlight(ctx: UiContext, jobs: JobDefinition[]): Promise<InFlightRun[]> {
  const found = (await ctx.queues.runs.getJobs([...IN_FLIGHT_STATES], 0, 4 * SHOWN.inFlight)).filter((j) => j?.name === 'run').slice(0, SHOWN.inFlight);
  return Promise.all(
    found.map(async (run): Promise<InFlightRun> => {
      const data = run.data as RunJobData;
      const name = run.id!.slice(0, run.id!.lastIndexOf('@'));
      const status = await statusOf(ctx, jobs, name, data);
      return { id: run.id!, job: name, date: data.date, queue_state: await run.getState(), ...(status ? { status } : {}) };
    }),
  );
}

async function failures(ctx: UiContext, jobs: JobDefinition[]): Promise<QueueFailure[]> {
  const failed = await ctx.queues.runs.getFailed(0, SHOWN.failures - 1);
  const shown = await Promise.all(
    failed
      .filter((j) => j !== undefined)
      .map(async (j): Promise<QueueFailure | undefined> => {
        const data = j.data as Partial<RunJobData>;
        const job = j.id!.includes('@') ? j.id!.slice(0, j.id!.lastIndexOf('@')) : j.name;
        // The queue keeps a failed run after its date was scored since (in process, or by a
        // later run): the date's status says so, and it is no failure to look into now.
        if (j.name === 'run' && (await statusOf(ctx, jobs, job, data))?.state === 'succeeded') return undefined;
        return {
          id: j.id!,
          name: j.name,
          job,
          date: data.date,
          finished_at: j.finishedOn ? new Date(j.finishedOn).toISOString() : undefined,
          attempts: j.attemptsMade,
          error: decodeFailure(j.failedReason).toJSON(),
        };
      }),
  );
  return shown.filter((f) => f !== undefined).sort((a, b) => (b.finished_at ?? '').localeCompare(a.finished_at ?? ''));
}

async function backfills(ctx: UiContext): Promise<BackfillSummary[]> {
  const records = (await listBackfills(ctx.queues)).slice(0, SHOWN.backfills);
  const progress = await Promise.all(records.map((r) => backfillProgress(ctx.queues, r).catch(() => undefined)));
  return records.map((r, i) => {
    const p: BackfillProgress | undefined = progress[i];
    return {
      id: r.id,
      job: r.job,
      dates: r.enqueued.length,
      first: r.enqueued[0],
      last: r.enqueued.at(-1),
      created_at: r.created_at,
      cancelled_at: r.cancelled_at,
      counts: p?.counts ?? {},
      done: p?.done ?? false,
      eta_ms: p?.eta_ms ?? null,
    };
  });
}
