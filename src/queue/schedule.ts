import type { JobDefinition } from '../job/load.js';
import { schedulerId } from './config.js';
import type { FireJobData, Queues } from './queues.js';

export interface SyncResult {
  upserted: string[];
  removed: string[];
}

/**
 * Makes the queue's job schedulers match the job files: one BullMQ job scheduler per job
 * with a `schedule`, upserted (so a second sync, or a sync on another machine at the same
 * time, changes nothing), and schedulers whose job file is gone removed. Each fire enqueues
 * the run of its logical date, whose deterministic id keeps it from running twice.
 */
export async function syncSchedules(queues: Queues, all: JobDefinition[]): Promise<SyncResult> {
  const jobs = all.filter((j) => j.schedule);
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
