import path from 'node:path';
import { CronExpressionParser } from 'cron-parser';
import { NightscoreError } from '../errors.js';
import { logicalDateFor } from '../job/dates.js';
import { loadJob, type JobDefinition } from '../job/load.js';
import { schedulerId } from './config.js';
import type { FireJobData, Queues } from './queues.js';
import { readStatus, type DateState } from './status.js';

export interface SyncResult {
  upserted: string[];
  removed: string[];
  /** Schedulers of job files in other folders: not this sync's to remove (without --prune). */
  leftAlone: Array<{ id: string; file: string | undefined }>;
}

export interface SyncOptions {
  /** The folder synced: schedulers of job files in it are this sync's. */
  dir: string;
  /** Also remove schedulers of job files elsewhere (or of unknown files). */
  prune?: boolean;
  /** Say what would change, change nothing. */
  dryRun?: boolean;
}

/**
 * Makes the queue's job schedulers match the job files of a folder: one BullMQ job scheduler
 * per job with a `schedule`, upserted (so a second sync, or a sync on another machine at the
 * same time, changes nothing), and the schedulers of job files once in this folder and now
 * gone removed. Schedulers of job files elsewhere are left alone unless `prune`: two teams
 * syncing two folders never remove each other's. Each fire enqueues the run of its logical
 * date, whose deterministic id keeps it from running twice.
 */
export async function syncSchedules(queues: Queues, all: JobDefinition[], opts: SyncOptions): Promise<SyncResult> {
  const dir = path.resolve(opts.dir);
  const jobs = all.filter((j) => j.schedule);
  const wanted = new Set(jobs.map((j) => schedulerId(j.name)));
  if (!opts.dryRun) {
    for (const job of jobs) {
      const data: FireJobData = { jobFile: job.file };
      await queues.runs.upsertJobScheduler(
        schedulerId(job.name),
        { pattern: job.schedule!.cron, tz: job.schedule!.tz },
        { name: 'fire', data, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } },
      );
    }
  }
  const removed: string[] = [];
  const leftAlone: SyncResult['leftAlone'] = [];
  for (const s of await queues.runs.getJobSchedulers(0, -1)) {
    const id = s.key;
    if (!id.startsWith('job.') || wanted.has(id)) continue;
    const file = (s.template?.data as FireJobData | undefined)?.jobFile;
    if (!opts.prune && (file === undefined || path.dirname(path.resolve(file)) !== dir)) {
      leftAlone.push({ id, file });
      continue;
    }
    if (!opts.dryRun) await queues.runs.removeJobScheduler(id);
    removed.push(id);
  }
  return { upserted: [...wanted].sort(), removed: removed.sort(), leftAlone: leftAlone.sort((a, b) => (a.id < b.id ? -1 : 1)) };
}

/** The Redis hash of paused job names, each with when it was paused (under the queue prefix). */
function pausedKey(queues: Queues): string {
  return `${queues.config.prefix}:nightscore:paused-schedules`;
}

export async function pausedSchedules(queues: Queues): Promise<Set<string>> {
  const client = await queues.runs.getBackend().client;
  return new Set(Object.keys(await client.hgetall(pausedKey(queues))));
}

/**
 * Pauses or resumes a job's schedule. A paused schedule keeps its scheduler (a sync does not
 * bring it back to life), and its fires enqueue nothing; resuming does not catch up the
 * dates missed meanwhile (a backfill does).
 */
export async function setPaused(queues: Queues, job: string, paused: boolean): Promise<void> {
  const known = (await queues.runs.getJobSchedulers(0, -1)).some((s) => s.key === schedulerId(job));
  if (!known) {
    throw new NightscoreError('BAD_OPTION', `there is no schedule for a job named "${job}" on this queue`, {
      hint: 'nightscore schedule list shows the schedules; schedule sync <jobs-dir> creates them.',
    });
  }
  const client = await queues.runs.getBackend().client;
  if (paused) await client.hset(pausedKey(queues), { [job]: new Date().toISOString() });
  else await client.hdel(pausedKey(queues), job);
}

export interface ScheduleRow {
  job: string;
  cron: string;
  tz: string;
  /** The next fire (ISO 8601), or null while paused. */
  next: string | null;
  paused: boolean;
  file: string | null;
  /** The logical date of the last fire before now, and its run's state. */
  last: { date: string; state: DateState } | null;
}

/** Every schedule on the queue, by job name. */
export async function listSchedules(queues: Queues, now = Date.now()): Promise<ScheduleRow[]> {
  const paused = await pausedSchedules(queues);
  const rows: ScheduleRow[] = [];
  for (const s of await queues.runs.getJobSchedulers(0, -1)) {
    if (!s.key.startsWith('job.') || !s.pattern) continue;
    const job = s.key.slice('job.'.length);
    const tz = s.tz ?? 'UTC';
    const file = (s.template?.data as FireJobData | undefined)?.jobFile ?? null;
    let last: ScheduleRow['last'] = null;
    if (file) {
      const def = await loadJob(file).catch(() => undefined);
      if (def) {
        const prev = CronExpressionParser.parse(s.pattern, { tz, currentDate: new Date(now) }).prev().getTime();
        const date = logicalDateFor(prev, tz, def.schedule?.lag ?? 1);
        const [status] = await readStatus(queues, def, [date]);
        last = { date, state: status!.state };
      }
    }
    const isPaused = paused.has(job);
    rows.push({ job, cron: s.pattern, tz, next: !isPaused && s.next ? new Date(s.next).toISOString() : null, paused: isPaused, file, last });
  }
  return rows.sort((a, b) => (a.job < b.job ? -1 : 1));
}
