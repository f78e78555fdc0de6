import * as ort from 'onnxruntime-node';
import { NightscoreError } from '../errors.js';
import type { LoadedModel } from './session.js';

/** One model output as it becomes output columns. */
export interface OutputColumns {
  output: string;
  type: ort.Tensor.Type;
  /** Column names: one for shape [N] or [N,1], C for shape [N,C]. */
  names: string[];
}

/** One output's values for a batch, row-major: rows × names.length. */
export interface OutputValues {
  columns: OutputColumns;
  data: ort.Tensor['data'];
}

/**
 * The inference interface the rest of nightscore sees: float32 rows in, column values out.
 * Keeping it this small lets the queue move inference off the event loop later.
 */
export interface Scorer {
  features: string[];
  inputName: string;
  outputs: OutputColumns[];
  score(features: Float32Array, rows: number): Promise<OutputValues[]>;
}

export interface ScorerOptions {
  /** Feature columns from the job; falls back to the model's feature_names. */
  features?: string[];
  /** Input to feed; needed only when the model has several. */
  input?: string;
  /** Output name → column name(s); selects outputs too. */
  columns?: Record<string, string | string[]>;
  /** Key columns, to catch a prediction column that would shadow one. */
  keys?: string[];
}

/**
 * Checks the model's signature against the job before any data is read, and returns a
 * scorer. Every mismatch (input name, element type, feature count, non-tensor output,
 * rename of the wrong width) is a clear error here rather than a failure on row one.
 */
export async function createScorer(model: LoadedModel, opts: ScorerOptions): Promise<Scorer> {
  const { session, path } = model;
  const features = opts.features ?? model.featureNames;
  if (!features) {
    throw new NightscoreError('MODEL_NO_FEATURES', `model.features is not set and ${path} has no feature_names metadata`, {
      source: path,
      column: 'model.features',
      hint: 'List the feature columns, in the order the model expects, under model.features.',
    });
  }
  const input = pickInput(session, opts.input, path);
  checkInput(input, features.length, path);
  const outputs = await describeOutputs(session, features.length, input.name, opts.columns, path);
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
  return {
    features,
    inputName: input.name,
    outputs,
    async score(data, rows) {
      const tensor = new ort.Tensor('float32', data, [rows, features.length]);
      const result = await session.run({ [input.name]: tensor }, fetches).catch((err: unknown) => {
        // The model ran on the one-row probe: a batch it refuses is the model's (or the
        // batch size's) doing, and the same batch fails the same way on every try.
        throw new NightscoreError('MODEL_RUN_FAILED', `${path}: onnxruntime failed on a batch of ${rows} rows: ${String((err as Error).message).split('\n')[0]}`, {
          source: path,
          hint: 'The model runs on one row but not on this batch: export it with a dynamic batch dimension [N, features] (torch.onnx.export dynamic_axes), or, if it ran out of memory, lower chunk.rows.',
          cause: err,
        });
      });
      return outputs.map((columns) => {
        const value = result[columns.output] as ort.Tensor;
        if (value.data.length !== rows * columns.names.length) {
          throw new NightscoreError('MODEL_OUTPUT_SHAPE', `output "${columns.output}" has shape [${value.dims.join(',')}] for ${rows} rows; expected [${rows}${columns.names.length > 1 ? `,${columns.names.length}` : ''}]`, {
            source: path,
            hint: 'nightscore needs one output row per input row; check the model export.',
          });
        }
        return { columns, data: value.data };
      });
    },
  };
}

type TensorMeta = ort.InferenceSession.ValueMetadata & { isTensor: true };

function pickInput(session: ort.InferenceSession, wanted: string | undefined, path: string): TensorMeta {
  const inputs = session.inputMetadata;
  const names = inputs.map((i) => `"${i.name}"`).join(', ');
  const input = wanted === undefined ? (inputs.length === 1 ? inputs[0] : undefined) : inputs.find((i) => i.name === wanted);
  if (!input) {
    throw new NightscoreError('MODEL_SIGNATURE', wanted === undefined
      ? `${path} has ${inputs.length} inputs (${names}); nightscore feeds one [rows, features] tensor`
      : `${path} has no input "${wanted}"; its inputs are ${names}`, {
      source: path,
      column: 'model.input',
      hint: 'Set model.input to the input that takes the feature matrix, or re-export the model with a single float input.',
    });
  }
  if (!input.isTensor) {
    throw new NightscoreError('MODEL_SIGNATURE', `${path}: input "${input.name}" is not a tensor`, { source: path, hint: 'Re-export the model with a float tensor input.' });
  }
  return input;
}

function checkInput(input: TensorMeta, featureCount: number, path: string): void {
  if (input.type !== 'float32') {
    throw new NightscoreError('MODEL_SIGNATURE', `${path}: input "${input.name}" takes ${input.type}; nightscore feeds float32`, {
      source: path,
      hint: 'Re-export with a float input, e.g. skl2onnx initial_types=[("input", FloatTensorType([None, n_features]))].',
    });
  }
  const { shape } = input;
  const [batch, width] = shape;
  // onnxruntime enforces a fixed dimension: such a model scores batches of exactly that many
  // rows, and nightscore's batches are chunk.rows long, with a shorter last one.
  if (shape.length === 2 && typeof batch === 'number' && batch > 0) {
    throw new NightscoreError('MODEL_FIXED_BATCH', `${path}: input "${input.name}" has a fixed batch dimension of ${batch} rows ([${shape.join(', ')}]); nightscore feeds batches of any number of rows`, {
      source: path,
      column: 'model.path',
      hint: 'Re-export the model with a dynamic batch dimension: torch.onnx.export(..., dynamic_shapes={"x": {0: "N"}}) (or dynamic_axes={"input": {0: "N"}}), skl2onnx FloatTensorType([None, n_features]).',
    });
  }
  if (shape.length !== 0 && (shape.length !== 2 || (typeof width === 'number' && width !== featureCount))) {
    throw new NightscoreError('MODEL_SIGNATURE', `${path}: input "${input.name}" has shape [${shape.join(', ')}], but the job has ${featureCount} features; expected [N, ${featureCount}]`, {
      source: path,
      column: 'model.features',
      hint: 'model.features (or the model\'s feature_names) must list exactly the columns the model was trained on, in order.',
    });
  }
}

async function describeOutputs(
  session: ort.InferenceSession,
  featureCount: number,
  inputName: string,
  columns: Record<string, string | string[]> | undefined,
  path: string,
): Promise<OutputColumns[]> {
  const meta = session.outputMetadata;
  const all = meta.map((o) => `"${o.name}"`).join(', ');
  const selected = columns ? Object.keys(columns) : meta.map((o) => o.name);
  for (const name of selected) {
    const m = meta.find((o) => o.name === name);
    if (!m) {
      throw new NightscoreError('OUTPUT_UNKNOWN', `output.columns names "${name}", but ${path} has outputs ${all}`, {
        column: `output.columns.${name}`,
        hint: 'Use the model\'s output names as the keys of output.columns.',
      });
    }
    if (!m.isTensor) {
      const tensors = meta.filter((o) => o.isTensor).map((o) => o.name);
      throw new NightscoreError('MODEL_NON_TENSOR_OUTPUT', `${path}: output "${name}" is not a tensor (scikit-learn's ZipMap returns a list of maps), so it cannot become columns`, {
        source: path,
        column: `output.columns.${name}`,
        hint: `Re-export with skl2onnx options={"zipmap": False}${tensors.length ? `, or select only tensor outputs: output.columns: { ${tensors.map((t) => `${t}: ${t}`).join(', ')} }` : ''}.`,
      });
    }
  }
  // One zero row through the model finds each output's width (often symbolic in the
  // metadata) and proves the session runs before any data is read.
  // A graph whose declared input passes the checks above can still refuse [1, features]
  // (a symbolic width the weights contradict): that is the model's signature, not a bug.
  const probe = await session.run({ [inputName]: new ort.Tensor('float32', new Float32Array(featureCount), [1, featureCount]) }, selected).catch((err: unknown) => {
    throw new NightscoreError('MODEL_SIGNATURE', `${path}: the model does not run on one row of ${featureCount} float32 features: ${String((err as Error).message).split('\n')[0]}`, {
      source: path,
      column: 'model.features',
      hint: 'model.features (or the model\'s feature_names) must list exactly the columns the model was trained on, in order; check the model\'s input shape with onnx.checker or Netron.',
      cause: err,
    });
  });
  return selected.map((name) => {
    const value = probe[name] as ort.Tensor;
    const width = value.dims.length <= 1 ? 1 : value.dims.slice(1).reduce((a, b) => a * b, 1);
    return { output: name, type: value.type, names: columnNames(name, width, columns?.[name], path) };
  });
}

function columnNames(output: string, width: number, rename: string | string[] | undefined, path: string): string[] {
  const names = rename === undefined ? [output] : Array.isArray(rename) ? rename : [rename];
  if (rename === undefined && width > 1) return Array.from({ length: width }, (_, i) => `${output}_${i}`);
  if (names.length === width) return names;
  if (names.length === 1 && width > 1) return Array.from({ length: width }, (_, i) => `${names[0]}_${i}`);
  throw new NightscoreError('OUTPUT_COLUMNS_WIDTH', `output.columns.${output} names ${names.length} columns, but output "${output}" of ${path} has ${width} per row`, {
    column: `output.columns.${output}`,
    hint: `Give one name (used as a prefix) or exactly ${width} names.`,
  });
}
