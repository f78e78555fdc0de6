/**
 * A small ONNX graph builder for the models this repo ships and the tests build. It writes
 * the same protobuf an exporter (skl2onnx, torch.onnx) writes, through onnx-proto's
 * generated code, so onnxruntime loads the result like any exported model.
 */
import onnxProto from 'onnx-proto';
import { rng } from '../src/demo/churn-data.js';

const { onnx } = onnxProto;
export type ElemType = 'float' | 'double' | 'float16' | 'int64' | 'int32' | 'bool' | 'uint8' | 'string';
export const ELEM: Record<ElemType, number> = {
  float: onnx.TensorProto.DataType.FLOAT,
  double: onnx.TensorProto.DataType.DOUBLE,
  float16: onnx.TensorProto.DataType.FLOAT16,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  bool: onnx.TensorProto.DataType.BOOL,
  uint8: onnx.TensorProto.DataType.UINT8,
  string: onnx.TensorProto.DataType.STRING,
};

export type Dim = number | string;
export type Attr = number | string | number[] | string[] | { ints: number[] } | { floats: number[] };

export interface ValueSpec {
  name: string;
  elem: ElemType;
  shape: Dim[];
}

/** A graph output whose type is seq(map(int64 or string, float)), as a ZipMap produces. */
export interface SeqMapSpec {
  name: string;
  seqMap: true;
  /** The maps' key type. @defaultValue int64 */
  keys?: 'int64' | 'string';
}

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  domain?: string;
  attrs?: Record<string, Attr>;
}

export interface ModelSpec {
  inputs: ValueSpec[];
  outputs: Array<ValueSpec | SeqMapSpec>;
  nodes: NodeSpec[];
  /** Float initializers by name, with their shape. */
  floats?: Record<string, { dims: number[]; values: number[] }>;
  /** int64 initializers by name, with their shape (axes, shapes). */
  ints?: Record<string, { dims: number[]; values: number[] }>;
  metadata?: Record<string, string>;
  producer?: string;
}

function tensorType(spec: ValueSpec) {
  return {
    tensorType: {
      elemType: ELEM[spec.elem],
      shape: { dim: spec.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
    },
  };
}

function valueInfo(spec: ValueSpec | SeqMapSpec) {
  if ('seqMap' in spec) {
    return {
      name: spec.name,
      type: { sequenceType: { elemType: { mapType: { keyType: ELEM[spec.keys ?? 'int64'], valueType: { tensorType: { elemType: ELEM.float } } } } } },
    };
  }
  return { name: spec.name, type: tensorType(spec) };
}

function attribute(name: string, value: Attr) {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') return Number.isInteger(value) ? { name, type: A.INT, i: value } : { name, type: A.FLOAT, f: value };
  if (typeof value === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v === 'string')) return { name, type: A.STRINGS, strings: (value as string[]).map((v) => new TextEncoder().encode(v)) };
    return { name, type: A.INTS, ints: value as number[] };
  }
  if ('ints' in value) return { name, type: A.INTS, ints: value.ints };
  return { name, type: A.FLOATS, floats: value.floats };
}

/** Serialises a model (opset 17, ai.onnx.ml 3) to ONNX bytes. */
export function buildModel(spec: ModelSpec): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: spec.producer ?? 'nightscore-builder',
    opsetImport: [
      { domain: '', version: 17 },
      { domain: 'ai.onnx.ml', version: 3 },
    ],
    metadataProps: Object.entries(spec.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: 'graph',
      input: spec.inputs.map(valueInfo),
      output: spec.outputs.map(valueInfo),
      initializer: [
        ...Object.entries(spec.floats ?? {}).map(([name, t]) => ({ name, dims: t.dims, dataType: ELEM.float, floatData: t.values })),
        ...Object.entries(spec.ints ?? {}).map(([name, t]) => ({ name, dims: t.dims, dataType: ELEM.int64, int64Data: t.values })),
      ],
      node: spec.nodes.map((n, i) => ({
        name: `${n.op}_${i}`,
        opType: n.op,
        domain: n.domain ?? '',
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attribute(k, v)),
      })),
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

export interface LogisticOptions {
  weights: number[];
  bias: number;
  featureNames?: string[];
  /** Also emit a ZipMap output, as skl2onnx does by default. */
  zipmap?: boolean;
  inputName?: string;
  inputElem?: ElemType;
  metadata?: Record<string, string>;
}

/**
 * Binary logistic regression shaped like skl2onnx's export with zipmap=False: outputs
 * `label` (int64 [N]) and `probabilities` (float [N,2]).
 */
export function logisticModel(opts: LogisticOptions): Uint8Array {
  const n = opts.weights.length;
  const input = opts.inputName ?? 'input';
  const elem = opts.inputElem ?? 'float';
  const nodes: NodeSpec[] = [
    ...(elem === 'float' ? [] : [{ op: 'Cast', inputs: [input], outputs: ['x'], attrs: { to: ELEM.float } }]),
    { op: 'MatMul', inputs: [elem === 'float' ? input : 'x', 'W'], outputs: ['z0'] },
    { op: 'Add', inputs: ['z0', 'B'], outputs: ['z'] },
    { op: 'Sigmoid', inputs: ['z'], outputs: ['p1'] },
    { op: 'Sub', inputs: ['one', 'p1'], outputs: ['p0'] },
    { op: 'Concat', inputs: ['p0', 'p1'], outputs: ['probabilities'], attrs: { axis: 1 } },
    { op: 'ArgMax', inputs: ['probabilities'], outputs: ['label'], attrs: { axis: 1, keepdims: 0 } },
  ];
  const outputs: ModelSpec['outputs'] = [
    { name: 'label', elem: 'int64', shape: ['N'] },
    { name: 'probabilities', elem: 'float', shape: ['N', 2] },
  ];
  if (opts.zipmap) {
    nodes.push({ op: 'ZipMap', domain: 'ai.onnx.ml', inputs: ['probabilities'], outputs: ['output_probability'], attrs: { classlabels_int64s: { ints: [0, 1] } } });
    outputs[1] = { name: 'output_probability', seqMap: true };
  }
  return buildModel({
    inputs: [{ name: input, elem, shape: ['N', n] }],
    outputs,
    nodes,
    floats: {
      W: { dims: [n, 1], values: opts.weights },
      B: { dims: [1], values: [opts.bias] },
      one: { dims: [1], values: [1] },
    },
    metadata: { ...(opts.featureNames ? { feature_names: JSON.stringify(opts.featureNames) } : {}), ...opts.metadata },
  });
}

export interface TreeEnsembleOptions {
  /** Feature names, in input order; recorded as `feature_names` metadata. */
  features: string[];
  /** Number of trees. */
  trees: number;
  /** Splits from root to leaf: each tree is complete, with 2^depth - 1 splits and 2^depth leaves. */
  depth: number;
  /** Seed of the pseudo-random splits and leaf values; the same seed builds the same bytes. */
  seed: number;
  /**
   * Where each feature's thresholds are drawn from, `[low, high]` per feature, so splits
   * fall inside the data rather than all on one side of it. @defaultValue [-1, 1] for all
   */
  ranges?: Array<[number, number]>;
  inputName?: string;
  outputName?: string;
}

/**
 * A gradient-boosted binary classifier shaped like an exported LightGBM/XGBoost model:
 * ai.onnx.ml TreeEnsembleRegressor summing `trees` complete trees of `depth` BRANCH_LEQ
 * splits into one logit, then Sigmoid. Input float [N, features], output float [N, 1].
 */
export function treeEnsembleModel(opts: TreeEnsembleOptions): Uint8Array {
  const next = rng(opts.seed);
  const input = opts.inputName ?? 'input';
  const output = opts.outputName ?? 'probability';
  const splits = 2 ** opts.depth - 1;
  const perTree = 2 * splits + 1;
  const nodes = { treeids: [] as number[], nodeids: [] as number[], featureids: [] as number[], values: [] as number[], modes: [] as string[], truenodeids: [] as number[], falsenodeids: [] as number[] };
  const targets = { treeids: [] as number[], nodeids: [] as number[], ids: [] as number[], weights: [] as number[] };
  // Leaf values small enough that the sum over all trees is a logit of a few units.
  const leafScale = 4 / Math.sqrt(opts.trees);
  for (let t = 0; t < opts.trees; t++) {
    // Breadth-first numbering: node i splits into 2i+1 (true: x <= threshold) and 2i+2.
    for (let i = 0; i < perTree; i++) {
      const leaf = i >= splits;
      const feature = leaf ? 0 : Math.floor(next() * opts.features.length);
      const [low, high] = opts.ranges?.[feature] ?? [-1, 1];
      nodes.treeids.push(t);
      nodes.nodeids.push(i);
      nodes.featureids.push(feature);
      nodes.values.push(leaf ? 0 : low + (high - low) * next());
      nodes.modes.push(leaf ? 'LEAF' : 'BRANCH_LEQ');
      nodes.truenodeids.push(leaf ? 0 : 2 * i + 1);
      nodes.falsenodeids.push(leaf ? 0 : 2 * i + 2);
      if (leaf) {
        targets.treeids.push(t);
        targets.nodeids.push(i);
        targets.ids.push(0);
        targets.weights.push(leafScale * (next() * 2 - 1));
      }
    }
  }
  return buildModel({
    inputs: [{ name: input, elem: 'float', shape: ['N', opts.features.length] }],
    outputs: [{ name: output, elem: 'float', shape: ['N', 1] }],
    nodes: [
      {
        op: 'TreeEnsembleRegressor',
        domain: 'ai.onnx.ml',
        inputs: [input],
        outputs: ['logit'],
        attrs: {
          n_targets: 1,
          aggregate_function: 'SUM',
          post_transform: 'NONE',
          nodes_treeids: { ints: nodes.treeids },
          nodes_nodeids: { ints: nodes.nodeids },
          nodes_featureids: { ints: nodes.featureids },
          nodes_values: { floats: nodes.values },
          nodes_modes: nodes.modes,
          nodes_truenodeids: { ints: nodes.truenodeids },
          nodes_falsenodeids: { ints: nodes.falsenodeids },
          target_treeids: { ints: targets.treeids },
          target_nodeids: { ints: targets.nodeids },
          target_ids: { ints: targets.ids },
          target_weights: { floats: targets.weights },
        },
      },
      { op: 'Sigmoid', inputs: ['logit'], outputs: [output] },
    ],
    metadata: { feature_names: JSON.stringify(opts.features) },
    producer: 'nightscore-builder (tree ensemble)',
  });
}

