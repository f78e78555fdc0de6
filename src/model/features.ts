/**
 * What a model is fed, as plain data: its inputs with their element types and the columns
 * each is made of, and the batch of values the readers fill for them. The readers (formats/)
 * parse and check a value for its column's type; the scorer turns a batch into tensors.
 */
import type { JobKey } from './hints.js';

/** The tensor element types nightscore reads values for (onnxruntime's names). */
export const ELEMENT_TYPES = ['float32', 'float64', 'float16', 'int64', 'int32', 'bool', 'string'] as const;
export type ElementType = (typeof ELEMENT_TYPES)[number];

/** Float types take NaN, so only their missing values can be fed to the model (input.missing). */
export function takesNan(type: ElementType): boolean {
  return type === 'float32' || type === 'float64' || type === 'float16';
}

/**
 * Where the job's feature columns are named: its model.features, its model.inputs, or (when it
 * sets neither) the model's feature_names metadata. Errors about a feature column name it.
 */

/** The hint of a feature column the input lacks: fix what named it (unknown: a spec from an older nightscore). */
export function missingFeatureHint(namedBy: JobKey | undefined): string {
  if (namedBy === 'feature_names') return "The model's feature_names metadata names it (the job sets neither model.features nor model.inputs): name the input's columns with model.features, or fix the upstream export.";
  return `Fix ${namedBy ?? 'model.features (or model.inputs)'} in the job file, or the upstream export.`;
}

/** One model input and the columns that fill it, in order. */
export interface InputBinding {
  name: string;
  type: ElementType;
  columns: string[];
  /**
   * Dimensions of the tensor: 2 for [rows, columns] (the usual), 1 for [rows] (an input of
   * one column declared without its second axis).
   */
  rank: 1 | 2;
}

/** A column the model reads: its name, its input's element type, and whether a missing value is fed as NaN. */
export interface FeatureColumn {
  name: string;
  type: ElementType;
  missing: boolean;
}

/** The values of one column that is not float32, a row per index. */
export type ColumnValues = Float64Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array | string[];

/**
 * A batch's feature values. float32 columns (the common case: one float input) sit side by
 * side in one row-major block, which is the tensor itself when they are its only input;
 * every other column has an array of its own.
 */
export interface FeatureBatch {
  rows: number;
  /** The float32 columns: rows × their count, row-major, in column order. */
  features: Float32Array;
  /** Per column (in column order): its values (the first `rows` of them), or undefined for a float32 column. */
  columns: (ColumnValues | undefined)[];
}

/**
 * Each column's offset among the float32 columns, which sit side by side in a batch's one
 * row-major block (FeatureBatch.features), or -1 for a column with an array of its own.
 */
export function float32Offsets(columns: readonly FeatureColumn[]): number[] {
  let next = 0;
  return columns.map((c) => (c.type === 'float32' ? next++ : -1));
}

/**
 * A batch of the columns `from` as a batch of the columns `to`, each of which is among `from`
 * with the same type (checked when the challenger was planned): how a challenger that reads
 * other columns, or the same in another order, is fed from the champion's batches. The batch
 * itself when the columns are the same.
 */
export function projection(from: readonly FeatureColumn[], to: readonly FeatureColumn[]): (batch: FeatureBatch) => FeatureBatch {
  if (to.length === from.length && to.every((c, i) => c.name === from[i]!.name)) return (batch) => batch;
  const source = to.map((c) => from.findIndex((f) => f.name === c.name));
  const fromSlots = float32Offsets(from);
  const toSlots = float32Offsets(to);
  const strideFrom = fromSlots.filter((s) => s >= 0).length;
  const strideTo = toSlots.filter((s) => s >= 0).length;
  const gathers = to.flatMap((c, j) => (c.type === 'float32' ? [[toSlots[j]!, fromSlots[source[j]!]!] as const] : []));
  return (batch) => {
    const { rows } = batch;
    const features = new Float32Array(rows * strideTo);
    for (const [t, s] of gathers) {
      for (let r = 0; r < rows; r++) features[r * strideTo + t] = batch.features[r * strideFrom + s]!;
    }
    return { rows, features, columns: to.map((c, j) => (c.type === 'float32' ? undefined : batch.columns[source[j]!])) };
  };
}

/** Every column of the bound inputs, in input then column order: the order of FeatureBatch. */
export function featureColumns(inputs: InputBinding[], missing: readonly string[]): FeatureColumn[] {
  return inputs.flatMap((input) => input.columns.map((name) => ({ name, type: input.type, missing: takesNan(input.type) && missing.includes(name) })));
}

/** An empty array for a column of `type`, room for `rows`. */
export function columnValues(type: Exclude<ElementType, 'float32'>, rows: number): ColumnValues {
  switch (type) {
    case 'float64':
      return new Float64Array(rows);
    case 'float16':
      return new Uint16Array(rows);
    case 'int64':
      return new BigInt64Array(rows);
    case 'int32':
      return new Int32Array(rows);
    case 'bool':
      return new Uint8Array(rows);
    case 'string':
      return new Array<string>(rows).fill('');
  }
}
