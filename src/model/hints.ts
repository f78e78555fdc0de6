/**
 * What a model error tells the user to do, in the words of the tool that exported the model
 * (its producer_name) and of the job key that binds its columns. A hint that names
 * scikit-learn's option to a CatBoost user, or model.features to a job written with
 * model.inputs, points the wrong way.
 */

/** Where a job's columns for the model come from. */
export type JobKey = 'model.features' | 'model.inputs' | 'feature_names';

export type Exporter = 'skl2onnx' | 'onnxmltools' | 'catboost' | 'torch' | 'tf2onnx';

/** The exporter a model's producer_name names, if nightscore knows it. */
export function exporterOf(producer: string | undefined): Exporter | undefined {
  const p = (producer ?? '').toLowerCase();
  if (p.includes('skl2onnx')) return 'skl2onnx';
  if (p.includes('onnxmltools')) return 'onnxmltools';
  if (p.includes('catboost')) return 'catboost';
  if (p.includes('pytorch') || p.includes('torch')) return 'torch';
  if (p.includes('tf2onnx')) return 'tf2onnx';
  return undefined;
}

/** The key a job binds its columns with, as ScorerOptions give it. */
export function jobKeyOf(opts: { inputs?: unknown; features?: unknown }): JobKey {
  return opts.inputs ? 'model.inputs' : opts.features ? 'model.features' : 'feature_names';
}

/** The key named as the place to fix the columns. */
export function keyToFix(key: JobKey): string {
  return key === 'feature_names' ? "the model's feature_names (or model.features, which overrides them)" : key;
}

const NO_ZIPMAP: Record<Exporter, string | undefined> = {
  skl2onnx: 'skl2onnx: to_onnx(model, X, options={id(model): {"zipmap": False}})',
  onnxmltools: 'onnxmltools: convert_lightgbm(model, initial_types=…, zipmap=False)',
  catboost: undefined,
  torch: undefined,
  tf2onnx: undefined,
};

/**
 * MODEL_NON_TENSOR_OUTPUT: an output nightscore cannot unwrap (a ZipMap that does not end the
 * graph, or another sequence or map). `tensors` are the model's tensor outputs.
 */
export function nonTensorHint(producer: string | undefined, tensors: string[]): string {
  const exporter = exporterOf(producer);
  const select = tensors.length ? `select only tensor outputs: output.columns: { ${tensors.map((t) => `${t}: ${t}`).join(', ')} }` : undefined;
  const reexport = exporter ? NO_ZIPMAP[exporter] : `${NO_ZIPMAP.skl2onnx}; ${NO_ZIPMAP.onnxmltools}`;
  // CatBoost's export has no option to drop its ZipMap: the one ending its graph is unwrapped.
  const parts = [select, reexport && `re-export without ZipMap (${reexport})`].filter(Boolean);
  return `nightscore turns a ZipMap that ends the graph into columns; this output is another sequence or map. ${capitalise(parts.join('; or '))}.`;
}

const DYNAMIC_BATCH: Record<Exporter, string> = {
  skl2onnx: 'skl2onnx: initial_types=[("input", FloatTensorType([None, n_features]))]',
  onnxmltools: 'onnxmltools: initial_types=[("input", FloatTensorType([None, n_features]))]',
  catboost: 'CatBoost exports a dynamic batch dimension: check the model was not edited after export',
  torch: 'torch.onnx.export(..., dynamic_axes={"input": {0: "N"}})',
  tf2onnx: 'tf2onnx: an input_signature whose batch dimension is None',
};

/** MODEL_RUN_FAILED: onnxruntime refused a batch of rows. */
export function runFailedHint(producer: string | undefined, key: JobKey): string {
  const exporter = exporterOf(producer);
  const dynamic = exporter ? DYNAMIC_BATCH[exporter] : `${DYNAMIC_BATCH.torch}; ${DYNAMIC_BATCH.skl2onnx}`;
  return `If the model takes one row but not a batch, re-export it with a dynamic batch dimension (${dynamic}); if it fails on values, check that ${keyToFix(key)} feeds it the columns it was trained on, in order; if it ran out of memory, lower chunk.rows.`;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
