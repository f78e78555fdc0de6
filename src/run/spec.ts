/**
 * The frozen spec of a run: everything its chunks and its commit need, resolved once at plan
 * time from the job file and the model, as plain JSON. In the queue it travels in the run
 * job's data (RunSpec) and in every chunk job's (ChunkSpec); threads, workers and the commit
 * work from it and never read the job file or trust a model path again, so a run is scored
 * and committed as it was planned, whatever changed on disk since.
 */
import type { EngineIdentity } from '../engine/engine.js';
import type { InputBinding } from '../model/features.js';
import type { OutputColumns } from '../model/scorer.js';
import type { JobKey } from '../model/hints.js';
import type { ModelFile } from '../model/session.js';
import type { UnwrappedOutput } from '../model/zipmap.js';
import type { DriftPolicy } from '../drift/policy.js';
import type { ProfilePin } from '../drift/profile.js';
import type { ChunkPlan, InputObject, Segment } from './plan.js';
import type { ErrorRecord } from '../errors.js';
import type { CompareRule } from '../shadow/compare.js';

/**
 * What a model contributes to a run. The `champion` writes the parts and the rejects; the
 * `canary` writes the rows of the keys its split gives it (RunSpec.canary); a
 * `challenger:<name>` is scored in the same pass over the same batches, and what it gives is
 * counted, never written (see score-chunk.ts's stages). Each role appears once in a spec.
 */
export type ModelRole = 'champion' | 'canary' | `challenger:${string}`;

/** How a model pinned from the registry was named, and which version that resolved to. */
export interface RegistryPin {
  /** The reference as the job wrote it: models:/churn@champion. */
  ref: string;
  name: string;
  version: number;
  /** The alias it went through, if any. */
  alias: string | null;
  /** The instant an alias was read at (backfill --model-as-of); null: when the run was planned. */
  as_of: string | null;
}

/** A model pinned for a run: its files and hashes, how it is fed, and what it writes. */
export interface ModelSpec {
  role: ModelRole;
  /** The model as the job names it (its main file), resolved to an absolute path. */
  location: string;
  /** The model's identity over all its files (LoadedModel.sha256): in the manifest, the pin, metrics and part metadata. */
  sha256: string;
  /**
   * Every file the model is made of: the model file, then its external data files by name.
   * A thread binding the model checks `sha256`, which covers them all.
   */
  files: ModelFile[];
  /**
   * Every model input fed, with its element type and the columns that fill it, in order; and
   * the job key those columns came from, which errors name (absent in specs of earlier versions).
   */
  binding: { inputs: InputBinding[]; job_key?: JobKey };
  /** The outputs selected and the column names each becomes. */
  outputs: OutputColumns[];
  /**
   * Outputs scored from the tensor a ZipMap read, with its class labels in column order (the
   * rewrite follows from the model's bytes, so a thread loading the same sha256 does the same).
   */
  unwrapped?: UnwrappedOutput[];
  /**
   * The engine that scores the model, its version and its settings: part of the model's
   * identity, as its sha256 is. Each can change a tree ensemble's sums in their last bits
   * (`threads` too): the same model and data score identically only under the same engine.
   */
  engine: EngineIdentity;
  /** The tool that wrote the model (its producer_name), whose export fixes a hint names; absent in older specs. */
  producer?: string;
  /** The registry version this is, when the job named the model by a models:/ reference. */
  registry: RegistryPin | null;
}

export interface CsvReadSpec {
  delimiter: string;
  max_record_bytes: number;
  split: boolean;
}

export interface OutputSpec {
  /** The run's output folder, as a URI ending in `/`. */
  uri: string;
  /** The folder of the rejects files, a URI ending in `/`: `_rejects/` in the output folder, or output.rejects_uri. */
  rejects_uri: string;
  format: 'csv' | 'parquet';
  csv: { delimiter: string; escape_formulas: boolean };
  parquet: { codec: 'SNAPPY' | 'UNCOMPRESSED' };
}

/**
 * The shape of the specs this version writes and reads. A worker refuses a spec of another
 * version (QUEUE_JOB_OUTDATED) rather than score it by a guess: a field it does not know of
 * (input.missing) would be silently ignored. Raise it with every change to the shape.
 */
export const SPEC_VERSION = 8;

export interface RunSpec {
  version: number;
  job: { name: string; file: string };
  date: string;
  /** The attempt this spec was planned for (the manifest's `attempt`). */
  attempt: string;
  input: {
    uri: string;
    format: 'csv' | 'parquet';
    /** Columns copied to every prediction and reject row. */
    key: string[];
    csv: CsvReadSpec;
    /** The feature columns (of float inputs) whose missing values are scored as NaN (input.missing); a missing value of any other rejects its row. */
    missing: string[];
    /** The objects read, each with the version every read must find. */
    objects: InputObject[];
  };
  output: OutputSpec;
  /** Rows per inference call: the job's chunk.rows, a batch of a chunk. */
  batch: { rows: number };
  /** Input bytes per chunk: the job's chunk.bytes, by which the plan cut the day. */
  chunk: { bytes: number };
  limits: { max_reject_rate: number; min_rows: number };
  models: ModelSpec[];
  /** Drift against a reference profile, pinned by its sha256 as a model is; null when the job measures none. */
  drift: DriftSpec | null;
  /** The job's challengers and how they are compared with the champion; null when it names none. */
  shadow: ShadowSpec | null;
  /** The sticky canary's split (its model is the spec's model of role `canary`); null: none. */
  canary: CanarySpec | null;
  /** The job's price per CPU hour (cost:), for the manifest's cost block; null: none. */
  cost: { per_cpu_hour: number } | null;
}

/** Which rows the canary scores (shadow/canary.ts): the key's hash below `threshold` (decimal, of 2^64). */
export interface CanarySpec {
  fraction: number;
  salt: string;
  threshold: string;
  /** What the model_version column says of each model's rows. */
  labels: { champion: string; canary: string };
}

/** The challengers of a run (the job's `shadow` list) and what "agree" means. */
export interface ShadowSpec {
  compare: CompareRule;
  /**
   * Every challenger the job names, in its order: one that loaded is a model of the spec with
   * the role `challenger:<name>`; one that did not carries the error that kept it out, and the
   * run goes on without it.
   */
  challengers: Array<{ name: string; uri: string; error: ErrorRecord | null }>;
}

/** What a run compares its values with, and how it judges them (the job's drift block). */
export interface DriftSpec {
  profile: ProfilePin;
  policy: DriftPolicy;
  /**
   * drift.baseline: { previous: N }: the N dates to find, and the output folders of the dates
   * before this one to look in, newest first (from the job's layout, at plan time); null: the
   * reference alone.
   */
  previous: { dates: number; folders: Array<{ date: string; uri: string }> } | null;
  /** drift.segment: the column whose segments (fixed in the profile) are counted and reported too; null: none. */
  segment: string | null;
}

/** One chunk of a run, with what scoring it needs of the run's spec (not the run's whole input list). */
export interface ChunkSpec {
  version: number;
  run: { job: string; date: string; attempt: string };
  index: number;
  segments: Segment[];
  input: { format: 'csv' | 'parquet'; key: string[]; csv: CsvReadSpec; missing: string[] };
  output: OutputSpec;
  batch: { rows: number };
  /**
   * The reject limit, and the most rows the date can hold (null: unbounded, a gzip object):
   * a chunk whose own rejects already exceed the limit over that many rows fails at once.
   */
  limits: { max_reject_rate: number; rows_at_most: number | null };
  models: ModelSpec[];
  /** The profile whose bins the chunk counts its values on (the run's, pinned), and the column it segments them by (null: none); null: no drift. */
  drift: { profile: ProfilePin; segment: string | null } | null;
  /** How the chunk compares its challengers (the models of role challenger:<name>) with the champion; null: no challenger. */
  compare: CompareRule | null;
  /** The run's canary split; null: none. */
  canary: CanarySpec | null;
  /** Whether the chunk times each model's inference (a run with challengers, or a price per CPU hour). */
  timed: boolean;
}

/**
 * The most rows a date's objects can hold: a Parquet object's row count, a CSV object's bytes
 * over two (a record is at least one byte and its line end); null when one is gzip.
 */
export function rowsAtMost(objects: InputObject[]): number | null {
  let rows = 0;
  for (const o of objects) {
    if (o.rows !== undefined) rows += o.rows;
    else if (o.gzip) return null;
    else rows += Math.floor(o.bytes / 2) + 1;
  }
  return rows;
}

export function chunkSpec(spec: RunSpec, chunk: ChunkPlan): ChunkSpec {
  const { input } = spec;
  return {
    version: spec.version,
    run: { job: spec.job.name, date: spec.date, attempt: spec.attempt },
    index: chunk.index,
    segments: chunk.segments,
    input: { format: input.format, key: input.key, csv: input.csv, missing: input.missing },
    output: spec.output,
    batch: { rows: spec.batch.rows },
    limits: { max_reject_rate: spec.limits.max_reject_rate, rows_at_most: rowsAtMost(input.objects) },
    models: spec.models,
    drift: spec.drift ? { profile: spec.drift.profile, segment: spec.drift.segment } : null,
    compare: spec.shadow?.compare ?? null,
    canary: spec.canary,
    timed: spec.shadow !== null || spec.cost !== null,
  };
}

/** The name of a challenger's role: `challenger:<name>` → name; null for the champion. */
export function challengerName(role: ModelRole): string | null {
  return role.startsWith('challenger:') ? role.slice('challenger:'.length) : null;
}

/** The model whose predictions the parts hold. */
export function champion(spec: { models: ModelSpec[] }): ModelSpec {
  return spec.models.find((m) => m.role === 'champion')!;
}
