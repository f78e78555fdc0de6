/**
 * Counting a batch into a profile's bins: the values the model read (the rows it scored, not
 * the ones it failed on) and the predictions it wrote. One counter per chunk; its result is
 * plain counts with an exact merge (counts.ts), so a run's counts are the same bytes however
 * its chunks were spread over workers. A profile build counts its reference with the same
 * counter, so a reference and a run are counted alike.
 */
import { NightscoreError } from '../errors.js';
import type { TensorData, TensorType } from '../engine/engine.js';
import { float16Value } from '../formats/numbers.js';
import { float32Offsets, type FeatureBatch, type FeatureColumn } from '../model/features.js';
import type { OutputColumns, OutputValues } from '../model/scorer.js';
import { ColumnCounter, type ColumnCounts } from './counts.js';
import { columnKey, type Profile, type ProfileColumn } from './profile.js';

/** Where a feature's values sit in a batch. */
interface FeatureSlot {
  counter: ColumnCounter;
  /** The column's index among the batch's columns. */
  index: number;
  /** Its offset among the float32 columns (the row-major block), or -1 for a column with an array of its own. */
  float32: number;
  type: FeatureColumn['type'];
}

/** Where a prediction column's values sit in a scored batch. */
interface OutputSlot {
  counter: ColumnCounter;
  /** The output's index among the scored outputs, and the column's within it. */
  output: number;
  column: number;
  width: number;
  type: TensorType;
}

/** The columns of a model a profile must cover: the features it reads, and the prediction columns it writes. */
export interface ProfiledModel {
  columns: readonly FeatureColumn[];
  outputs: readonly OutputColumns[];
}

export class ProfileCounter {
  private readonly features: FeatureSlot[] = [];
  private readonly outputs: OutputSlot[] = [];
  private readonly counters = new Map<string, ColumnCounter>();

  constructor(profile: Pick<Profile, 'columns'>, model: ProfiledModel) {
    const byKey = new Map(profile.columns.map((c) => [columnKey(c), c]));
    const float32 = float32Offsets(model.columns);
    model.columns.forEach((c, index) => {
      const counter = this.counterFor(byKey.get(columnKey({ role: 'feature', name: c.name })), c.name, 'feature');
      this.features.push({ counter, index, float32: float32[index]!, type: c.type });
    });
    model.outputs.forEach((o, output) =>
      o.names.forEach((name, column) => {
        const counter = this.counterFor(byKey.get(columnKey({ role: 'prediction', name })), name, 'prediction');
        this.outputs.push({ counter, output, column, width: o.names.length, type: o.type });
      }),
    );
  }

  private counterFor(column: ProfileColumn | undefined, name: string, role: ProfileColumn['role']): ColumnCounter {
    if (!column) {
      // Checked at plan time (checkProfileFits): a thread that meets this was handed a spec and a profile that do not belong together.
      throw new NightscoreError('PROFILE_MISMATCH', `the drift profile has no ${role} column "${name}"`, { column: name, hint: 'Build the profile again with this model: nightscore profile build.' });
    }
    const counter = new ColumnCounter(column.bins);
    this.counters.set(columnKey(column), counter);
    return counter;
  }

  /**
   * Counts a scored batch: every column's value in each row the model scored (rows in
   * `failed`, ascending, are rejects and not counted), and the prediction columns of `scored`,
   * which hold those rows only, in order.
   */
  add(batch: FeatureBatch, failed: readonly number[], scored: readonly OutputValues[]): void {
    const nf = batch.columns.reduce((n, c) => n + (c === undefined ? 1 : 0), 0);
    for (const slot of this.features) {
      const values = batch.columns[slot.index];
      if (values === undefined) {
        slot.counter.addFloat32Column(batch.features, { stride: nf, offset: slot.float32, rows: batch.rows, skip: failed, nanIsMissing: true });
        continue;
      }
      let skip = 0;
      for (let r = 0; r < batch.rows; r++) {
        if (skip < failed.length && failed[skip] === r) {
          skip++;
          continue;
        }
        if (Array.isArray(values)) slot.counter.addString(values[r] ?? null);
        else if (slot.type === 'float16') countFeature(slot.counter, float16Value((values as Uint16Array)[r]!));
        else if (values instanceof BigInt64Array) slot.counter.addNumber(Number(values[r]!));
        else countFeature(slot.counter, (values as Float64Array | Int32Array | Uint8Array)[r]!);
      }
    }
    const rows = batch.rows - failed.length;
    for (const slot of this.outputs) countOutput(slot, scored[slot.output]!.data, rows);
  }

  /** The counts so far, by column key, in key order. */
  result(): Record<string, ColumnCounts> {
    return Object.fromEntries([...this.counters.keys()].sort().map((k) => [k, this.counters.get(k)!.result()]));
  }
}

/** A feature's NaN is how a missing value reaches the model (input.missing): counted as missing. */
function countFeature(counter: ColumnCounter, x: number): void {
  counter.addNumber(Number.isNaN(x) ? null : x);
}

function countOutput(slot: OutputSlot, data: TensorData, rows: number): void {
  const { counter, column, width, type } = slot;
  if (data instanceof Float32Array) {
    counter.addFloat32Column(data, { stride: width, offset: column, rows, skip: [], nanIsMissing: false });
    return;
  }
  for (let r = 0, at = column; r < rows; r++, at += width) {
    if (Array.isArray(data)) counter.addString(data[at] ?? null);
    else if (data instanceof BigInt64Array || data instanceof BigUint64Array) counter.addString(String(data[at]!));
    else if (type === 'float16') counter.addNumber(float16Value((data as Uint16Array)[at]!));
    else counter.addNumber((data as ArrayLike<number>)[at]!);
  }
}

/**
 * Checks that a profile belongs to a model: built with its sha256, and covering every column
 * it reads and every prediction column it writes. At plan time, so that a profile of another
 * model is refused before any row is read, not mid-run.
 */
export function checkProfileFits(profile: Profile, uri: string, model: { sha256: string } & ProfiledModel): void {
  if (profile.model.sha256 !== model.sha256) {
    throw new NightscoreError('PROFILE_MISMATCH', `the drift profile ${uri} was built for the model with sha256 ${profile.model.sha256}; this run's model is ${model.sha256}`, {
      source: uri,
      hint: 'Build a profile for this model version (nightscore profile build <job.yaml> <reference data>), or name the profile built for it.',
    });
  }
  const keys = new Set(profile.columns.map(columnKey));
  const wanted = [...model.columns.map((c) => ({ role: 'feature' as const, name: c.name })), ...model.outputs.flatMap((o) => o.names.map((name) => ({ role: 'prediction' as const, name })))];
  const missing = wanted.filter((c) => !keys.has(columnKey(c)));
  if (missing.length > 0) {
    throw new NightscoreError('PROFILE_MISMATCH', `the drift profile ${uri} has no ${missing.map((c) => `${c.role} column "${c.name}"`).join(', ')}`, {
      source: uri,
      column: missing[0]!.name,
      hint: 'Build the profile with the job the runs use (the same model.features or model.inputs, and output.columns).',
    });
  }
}
