/** Scoring a date in this process: the same plan, chunks and commit as the queue, on this process's threads. */
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { NightscoreError } from '../errors.js';
import { openLocation } from '../storage/open.js';
import type { PreparedJob } from './bind.js';
import { beginRun, openAttempt, type DatePlan, type RunPlan } from './begin.js';
import { runChunk } from './chunk.js';
import { finishRun } from './finish.js';
import { holdOutputLock, outputLeaseMs, releaseOutputLock } from './lock.js';
import { addRows, emptyRows, type ChunkResult, type RowCounts } from './chunk-result.js';
import { chunkFiles, type RunManifest } from './manifest.js';
import { interrupted } from './score-chunk.js';
import { chunkSpec } from './spec.js';
import { ChunkThreadPool } from './thread-pool.js';

/** Progress events for a terminal or a log. */
export type RunEvent = { type: 'progress'; rows: RowCounts; chunk: number; chunks: number };

// Threads run the built dist/chunk-thread.js; from TypeScript source (tests that call
// runJob directly) there is none, and chunks are scored on this thread. Told apart by this
// module's own name, not by looking for the file: a build that lost its thread entry then
// fails to start its threads, rather than scoring everything on one thread unnoticed.
const THREAD_ENTRY_BUILT = !fileURLToPath(import.meta.url).endsWith('.ts');

export interface RunJobOptions {
  onEvent?: (event: RunEvent) => void;
  /**
   * Worker threads scoring chunks at once; each has its own model session with
   * `model.threads` onnxruntime threads. @defaultValue the CPUs, at most one per chunk
   */
  threads?: number;
  /**
   * Aborted when the run is interrupted (Ctrl-C, SIGTERM): no further chunk starts, running
   * ones stop at their next batch, and the run ends failed with RUN_INTERRUPTED, its lock
   * released and no `_SUCCESS`.
   */
  signal?: AbortSignal;
  /** `nightscore retry`: the date as planned before, and the chunks of it that stand. */
  retry?: { planned: DatePlan; completed: ChunkResult[] };
}

/**
 * Scores one logical date in this process, end to end, with the same plan, chunks and
 * commit as the queue, so both produce identical output. Chunks are scored on worker
 * threads when there are several, so the run uses the machine's cores. Returns the final
 * manifest, whose `status` and `error` say how the run ended; throws when the run could not
 * start (no input for the date), leaving the output folder as it was, and when its final
 * manifest could not be written (the lock is then released, and the manifest says running).
 */
export async function runJob(prepared: PreparedJob, date: string, opts: RunJobOptions = {}): Promise<RunManifest> {
  // Scoring threads take a few hundred ms to load their modules and model: start them now,
  // so that happens while this thread lists the input and plans. This thread is one of the
  // slots: it idles otherwise, and every extra thread costs a V8 heap and a model session.
  // Only the threads the CPUs can run start before the plan; more, when asked for
  // explicitly, start once the plan shows chunks for them.
  const wanted = wantedThreads(opts);
  const early = Math.min(wanted, availableParallelism());
  const pool = wanted > 1 ? new ChunkThreadPool(early - 1) : undefined;
  try {
    return await planAndScore(prepared, date, opts, pool);
  } finally {
    await pool?.close();
  }
}

/** Scoring threads asked for (this one included): `--threads`, else the CPUs; one without a built thread entry. */
function wantedThreads(opts: RunJobOptions): number {
  return THREAD_ENTRY_BUILT ? Math.max(1, opts.threads ?? availableParallelism()) : 1;
}

async function planAndScore(prepared: PreparedJob, date: string, opts: RunJobOptions, pool: ChunkThreadPool | undefined): Promise<RunManifest> {
  const plan = opts.retry ? await openAttempt(opts.retry.planned, undefined, keptFiles(opts.retry)) : await beginRun(prepared, date);
  const out = openLocation(plan.spec.output.uri);
  // Lost to another run (this process stalled past its lease): score no further chunk; the
  // commit's fence then fails the attempt without publishing anything.
  let lost = false;
  const stopHeartbeat = holdOutputLock(out, plan.lock, outputLeaseMs(), () => (lost = true));
  try {
    // Under the lock, the parts a retry keeps must still be there, at the size their chunk
    // wrote (no run came between since retry checked their bytes).
    for (const r of opts.retry?.completed ?? []) {
      const key = chunkFiles(out, r.index, plan.spec.output.format).part;
      const now = await out.storage.stat(key);
      if (now?.size !== r.part.bytes) {
        throw new NightscoreError('RUN_INCOMPLETE', `${out.storage.uri(key)}, the kept part of chunk ${r.index}, ${now ? `changed (${now.size} bytes, ${r.part.bytes ?? 'unknown'} when retry checked it)` : 'vanished'} before the retry began`, { hint: 'Another run of the date came between; run the whole date again (nightscore run … , or run --queue --force).' });
      }
    }
    return await scoreAndFinish(plan, opts, pool, () => lost);
  } catch (err) {
    // finishRun releases the lock whenever it returns a manifest; only a throw leaves it held.
    stopHeartbeat();
    await releaseOutputLock(out, plan.lock);
    throw err;
  } finally {
    stopHeartbeat();
  }
}

async function scoreAndFinish(plan: RunPlan, opts: RunJobOptions, pool: ChunkThreadPool | undefined, lost: () => boolean): Promise<RunManifest> {
  const threads = Math.max(1, Math.min(wantedThreads(opts), plan.chunks.length - (opts.retry?.completed.length ?? 0)));
  pool?.grow(threads - 1);
  const progress = new Map<number, RowCounts>();
  const report = (chunk: number) => (rows: RowCounts) => {
    progress.set(chunk, rows);
    const total = [...progress.values()].reduce(addRows, emptyRows());
    opts.onEvent?.({ type: 'progress', rows: total, chunk, chunks: plan.chunks.length });
  };
  const results: ChunkResult[] = [...(opts.retry?.completed ?? [])];
  const done = new Set(results.map((r) => r.index));
  const todo = plan.chunks.filter((c) => !done.has(c.index));
  // The first chunk in plan order that failed explains the run best: a split inside a
  // quoted field fails the chunk before the split with the fix, the one after with garbage.
  const failures = new Map<number, unknown>();
  const { signal } = opts;
  // Threads stop at once; this thread's chunk stops at its next batch (ScoreOptions.signal).
  const onAbort = () => void pool?.close();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    // Each slot takes the next chunk in plan order until the plan is done or a chunk fails.
    let next = 0;
    await Promise.all(
      Array.from({ length: threads }, async (_, slot) => {
        while (failures.size === 0 && !lost() && !signal?.aborted && next < todo.length) {
          const chunk = chunkSpec(plan.spec, todo[next++]!);
          try {
            const result = pool && slot > 0
              ? await pool.run(slot - 1, chunk, report(chunk.index))
              : await runChunk(chunk, { onBatch: report(chunk.index), signal });
            results.push(result);
          } catch (err) {
            failures.set(chunk.index, err);
          }
        }
      }),
    );
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await pool?.close();
  }
  const first = Math.min(...failures.keys());
  const failure = signal?.aborted ? interrupted(signal) : failures.get(first);
  return finishRun(plan, results, failure, { retried: false });
}

/** The files of chunks a retry keeps, by our own names for their indexes: their parts and staged rejects stay in the output. */
function keptFiles(retry: NonNullable<RunJobOptions['retry']>): Set<string> {
  const { output } = retry.planned.spec;
  const out = openLocation(output.uri);
  const keys = new Set<string>();
  for (const r of retry.completed) {
    const files = chunkFiles(out, r.index, output.format);
    keys.add(files.part);
    if (r.stagedRejects) keys.add(files.stagedRejects);
  }
  return keys;
}
