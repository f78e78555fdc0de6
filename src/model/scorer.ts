import type { EngineModel, Tensor, TensorData, TensorType, ValueInfo } from '../engine/engine.js';
import { NightscoreError } from '../errors.js';
import { jobKeyOf, nonTensorHint, runFailedHint, type JobKey } from './hints.js';
import { ELEMENT_TYPES, type ColumnValues, type ElementType, type FeatureBatch, type InputBinding } from './features.js';
import type { LoadedModel } from './session.js';
import { scoreBisecting, sliceBatch, type RowFailure, type RunRows } from './bisect.js';

export type { RowFailure } from './bisect.js';

/** One model output as it becomes output columns. */
export interface OutputColumns {
  output: string;
  type: TensorType;
  /** Column names: one for shape [N] or [N,1], C for shape [N,C]; none while the width is open (see Scorer.open). */
  names: string[];
}

/** One output's values for a batch, row-major: rows × names.length. */
export interface OutputValues {
  columns: OutputColumns;
  data: TensorData;
}

/**
 * The inference interface the rest of nightscore sees: a batch of column values in, output
 * column values out, over the engine's plain types (engine/engine.ts), so a chunk's stages and
 * a second engine need nothing else.
 */
export interface Scorer {
  /** The model inputs fed, each with its element type and columns. */
  inputs: InputBinding[];
  /** Every column read, in the order of the batch (featureColumns of `inputs`). */
  features: string[];
  outputs: OutputColumns[];
  /**
   * Outputs whose width neither the graph nor output.columns fixes: they have no names yet,
   * and `score` returns them whatever their width. `sized` gives the scorer once the first
   * real rows have shown it (see run/learn-widths.ts); no other scorer writes parts.
   */
  open: string[];
  /** This scorer with the open outputs' widths fixed, and their columns named (`<name>_<i>`, or the name alone for width 1). */
  sized(widths: Record<string, number>): Promise<Scorer>;
  /**
   * Scores a batch. A row the model fails on alone is not scored: it is in `failed`, and
   * `outputs` hold the other rows, in order. `onFailure` hears of each such row as it is
   * found and may throw to stop scoring (see bisect.ts).
   */
  score(batch: FeatureBatch, onFailure?: (failure: RowFailure) => void): Promise<ScoredBatch>;
  /** What to do about a model that fails on every row it is given: its exporter's fix and the job key that binds its columns. */
  runFailedHint: string;
}

/** A batch scored: the outputs of the rows that scored, in row order, and the rows the model failed on. */
export interface ScoredBatch {
  outputs: OutputValues[];
  failed: RowFailure[];
}

export interface ScorerOptions {
  /** model.features: the columns of the model's one input; falls back to the model's feature_names. */
  features?: string[];
  /** Input to feed the features to; needed only when the model has several. */
  input?: string;
  /** model.inputs: every model input and its columns (instead of features and input). */
  inputs?: Record<string, string[]>;
  /** Output name → column name(s); selects outputs too. */
  columns?: Record<string, string | string[]>;
  /** Key columns, to catch a prediction column that would shadow one. */
  keys?: string[];
  /** The job key the columns came from, named by hints; by default the one these options use (a thread binding a spec passes the job's). */
  jobKey?: JobKey;
  /** Widths of outputs the graph leaves open, learned from real rows. */
  widths?: Record<string, number>;
}

/**
 * Checks the model's signature against the job before any data is read, and returns a
 * scorer. Every mismatch (input names, element types, column counts, non-tensor outputs,
 * renames of the wrong width) is a clear error here rather than a failure on row one.
 */
export async function createScorer(model: LoadedModel, opts: ScorerOptions): Promise<Scorer> {
  const { session, path } = model;
  const inputs = opts.inputs ? bindInputs(session, opts.inputs, path) : [bindFeatures(session, model, opts)];
  const features = inputs.flatMap((i) => i.columns);
  const duplicate = features.find((c, i) => features.indexOf(c) !== i);
  if (duplicate !== undefined) {
    throw new NightscoreError('MODEL_SIGNATURE', `column "${duplicate}" is fed to the model twice (${inputs.filter((i) => i.columns.includes(duplicate)).map((i) => `input "${i.name}"`).join(', ')})`, {
      source: path,
      column: opts.inputs ? 'model.inputs' : 'model.features',
      hint: 'Name each column once; a model that reads one column in two inputs needs it upstream under two names.',
    });
  }
  const feed = tensorFeeds(inputs);
  const outputs = describeOutputs(model, opts.columns, opts.widths ?? {});
  const key = opts.jobKey ?? jobKeyOf(opts);
  const taken = new Set(opts.keys ?? []);
  for (const name of outputs.flatMap((o) => o.names)) {
    if (taken.has(name)) {
      throw new NightscoreError('OUTPUT_COLUMN_CLASH', `prediction column "${name}" would appear twice in the output (key or another output)`, {
        column: 'output.columns',
        hint: 'Rename it under output.columns.',
      });
    }
    taken.add(name);
  }
  const fetches = outputs.map((o) => o.output);
  const floats = inputs.reduce((n, i) => n + (i.type === 'float32' ? i.columns.length : 0), 0);
  return {
    inputs,
    features,
    outputs,
    open: outputs.filter((o) => o.names.length === 0).map((o) => o.output),
    sized: (widths) => createScorer(model, { ...opts, widths: { ...opts.widths, ...widths } }),
    runFailedHint: runFailedHint(model.metadata.producer, key),
    async score(batch, onFailure = () => undefined) {
      const run: RunRows = async (from, to) => {
        const part = from === 0 && to === batch.rows ? batch : sliceBatch(batch, from, to, floats);
        let result: Record<string, Tensor>;
        try {
          result = await session.run(feed(part), fetches);
        } catch (err) {
          return { failed: String((err as Error).message).split('\n')[0]! };
        }
        return outputs.map((columns) => checkRows(result[columns.output]!, columns, to - from, path));
      };
      const batchFailed = (rows: number, message: string) =>
        new NightscoreError('MODEL_RUN_FAILED', `${path} fails on ${rows} rows together but scores each half of them alone, so no row is at fault: ${message}`, { source: path, hint: runFailedHint(model.metadata.producer, key) });
      const { data, failed } = await scoreBisecting(batch.rows, run, onFailure, batchFailed);
      return { outputs: outputs.map((columns, o) => ({ columns, data: data[o] ?? [] })), failed };
    },
  };
}

/** The widths a scored batch of `rows` rows shows for the outputs that are open: what `Scorer.sized` takes. */
export function shownWidths(outputs: OutputValues[], rows: number): Record<string, number> {
  return Object.fromEntries(outputs.filter((o) => o.columns.names.length === 0).map((o) => [o.columns.output, o.data.length / rows]));
}

/** An output's value for a call of `rows` rows, checked to hold one row of columns per input row (of any width while it is open). */
function checkRows(value: Tensor, columns: OutputColumns, rows: number, path: string): Tensor {
  const open = columns.names.length === 0;
  if (open ? value.dims[0] !== rows || value.data.length % rows !== 0 : value.data.length !== rows * columns.names.length) {
    throw new NightscoreError('MODEL_OUTPUT_SHAPE', `output "${columns.output}" has shape [${value.dims.join(',')}] for ${rows} rows; expected [${rows}${columns.names.length > 1 ? `,${columns.names.length}` : ''}]`, {
      source: path,
      hint: 'nightscore needs one output row per input row; check the model export.',
    });
  }
  return value;
}

type TensorMeta = ValueInfo & { isTensor: true };

/** model.features: one input (the only one, or model.input), of any element type nightscore reads. */
function bindFeatures(session: EngineModel, model: LoadedModel, opts: ScorerOptions): InputBinding {
  const { path } = model;
  const columns = opts.features ?? model.featureNames;
  if (!columns) {
    throw new NightscoreError('MODEL_NO_FEATURES', `model.features is not set and ${path} has no feature_names metadata`, {
      source: path,
      column: 'model.features',
      hint: 'List the feature columns, in the order the model expects, under model.features.',
    });
  }
  const inputs = session.inputs;
  const names = inputs.map((i) => `"${i.name}"`).join(', ');
  const wanted = opts.input;
  const input = wanted === undefined ? (inputs.length === 1 ? inputs[0] : undefined) : inputs.find((i) => i.name === wanted);
  if (!input) {
    throw new NightscoreError('MODEL_SIGNATURE', wanted === undefined
      ? `${path} has ${inputs.length} inputs (${names}); model.features feeds one [rows, features] tensor`
      : `${path} has no input "${wanted}"; its inputs are ${names}`, {
      source: path,
      column: wanted === undefined ? 'model.features' : 'model.input',
      hint: wanted === undefined
        ? `Map every input to its columns under model.inputs, e.g. model.inputs: { ${inputs.slice(0, 2).map((i) => `${i.name}: [column, …]`).join(', ')} }.`
        : 'Set model.input to one of the model\'s inputs, or map every input to its columns under model.inputs.',
    });
  }
  const unfed = inputs.filter((i) => i !== input);
  if (unfed.length > 0) {
    throw new NightscoreError('MODEL_SIGNATURE', `${path} also has input${unfed.length > 1 ? 's' : ''} ${unfed.map((i) => `"${i.name}"`).join(', ')}, which model.features does not feed`, {
      source: path,
      column: 'model.inputs',
      hint: 'Map every input to its columns under model.inputs (instead of model.features and model.input).',
    });
  }
  return checkInput(input, columns, path, 'model.features');
}

/** model.inputs: every input of the model, and only those, each with its columns. */
function bindInputs(session: EngineModel, map: Record<string, string[]>, path: string): InputBinding[] {
  const inputs = session.inputs;
  const unknown = Object.keys(map).filter((name) => !inputs.some((i) => i.name === name));
  const unfed = inputs.filter((i) => !(i.name in map));
  if (unknown.length > 0 || unfed.length > 0) {
    throw new NightscoreError('MODEL_SIGNATURE', `model.inputs ${unknown.length > 0 ? `names ${unknown.map((n) => `"${n}"`).join(', ')}, which ${path} does not have` : `does not feed ${unfed.map((i) => `"${i.name}"`).join(', ')}`}; the model's inputs are ${inputs.map((i) => `"${i.name}" (${i.isTensor ? i.type : 'not a tensor'})`).join(', ')}`, {
      source: path,
      column: `model.inputs${unknown.length > 0 ? `.${unknown[0]}` : ''}`,
      hint: 'Give every model input, by its name in the model, the columns that fill it.',
    });
  }
  return inputs.map((input) => checkInput(input, map[input.name]!, path, `model.inputs.${input.name}`));
}

function checkInput(input: ValueInfo, columns: string[], path: string, key: string): InputBinding {
  if (!input.isTensor) {
    throw new NightscoreError('MODEL_SIGNATURE', `${path}: input "${input.name}" is not a tensor`, { source: path, column: key, hint: 'Re-export the model with tensor inputs.' });
  }
  const meta = input as TensorMeta;
  const type = meta.type as ElementType;
  if (!(ELEMENT_TYPES as readonly string[]).includes(type)) {
    throw new NightscoreError('MODEL_SIGNATURE', `${path}: input "${input.name}" takes ${meta.type}; nightscore reads ${ELEMENT_TYPES.join(', ')}`, {
      source: path,
      column: key,
      hint: 'Re-export the input with one of those element types (a Cast node in front of the graph does it).',
    });
  }
  const { shape } = meta;
  const [batch, width] = shape;
  // onnxruntime enforces a fixed dimension: such a model scores batches of exactly that many
  // rows, and nightscore's batches are chunk.rows long, with a shorter last one.
  if ((shape.length === 1 || shape.length === 2) && typeof batch === 'number' && batch > 0) {
    throw new NightscoreError('MODEL_FIXED_BATCH', `${path}: input "${input.name}" has a fixed batch dimension of ${batch} rows ([${shape.join(', ')}]); nightscore feeds batches of any number of rows`, {
      source: path,
      column: 'model.path',
      hint: 'Re-export the model with a dynamic batch dimension: torch.onnx.export(..., dynamic_shapes={"x": {0: "N"}}) (or dynamic_axes={"input": {0: "N"}}), skl2onnx FloatTensorType([None, n_features]).',
    });
  }
  const fits = shape.length === 0 || (shape.length === 2 && (typeof width !== 'number' || width === columns.length)) || (shape.length === 1 && columns.length === 1);
  if (!fits) {
    throw new NightscoreError('MODEL_SIGNATURE', `${path}: input "${input.name}" has shape [${shape.join(', ')}], but ${key === 'model.features' ? `the job has ${columns.length} features` : `${key} names ${columns.length} column${columns.length === 1 ? '' : 's'}`}; expected [N, ${columns.length}]${columns.length === 1 ? ' or [N]' : ''}`, {
      source: path,
      column: key,
      hint: `${key} must list exactly the columns the model was trained on for this input, in order.`,
    });
  }
  return { name: input.name, type, columns, rank: shape.length === 1 ? 1 : 2 };
}

/**
 * How a batch becomes the model's feeds. The common case, one float32 input, is the batch's
 * float32 block itself; any other input is gathered from its columns.
 */
function tensorFeeds(inputs: InputBinding[]): (batch: FeatureBatch) => Record<string, Tensor> {
  const floatCount = inputs.reduce((n, i) => n + (i.type === 'float32' ? i.columns.length : 0), 0);
  let column = 0;
  let slot = 0;
  const plans = inputs.map((input) => {
    const first = column;
    const firstSlot = slot;
    column += input.columns.length;
    if (input.type === 'float32') slot += input.columns.length;
    return { input, first, firstSlot, whole: input.type === 'float32' && input.columns.length === floatCount };
  });
  return (batch) => {
    const { rows } = batch;
    const feeds: Record<string, Tensor> = {};
    for (const { input, first, firstSlot, whole } of plans) {
      const width = input.columns.length;
      const dims = input.rank === 1 ? [rows] : [rows, width];
      if (input.type === 'float32') {
        feeds[input.name] = { type: 'float32', data: whole ? batch.features : gatherFloats(batch.features, rows, floatCount, firstSlot, width), dims };
        continue;
      }
      const own = batch.columns.slice(first, first + width) as ColumnValues[];
      feeds[input.name] = { type: input.type, data: width === 1 ? head(own[0]!, rows) : interleave(own, rows), dims };
    }
    return feeds;
  };
}

/** Columns [from, from + width) of a rows × stride float32 block, as their own block. */
function gatherFloats(block: Float32Array, rows: number, stride: number, from: number, width: number): Float32Array {
  const out = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) out.set(block.subarray(r * stride + from, r * stride + from + width), r * width);
  return out;
}

function head(values: ColumnValues, rows: number): ColumnValues {
  return Array.isArray(values) ? values.slice(0, rows) : values.subarray(0, rows);
}

/** Columns side by side, row-major. */
function interleave(columns: ColumnValues[], rows: number): ColumnValues {
  const width = columns.length;
  const first = columns[0]!;
  const out: ColumnValues = Array.isArray(first) ? new Array<string>(rows * width) : new (first.constructor as new (n: number) => Exclude<ColumnValues, string[]>)(rows * width);
  columns.forEach((values, c) => {
    for (let r = 0; r < rows; r++) out[r * width + c] = values[r] as never;
  });
  return out;
}

/**
 * The selected outputs and their columns, from the graph's declared shapes as onnxruntime
 * resolved them (it fills a width its shape inference knows, such as a Gather's embedding
 * size, into a symbolic one). No row is run: a made-up row of zeros and empty strings is
 * a value some models refuse (a OneHotEncoder that errors on an unknown category), and
 * such a model scores every real row.
 */
function describeOutputs(model: LoadedModel, columns: Record<string, string | string[]> | undefined, widths: Record<string, number>): OutputColumns[] {
  const { session, path } = model;
  const meta = session.outputs;
  const all = meta.map((o) => `"${o.name}"`).join(', ');
  const selected = columns ? Object.keys(columns) : meta.map((o) => o.name);
  return selected.map((name) => {
    const m = meta.find((o) => o.name === name);
    if (!m) {
      throw new NightscoreError('OUTPUT_UNKNOWN', `output.columns names "${name}", but ${path} has outputs ${all}`, {
        column: `output.columns.${name}`,
        hint: 'Use the model\'s output names as the keys of output.columns.',
      });
    }
    if (!m.isTensor) {
      const tensors = meta.filter((o) => o.isTensor).map((o) => o.name);
      throw new NightscoreError('MODEL_NON_TENSOR_OUTPUT', `${path}: output "${name}" is not a tensor (a sequence or map), so it cannot become columns`, {
        source: path,
        column: `output.columns.${name}`,
        hint: nonTensorHint(model.metadata.producer, tensors),
      });
    }
    const { type, shape } = m as TensorMeta;
    const labels = model.unwrapped.find((u) => u.output === name)?.labels;
    const width = staticWidth(shape) ?? labels?.length ?? namedWidth(columns?.[name]) ?? widths[name];
    return { output: name, type, names: width === undefined ? [] : columnNames(name, width, columns?.[name], path, labels) };
  });
}

/** Columns per row of an output of this shape: 1 for [N] (or a declared scalar, which each batch's check holds to one value per row), undefined when a dimension after the first is not fixed. */
function staticWidth(shape: ReadonlyArray<number | string>): number | undefined {
  const rest = shape.slice(1);
  if (rest.some((d) => typeof d !== 'number' || d < 0)) return undefined;
  return (rest as number[]).reduce((a, b) => a * b, 1);
}

/**
 * An output whose width the graph leaves open takes the width of a list of names under
 * output.columns (every batch's output is checked against it); one name is a prefix, and
 * the width is then learned from the first real rows, never from made-up values.
 */
function namedWidth(rename: string | string[] | undefined): number | undefined {
  return Array.isArray(rename) && rename.length > 0 ? rename.length : undefined;
}

/**
 * An output's column names: the job's (a list of `width`, or one used as a prefix), or the
 * output's name; `_<label>` after a prefix for a ZipMap's class labels, `_<index>` otherwise.
 */
function columnNames(output: string, width: number, rename: string | string[] | undefined, path: string, labels?: string[]): string[] {
  if (labels && labels.length !== width) {
    throw new NightscoreError('MODEL_OUTPUT_SHAPE', `output "${output}" of ${path} has ${width} values per row, but its ZipMap names ${labels.length} classes`, {
      source: path,
      hint: 'The ZipMap\'s class labels must match the columns of the tensor it reads; check the model export.',
    });
  }
  const names = rename === undefined ? [output] : Array.isArray(rename) ? rename : [rename];
  if (names.length === width && (rename !== undefined || !labels)) return names;
  const suffixes = labels && labelsAsNames(labels) ? labels : Array.from({ length: width }, (_, i) => String(i));
  if (names.length === 1 && (width > 1 || labels)) return suffixes.map((s) => `${names[0]}_${s}`);
  throw new NightscoreError('OUTPUT_COLUMNS_WIDTH', `output.columns.${output} names ${names.length} columns, but output "${output}" of ${path} has ${width} per row`, {
    column: `output.columns.${output}`,
    hint: `Give one name (used as a prefix) or exactly ${width} names.`,
  });
}

/**
 * Whether class labels can end column names: each non-empty, free of control characters,
 * and distinct. Otherwise the columns are numbered, in the labels' order (the manifest lists them).
 */
function labelsAsNames(labels: string[]): boolean {
  // eslint-disable-next-line no-control-regex
  return labels.every((l) => l.length > 0 && !/[\u0000-\u001f\u007f]/.test(l)) && new Set(labels).size === labels.length;
}
