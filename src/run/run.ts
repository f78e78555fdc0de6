import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { availableParallelism, hostname } from 'node:os';
import { configError, errorRecord, modelError, NightscoreError, toNightscoreError, worthRetrying } from '../errors.js';
import { locateRun, modelPath, type JobDefinition } from '../job/load.js';
import { createScorer, type Scorer } from '../model/scorer.js';
import { loadModel, type LoadedModel } from '../model/session.js';
import { locationsOverlap, openLocation, type Location } from '../storage/open.js';
import { VERSION } from '../version.js';
import { beginOutput, commitOutput, lineOffsets, publishRejects, readManifest } from './commit.js';
import { acquireOutputLock, checkOutputLock, holdOutputLock, outputLeaseMs, releaseOutputLock, type HeldLock } from './lock.js';
import { chunkFiles, OUTPUT_FILES, type RowCounts, type RunManifest } from './manifest.js';
import { listInputs, planChunks, planParquetChunks, type ChunkPlan, type InputObject } from './plan.js';
import { scoreChunk, type ChunkContext, type ChunkResult } from './score-chunk.js';
import { ChunkThreadPool } from './thread-pool.js';

/** Chunks one run may plan into: each is a queue job and a part file. */
const MAX_CHUNKS = 100_000;

/** A job bound to its model: everything checked that can be checked before reading data. */
export interface PreparedJob {
  job: JobDefinition;
  model: LoadedModel;
  scorer: Scorer;
}

/** Loads the model once per process and checks its signature against the job. */
export async function prepareJob(job: JobDefinition): Promise<PreparedJob> {
  const model = await loadModel(modelPath(job), { threads: job.model.threads });
  if (job.model.sha256 && job.model.sha256 !== model.sha256) {
    throw modelError('MODEL_SHA_MISMATCH', `${model.path} has sha256 ${model.sha256}, but the job pins model.sha256 ${job.model.sha256}`, {
      source: model.path,
      column: 'model.sha256',
      hint: 'The model file changed. Deploy the pinned model, or update model.sha256 after checking the new one.',
    });
  }
  const scorer = await createScorer(model, {
    features: job.model.features,
    input: job.model.input,
    columns: job.output.columns,
    keys: job.input.key,
  });
  return { job, model, scorer };
}

/**
 * Fails a chunk with MODEL_CHANGED (not retried) when the model file this thread loaded is
 * not the one the run was planned with: a model deployed mid-run must not score the later
 * chunks of a run whose manifest names the first.
 */
export function checkModelUnchanged(prepared: PreparedJob, planned: string): void {
  const { model } = prepared;
  if (model.sha256 === planned) return;
  throw modelError('MODEL_CHANGED', `${model.path} changed during the run: it has sha256 ${model.sha256} now, but the run was planned with sha256 ${planned}`, {
    source: model.path,
    column: 'model.path',
    hint: 'A model file was replaced while the date was being scored. Run the date again to score it whole with the new model, and deploy models between runs (or pin model.sha256).',
  });
}

/**
 * A planned run: plain JSON, so that in the queue it travels in the run job's data and any
 * worker can score its chunks or commit it.
 */
export interface RunPlan {
  date: string;
  outputUri: string;
  inputs: InputObject[];
  chunks: ChunkPlan[];
  /** The `running` manifest written at the start; the final one completes it. */
  manifest: RunManifest;
  /** The attempt holding the output lock (see lock.ts): chunks and the commit check it. */
  lock: HeldLock;
}

/**
 * Lists a date's inputs, plans its chunks, takes the output lock, and opens the output folder
 * for this attempt (removes `_SUCCESS` and earlier parts, writes a `running` manifest).
 * Throws, leaving the output untouched, when there is no input for the date, or with
 * RUN_IN_PROGRESS when another attempt holds the lock. `owner` names the run across tries
 * (a queued run's id); an in-process run is its own attempt.
 */
export async function beginRun(prepared: PreparedJob, date: string, owner?: string): Promise<RunPlan> {
  const { job } = prepared;
  const where = locateRun(job, date);
  await checkOutputApart(job, where.inputUri, where.outputUri, date);
  const { objects: inputs, skipped } = await listInputs(where.inputUri, job.input.format, date);
  const chunks = job.input.format === 'parquet'
    ? await planParquetChunks(inputs, job.chunk.rows)
    : planChunks(inputs, { chunkBytes: job.chunk.bytes, split: job.input.csv.split });
  if (chunks.length > MAX_CHUNKS) {
    throw configError('PLAN_TOO_LARGE', `${job.file}: ${date} plans into ${chunks.length} chunks (chunk.bytes ${job.chunk.bytes}, chunk.rows ${job.chunk.rows}); a run takes at most ${MAX_CHUNKS}, each a queue job and a part file`, {
      source: job.file,
      column: 'chunk.bytes',
      hint: 'Raise chunk.bytes (the default is 64 MiB; for Parquet, chunk.rows bounds a chunk) so a day plans into fewer, larger chunks.',
    });
  }
  const out = openLocation(where.outputUri);
  const outputUri = out.storage.uri(out.storage.join(out.key, ''));
  const manifest = newManifest(prepared, date, uriOf(where.inputUri), outputUri, chunks.length);
  manifest.skipped = skipped;
  const lock = await acquireOutputLock(out, { owner: owner ?? `run:${manifest.attempt}`, attempt: manifest.attempt, job: job.name, date }, outputLeaseMs());
  try {
    await beginOutput(out, manifest);
  } catch (err) {
    await releaseOutputLock(out, lock);
    throw err;
  }
  return { date, outputUri, inputs, chunks, manifest, lock };
}

/** The context chunks of this date of this job score in. */
export function chunkContext(prepared: PreparedJob, date: string, outputUri: string, onBatch?: (rows: RowCounts) => void): ChunkContext {
  const { job, scorer, model } = prepared;
  return {
    scorer,
    keys: job.input.key,
    batchRows: job.chunk.rows,
    delimiter: job.input.csv.delimiter,
    maxRecordBytes: job.input.csv.max_record_bytes,
    output: { format: job.output.format, delimiter: job.output.csv.delimiter, escapeFormulas: job.output.csv.escape_formulas, codec: job.output.parquet.codec },
    metadata: { 'nightscore.job': job.name, 'nightscore.date': date, 'nightscore.model_sha256': model.sha256 },
    outputUri,
    onBatch,
  };
}

/**
 * Commits a run from its chunks' results: publishes rejects with absolute line numbers,
 * checks the limits, writes the final manifest and, on success, `_SUCCESS`, then releases
 * the output lock. A `failure` (a chunk that could not be scored) fails the run with that
 * error. Throws RUN_LOCK_LOST, writing nothing, when the attempt no longer holds the lock.
 */
export async function finishRun(plan: RunPlan, results: ChunkResult[], keys: string[], csv: { delimiter: string; escapeFormulas: boolean }, failure?: unknown): Promise<RunManifest> {
  const manifest: RunManifest = structuredClone(plan.manifest);
  const out = openLocation(plan.outputUri);
  const done = [...results].sort((a, b) => a.index - b.index);
  const keep = new Set<string>();
  const offsets = lineOffsets(done);
  const fence = () => checkOutputLock(out, plan.lock);
  try {
    await fence();
  } catch (err) {
    // A commit that runs again after it published and released the lock (its queue lock
    // lapsed, a retry, a duplicate delivery) finds its own attempt's result and reports it.
    const published = toNightscoreError(err).code === 'RUN_LOCK_LOST' ? await publishedBy(out, plan.manifest.attempt) : undefined;
    if (published) return published;
    throw err;
  }
  try {
    if (failure !== undefined) throw failure;
    if (done.length !== plan.chunks.length || done.some((r, i) => r.index !== i)) {
      throw new NightscoreError('internal', 'RUN_INCOMPLETE', `expected results for ${plan.chunks.length} chunks, got [${done.map((r) => r.index).join(', ')}]`);
    }
    for (const r of done) {
      keep.add(openLocation(r.part.uri).key);
      manifest.parts.push(r.part);
      manifest.rows = add(manifest.rows, r.rows);
      if (r.stagedRejects) {
        const key = await publishRejects(out, r, offsets, keys, csv);
        keep.add(key);
        manifest.rejects.push({ uri: out.storage.uri(key), rows: r.stagedRejects.rows });
      }
    }
    const rowsOf = new Map<string, number>();
    for (const r of done) for (const s of r.segments) rowsOf.set(s.uri, (rowsOf.get(s.uri) ?? 0) + s.rows);
    manifest.inputs = plan.inputs.map((i) => ({ uri: i.uri, bytes: i.bytes, rows: rowsOf.get(i.uri) ?? 0 }));
    checkLimits(manifest);
    manifest.status = 'succeeded';
  } catch (err) {
    const error = toNightscoreError(err);
    // A storage hiccup while committing is not the run's fault: let the caller try the
    // commit again (the queue retries it with backoff) rather than fail a good night.
    if (err !== failure && worthRetrying(error)) throw error;
    manifest.status = 'failed';
    manifest.error = errorRecord(error);
    // Keep what the chunks wrote, rejects included, for whoever looks into the failure.
    for (const r of done) {
      keep.add(openLocation(r.part.uri).key);
      if (r.stagedRejects) {
        keep.add(openLocation(r.stagedRejects.uri).key);
        keep.add(chunkFiles(out, r.index).rejects);
      }
    }
  }
  const finished = Date.now();
  manifest.finished_at = new Date(finished).toISOString();
  manifest.duration_ms = finished - Date.parse(manifest.started_at);
  await commitOutput(out, manifest, keep, fence);
  await releaseOutputLock(out, plan.lock);
  return manifest;
}

/** The final manifest of `attempt` when it was published whole: failed, or succeeded with `_SUCCESS`. */
async function publishedBy(out: Location, attempt: string): Promise<RunManifest | undefined> {
  const manifest = await readManifest(out);
  if (manifest?.attempt !== attempt || manifest.status === 'running') return undefined;
  if (manifest.status === 'succeeded' && !(await out.storage.stat(out.storage.join(out.key, OUTPUT_FILES.success)))) return undefined;
  return manifest;
}

/**
 * Refuses an output location equal to, inside or around the input's (after rendering the
 * date, resolving relative paths and symlinks; on S3, one bucket and overlapping prefixes):
 * nightscore replaces its own files in its output folder and must never share it with data.
 */
export async function checkOutputApart(job: JobDefinition, inputUri: string, outputUri: string, date: string): Promise<void> {
  if (!(await locationsOverlap(inputUri, outputUri))) return;
  throw configError('OUTPUT_OVERLAPS_INPUT', `${job.file}: output.uri ${outputUri} and input.uri ${inputUri} overlap for ${date}: one is inside the other, or they are the same folder`, {
    source: job.file,
    column: 'output.uri',
    hint: 'Write predictions to a folder of their own, outside the input (for example a sibling: …/scores/dt={date}/ beside …/features/dt={date}/).',
  });
}

/** Progress events for a terminal or a log. */
export type RunEvent = { type: 'progress'; rows: RowCounts; chunk: number; chunks: number };

// Threads run the compiled dist/run/chunk-thread.js; from TypeScript source (tests that call
// runJob directly) there is none, and chunks are scored on this thread.
const THREAD_ENTRY_BUILT = existsSync(fileURLToPath(new URL('./chunk-thread.js', import.meta.url)));

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
}

/**
 * Scores one logical date in this process, end to end, with the same plan, chunks and
 * commit as the queue, so both produce identical output. Chunks are scored on worker
 * threads when there are several, so the run uses the machine's cores. Returns the final
 * manifest, whose `status` and `error` say how the run ended; throws only when the run
 * could not start (no input for the date), leaving the output folder as it was.
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
  const plan = await beginRun(prepared, date);
  const out = openLocation(plan.outputUri);
  // Lost to another run (this process stalled past its lease): score no further chunk; the
  // commit's fence then fails the attempt without publishing anything.
  let lost = false;
  const stopHeartbeat = holdOutputLock(out, plan.lock, outputLeaseMs(), () => (lost = true));
  try {
    return await scoreAndFinish(prepared, plan, opts, pool, () => lost);
  } catch (err) {
    // finishRun releases the lock whenever it returns a manifest; only a throw leaves it held.
    stopHeartbeat();
    await releaseOutputLock(out, plan.lock);
    throw err;
  } finally {
    stopHeartbeat();
  }
}

async function scoreAndFinish(prepared: PreparedJob, plan: RunPlan, opts: RunJobOptions, pool: ChunkThreadPool | undefined, lost: () => boolean): Promise<RunManifest> {
  const { date } = plan;
  const threads = Math.min(wantedThreads(opts), plan.chunks.length);
  pool?.grow(threads - 1);
  const progress = new Map<number, RowCounts>();
  const report = (chunk: number) => (rows: RowCounts) => {
    progress.set(chunk, rows);
    const total = [...progress.values()].reduce(add, { read: 0, scored: 0, rejected: 0 });
    opts.onEvent?.({ type: 'progress', rows: total, chunk, chunks: plan.chunks.length });
  };
  const results: ChunkResult[] = [];
  // The first chunk in plan order that failed explains the run best: a split inside a
  // quoted field fails the chunk before the split with the fix, the one after with garbage.
  const failures = new Map<number, unknown>();
  const { signal } = opts;
  // Threads stop at once; this thread's chunk stops at its next batch (ChunkContext.signal).
  const onAbort = () => void pool?.close();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    // Each slot takes the next chunk in plan order until the plan is done or a chunk fails.
    let next = 0;
    await Promise.all(
      Array.from({ length: threads }, async (_, slot) => {
        while (failures.size === 0 && !lost() && !signal?.aborted && next < plan.chunks.length) {
          const chunk = plan.chunks[next++]!;
          try {
            const result = pool && slot > 0
              ? await pool.run(slot - 1, prepared.job, date, plan.outputUri, chunk, plan.manifest.model.sha256, report(chunk.index))
              : await scoreChunk(chunk, { ...chunkContext(prepared, date, plan.outputUri, report(chunk.index)), signal });
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
  return finishRun(plan, results, prepared.job.input.key, csvOutput(prepared.job), failure);
}

/** The failure of a run stopped by a signal (the abort reason names it). */
export function interrupted(signal: AbortSignal): NightscoreError {
  return new NightscoreError('internal', 'RUN_INTERRUPTED', `the run was interrupted (${String(signal.reason ?? 'aborted')}) before it finished; nothing was published`, {
    hint: 'Run the date again; its earlier parts are replaced.',
  });
}

/** The CSV output options rejects files are written with. */
export function csvOutput(job: JobDefinition): { delimiter: string; escapeFormulas: boolean } {
  return { delimiter: job.output.csv.delimiter, escapeFormulas: job.output.csv.escape_formulas };
}

function checkLimits(manifest: RunManifest): void {
  const { rows } = manifest;
  const { max_reject_rate: maxRate, min_rows: minRows } = manifest.limits;
  if (rows.read < minRows) {
    throw new NightscoreError('limit', 'TOO_FEW_ROWS', `read ${rows.read} rows; limits.min_rows is ${minRows}`, {
      hint: 'An empty day usually means the upstream export failed; check it, or lower limits.min_rows.',
    });
  }
  const rate = rows.read === 0 ? 0 : rows.rejected / rows.read;
  if (rate > maxRate) {
    throw new NightscoreError('limit', 'REJECT_RATE_EXCEEDED', `rejected ${rows.rejected} of ${rows.read} rows (${(rate * 100).toFixed(2)}%); limits.max_reject_rate is ${(maxRate * 100).toFixed(2)}%`, {
      hint: 'See the rejects file for each row\'s line and reason; fix the input, or raise limits.max_reject_rate.',
    });
  }
}

export function add(a: RowCounts, b: RowCounts): RowCounts {
  return { read: a.read + b.read, scored: a.scored + b.scored, rejected: a.rejected + b.rejected };
}

function uriOf(location: string): string {
  const { storage, key } = openLocation(location);
  return storage.uri(key);
}

function newManifest({ job, model, scorer }: PreparedJob, date: string, inputUri: string, outputUri: string, chunks: number): RunManifest {
  return {
    job: job.name,
    date,
    status: 'running',
    attempt: randomUUID(),
    model: {
      path: model.path,
      sha256: model.sha256,
      features: scorer.features,
      outputs: Object.fromEntries(scorer.outputs.map((o) => [o.output, o.names])),
    },
    input: { uri: inputUri, format: job.input.format },
    output: { uri: outputUri, format: job.output.format },
    chunks,
    rows: { read: 0, scored: 0, rejected: 0 },
    inputs: [],
    skipped: [],
    parts: [],
    rejects: [],
    limits: { max_reject_rate: job.limits.max_reject_rate, min_rows: job.limits.min_rows },
    error: null,
    started_at: new Date().toISOString(),
    finished_at: null,
    duration_ms: null,
    nightscore: { version: VERSION, host: hostname(), pid: process.pid },
    owns: { [job.output.format]: chunks },
  };
}
