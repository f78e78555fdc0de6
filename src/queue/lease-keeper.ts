import type { Logger } from 'pino';
import { toNightscoreError } from '../errors.js';
import { renewOutputLock } from '../run/lock.js';
import { openLocation } from '../storage/open.js';
import { IN_FLIGHT_STATES, type Queues, type RunJobData } from './queues.js';

/**
 * A queued run holds its output lock from the plan step to the commit, but between the two
 * no process is running it: it waits for its chunks, which may sit in the queue for a while.
 * So every worker renews the locks of every planned run in flight, every quarter lease. As
 * long as one worker of the deployment is alive, its runs keep their locks; when none is,
 * the locks lapse after the lease, as an in-process run's do when its process dies.
 * Returns the function that stops it.
 */
export function keepRunLeases(queues: Queues, leaseMs: number, log: Logger): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const beat = async () => {
    try {
      for (const job of await queues.runs.getJobs([...IN_FLIGHT_STATES])) {
        const plan = (job.data as RunJobData | undefined)?.plan;
        // Older runs' plans carry no spec (they fail as QUEUE_JOB_OUTDATED); a run not yet planned holds no lock.
        if (!plan?.lock || !plan.spec || stopped) continue;
        await renewOutputLock(openLocation(plan.spec.output.uri), plan.lock).catch((err: unknown) => {
          const e = toNightscoreError(err);
          // A run that just committed released its lock; one that lost it fails at its fence.
          if (e.code !== 'RUN_LOCK_LOST') log.warn({ run: job.id, err: e.message }, 'could not renew the output lock');
        });
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not list runs to renew their output locks');
    }
    if (!stopped) timer = setTimeout(() => void beat(), leaseMs / 4).unref();
  };
  timer = setTimeout(() => void beat(), leaseMs / 4).unref();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
