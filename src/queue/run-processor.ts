import { DelayedError, UnrecoverableError, WaitingChildrenError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { loadJob } from '../job/load.js';
import { logicalDateFor, modelAsOf } from '../job/dates.js';
import type { ChunkResult } from '../run/chunk-result.js';
import { beginRun, type RunPlan } from '../run/begin.js';
import { prepareJob } from '../run/bind.js';
import { abandonRun, finishRun } from '../run/finish.js';
import { chunkSpec, SPEC_VERSION } from '../run/spec.js';
import { chunkId, runId, runLockOwner } from './config.js';
import type { ChunkJobData } from './chunk-processor.js';
import { decodeFailure, encodeFailure, fromErrorRecord, toNightscoreError, type NightscoreError } from '../errors.js';
import { alertPayload, outcomesOf, sendAlert } from '../observe/alerts.js';
import type { RunManifest } from '../run/manifest.js';
import { readDriftReport, type DriftReport } from '../drift/report.js';
import type { ShadowSummary } from '../shadow/report.js';
import { openLocation } from '../storage/open.js';
import { afterWaiting, nextLook } from '../run/wait.js';
import { pausedSchedules } from './schedule.js';
import { getBackfill } from './backfills.js';
import { outdatedJob, toQueueError } from './errors.js';
import { submitRun } from './service.js';
import { BACKFILL_PRIORITY, chunkJobOptions, enqueueRun, isInFlight, type BackfillJobData, type FireJobData, type Queues, type RunJobData } from './queues.js';

/** What a finished run job returns: enough for `status` without reading the manifest. */
export interface RunSummary {
  status: 'succeeded';
  chunks: number;
  rows: { read: number; scored: number; rejected: number };
  duration_ms: number | null;
  sha256: string;
}

/** Told of each run this worker commits that measured drift (succeeded, or failed by drift.mode: enforce). */
export type OnDrift = (job: string, report: DriftReport) => void;
/** Hears of each committed run's challengers (its manifest's shadow block). */
export type OnShadow = (job: string, shadow: ShadowSummary) => void;

/** Processes the runs queue: scheduler fires, backfill feeders and the runs themselves. */
export function runProcessor(queues: Queues, log: Logger, onDrift?: OnDrift, onShadow?: OnShadow) {
  return async (job: Job, token?: string): Promise<unknown> => {
    try {
      if (job.name === 'fire') return await fire(queues, job as Job<FireJobData>, log);
      if (job.name === 'backfill') return await feedBackfill(queues, job as Job<BackfillJobData>, token!);
      return await processRun(queues, job as Job<RunJobData>, token!, log, onDrift, onShadow);
    } catch (err) {
      if (err instanceof WaitingChildrenError || err instanceof DelayedError) throw err;
      const failure = err instanceof UnrecoverableError ? err : toQueueError(err);
      // The last try's failure ends the run: alerted once, unless the commit already did.
      const last = failure instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (job.name === 'run' && last && !alerted.has(err as object)) await alertRunEnd(queues, job as Job<RunJobData>, { error: decodeFailure(failure.message) }, log);
      throw failure;
    }
  };
}

/** Failures whose run's end was alerted where it was committed (with its manifest). */
const alerted = new WeakSet<object>();

/** The webhook of a run's end (alerts), when its job asks for that outcome; never throws. */
async function alertRunEnd(queues: Queues, job: Job<RunJobData>, end: { manifest?: RunManifest; error?: NightscoreError }, log: Logger): Promise<void> {
  const def = await loadJob(job.data.jobFile).catch(() => undefined);
  if (!def) {
    log.warn({ run: job.id, file: job.data.jobFile }, 'run ended, and its job file cannot be read now: its alert is not sent');
    return;
  }
  // Once per attempt (or, before one was planned, per run): a commit that runs again after it
  // published finds its own manifest, and must not alert a second time. HSET says if it is new.
  const client = await queues.runs.getBackend().client;
  const key = `${queues.config.prefix}:nightscore:alerted`;
  const id = end.manifest ? `attempt:${end.manifest.attempt}` : `run:${job.id}:${job.timestamp}`;
  if ((await client.hset(key, { [id]: Date.now() }).catch(() => 1)) === 0) return;
  // Now and then, forget attempts older than the queue keeps failed runs: the hash stays small.
  if (Math.random() < 0.02) {
    const old = Object.entries(await client.hgetall(key).catch(() => ({}))).filter(([, at]) => Number(at) < Date.now() - 30 * 86_400_000).map(([k]) => k);
    if (old.length > 0) await client.hdel(key, ...old).catch(() => undefined);
  }
  const payload = alertPayload(def, job.data.date, end);
  const kind = end.manifest?.error?.kind ?? end.error?.kind;
  await sendAlert(def, payload, outcomesOf(payload, kind, def), log);
}

/** A scheduler fired: enqueue the run of the logical date (fire date in the schedule's zone, less the lag). */
async function fire(queues: Queues, job: Job<FireJobData>, log: Logger): Promise<string> {
  const fireMillis = job.opts.prevMillis ?? job.timestamp;
  const paused = await pausedSchedules(queues);
  // The scheduler's own name first: a paused job whose file broke, or was renamed, stays paused.
  const scheduled = job.repeatJobKey?.startsWith('job.') ? job.repeatJobKey.slice('job.'.length) : undefined;
  if (scheduled !== undefined && paused.has(scheduled)) {
    log.info({ job: scheduled, fired_at: new Date(fireMillis).toISOString() }, 'schedule paused: fire skipped');
    return '';
  }
  const def = await loadJob(job.data.jobFile);
  const date = logicalDateFor(fireMillis, def.schedule?.tz ?? 'UTC', def.schedule?.lag ?? 1);
  if (paused.has(def.name)) {
    log.info({ job: def.name, date, fired_at: new Date(fireMillis).toISOString() }, 'schedule paused: fire skipped');
    return date;
  }
  // A fire for a date whose run failed runs it again (its input may have landed since).
  const { added, was } = await submitRun(queues, def, date);
  log.info({ job: def.name, date, fired_at: new Date(fireMillis).toISOString(), added, was }, 'schedule fired');
  return date;
}

/**
 * A run is one BullMQ job processed in steps (BullMQ's "process step jobs" pattern), each
 * step recorded in the job's data so a retry resumes where the last try stopped:
 *   plan     → list inputs, plan chunks, open the output folder for a new attempt;
 *   chunks   → add one child job per chunk (deterministic ids: re-adding is a no-op);
 *   finalize → wait until every chunk has finished, then commit the run exactly once.
 */
async function processRun(queues: Queues, job: Job<RunJobData>, token: string, log: Logger, onDrift?: OnDrift, onShadow?: OnShadow): Promise<RunSummary> {
  let data = job.data;
  if (!data.step || data.step === 'plan') {
    const def = await loadJob(data.jobFile);
    // The run's id is its lock owner: a retry of this run (its worker died) takes the lock
    // over at once, while any other attempt at the date fails with RUN_IN_PROGRESS.
    const asOf = modelAsOf(data.modelAsOf, data.date, def.schedule?.tz ?? 'UTC');
    let plan: RunPlan;
    try {
      plan = await beginRun(await prepareJob(def, { asOf }), data.date, runLockOwner(queues.config.prefix, job.id!));
    } catch (err) {
      const missing = toNightscoreError(err);
      if (missing.code !== 'INPUT_NOT_FOUND' || !def.input.wait) throw err;
      // Late input waits as a delayed job: no worker slot, no lock (none is taken before the
      // input is listed), and no attempt used; the next look is another worker's as likely.
      const since = data.waitingSince ?? Date.now();
      const next = nextLook(def.input.wait, since, Date.now());
      if (next === undefined) throw afterWaiting(missing, def.input.wait, since);
      await job.updateData({ ...data, waitingSince: since, waitingFor: missing.message });
      log.info({ run: job.id, reason: missing.message, next_look: new Date(next).toISOString(), gives_up: new Date(since + def.input.wait.timeout).toISOString() }, 'input not there yet: waiting');
      await job.moveToDelayed(next, token);
      throw new DelayedError();
    }
    data = { ...data, step: 'chunks', plan };
    await job.updateData(data);
    log.info({ run: job.id, chunks: plan.chunks.length, attempt: plan.manifest.attempt }, 'run planned');
    if (plan.manifest.skipped.length > 0) {
      log.warn({ run: job.id, skipped: plan.manifest.skipped.length, first: plan.manifest.skipped.slice(0, 10) }, 'input objects not read (see the manifest\'s "skipped")');
    }
  }
  const plan = data.plan!;
  if ((plan.spec as RunPlan['spec'] | undefined)?.version !== SPEC_VERSION) {
    // Planned by another version: plans before the spec kept the output folder as `outputUri`.
    const other = plan as Partial<RunPlan> & { outputUri?: string };
    const error = outdatedJob('run', job.id!, other.spec?.version);
    const outputUri = other.spec?.output.uri ?? other.outputUri;
    if (outputUri && other.manifest && other.lock) {
      await abandonRun(outputUri, other.manifest, other.lock, error).catch((err: unknown) =>
        log.warn({ run: job.id, err: (err as Error).message }, 'could not mark the outdated run failed in its output; its lock lapses after the lease'),
      );
    }
    throw error;
  }
  if (data.step === 'chunks') {
    await queues.chunks.addBulk(
      plan.chunks.map((chunk) => {
        const chunkData: ChunkJobData = { run: job.id!, lock: plan.lock, spec: chunkSpec(plan.spec, chunk) };
        return {
          name: 'chunk',
          data: chunkData,
          opts: {
            ...chunkJobOptions(queues.config),
            ...(data.backfill === undefined ? {} : { priority: BACKFILL_PRIORITY }),
            jobId: chunkId(job.id!, plan.manifest.attempt, chunk.index),
            parent: { id: job.id!, queue: job.queueQualifiedName },
          },
        };
      }),
    );
    data = { ...data, step: 'finalize' };
    await job.updateData(data);
  }
  if (await job.moveToWaitingChildren(token)) throw new WaitingChildrenError();

  const values = await job.getChildrenValues<ChunkResult>();
  // The first failed chunk in plan order explains the run best (see runJob).
  const failed = Object.entries(await job.getIgnoredChildrenFailures()).sort(([a], [b]) => chunkIndexOf(a) - chunkIndexOf(b));
  const failure = failed.length > 0 ? decodeFailure(failed[0]![1]) : undefined;
  const manifest = await finishRun(plan, Object.values(values), failure);
  log.info({ run: job.id, status: manifest.status, rows: manifest.rows, error: manifest.error }, 'run finished');
  if (manifest.drift && onDrift) await reportDriftOf(plan, onDrift, log);
  if (manifest.shadow && onShadow) onShadow(plan.spec.job.name, manifest.shadow);
  await alertRunEnd(queues, job, { manifest }, log);
  if (manifest.error) {
    const failure = new UnrecoverableError(encodeFailure(fromErrorRecord(manifest.error)));
    alerted.add(failure);
    throw failure;
  }
  return { status: 'succeeded', chunks: manifest.chunks, rows: manifest.rows, duration_ms: manifest.duration_ms, sha256: manifest.model.sha256 };
}

/** Reads back the `_drift.json` the commit just wrote, for onDrift; a failure to read it is a warning, never the run's. */
async function reportDriftOf(plan: RunPlan, onDrift: OnDrift, log: Logger): Promise<void> {
  try {
    const report = await readDriftReport(openLocation(plan.spec.output.uri));
    if (report) onDrift(plan.spec.job.name, report);
  } catch (err) {
    log.warn({ job: plan.spec.job.name, date: plan.spec.date, err: toNightscoreError(err).message }, 'drift report not read back: /metrics keeps the earlier run\'s drift');
  }
}

/** The chunk index at the end of a chunk job's key (`…:<run>.<attempt>.c<index>`). */
function chunkIndexOf(key: string): number {
  return Number(/\.c(\d+)$/.exec(key)?.[1] ?? Number.MAX_SAFE_INTEGER);
}

const FEED_INTERVAL_MS = 2_000;

/**
 * A backfill with --max-parallel-runs: keeps at most that many of its runs in flight,
 * enqueueing the next date as earlier ones finish, and checks back every few seconds. Its
 * progress (`next`) lives in the job's data, so a crashed worker resumes it.
 */
async function feedBackfill(queues: Queues, job: Job<BackfillJobData>, token: string): Promise<number> {
  const def = await loadJob(job.data.jobFile);
  // A cancelled backfill feeds no more dates.
  if (job.data.backfill && (await getBackfill(queues, job.data.backfill).catch(() => undefined))?.cancelled_at) return job.data.next;
  let { next } = job.data;
  const { dates, maxParallel } = job.data;
  let inFlight = 0;
  for (const date of dates.slice(0, next)) if (isInFlight(await queues.runs.getJobState(runId(def.name, date)))) inFlight++;
  const cancelled = async () => job.data.backfill !== undefined && Boolean((await getBackfill(queues, job.data.backfill).catch(() => undefined))?.cancelled_at);
  while (next < dates.length && inFlight < maxParallel) {
    // Again before each date: a cancel that lands during this tick stops it here.
    if (await cancelled()) return next;
    if (await enqueueRun(queues, def.name, def.file, dates[next]!, { modelAsOf: job.data.modelAsOf, backfill: job.data.backfill })) inFlight++;
    next++;
  }
  await job.updateData({ ...job.data, next });
  if (next < dates.length) {
    await job.moveToDelayed(Date.now() + FEED_INTERVAL_MS, token);
    throw new DelayedError();
  }
  return dates.length;
}

