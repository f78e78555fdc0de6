/**
 * One date of one job: its status (as on the grid), its manifest, the first rows of its
 * rejects, and for a failed date the error with its code and hint — the queue's failure
 * record while Redis keeps the run, as `status` reads it, else the manifest's.
 */
import { decodeFailure, NightscoreError, type ErrorRecord } from '../errors.js';
import { locateRun, type JobDefinition } from '../job/load.js';
import { runId } from '../queue/config.js';
import type { RunJobData } from '../queue/queues.js';
import type { RunManifest } from '../run/manifest.js';
import { noticeOf, type Notice, type UiContext } from './context.js';
import { readJobDates, type UiDateStatus } from './dates.js';
import { readFirstRejects, type FirstRejects } from './rejects.js';
import { readRunDrift, type RunDrift } from './run-drift.js';

export interface RunDetail {
  job: string;
  date: string;
  output_uri: string;
  status: UiDateStatus;
  /** The manifest in the output folder, if there is one (a queued date has none yet). */
  manifest: RunManifest | null;
  /** Why a failed date failed: code, kind, message, hint and where. */
  error: ErrorRecord | null;
  /** A failure without a record of its own (a run that completed but whose _SUCCESS is gone). */
  error_text: string | null;
  rejects: FirstRejects | null;
  /** Its drift against its profile, when its manifest says it measured one and `_drift.json` could be read. */
  drift: RunDrift | null;
  /** The run the queue holds for the date, if any. */
  queue: { id: string; state: string; attempts: number; backfill: string | null } | null;
  notices: Notice[];
}

/** How many reject rows a run page shows. */
export const REJECTS_SHOWN = 20;

export async function readRunDetail(ctx: UiContext, job: JobDefinition, date: string): Promise<RunDetail> {
  const redis = ctx.redisReady();
  const { dates, notices } = await readJobDates(ctx, job, [date], redis);
  const status = dates[0]!;
  const detail: RunDetail = { job: job.name, date, output_uri: locateRun(job, date).outputUri, status, manifest: null, error: null, error_text: null, rejects: null, drift: null, queue: null, notices };
  try {
    detail.manifest = (await ctx.outputs.get(job, date)).manifest ?? null;
  } catch (err) {
    notices.push(noticeOf(job.name, err));
  }
  const run = await redis.then(
    () => ctx.bounded(ctx.queues.runs.getJob(runId(job.name, date)), 'reading the run').catch((err: unknown) => void notices.push(noticeOf('redis', err))),
    () => undefined,
  );
  let queueFailure: ErrorRecord | undefined;
  if (run) {
    const state = await ctx.bounded(run.getState(), 'reading the run').catch(() => 'unknown');
    detail.queue = { id: run.id!, state, attempts: run.attemptsMade, backfill: (run.data as RunJobData).backfill ?? null };
    if (state === 'failed' && run.failedReason) queueFailure = decodeFailure(run.failedReason).toJSON();
  }
  if (status.state === 'failed') {
    detail.error = queueFailure ?? detail.manifest?.error ?? null;
    if (!detail.error) detail.error_text = status.error ?? null;
  }
  if (detail.manifest && detail.manifest.rejects.length > 0) {
    try {
      const { rejects, refused } = await readFirstRejects(job, date, detail.manifest, REJECTS_SHOWN);
      detail.rejects = rejects;
      for (const err of refused) notices.push(noticeOf(`${job.name}: rejects`, err));
    } catch (err) {
      notices.push(noticeOf(`${job.name}: rejects`, err));
    }
  }
  if (detail.manifest?.drift) detail.drift = await readDrift(job, date, detail.manifest.drift, { name: detail.manifest.model.name ?? null, version: detail.manifest.model.version ?? null }, notices);
  return detail;
}

/** The run's drift; what cannot be read is a notice, and the rest of the page shows. */
async function readDrift(job: JobDefinition, date: string, summary: NonNullable<RunManifest['drift']>, model: { name: string | null; version: number | null }, notices: Notice[]): Promise<RunDrift | null> {
  try {
    const drift = await readRunDrift(job, date, summary, model);
    if (drift) return drift;
    notices.push(noticeOf(`${job.name}: drift`, new NightscoreError('NOT_FOUND', `the manifest says the run measured drift, but ${summary.file} is not in its output folder`, { hint: 'Run the date again to write it.' })));
  } catch (err) {
    notices.push(noticeOf(`${job.name}: drift`, err));
  }
  return null;
}
