import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { engineIdentity, type Engine, type EngineIdentity, type EngineModel } from '../engine/engine.js';
import { onnxruntime } from '../engine/onnxruntime.js';
import { NightscoreError } from '../errors.js';
import { missingLocaleError } from './locale.js';
import { featureNamesOf, readOnnxMetadata, type OnnxMetadata } from './metadata.js';
import { unwrapZipMaps, type UnwrappedOutput } from './zipmap.js';

/** One file a model is made of. */
export interface ModelFile {
  /** Absolute path. */
  path: string;
  sha256: string;
  bytes: number;
}

/** The engine every model is loaded into. */
const ENGINE: Engine = onnxruntime;

/** The engine a model loaded with `threads` scores under (LoadedModel.engine), without loading one. */
export function currentEngine(threads: number): EngineIdentity {
  return engineIdentity(ENGINE, { threads });
}

/** A model file loaded once per process: its identity, metadata and engine session. */
export interface LoadedModel {
  path: string;
  /**
   * The model's identity. A model in one file: that file's sha256. A model with external data
   * (weights in `model.onnx.data` beside `model.onnx`): the sha256 of the `sha256sum` listing
   * of the model file, then its external data files by name, relative to the model's folder,
   * so `sha256sum model.onnx model.onnx.data | sha256sum` in that folder gives it.
   */
  sha256: string;
  /** The size of the model file. */
  bytes: number;
  /** The model file, then each external data file, by name. */
  files: ModelFile[];
  /** The external data files as they were when hashed: a change on disk reloads the model. */
  external: Array<{ path: string; version: string }>;
  metadata: OnnxMetadata;
  /** From the model's `feature_names` property, when it has one. */
  featureNames: string[] | undefined;
  /** Outputs scored from the tensor behind a ZipMap (see unwrapZipMaps), with their class labels. */
  unwrapped: UnwrappedOutput[];
  /** The engine, its version and the settings the session was made with: part of the model's identity in a run. */
  engine: EngineIdentity;
  session: EngineModel;
}

export interface LoadModelOptions {
  /**
   * The engine's intra-op threads. nightscore parallelises across chunks, so each session
   * gets few threads, and processes × threads must not exceed the cores.
   * @defaultValue 1
   */
  threads?: number;
}

const cache = new Map<string, Promise<LoadedModel>>();
/** Per (path, threads): the cache ids of its versions, oldest first. */
const versions = new Map<string, string[]>();
/**
 * Versions of one file kept loaded: the current one and the one before, which a thread that
 * planned or scored with it a moment ago may still hold. Older ones are released, so a
 * long-lived worker keeps two sessions per model file however many deploys it sees.
 */
const KEEP_VERSIONS = 2;
let staleVersions = 0;

/**
 * Loads a model, once per (file version, threads) per process: a long-lived worker picks up
 * a model file replaced on disk, because its inode, size or times change. The bytes
 * hashed for the manifest are the bytes handed to the engine (the model file's, and private
 * copies of its external data), so the recorded sha256 is what actually scored; a ZipMap
 * that ends the graph is unwrapped from those bytes on the way (see unwrapZipMaps).
 */
export async function loadModel(path: string, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  const threads = opts.threads ?? 1;
  const version = await stat(path).then(versionOf, () => 'missing');
  const file = `${path}\0${threads}`;
  const id = `${file}\0${version}`;
  let loaded = cache.get(id);
  // Weights deployed without the model file that names them are a new version too: the
  // stale one keeps its place among the versions kept, under a name of its own.
  if (loaded && !(await externalUnchanged(loaded))) {
    const stale = `${id}\0stale-${++staleVersions}`;
    cache.set(stale, loaded);
    cache.delete(id);
    versions.set(file, (versions.get(file) ?? []).map((v) => (v === id ? stale : v)));
    loaded = undefined;
  }
  if (!loaded) {
    loaded = createModel(path, threads);
    cache.set(id, loaded);
    loaded.catch(() => cache.delete(id));
    // An id seen before (its load failed) is listed once, as the newest.
    const seen = [...(versions.get(file) ?? []).filter((v) => v !== id), id];
    for (const old of seen.splice(0, Math.max(0, seen.length - KEEP_VERSIONS))) {
      const model = cache.get(old);
      cache.delete(old);
      void model?.then((m) => m.session.release()).catch(() => undefined);
    }
    versions.set(file, seen);
  }
  return loaded;
}

/** A file's version: a deploy renames a new file into place (a new inode) or rewrites it (new times). */
function versionOf(s: Stats): string {
  return `${s.ino}\0${s.size}\0${s.mtimeMs}\0${s.ctimeMs}`;
}

async function externalUnchanged(loaded: Promise<LoadedModel>): Promise<boolean> {
  const model = await loaded.catch(() => undefined);
  if (!model) return true;
  for (const f of model.external) if ((await stat(f.path).then(versionOf, () => 'missing')) !== f.version) return false;
  return true;
}

export async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function createModel(path: string, threads: number): Promise<LoadedModel> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new NightscoreError('MODEL_NOT_FOUND', `cannot read model ${path}: ${(err as Error).message}`, {
      source: path,
      hint: 'Check model.uri (or model.path) in the job file; relative paths resolve against the job file.',
      cause: err,
    });
  }
  const notAModel = (reason: string, cause?: unknown) =>
    new NightscoreError('MODEL_INVALID', `${path} is not a loadable ONNX model: ${reason}`, {
      source: path,
      hint: 'Re-export the model to ONNX (skl2onnx, onnxmltools, torch.onnx.export) and check it with onnx.checker.',
      cause,
    });
  let metadata: OnnxMetadata;
  let featureNames: string[] | undefined;
  let graph: ReturnType<typeof unwrapZipMaps>;
  try {
    metadata = readOnnxMetadata(bytes);
    featureNames = featureNamesOf(metadata);
    graph = unwrapZipMaps(bytes);
  } catch (err) {
    throw notAModel((err as Error).message, err);
  }
  const main = { path, sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length };
  const folder = dirname(path);
  for (const location of metadata.externalData) checkLocation(path, location);
  // onnxruntime may map external data rather than read it: it loads private copies, which no
  // deploy rewrites under it, and the bytes hashed are those copies'.
  const copies = metadata.externalData.length > 0 ? await mkdtemp(join(tmpdir(), 'nightscore-model-')) : undefined;
  try {
    const external = await Promise.all(metadata.externalData.map((location) => externalFile(path, folder, location, copies!)));
    let session: EngineModel;
    try {
      // The sha256 stays the file's: the rewrite is a function of its bytes alone.
      session = await ENGINE.load(graph.bytes, { threads, ...(copies ? { externalData: copies } : {}) });
    } catch (err) {
      throw missingLocaleError(path, err) ?? notAModel((err as Error).message.split('\n')[0] ?? 'unknown error', err);
    }
    const files = [main, ...external.map(({ path: p, sha256, bytes: size }) => ({ path: p, sha256, bytes: size }))];
    const sha256 = modelIdentity(files, [basename(path), ...metadata.externalData]);
    return { path, sha256, bytes: bytes.length, files, external: external.map((f) => ({ path: f.path, version: f.version })), metadata, featureNames, unwrapped: graph.unwrapped, engine: engineIdentity(ENGINE, { threads }), session };
  } finally {
    // A mapping outlives its file's name: the copies go once the session holds them.
    if (copies) await rm(copies, { recursive: true, force: true });
  }
}

/**
 * A model's identity over its files (see LoadedModel.sha256): the model file's sha256 alone,
 * or the sha256 of the `sha256sum` listing of the model file and its external data files.
 */
export function modelIdentity(files: Array<{ sha256: string }>, names: string[]): string {
  if (files.length === 1) return files[0]!.sha256;
  return createHash('sha256').update(files.map((f, i) => `${f.sha256}  ${names[i]}\n`).join('')).digest('hex');
}

/** Whether `location` names a file below a folder in plain segments (see checkLocation). */
export function isPlainLocation(location: string): boolean {
  // eslint-disable-next-line no-control-regex
  return !isAbsolute(location) && !/[\\\u0000-\u001f]/.test(location) && location.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

/**
 * An external data `location` must name a file below the model's folder in plain segments
 * (no ".", "..", empty segment, backslash or control character), so that the name hashed, the
 * name listed and the file onnxruntime opens are one and the same.
 */
export function checkLocation(model: string, location: string): void {
  if (!isPlainLocation(location)) {
    throw new NightscoreError('MODEL_EXTERNAL_DATA_INVALID', `${model} keeps tensors in "${location}", which is not a plain file name inside the model's folder`, {
      source: model,
      hint: 'External data must sit beside the model (or below its folder) under a plain relative name; re-save it with onnx.save_model(..., save_as_external_data=True, location="model.onnx.data").',
    });
  }
}

/**
 * An external data file of `model`: the ONNX `location` in the model's folder (as the ONNX
 * spec says), copied into `copies` and hashed there, with the original's version before the copy.
 */
async function externalFile(model: string, folder: string, location: string, copies: string): Promise<ModelFile & { version: string }> {
  const file = join(folder, location);
  const copy = join(copies, location);
  let before: Stats;
  try {
    before = await stat(file);
    await mkdir(dirname(copy), { recursive: true });
    await copyFile(file, copy);
  } catch (err) {
    throw new NightscoreError('MODEL_EXTERNAL_DATA_MISSING', `${model} keeps tensors in ${file} ("${location}"), which cannot be read: ${(err as Error).message}`, {
      source: file,
      hint: 'Deploy the external data file beside the model file, under the name the model gives it: exporters write it next to model.onnx (for example model.onnx.data).',
      cause: err,
    });
  }
  const bytes = (await stat(copy)).size;
  return { path: file, sha256: await sha256Of(copy), bytes, version: versionOf(before) };
}

/**
 * Lets every load and run in flight end, then frees every session: what a scoring thread
 * does before it stops (see Engine.settled).
 */
export async function closeModels(): Promise<void> {
  await ENGINE.settled();
  await releaseModels();
  await ENGINE.settled();
}

/** Drops cached sessions (tests that rewrite a model file in place). */
export async function releaseModels(): Promise<void> {
  const all = [...cache.values()];
  cache.clear();
  versions.clear();
  await Promise.all(all.map(async (m) => (await m.catch(() => undefined))?.session.release()));
}
