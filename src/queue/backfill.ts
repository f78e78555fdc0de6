import { describeEngine, sameEngine, type EngineIdentity } from '../engine/engine.js';
import { toNightscoreError } from '../errors.js';
import { modelLocation, registryOf, type JobDefinition } from '../job/load.js';
import { isModelRef } from '../registry/ref.js';
import type { RunManifest } from '../run/manifest.js';
import { outputStateOf, readDateOutput, succeededSince } from '../run/output-folder.js';
import { runId } from './config.js';
import { newBackfillId, saveBackfill } from './backfills.js';
import { enqueueRun, isInFlight, type BackfillJobData, type Queues } from './queues.js';

export type Reprocess = 'missing' | 'failed' | 'all' | 'stale';

/** The model a run of a date would pin: a registry version, or (a model by location) its sha256; and the engine it would score under. */
export interface ExpectedModel {
  version: string | null;
  sha256: string;
  engine: EngineIdentity;
  /** The sha256 of the canary a run would publish beside it (canary.uri); null when the job has none. Absent: not asked. */
  canary?: string | null;
}

/** A date for which no model can be told (its alias was not set yet): kept, with why. */
export interface NoExpectedModel {
  none: string;
}

/**
 * What a run of the job would pin as of `asOf` (now when absent): the version its registry
 * alias points to (then), or the sha256 of a model by location. `backfill --reprocess stale`
 * and the page's "stale model" compare manifests with it. The registry and the model loader
 * load on first use: they bring onnxruntime and the AWS SDK with them.
 */
export async function expectedModel(job: JobDefinition, asOf?: Date): Promise<ExpectedModel | NoExpectedModel> {
  const model = await expectedChampion(job, asOf);
  if ('none' in model) return model;
  return { ...model, canary: await expectedCanary(job, asOf) };
}

/** The sha256 of the canary a run would publish rows of; null when the job has none. */
async function expectedCanary(job: JobDefinition, asOf?: Date): Promise<string | null> {
  if (!job.canary) return null;
  const { prepareCanary } = await import('../run/bind.js');
  return (await prepareCanary(job, job.canary.uri, { asOf })).spec.sha256;
}

async function expectedChampion(job: JobDefinition, asOf?: Date): Promise<ExpectedModel | NoExpectedModel> {
  const written = modelLocation(job);
  if (!isModelRef(written)) {
    const { prepareJob } = await import('../run/bind.js');
    const { spec } = await prepareJob(job);
    return { version: null, sha256: spec.sha256, engine: spec.engine };
  }
  const { Registry, registryRoot } = await import('../registry/registry.js');
  const { currentEngine } = await import('../model/session.js');
  try {
    const r = await new Registry(registryRoot(registryOf(job), `${job.file}: model.uri ${written}`)).resolve(written, { asOf });
    return { version: `${r.name}@${r.version}`, sha256: r.record.sha256, engine: currentEngine(job.model.threads) };
  } catch (err) {
    const e = toNightscoreError(err);
    if (e.code === 'MODEL_ALIAS_NOT_FOUND') return { none: `no model to compare with: ${e.message}` };
    throw e;
  }
}

export interface BackfillDecision {
  date: string;
  enqueue: boolean;
  reason: string;
}


/** Whether the date's output says it succeeded in a run that finished after `ms` (epoch ms). */
export async function succeededAfter(job: JobDefinition, date: string, ms: number): Promise<boolean> {
  return succeededSince(await readDateOutput(job, date), ms);
}

/**
 * Decides, per date, whether a backfill enqueues it. A run in flight is never touched.
 *   missing: dates with no `_SUCCESS` and no run record in the queue;
 *   failed:  dates whose run failed (in the queue, or per the manifest once trimmed);
 *   all:     every date not in flight;
 *   stale:   succeeded dates whose manifest names another model than `expected(date)`: for a
 *            registry reference another name@version, for a model by location other bytes;
 *            or the same model scored under another engine, engine version or engine setting.
 */
export async function planBackfill(queues: Queues, job: JobDefinition, dates: string[], mode: Reprocess, expected?: (date: string) => Promise<ExpectedModel | NoExpectedModel>): Promise<BackfillDecision[]> {
  const decisions: BackfillDecision[] = [];
  for (const date of dates) {
    const state = await queues.runs.getJobState(runId(job.name, date));
    const output = await readDateOutput(job, date);
    const { success, manifest } = output;
    const failed = state === 'failed' || (state === 'unknown' && outputStateOf(output) === 'failed');
    let decision: [boolean, string];
    if (isInFlight(state)) decision = [false, `in flight (${state})`];
    else if (mode === 'all') decision = [true, state === 'unknown' ? 'reprocess all' : `reprocess all (was ${state})`];
    else if (mode === 'stale') decision = success && manifest ? await staleness(manifest, await expected!(date)) : [false, success ? 'succeeded, no manifest' : 'not succeeded; use --reprocess missing or failed'];
    else if (mode === 'failed') decision = failed ? [true, 'failed before'] : [false, success ? 'succeeded' : 'not failed'];
    else if (success) decision = [false, 'succeeded'];
    else if (state !== 'unknown') decision = [false, `already ran (${state}); use --reprocess failed or all`];
    else decision = [true, 'missing'];
    decisions.push({ date, enqueue: decision[0], reason: decision[1] });
  }
  return decisions;
}

async function staleness(manifest: RunManifest, expected: ExpectedModel | NoExpectedModel): Promise<[boolean, string]> {
  if ('none' in expected) return [false, expected.none];
  const [stale, reason] = modelStaleness(manifest, expected);
  if (stale) return [stale, reason];
  // A canary date has two models: the canary's rows are stale when it is another now.
  const canary = manifest.canary?.model.sha256 ?? null;
  if (expected.canary !== undefined && canary !== expected.canary) {
    return [true, `${reason}; ${canary ? `its canary rows by sha256 ${canary.slice(0, 12)}` : 'no canary'}, now ${expected.canary ? `a canary of sha256 ${expected.canary.slice(0, 12)}` : 'no canary'}`];
  }
  // The engine is part of the model's identity. A manifest of an earlier nightscore records no
  // engine version: its date is judged by the model alone, as it was then, rather than every
  // such date turning stale at once on an upgrade.
  const scored = manifest.models?.[0]?.engine;
  if (scored?.version === undefined || sameEngine(scored, expected.engine)) return [false, reason];
  return [true, `${reason} under ${describeEngine(scored)}, now ${describeEngine(expected.engine)}`];
}

function modelStaleness(manifest: RunManifest, expected: ExpectedModel): [boolean, string] {
  const scored = manifest.model.name === null || manifest.model.name === undefined ? null : `${manifest.model.name}@${manifest.model.version}`;
  if (expected.version !== null) {
    // The same name@version with other bytes (another registry, one re-created) is stale too.
    if (scored === expected.version && manifest.model.sha256 === expected.sha256) return [false, `scored by ${scored}`];
    if (scored === expected.version) return [true, `scored by ${scored} with sha256 ${manifest.model.sha256.slice(0, 12)}, now ${expected.sha256.slice(0, 12)}`];
    // Scored by path before the job named the registry: the same bytes are the same model.
    if (scored === null && manifest.model.sha256 === expected.sha256) return [false, `scored by the bytes of ${expected.version}`];
    return [true, `scored by ${scored ?? `sha256 ${manifest.model.sha256.slice(0, 12)}`}, now ${expected.version}`];
  }
  if (manifest.model.sha256 === expected.sha256) return [false, `scored by sha256 ${expected.sha256.slice(0, 12)}`];
  return [true, `scored by sha256 ${manifest.model.sha256.slice(0, 12)}, now ${expected.sha256.slice(0, 12)}`];
}

export interface ApplyOptions {
  /** Runs of this backfill in flight at once; undefined enqueues every date now. */
  maxParallel?: number;
  /** --model-as-of, carried to every run. */
  modelAsOf?: string;
  /** --reprocess, for the record. */
  reprocess?: string;
}

/**
 * Enqueues the decided dates, oldest first unless the dates were given reversed. Finished
 * run records of those dates are removed first so their deterministic ids can be reused.
 * With maxParallel, a backfill job on the queue feeds the dates as earlier runs finish.
 */
export async function applyBackfill(queues: Queues, job: JobDefinition, decisions: BackfillDecision[], opts: ApplyOptions): Promise<{ id: string; added: number }> {
  const dates = decisions.filter((d) => d.enqueue).map((d) => d.date);
  for (const date of dates) {
    const existing = await queues.runs.getJob(runId(job.name, date));
    if (existing && ['completed', 'failed'].includes(await existing.getState())) await existing.remove();
  }
  const id = newBackfillId();
  // Recorded before anything is enqueued: a run of this backfill always finds its record.
  await saveBackfill(queues, { id, job: job.name, file: job.file, dates: decisions.map((d) => d.date), enqueued: dates, reprocess: opts.reprocess ?? 'missing', model_as_of: opts.modelAsOf ?? null, max_parallel: opts.maxParallel ?? null, created_at: new Date().toISOString(), cancelled_at: null });
  if (dates.length === 0) return { id, added: 0 };
  if (opts.maxParallel === undefined) {
    let added = 0;
    for (const date of dates) if (await enqueueRun(queues, job.name, job.file, date, { modelAsOf: opts.modelAsOf, backfill: id })) added++;
    return { id, added };
  }
  const data: BackfillJobData = { jobFile: job.file, dates, next: 0, maxParallel: opts.maxParallel, backfill: id, ...(opts.modelAsOf === undefined ? {} : { modelAsOf: opts.modelAsOf }) };
  await queues.runs.add('backfill', data, {
    // One feeder per invocation: the run ids already keep dates from being enqueued twice,
    // and a reused id would silently drop a backfill whose old feeder record still exists.
    jobId: `backfill.${job.name}.${dates[0]}.${dates.at(-1)}.${Date.now()}`,
    removeOnComplete: { age: 7 * 24 * 3600 },
    removeOnFail: { age: 7 * 24 * 3600 },
  });
  return { id, added: dates.length };
}
