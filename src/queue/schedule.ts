import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { loadJob, type JobDefinition } from '../job/load.js';
import { schedulerId } from './config.js';
import type { FireJobData, Queues } from './queues.js';

export interface SyncResult {
  upserted: string[];
  removed: string[];
}

/** Every job file in a folder, validated; one invalid file fails the sync (nothing is half-applied). */
export async function loadJobsDir(dir: string): Promise<JobDefinition[]> {
  const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  return Promise.all(files.map((f) => loadJob(path.join(dir, f))));
}

/**
 * Makes the queue's job schedulers match the job files: one BullMQ job scheduler per job
 * with a `schedule`, upserted (so a second sync, or a sync on another machine at the same
 * time, changes nothing), and schedulers whose job file is gone removed. Each fire enqueues
 * the run of its logical date, whose deterministic id keeps it from running twice.
 */
export async function syncSchedules(queues: Queues, dir: string): Promise<SyncResult> {
  const jobs = (await loadJobsDir(dir)).filter((j) => j.schedule);
  const wanted = new Set(jobs.map((j) => schedulerId(j.name)));
  for (const job of jobs) {
    const data: FireJobData = { jobFile: job.file };
    await queues.runs.upsertJobScheduler(
      schedulerId(job.name),
      { pattern: job.schedule!.cron, tz: job.schedule!.tz },
      { name: 'fire', data, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } },
    );
  }
  const removed: string[] = [];
  for (const s of await queues.runs.getJobSchedulers(0, -1)) {
    const id = s.key;
    if (id.startsWith('job.') && !wanted.has(id)) {
      await queues.runs.removeJobScheduler(id);
      removed.push(id);
    }
  }
  return { upserted: [...wanted].sort(), removed };
}
