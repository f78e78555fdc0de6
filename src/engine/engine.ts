/**
 * The inference engine seam: what nightscore needs of the library that runs a model's graph,
 * in its own plain types. A model's bytes go in (after nightscore's own rewrites, see
 * model/zipmap.ts), its signature and a `run` over typed arrays come out. onnxruntime
 * (engine/onnxruntime.ts) is the one implementation, and the only module that imports it.
 *
 * The engine is part of a model's identity: the same graph may score differently in its last
 * bits under another engine version or other settings, so a run records all three (ModelSpec.engine).
 */

/** Tensor element types, by ONNX's names as onnxruntime spells them. */
export type TensorType =
  | 'float32' | 'float64' | 'float16'
  | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'int4' | 'uint4'
  | 'bool' | 'string';

/** A tensor's values, row-major: float16 as its bits (Uint16Array), bool as 0/1 bytes, 4-bit integers one per byte. */
export type TensorData =
  | Float32Array | Float64Array
  | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array
  | string[];

/** A tensor fed to or given by a model. */
export interface Tensor {
  type: TensorType;
  data: TensorData;
  dims: readonly number[];
}

/** A model input or output as its graph declares it: a tensor (a dimension is a number, or a symbol when open), or a sequence or map. */
export type ValueInfo =
  | { name: string; isTensor: true; type: TensorType; shape: ReadonlyArray<number | string> }
  | { name: string; isTensor: false };

/** How an engine runs a model; each setting can change the last bits of a sum. */
export interface EngineSettings {
  /** Intra-op threads: nightscore parallelises across chunks, so each model gets few. */
  threads: number;
}

/** The engine a model scores under, as a run records it: part of the model's identity. */
export interface EngineIdentity extends EngineSettings {
  name: string;
  version: string;
}

/** A model loaded into an engine. */
export interface EngineModel {
  inputs: readonly ValueInfo[];
  outputs: readonly ValueInfo[];
  /** The `fetches` outputs (every output when absent) for these feeds; rejects with the engine's error. */
  run(feeds: Record<string, Tensor>, fetches?: readonly string[]): Promise<Record<string, Tensor>>;
  /** Frees the model; a run after it rejects. */
  release(): Promise<void>;
}

export interface LoadSettings extends EngineSettings {
  /** The folder the graph's external data files are read from (the graph comes as bytes, with no folder of its own). */
  externalData?: string;
}

export interface Engine {
  name: string;
  version: string;
  /** The model of these graph bytes; rejects with the engine's error when it cannot be loaded. */
  load(graph: Uint8Array, settings: LoadSettings): Promise<EngineModel>;
  /**
   * Resolves once no load or run of this engine is in flight, those started meanwhile
   * included. A thread is stopped only then: a native call that ends on a thread being torn
   * down can abort the whole process (onnxruntime-node does, with "terminate called after
   * throwing an instance of 'Napi::Error'").
   */
  settled(): Promise<void>;
}

/** The identity a model loaded by `engine` with `settings` scores under. */
export function engineIdentity(engine: Engine, settings: EngineSettings): EngineIdentity {
  return { name: engine.name, version: engine.version, threads: settings.threads };
}

/** An engine identity in words: "onnxruntime 1.30.0, 1 thread". */
export function describeEngine(e: EngineIdentity): string {
  return `${e.name} ${e.version}, ${e.threads} thread${e.threads === 1 ? '' : 's'}`;
}

/** Whether two identities score alike: the same engine, version and settings. */
export function sameEngine(a: EngineIdentity, b: EngineIdentity): boolean {
  return a.name === b.name && a.version === b.version && a.threads === b.threads;
}
