import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { NightscoreError } from '../errors.js';
import { featureNamesOf, readOnnxMetadata, type OnnxMetadata } from './metadata.js';

/** A model file loaded once per process: its identity, metadata and onnxruntime session. */
export interface LoadedModel {
  path: string;
  sha256: string;
  bytes: number;
  metadata: OnnxMetadata;
  /** From the model's `feature_names` property, when it has one. */
  featureNames: string[] | undefined;
  session: ort.InferenceSession;
}

export interface LoadModelOptions {
  /**
   * onnxruntime intra-op threads. nightscore parallelises across chunks, so each session
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
 * planned or probed with it a moment ago may still hold. Older ones are released, so a
 * long-lived worker keeps two sessions per model file however many deploys it sees.
 */
const KEEP_VERSIONS = 2;

/**
 * Loads a model, once per (file version, threads) per process: a long-lived worker picks up
 * a model file replaced on disk, because its inode, size or times change. The bytes
 * hashed for the manifest are the bytes handed to onnxruntime, so the recorded sha256 is
 * what actually scored.
 */
export async function loadModel(path: string, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  const threads = opts.threads ?? 1;
  const version = await stat(path).then(
    // A deploy renames a new file into place (a new inode) or rewrites it (new times).
    (s) => `${s.ino}\0${s.size}\0${s.mtimeMs}\0${s.ctimeMs}`,
    () => 'missing',
  );
  const file = `${path}\0${threads}`;
  const id = `${file}\0${version}`;
  let loaded = cache.get(id);
  if (!loaded) {
    loaded = createModel(path, threads);
    cache.set(id, loaded);
    loaded.catch(() => cache.delete(id));
    const seen = [...(versions.get(file) ?? []), id];
    for (const old of seen.splice(0, Math.max(0, seen.length - KEEP_VERSIONS))) {
      const model = cache.get(old);
      cache.delete(old);
      void model?.then((m) => m.session.release()).catch(() => undefined);
    }
    versions.set(file, seen);
  }
  return loaded;
}

async function createModel(path: string, threads: number): Promise<LoadedModel> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new NightscoreError('MODEL_NOT_FOUND', `cannot read model ${path}: ${(err as Error).message}`, {
      source: path,
      hint: 'Check model.path in the job file; relative paths resolve against the job file.',
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
  try {
    metadata = readOnnxMetadata(bytes);
    featureNames = featureNamesOf(metadata);
  } catch (err) {
    throw notAModel((err as Error).message, err);
  }
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // Every native error also rejects the call, and nightscore reports it with a code; the
      // native log line would only repeat it, colourised, outside the JSON log on stderr.
      logSeverityLevel: 4,
    });
  } catch (err) {
    throw notAModel((err as Error).message.split('\n')[0] ?? 'unknown error', err);
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return { path, sha256, bytes: bytes.length, metadata, featureNames, session };
}

/** Drops cached sessions (tests that rewrite a model file in place). */
export async function releaseModels(): Promise<void> {
  const all = [...cache.values()];
  cache.clear();
  versions.clear();
  await Promise.all(all.map(async (m) => (await m.catch(() => undefined))?.session.release()));
}
