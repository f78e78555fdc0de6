/**
 * A thread of a ChunkThreadPool: it scores the chunks of an in-process run (so `nightscore
 * run` uses every core) and of a queue worker, with the same code either way (and so writes
 * the same parts), keeping its model sessions across the chunks it is given.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorRecord, toNightscoreError } from '../errors.js';
import { closeModels } from '../model/session.js';
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

/** Asks the thread to stop: its chunks stop at their next batch, and it exits once no native call is in flight. */
export interface CloseTask {
  close: true;
}

const running = new Map<number, { stop: AbortController; done: Promise<void> }>();

parentPort?.on('message', (task: ChunkTask | CloseTask) => {
  if ('close' in task) return void close();
  const stop = new AbortController();
  const done = (async () => {
    try {
      const result = await runChunk(task.spec, { onBatch: (rows) => parentPort!.postMessage({ id: task.id, progress: rows }), signal: stop.signal });
      parentPort!.postMessage({ id: task.id, result });
    } catch (err) {
      parentPort!.postMessage({ id: task.id, error: errorRecord(toNightscoreError(err)) });
    }
  })();
  running.set(task.id, { stop, done });
  void done.then(() => running.delete(task.id));
});

// Ended from outside (Worker.terminate) under a load or a run, onnxruntime-node aborts the
// whole process; so the thread ends itself, once its native calls have returned.
async function close(): Promise<void> {
  for (const r of running.values()) r.stop.abort('the scoring threads are closing');
  await Promise.allSettled([...running.values()].map((r) => r.done));
  await closeModels().catch(() => undefined);
  process.exit(0);
}
