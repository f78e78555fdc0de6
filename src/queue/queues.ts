import { Queue, type JobsOptions, type JobState } from 'bullmq';
import { connectionOptions, QUEUES, runId, type QueueConfig } from './config.js';

/** Data of the jobs on the runs queue, by job name. */
export interface RunJobData {
  jobFile: string;
  date: string;
  step?: 'plan' | 'chunks' | 'finalize';
  /** Set by the plan step; chunks and the commit work from its spec, never from the job file again. */
  plan?: import('../run/begin.js').RunPlan;
  /** backfill --model-as-of: `date`, or a YYYY-MM-DD (see modelAsOf); absent: the alias when planned. */
  modelAsOf?: string;
  /** input.wait: when the run first found its input missing (ms since the epoch), and why. */
  waitingSince?: number;
  waitingFor?: string;
  /** The backfill that enqueued this run, if one did. */
  backfill?: string;
}

export interface FireJobData {
  jobFile: string;
}

export interface BackfillJobData {
  jobFile: string;
  dates: string[];
  /** Index of the next date to enqueue. */
  next: number;
  maxParallel: number;
  modelAsOf?: string;
  backfill?: string;
}

/**
 * Entries each queue's event stream keeps (BullMQ trims it as it adds). Listeners such as
 * `run --wait` read events as they come, so a short history is enough, and it bounds the
 * stream's memory: about 150 bytes an event.
 */
export const EVENTS_MAX_LEN = 2_000;

/** The two queues, opened on one configuration. */
export interface Queues {
  config: QueueConfig;
  runs: Queue;
  chunks: Queue;
  close(): Promise<void>;
}

/**
 * Opens both queues. Connection errors go to `onError`: BullMQ reconnects by itself, and a
 * queue without an error listener prints the raw error object, which may quote the command
 * that carried the password.
 */
export function openQueues(config: QueueConfig, onError: (err: Error) => void): Queues {
  const opts = { connection: connectionOptions(config), prefix: config.prefix, streams: { events: { maxLen: EVENTS_MAX_LEN } } };
  const runs = new Queue(QUEUES.runs, opts);
  const chunks = new Queue(QUEUES.chunks, opts);
  for (const q of [runs, chunks]) q.on('error', onError);
  return {
    config,
    runs,
    chunks,
    close: async () => {
      await Promise.all([runs.close(), chunks.close()]);
    },
  };
}

const WEEK_S = 7 * 24 * 3600;

/**
 * Options of a run job. Finished runs stay in Redis a week, failed ones four (their id keeps
 * a backfill from enqueueing them again, and `status` reads their attempts), but never more
 * than `keepRuns` of each: Redis memory stays bounded however many dates a backfill covers.
 * The manifests keep the history; `status` reads them for runs Redis no longer holds.
 */
export function runJobOptions(config: QueueConfig, job: string, date: string): JobsOptions {
  return {
    jobId: runId(job, date),
    attempts: config.attempts,
    backoff: { type: 'exponential', delay: config.backoffMs },
    removeOnComplete: { age: WEEK_S, count: config.keepRuns },
    removeOnFail: { age: 4 * WEEK_S, count: config.keepRuns },
  };
}

/**
 * Options of a chunk job. A completed chunk is removed at once: its result lives on in its
 * run (BullMQ keeps children's return values with the parent) and its part in the output.
 * A failed chunk stays a week, for its error.
 */
export function chunkJobOptions(config: QueueConfig): JobsOptions {
  return {
    attempts: config.attempts,
    backoff: { type: 'exponential', delay: config.backoffMs },
    // A failed chunk does not fail the run behind BullMQ's back: the commit step
    // sees it and writes a failed manifest with the chunk's error.
    ignoreDependencyOnFailure: true,
    removeOnComplete: true,
    removeOnFail: { age: WEEK_S },
  };
}

/**
 * BullMQ priority of a backfill's runs and chunks. Jobs with no priority go before any with
 * one, so tonight's scheduled run (and a `run --queue`) is never stuck behind a year of
 * backfill; among backfills, order is first come, first served.
 */
export const BACKFILL_PRIORITY = 100;

/** Enqueues the run of one date; returns false when a run with that id already exists. */
export async function enqueueRun(queues: Queues, jobName: string, jobFile: string, date: string, opts: { modelAsOf?: string; backfill?: string } = {}): Promise<boolean> {
  const id = runId(jobName, date);
  if ((await queues.runs.getJobState(id)) !== 'unknown') return false;
  const data: RunJobData = { jobFile, date, step: 'plan', ...(opts.modelAsOf === undefined ? {} : { modelAsOf: opts.modelAsOf }), ...(opts.backfill === undefined ? {} : { backfill: opts.backfill }) };
  await queues.runs.add('run', data, { ...runJobOptions(queues.config, jobName, date), ...(opts.backfill === undefined ? {} : { priority: BACKFILL_PRIORITY }) });
  return true;
}

/**
 * BullMQ states of a job that has taken nothing yet: removing it leaves its date as it was.
 * BullMQ 6 reports a job of a paused queue as `waiting`; it has no state of its own.
 */
export const QUEUED_STATES = ['waiting', 'delayed', 'prioritized'] as const satisfies readonly JobState[];

/**
 * BullMQ states of a run in flight, queued or begun: never replaced by a re-run, counted
 * against a backfill's --max-parallel-runs, its output lock kept live, shown as in flight.
 * The begun come first: the page lists the jobs of these states in this order.
 */
export const IN_FLIGHT_STATES = ['active', 'waiting-children', ...QUEUED_STATES] as const satisfies readonly JobState[];

/** Whether a state getState returned is one of QUEUED_STATES. */
export function isQueued(state: string): boolean {
  return (QUEUED_STATES as readonly string[]).includes(state);
}

/** Whether a state getState returned is one of IN_FLIGHT_STATES. */
export function isInFlight(state: string): boolean {
  return (IN_FLIGHT_STATES as readonly string[]).includes(state);
}

/**
 * Enqueues a date's run again where the rule says so: a date whose run failed is re-run (by a
 * later fire, or `run --queue`); with `force`, one that succeeded too. A run in flight is
 * never replaced. Returns whether a run was added, and the state of the run found.
 */
export async function requeueRun(queues: Queues, jobName: string, jobFile: string, date: string, opts: { force?: boolean; succeededAfter?: (ms: number) => Promise<boolean> } = {}): Promise<{ added: boolean; was: string }> {
  const existing = await queues.runs.getJob(runId(jobName, date));
  const was = existing ? await existing.getState() : 'unknown';
  // The output has the last word: a record trimmed from Redis, or a failure since scored
  // (in process, say), is a date that succeeded.
  const scored = (was === 'unknown' || was === 'failed') && (await opts.succeededAfter?.(was === 'failed' ? (existing!.finishedOn ?? 0) : 0)) === true;
  if (scored && !opts.force) return { added: false, was: 'completed' };
  // A failed date runs again as it was asked for (a backfill's --model-as-of, its id).
  const before = existing?.data as RunJobData | undefined;
  if (existing && (was === 'failed' || (opts.force && was === 'completed'))) await existing.remove();
  else if (was !== 'unknown') return { added: false, was };
  return { added: await enqueueRun(queues, jobName, jobFile, date, { modelAsOf: before?.modelAsOf, backfill: was === 'failed' ? before?.backfill : undefined }), was: scored ? 'completed' : was };
}
