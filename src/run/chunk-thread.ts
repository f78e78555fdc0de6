/**
 * A thread of a ChunkThreadPool: it scores the chunks of an in-process run (so `nightscore
 * run` uses every core) and of a queue worker, with the same code either way (and so writes
 * the same parts), keeping its model sessions across the chunks it is given.
 */
import { parentPort } from 'node:worker_threads';
import { errorRecord, toNightscoreError } from '../errors.js';
import type { JobDefinition } from '../job/load.js';
import type { ChunkPlan } from './plan.js';
import { checkModelUnchanged, chunkContext, prepareJob } from './bind.js';
import { scoreChunk } from './score-chunk.js';

export interface ChunkTask {
  id: number;
  job: JobDefinition;
  date: string;
  outputUri: string;
  chunk: ChunkPlan;
  /** The model's sha256 when the run was planned; undefined for chunks queued before it was recorded. */
  modelSha256: string | undefined;
}

parentPort?.on('message', (task: ChunkTask) => {
  void (async () => {
    try {
      const prepared = await prepareJob(task.job);
      if (task.modelSha256 !== undefined) checkModelUnchanged(prepared, task.modelSha256);
      const ctx = chunkContext(prepared, task.date, task.outputUri, (rows) => parentPort!.postMessage({ id: task.id, progress: rows }));
      parentPort!.postMessage({ id: task.id, result: await scoreChunk(task.chunk, ctx) });
    } catch (err) {
      parentPort!.postMessage({ id: task.id, error: errorRecord(toNightscoreError(err)) });
    }
  })();
});
