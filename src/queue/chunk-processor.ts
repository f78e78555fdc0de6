/**
 * The chunk processor of a queue worker. Scoring runs on the worker's scoring threads (the
 * same ChunkThreadPool an in-process run uses): parsing and onnxruntime's session.run block
 * the thread they run on, and here that is never the thread that renews the chunk's lock,
 * so a long batch cannot make a healthy worker look dead. Each thread keeps its model
 * session across chunks (model/session.ts caches it). BullMQ's own sandbox would do the
 * same, but loads BullMQ and ioredis again in every thread: about 70 MB more each.
 */
import type { Job } from 'bullmq';
import type { Logger } from 'pino';
import { checkOutputLock, type HeldLock } from '../run/lock.js';
import type { ChunkResult, RowCounts } from '../run/chunk-result.js';
import { SPEC_VERSION, type ChunkSpec } from '../run/spec.js';
import type { ChunkThreadPool } from '../run/thread-pool.js';
import { openLocation } from '../storage/open.js';
import { outdatedJob, toQueueError } from './errors.js';

export interface ChunkJobData {
  run: string;
  /** The run attempt that holds the output lock; a chunk of an attempt that lost it writes nothing. */
  lock: HeldLock;
  /** What to score, with which models, into which part: frozen when the run was planned. */
  spec: ChunkSpec;
}

/** A processor for BullMQ running at most `pool.size` chunks at once, one per thread. */
export function chunkProcessor(pool: ChunkThreadPool, log: Logger): (job: Job<ChunkJobData, ChunkResult>) => Promise<ChunkResult> {
  const free = Array.from({ length: pool.size }, (_, slot) => slot);
  return async (job) => {
    const slot = free.pop();
    // BullMQ runs at most `concurrency` jobs at once, and the pool has that many threads.
    if (slot === undefined) throw new Error('more chunks at once than scoring threads');
    try {
      const { data } = job;
      const version = (data.spec as ChunkSpec | undefined)?.version;
      if (version !== SPEC_VERSION) throw outdatedJob('chunk', job.id!, version);
      // A run that lost its output lock to another attempt (its lease lapsed while no worker
      // was alive) must not write parts into that attempt's output.
      await checkOutputLock(openLocation(data.spec.output.uri), data.lock);
      // Progress is for watching only: a chunk that vanished from Redis (flushed, restarted
      // empty, completed elsewhere after a stall) fails this update, and the chunk goes on.
      const progress = (rows: RowCounts) =>
        job.updateProgress({ read: rows.read }).catch((err: unknown) => log.warn({ chunk: job.id, run: data.run, err: (err as Error).message }, 'could not record chunk progress; the chunk may have been removed from Redis'));
      return await pool.run(slot, data.spec, (rows) => void progress(rows));
    } catch (err) {
      throw toQueueError(err);
    } finally {
      free.push(slot);
    }
  };
}
