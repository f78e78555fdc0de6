import type { Queues } from './queues.js';

/** What /backlog serves: the work an autoscaler sizes the workers for. */
export interface QueueBacklog {
  /** Chunks waiting, prioritized or being scored: the number to scale on. */
  backlog: number;
  chunks: { waiting: number; prioritized: number; active: number };
  runs: { waiting: number; prioritized: number; active: number; 'waiting-children': number; delayed: number };
}

/**
 * The queue's backlog in one read of each queue (BullMQ counts the states of a queue in one
 * script, so the sum is a consistent snapshot). Prioritized chunks count: BullMQ keeps them
 * in a sorted set beside the `wait` list, which is why an autoscaler reading that list alone
 * would miss every chunk of a prioritized run. Delayed chunks (a retry's backoff) do not:
 * no pod can take them yet.
 */
export async function queueBacklog(queues: Queues): Promise<QueueBacklog> {
  const [c, r] = await Promise.all([
    queues.chunks.getJobCounts('waiting', 'prioritized', 'active'),
    queues.runs.getJobCounts('waiting', 'prioritized', 'active', 'waiting-children', 'delayed'),
  ]);
  const chunks = { waiting: c.waiting ?? 0, prioritized: c.prioritized ?? 0, active: c.active ?? 0 };
  return {
    backlog: chunks.waiting + chunks.prioritized + chunks.active,
    chunks,
    runs: { waiting: r.waiting ?? 0, prioritized: r.prioritized ?? 0, active: r.active ?? 0, 'waiting-children': r['waiting-children'] ?? 0, delayed: r.delayed ?? 0 },
  };
}
