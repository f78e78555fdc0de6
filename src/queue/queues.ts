import { Queue, type JobsOptions } from 'bullmq';
import { connectionOptions, QUEUES, runId, type QueueConfig } from './config.js';

/** Data of the jobs on the runs queue, by job name. */
export interface RunJobData {
  jobFile: string;
  date: string;
  step?: 'plan' | 'chunks' | 'finalize';
  /** Set by the plan step; chunks and the commit work from it. */
  plan?: import('../run/run.js').RunPlan;
  /** The job definition as planned, so every chunk of a run scores with the same one. */
  job?: import('../job/load.js').JobDefinition;
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
}

/** The two queues, opened on one configuration. */
export interface Queues {
  config: QueueConfig;
  runs: Queue;
  chunks: Queue;
  close(): Promise<void>;
}

export function openQueues(config: QueueConfig): Queues {
  const opts = { connection: connectionOptions(config), prefix: config.prefix };
  const runs = new Queue(QUEUES.runs, opts);
  const chunks = new Queue(QUEUES.chunks, opts);
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
 * Options of a run job. Finished runs stay in Redis a week (their id keeps a backfill from
 * enqueueing them again, and `status` reads their attempts); the manifests keep the history.
 */
export function runJobOptions(config: QueueConfig, job: string, date: string): JobsOptions {
  return {
    jobId: runId(job, date),
    attempts: config.attempts,
    backoff: { type: 'exponential', delay: config.backoffMs },
    removeOnComplete: { age: WEEK_S },
    removeOnFail: { age: 4 * WEEK_S },
  };
}

/** Enqueues the run of one date; returns false when a run with that id already exists. */
export async function enqueueRun(queues: Queues, jobName: string, jobFile: string, date: string): Promise<boolean> {
  const id = runId(jobName, date);
  if ((await queues.runs.getJobState(id)) !== 'unknown') return false;
  const data: RunJobData = { jobFile, date, step: 'plan' };
  await queues.runs.add('run', data, runJobOptions(queues.config, jobName, date));
  return true;
}
