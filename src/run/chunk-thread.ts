/**
 * A thread of a ChunkThreadPool: it scores the chunks of an in-process run (so `nightscore
 * run` uses every core) and of a queue worker, with the same code either way (and so writes
 * the same parts), keeping its model sessions across the chunks it is given.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorRecord, toNightscoreError } from '../errors.js';
import { secretsFromEnv, useSecrets } from '../redact.js';
import { useEnvironment, type Environment } from '../settings.js';
import { runChunk } from './chunk.js';
import type { ChunkSpec } from './spec.js';

// The thread scores with what its process was started with, handed over as workerData
// (thread-pool.ts), never its own reading of the environment: the same values, checked once.
const started = workerData as Environment | undefined;
if (started) {
  useEnvironment(started);
  useSecrets(secretsFromEnv({ ...started.asIs, NIGHTSCORE_REDIS_URL: started.settings.NIGHTSCORE_REDIS_URL }));
}

export interface ChunkTask {
  id: number;
  spec: ChunkSpec;
}

parentPort?.on('message', (task: ChunkTask) => {
  void (async () => {
    try {
      const result = await runChunk(task.spec, { onBatch: (rows) => parentPort!.postMessage({ id: task.id, progress: rows }) });
      parentPort!.postMessage({ id: task.id, result });
    } catch (err) {
      parentPort!.postMessage({ id: task.id, error: errorRecord(toNightscoreError(err)) });
    }
  })();
});
