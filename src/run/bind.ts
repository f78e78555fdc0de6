/**
 * Binding models: a job to its model at plan time (loading it, checking its signature against
 * the job, pinning it as a ModelSpec), and a spec's model on a scoring thread (once per
 * sha256, checked against the spec).
 */
import { describeEngine } from '../engine/engine.js';
import { NightscoreError } from '../errors.js';
import path from 'node:path';
import { modelLocation, registryOf, type JobDefinition, type ShadowEntry } from '../job/load.js';
import { fileUris, isRemote, withLocalModel } from '../model/fetch.js';
import { isModelRef } from '../registry/ref.js';
import { MODEL_FILE } from '../registry/records.js';
import { corrupt, Registry, registryRoot, type ResolvedModel } from '../registry/registry.js';
import { parseUri } from '../storage/uri.js';
import { featureColumns, takesNan, type ElementType, type FeatureColumn } from '../model/features.js';
import { jobKeyOf, type JobKey } from '../model/hints.js';
import { createScorer, type Scorer } from '../model/scorer.js';
import { loadModel, type LoadedModel, type ModelFile } from '../model/session.js';
import type { ModelRole, ModelSpec, RegistryPin } from './spec.js';

/** A job bound to its model: everything checked that can be checked before reading data. */
export interface PreparedJob {
  job: JobDefinition;
  model: LoadedModel;
  scorer: Scorer;
  /** The model as a run of this job pins it. */
  spec: ModelSpec;
}

export interface PrepareOptions {
  /** Resolve a registry alias as it was at this instant (backfill --model-as-of), not as it is now. */
  asOf?: Date;
}

/**
 * Loads the model once per process, checks its signature against the job, and pins it. A
 * registry reference is resolved here, once: the run pins the version's files and hashes,
 * and no chunk resolves it again.
 */
export async function prepareJob(job: JobDefinition, opts: PrepareOptions = {}): Promise<PreparedJob> {
  const { resolved, location, model, files } = await loadJobModel(job, modelLocation(job), 'model.uri', opts);
  if (job.model.sha256 && job.model.sha256 !== model.sha256) {
    const what = resolved ? `${resolved.ref} resolves to ${resolved.name} version ${resolved.version}, which` : `${location}${files.length > 1 ? ` with its external data (${files.slice(1).map((f) => f.path).join(', ')})` : ''}`;
    throw new NightscoreError('MODEL_SHA_MISMATCH', `${what} has sha256 ${model.sha256}, but the job pins model.sha256 ${job.model.sha256}`, {
      source: location,
      column: 'model.sha256',
      hint: 'The model changed (its file, or its external data). Deploy the pinned model, or update model.sha256 after checking the new one (docs/job-file.md, "Model identity and external data").',
    });
  }
  const scorer = await createScorer(model, {
    features: job.model.features,
    input: job.model.input,
    inputs: job.model.inputs,
    columns: job.output.columns,
    keys: job.input.key,
  });
  const { missing } = job.input;
  const unknown = typeof missing === 'string' ? [] : Object.keys(missing).filter((c) => !scorer.features.includes(c));
  if (unknown.length > 0) {
    throw new NightscoreError('MISSING_COLUMN_UNKNOWN', `${job.file}: input.missing names ${unknown.map((c) => `"${c}"`).join(', ')}, which ${unknown.length > 1 ? 'are not features' : 'is not a feature'} of the model; its features are ${scorer.features.map((f) => `"${f}"`).join(', ')}`, {
      source: job.file,
      column: `input.missing.${unknown[0]}`,
      hint: 'List features only (keys are copied as they are, never scored); check the spelling.',
    });
  }
  const cannotBeNan = typeof missing === 'string' ? [] : Object.keys(missing).filter((c) => missing[c] === 'nan' && !takesNan(typeOf(scorer, c)));
  if (cannotBeNan.length > 0) {
    const c = cannotBeNan[0]!;
    throw new NightscoreError('JOB_INVALID', `${job.file}: input.missing.${c} is nan, but "${c}" feeds ${typeOf(scorer, c)} input "${scorer.inputs.find((i) => i.columns.includes(c))!.name}", which has no NaN`, {
      source: job.file,
      column: `input.missing.${c}`,
      hint: 'Only columns of float inputs (float32, float64, float16) can take a missing value; fill the others upstream, or let their rows be rejected.',
    });
  }
  return pinModel(job, 'champion', { resolved, location, model, files }, scorer, jobKeyOf(job.model));
}

/**
 * A bound model as its run pins it (ModelSpec) with its role; and this thread, which scores
 * chunks too (an in-process run), binds the spec to this scorer.
 */
function pinModel(job: JobDefinition, role: ModelRole, loaded: LoadedJobModel, scorer: Scorer, jobKey: JobKey): PreparedJob {
  const { resolved, location, model, files } = loaded;
  const spec: ModelSpec = {
    role,
    location,
    sha256: model.sha256,
    files,
    binding: { inputs: scorer.inputs, job_key: jobKey },
    outputs: scorer.outputs,
    unwrapped: model.unwrapped.filter((u) => scorer.outputs.some((o) => o.output === u.output)),
    engine: model.engine,
    ...(model.metadata.producer === undefined ? {} : { producer: model.metadata.producer }),
    registry: resolved ? registryPin(resolved) : null,
  };
  scorersOf(model).set(bindingKey(spec, job.input.key), Promise.resolve(scorer));
  return { job, model, scorer, spec };
}

/** A model a job names (its model, or a challenger): a registry reference resolved once, its files loaded and checked. */
interface LoadedJobModel {
  resolved: ResolvedModel | undefined;
  location: string;
  model: LoadedModel;
  files: ModelFile[];
}

async function loadJobModel(job: JobDefinition, written: string, key: string, opts: PrepareOptions): Promise<LoadedJobModel> {
  const resolved = isModelRef(written) ? await new Registry(registryRoot(registryOf(job), `${job.file}: ${key} ${written}`)).resolve(written, opts) : undefined;
  const location = resolved ? localPath(resolved.uri) : written;
  const model = await loadRegistered(location, resolved, job.model.threads);
  // A remote model's files are named by their URIs: the cache path is this machine's alone.
  const files = isRemote(location) ? fileUris(location, model.metadata.externalData).map((path, i) => ({ ...model.files[i]!, path })) : model.files;
  return { resolved, location, model, files };
}

/**
 * A challenger of the job (its `shadow` list) bound like the model: loaded, its signature
 * checked, pinned as a ModelSpec with the role `challenger:<name>`. Its columns are its own
 * (`features`, else its feature_names) and must be among the columns `batch` holds, each of
 * the same type: a chunk reads its batches once, for the model, and hands each challenger its
 * columns of them. Its outputs keep their own names; they are compared, not written.
 */
export async function prepareChallenger(job: JobDefinition, entry: ShadowEntry, batch: readonly FeatureColumn[], opts: PrepareOptions = {}): Promise<{ name: string; prepared: PreparedJob }> {
  const written = modelLocation(job, entry.uri);
  const loaded = await loadJobModel(job, written, 'shadow.uri', opts);
  const { resolved, location, model } = loaded;
  const name = entry.name ?? (resolved ? `${resolved.name}@${resolved.version}` : path.basename(location).replace(/\.onnx$/i, ''));
  // Its own binding, else the model's: a challenger is most often exported as the model was.
  const own = entry.features !== undefined || entry.inputs !== undefined;
  const binding = own ? { features: entry.features, input: entry.input, inputs: entry.inputs } : { features: job.model.features, input: job.model.input, inputs: job.model.inputs };
  const scorer = await createScorer(model, { ...binding, keys: job.input.key });
  const columns = featureColumns(scorer.inputs, []);
  for (const c of columns) {
    const there = batch.find((b) => b.name === c.name);
    if (!there) {
      throw new NightscoreError('SHADOW_COLUMNS', `challenger ${name} (${location}) reads column "${c.name}", which the model does not read; a challenger is fed from the model's batches, so it can read only ${batch.map((b) => `"${b.name}"`).join(', ')}`, {
        source: job.file,
        column: 'shadow.features',
        hint: 'List the challenger\'s columns under its features (a subset of the model\'s, in any order), or score it as a job of its own.',
      });
    }
    if (there.type !== c.type) {
      throw new NightscoreError('SHADOW_COLUMNS', `challenger ${name} (${location}) reads column "${c.name}" as ${c.type}, and the model as ${there.type}`, {
        source: job.file,
        column: 'shadow.features',
        hint: 'A challenger is fed the model\'s values: export it with the same input types.',
      });
    }
  }
  return { name, prepared: pinModel(job, `challenger:${name}`, loaded, scorer, own ? 'model.features' : jobKeyOf(job.model)) };
}

/**
 * The job's canary (canary.uri) bound as the model is (model.features or model.inputs,
 * output.columns), pinned with the role `canary`: it writes rows of the published output, so it
 * must be fed and named exactly as the model (checked by the caller once both are sized).
 */
export async function prepareCanary(job: JobDefinition, uri: string, opts: PrepareOptions = {}): Promise<PreparedJob> {
  const written = modelLocation(job, uri);
  const loaded = await loadJobModel(job, written, 'canary.uri', opts);
  const scorer = await createScorer(loaded.model, { features: job.model.features, input: job.model.input, inputs: job.model.inputs, columns: job.output.columns, keys: job.input.key });
  return pinModel(job, 'canary', loaded, scorer, jobKeyOf(job.model));
}

/**
 * The job with its model's open outputs sized (see learn-widths.ts): the widths are the
 * date's, so the run's spec pins the names, and every chunk checks its batches against them.
 */
export async function sizeOutputs(prepared: PreparedJob, widths: Record<string, number>): Promise<PreparedJob> {
  const scorer = await prepared.scorer.sized(widths);
  const spec: ModelSpec = { ...prepared.spec, outputs: scorer.outputs };
  scorersOf(prepared.model).set(bindingKey(spec, prepared.job.input.key), Promise.resolve(scorer));
  return { ...prepared, scorer, spec };
}

const scorers = new WeakMap<LoadedModel, Map<string, Promise<Scorer>>>();

function scorersOf(model: LoadedModel): Map<string, Promise<Scorer>> {
  let bound = scorers.get(model);
  if (!bound) scorers.set(model, (bound = new Map()));
  return bound;
}

function bindingKey(spec: ModelSpec, keys: string[]): string {
  return JSON.stringify([spec.binding, spec.outputs.map((o) => [o.output, o.names]), keys]);
}

/**
 * The scorer of a spec's model on this thread. The model is loaded and its signature checked
 * against the graph's declared shapes (no row is run) once per sha256 and binding; every
 * call checks that the file still holds the bytes the run was planned with. A model file replaced since (a deploy mid-run;
 * on the queue chunks can run long after the plan) fails the chunk with MODEL_CHANGED (not
 * retried), so no run ends with parts from two models and a manifest naming one; a worker
 * whose engine is another than the plan's fails it with MODEL_ENGINE_CHANGED, for the same reason.
 */
export async function bindModel(spec: ModelSpec, keys: string[]): Promise<Scorer> {
  const model = await withLocalModel(spec.location, spec, (path) => loadModel(path, { threads: spec.engine.threads }));
  if (model.sha256 !== spec.sha256) {
    throw new NightscoreError('MODEL_CHANGED', `${spec.location} changed during the run: it has sha256 ${model.sha256} now, but the run was planned with sha256 ${spec.sha256}`, {
      source: spec.location,
      column: 'model.uri',
      hint: 'A model file was replaced while the date was being scored. Run the date again to score it whole with the new model, and deploy models between runs (or pin model.sha256).',
    });
  }
  // The engine is part of the model's identity: a worker of another build must not score a
  // run planned under another engine, whose manifest would name the one it was planned with.
  if (model.engine.name !== spec.engine.name || model.engine.version !== spec.engine.version) {
    throw new NightscoreError('MODEL_ENGINE_CHANGED', `the run was planned to score ${spec.location} with ${describeEngine(spec.engine)}, but this worker has ${describeEngine(model.engine)}`, {
      source: spec.location,
      hint: 'Workers of different nightscore builds share the queue. Run the date again once every worker runs one build (a rolling deploy ends), so that the whole date scores under one engine.',
    });
  }
  const bound = scorersOf(model);
  const key = bindingKey(spec, keys);
  let scorer = bound.get(key);
  if (!scorer) {
    scorer = createScorer(model, {
      inputs: Object.fromEntries(spec.binding.inputs.map((i) => [i.name, i.columns])),
      columns: Object.fromEntries(spec.outputs.map((o) => [o.output, o.names])),
      keys,
      jobKey: spec.binding.job_key,
    });
    bound.set(key, scorer);
    scorer.catch(() => bound.delete(key));
  }
  const open = (await scorer).open;
  if (open.length > 0) {
    // A plan sizes every output before a chunk is planned: a spec without names is not ours.
    throw new NightscoreError('INTERNAL', `the chunk's spec names no columns for output ${open.map((o) => `"${o}"`).join(', ')} of ${spec.location}`, {
      hint: 'Run the date again; if it happens again, report it.',
    });
  }
  return scorer;
}

/** A registered version's model (fetched when remote), its files checked against its record. */
export function loadResolvedModel(resolved: ResolvedModel): Promise<LoadedModel> {
  return loadRegistered(localPath(resolved.uri), resolved, 1);
}

/**
 * A model by its location; a registered version's files fetched (when remote) and checked
 * against the sha256 its record gives, so bytes changed in storage after registering are
 * never scored.
 */
async function loadRegistered(location: string, resolved: ResolvedModel | undefined, threads: number): Promise<LoadedModel> {
  if (!resolved) return withLocalModel(location, undefined, (path) => loadModel(path, { threads }));
  const { record } = resolved;
  let model: LoadedModel;
  try {
    model = await withLocalModel(location, { location, sha256: record.sha256, files: resolved.files }, (path) => loadModel(path, { threads }));
  } catch (err) {
    const e = err as NightscoreError;
    if (e.code !== 'MODEL_CHANGED') throw err;
    throw new NightscoreError('REGISTRY_CORRUPT', `${resolved.ref} (${resolved.name} version ${resolved.version}): ${e.message.replace(/ changed during the run.*$/, '')} does not hold the bytes the version was registered with`, { source: e.source, hint: corrupt(resolved, location, record.sha256, '').hint });
  }
  if (model.sha256 !== record.sha256) {
    const bad = model.files.find((f, i) => record.files[i] !== undefined && f.sha256 !== record.files[i]!.sha256);
    if (bad) throw corrupt(resolved, bad.path, record.files[model.files.indexOf(bad)]!.sha256, bad.sha256);
    // Every file holds its bytes: the record lists other files than the model reads.
    const reads = [MODEL_FILE, ...model.metadata.externalData].join(', ');
    throw new NightscoreError('REGISTRY_CORRUPT', `${resolved.ref} (${resolved.name} version ${resolved.version}): its version.json lists the files ${record.files.map((f) => f.name).join(', ')}, but its model reads ${reads}`, { source: location, hint: corrupt(resolved, location, record.sha256, '').hint });
  }
  return model;
}

/** A file URI as a path; any other URI as it is. */
function localPath(uri: string): string {
  const parsed = parseUri(uri);
  return parsed.scheme === 'file' ? parsed.path : uri;
}

function registryPin(resolved: ResolvedModel): RegistryPin {
  return { ref: resolved.ref, name: resolved.name, version: resolved.version, alias: resolved.alias, as_of: resolved.as_of };
}

function typeOf(scorer: Scorer, column: string): ElementType {
  return scorer.inputs.find((i) => i.columns.includes(column))!.type;
}
