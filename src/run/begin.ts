/** Starting a run: listing and planning the date, taking the output lock, opening the output folder. */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { pathToFileURL } from 'node:url';
import { NightscoreError } from '../errors.js';
import { locateRun, type JobDefinition, type RunLocations } from '../job/load.js';
import { locationsOverlap, openLocation } from '../storage/open.js';
import { isRemote } from '../model/fetch.js';
import { featureColumns, takesNan, type InputBinding } from '../model/features.js';
import { pinProfile } from '../drift/pin.js';
import { VERSION } from '../version.js';
import type { PreparedJob } from './bind.js';
import { planCanary, planShadow } from '../shadow/plan.js';
import { sizedOnDate } from './learn-widths.js';
import { beginOutput } from './commit.js';
import { acquireOutputLock, outputLeaseMs, releaseOutputLock, type HeldLock } from './lock.js';
import { MAX_CHUNKS, OUTPUT_FILES, rejectsApart, type RunManifest } from './manifest.js';
import { checkReady, listInputs, planChunks, planParquetChunks, type ChunkPlan, type InputObject, type SkippedObject } from './plan.js';
import { champion, SPEC_VERSION, type ModelSpec, type RunSpec } from './spec.js';

/** Chunks one run may plan into: each is a queue job and a part file. */

/**
 * A planned run: plain JSON, so that in the queue it travels in the run job's data and any
 * worker can score its chunks or commit it.
 */
export interface RunPlan {
  /** Everything the chunks and the commit need, frozen now. */
  spec: RunSpec;
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
  return openAttempt(await planDate(prepared, date), owner);
}

/** A date listed and planned, not yet begun: no lock taken, nothing written. */
export interface DatePlan {
  spec: RunSpec;
  chunks: ChunkPlan[];
  skipped: SkippedObject[];
}

/** Lists a date's inputs and plans its chunks and spec (a new attempt id), touching nothing. */
export async function planDate(prepared: PreparedJob, date: string): Promise<DatePlan> {
  const { job } = prepared;
  const where = locateRun(job, date);
  await checkOutputApart(job, where, date);
  // The marker before the listing: files listed before the upstream's marker lands may be a
  // day still being written.
  await checkReady(where.inputUri, job.input.ready_marker, date);
  const { objects: inputs, skipped } = await listInputs(where.inputUri, job.input.format, date);
  const chunks = job.input.format === 'parquet'
    ? await planParquetChunks(inputs, job.chunk.rows)
    : planChunks(inputs, { chunkBytes: job.chunk.bytes, split: job.input.csv.split });
  if (chunks.length > MAX_CHUNKS) {
    throw new NightscoreError('PLAN_TOO_LARGE', `${job.file}: ${date} plans into ${chunks.length} chunks (chunk.bytes ${job.chunk.bytes}, chunk.rows ${job.chunk.rows}); a run takes at most ${MAX_CHUNKS}, each a queue job and a part file`, {
      source: job.file,
      column: 'chunk.bytes',
      hint: 'Raise chunk.bytes (the default is 64 MiB; for Parquet, chunk.rows bounds a chunk) so a day plans into fewer, larger chunks.',
    });
  }
  const spec = runSpec(job, date, randomUUID(), uriOf(where.inputUri), runFolders(where), inputs, [prepared.spec]);
  const sized = await sizedOnDate(prepared, spec, chunks);
  // After sizing: a profile must cover every prediction column, which an open output names only now.
  const drift = await pinProfile(job, date, { sha256: sized.spec.sha256, columns: featureColumns(sized.scorer.inputs, spec.input.missing), outputs: sized.spec.outputs, registry: sized.spec.registry });
  const canary = await planCanary(sized, spec, chunks);
  const { models: challengers, shadow } = await planShadow(sized, spec, chunks);
  return { spec: { ...spec, models: [sized.spec, ...(canary ? [canary.model] : []), ...challengers], drift, shadow, canary: canary?.canary ?? null }, chunks, skipped };
}

/**
 * Begins an attempt at a planned date: takes the output lock, opens the output folder (see
 * beginRun), keeping the files in `keep` (a retry's parts of chunks it does not score again).
 */
export async function openAttempt(planned: DatePlan, owner?: string, keep: ReadonlySet<string> = new Set()): Promise<RunPlan> {
  const { spec, chunks, skipped } = planned;
  const out = openLocation(spec.output.uri);
  const manifest = newManifest(spec, chunks.length);
  manifest.skipped = skipped;
  const lock = await acquireOutputLock(out, { owner: owner ?? `run:${manifest.attempt}`, attempt: manifest.attempt, job: spec.job.name, date: spec.date }, outputLeaseMs());
  try {
    await beginOutput(out, manifest, rejectsApart(spec.output) ? openLocation(spec.output.rejects_uri) : undefined, keep);
  } catch (err) {
    await releaseOutputLock(out, lock);
    throw err;
  }
  return { spec, chunks, manifest, lock };
}

/**
 * Refuses an output location equal to, inside or around the input's (after rendering the
 * date, resolving relative paths and symlinks; on S3, one bucket and overlapping prefixes):
 * nightscore replaces its own files in its output folder and must never share it with data.
 */
export async function checkOutputApart(job: JobDefinition, where: RunLocations, date: string): Promise<void> {
  const { inputUri, outputUri, rejectsUri } = where;
  if (await locationsOverlap(inputUri, outputUri)) {
    throw new NightscoreError('OUTPUT_OVERLAPS_INPUT', `${job.file}: output.uri ${outputUri} and input.uri ${inputUri} overlap for ${date}: one is inside the other, or they are the same folder`, {
      source: job.file,
      column: 'output.uri',
      hint: 'Write predictions to a folder of their own, outside the input (for example a sibling: …/scores/dt={date}/ beside …/features/dt={date}/).',
    });
  }
  if (rejectsUri === undefined) return;
  if (await locationsOverlap(inputUri, rejectsUri)) {
    throw new NightscoreError('OUTPUT_OVERLAPS_INPUT', `${job.file}: output.rejects_uri ${rejectsUri} and input.uri ${inputUri} overlap for ${date}: one is inside the other, or they are the same folder`, {
      source: job.file,
      column: 'output.rejects_uri',
      hint: 'Write rejects to a folder of their own, outside the input.',
    });
  }
  if (folderUri(rejectsUri) === folderUri(outputUri)) {
    throw new NightscoreError('REJECTS_URI_CLASH', `${job.file}: output.rejects_uri is the output folder ${outputUri} itself for ${date}, where the rejects files would take the names of the prediction parts`, {
      source: job.file,
      column: 'output.rejects_uri',
      hint: 'Give the rejects a folder of their own (a sibling tree such as …/rejects/dt={date}/), or leave rejects_uri out for _rejects/ in the output folder.',
    });
  }
}

/** A location as a folder URI ending in `/`. */
/**
 * The folders a run of the date writes, as URIs ending in `/`: the output folder, and the
 * rejects folder (`_rejects/` in it, or output.rejects_uri). Readers of a manifest derive
 * the files they open from these, never from the URIs the manifest lists.
 */
export function runFolders(where: RunLocations): { uri: string; rejects: string } {
  const out = openLocation(where.outputUri);
  const rejects = where.rejectsUri === undefined ? out.storage.uri(out.storage.join(out.storage.join(out.key, OUTPUT_FILES.rejectsDir), '')) : folderUri(where.rejectsUri);
  return { uri: out.storage.uri(out.storage.join(out.key, '')), rejects };
}

function folderUri(location: string): string {
  const { storage, key } = openLocation(location);
  return storage.uri(storage.join(key, ''));
}

function uriOf(location: string): string {
  const { storage, key } = openLocation(location);
  return storage.uri(key);
}

/** The job resolved for one date and attempt: see RunSpec. */
export function runSpec(job: JobDefinition, date: string, attempt: string, inputUri: string, output: { uri: string; rejects: string }, objects: InputObject[], models: ModelSpec[]): RunSpec {
  const { input } = job;
  return {
    version: SPEC_VERSION,
    job: { name: job.name, file: job.file },
    date,
    attempt,
    input: { uri: inputUri, format: input.format, key: input.key, csv: input.csv, missing: missingAsNan(job, champion({ models }).binding.inputs), objects },
    output: { uri: output.uri, rejects_uri: output.rejects, format: job.output.format, csv: job.output.csv, parquet: job.output.parquet },
    batch: { rows: job.chunk.rows },
    chunk: { bytes: job.chunk.bytes },
    limits: { ...job.limits },
    models,
    drift: null,
    shadow: null,
    canary: null,
    cost: job.cost ?? null,
  };
}

/** The columns input.missing scores as NaN (prepareJob has checked that a map names only columns of float inputs). */
function missingAsNan(job: JobDefinition, inputs: InputBinding[]): string[] {
  const { missing } = job.input;
  const features = inputs.filter((i) => takesNan(i.type)).flatMap((i) => i.columns);
  return typeof missing === 'string' ? (missing === 'nan' ? [...features] : []) : features.filter((f) => missing[f] === 'nan');
}

function newManifest(spec: RunSpec, chunks: number): RunManifest {
  const scored = champion(spec);
  return {
    job: spec.job.name,
    date: spec.date,
    status: 'running',
    attempt: spec.attempt,
    model: {
      ref: scored.registry?.ref ?? scored.location,
      name: scored.registry?.name ?? null,
      version: scored.registry?.version ?? null,
      alias: scored.registry?.alias ?? null,
      sha256: scored.sha256,
      uri: isRemote(scored.location) ? scored.location : pathToFileURL(scored.location).href,
      path: scored.location,
      features: scored.binding.inputs.flatMap((i) => i.columns),
      outputs: Object.fromEntries(scored.outputs.map((o) => [o.output, o.names])),
      unwrapped: scored.unwrapped ?? [],
    },
    models: spec.models,
    input: { uri: spec.input.uri, format: spec.input.format },
    output: { uri: spec.output.uri, format: spec.output.format },
    chunks,
    rows: { read: 0, scored: 0, rejected: 0 },
    inputs: [],
    skipped: [],
    parts: [],
    rejects: [],
    limits: { ...spec.limits },
    error: null,
    started_at: new Date().toISOString(),
    finished_at: null,
    duration_ms: null,
    nightscore: { version: VERSION, host: hostname(), pid: process.pid },
    owns: { [spec.output.format]: chunks },
  };
}
