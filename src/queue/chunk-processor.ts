/**
 * The chunk processor, run by BullMQ in a worker thread (a sandboxed processor). Parsing
 * and onnxruntime's session.run block the thread they run on; here that thread is not the
 * one that renews the chunk's lock, so a long batch can never make a healthy worker look
 * dead. Each thread keeps its model session across chunks (model/session.ts caches it).
 */
import type { SandboxedJob } from 'bullmq';
import type { JobDefinition } from '../job/load.js';
import { checkOutputLock, type HeldLock } from '../run/lock.js';
import type { ChunkPlan } from '../run/plan.js';
import { chunkContext, prepareJob } from '../run/run.js';
import { scoreChunk, type ChunkResult } from '../run/score-chunk.js';
import { openLocation } from '../storage/open.js';
import { toQueueError } from './errors.js';

export interface ChunkJobData {
  run: string;
  date: string;
  job: JobDefinition;
  outputUri: string;
  /** The run attempt that holds the output lock; a chunk of an attempt that lost it writes nothing. */
  lock: HeldLock;
  chunk: ChunkPlan;
}

export default async function processChunk(job: SandboxedJob<ChunkJobData, ChunkResult>): Promise<ChunkResult> {
  try {
    // A run that lost its output lock to another attempt (its lease lapsed while no worker
    // was alive) must not write parts into that attempt's output.
    await checkOutputLock(openLocation(job.data.outputUri), job.data.lock);
    const prepared = await prepareJob(job.data.job);
    const ctx = chunkContext(prepared, job.data.date, job.data.outputUri, (rows) => void job.updateProgress({ read: rows.read }));
    return await scoreChunk(job.data.chunk, ctx);
  } catch (err) {
    throw toQueueError(err);
  }
}
