/**
 * Classifiers shaped as the exporters teams use write them, ZipMap tail included, for the
 * tests of ZipMap unwrapping: a linear classifier as skl2onnx exports scikit-learn's
 * LogisticRegression, and a tree ensemble as CatBoost and onnxmltools (LightGBM) export theirs.
 */
import { rng } from '../src/demo/churn-data.js';
import { buildModel, type ModelSpec, type NodeSpec } from './onnx-builder.js';

export interface ClassifierOptions {
  features: number;
  /** Class labels: text (classlabels_strings) or integers (classlabels_int64s). */
  classes: string[] | number[];
  seed: number;
  /** Also end in ZipMap, as the exporter does by default; without it the graph ends in the tensor ZipMap would read. */
  zipmap: boolean;
}

function labelAttr(classes: string[] | number[]): Record<string, string[] | { ints: number[] }> {
  return typeof classes[0] === 'string' ? { classlabels_strings: classes as string[] } : { classlabels_int64s: { ints: classes as number[] } };
}

/**
 * skl2onnx's LogisticRegression: LinearClassifier (softmax) → label and probability_tensor,
 * Normalizer (L1) → probabilities, ZipMap → output_probability; outputs output_label and
 * output_probability (or probabilities without ZipMap). producer_name skl2onnx.
 */
export function linearClassifierModel(opts: ClassifierOptions): Uint8Array {
  const next = rng(opts.seed);
  const C = opts.classes.length;
  const labels = labelAttr(opts.classes);
  const text = typeof opts.classes[0] === 'string';
  const nodes: NodeSpec[] = [
    {
      op: 'LinearClassifier', domain: 'ai.onnx.ml', inputs: ['X'], outputs: ['label', 'probability_tensor'],
      attrs: { ...labels, coefficients: { floats: Array.from({ length: C * opts.features }, () => next() * 4 - 2) }, intercepts: { floats: Array.from({ length: C }, () => next() - 0.5) }, multi_class: 1, post_transform: 'SOFTMAX' },
    },
    { op: 'Normalizer', domain: 'ai.onnx.ml', inputs: ['probability_tensor'], outputs: ['probabilities'], attrs: { norm: 'L1' } },
    { op: 'Identity', inputs: ['label'], outputs: ['output_label'] },
  ];
  const outputs: ModelSpec['outputs'] = [{ name: 'output_label', elem: text ? 'string' : 'int64', shape: ['N'] }];
  if (opts.zipmap) {
    nodes.push({ op: 'ZipMap', domain: 'ai.onnx.ml', inputs: ['probabilities'], outputs: ['output_probability'], attrs: labels });
    outputs.push({ name: 'output_probability', seqMap: true, keys: text ? 'string' : 'int64' });
  } else {
    outputs.push({ name: 'probabilities', elem: 'float', shape: ['N', C] });
  }
  return buildModel({ inputs: [{ name: 'X', elem: 'float', shape: ['N', opts.features] }], outputs, nodes, producer: 'skl2onnx' });
}

/**
 * CatBoost's (and onnxmltools' LightGBM) multiclass export: TreeEnsembleClassifier (softmax
 * over one tree per class per round) → label and probability_tensor, ZipMap → probabilities;
 * outputs label and probabilities. producer_name CatBoost.
 */
export function treeClassifierModel(opts: ClassifierOptions & { rounds: number; depth: number }): Uint8Array {
  const next = rng(opts.seed);
  const C = opts.classes.length;
  const splits = 2 ** opts.depth - 1;
  const n = { treeids: [] as number[], nodeids: [] as number[], featureids: [] as number[], values: [] as number[], modes: [] as string[], truenodeids: [] as number[], falsenodeids: [] as number[] };
  const c = { treeids: [] as number[], nodeids: [] as number[], ids: [] as number[], weights: [] as number[] };
  for (let t = 0; t < opts.rounds * C; t++) {
    for (let i = 0; i < 2 * splits + 1; i++) {
      const leaf = i >= splits;
      n.treeids.push(t);
      n.nodeids.push(i);
      n.featureids.push(leaf ? 0 : Math.floor(next() * opts.features));
      n.values.push(leaf ? 0 : next() * 2 - 1);
      n.modes.push(leaf ? 'LEAF' : 'BRANCH_LEQ');
      n.truenodeids.push(leaf ? 0 : 2 * i + 1);
      n.falsenodeids.push(leaf ? 0 : 2 * i + 2);
      if (leaf) {
        c.treeids.push(t);
        c.nodeids.push(i);
        c.ids.push(t % C);
        c.weights.push(next() - 0.5);
      }
    }
  }
  const labels = labelAttr(opts.classes);
  const text = typeof opts.classes[0] === 'string';
  const nodes: NodeSpec[] = [
    {
      op: 'TreeEnsembleClassifier', domain: 'ai.onnx.ml', inputs: ['features'], outputs: ['label', opts.zipmap ? 'probability_tensor' : 'probabilities'],
      attrs: {
        ...labels, post_transform: 'SOFTMAX',
        nodes_treeids: { ints: n.treeids }, nodes_nodeids: { ints: n.nodeids }, nodes_featureids: { ints: n.featureids }, nodes_values: { floats: n.values },
        nodes_modes: n.modes, nodes_truenodeids: { ints: n.truenodeids }, nodes_falsenodeids: { ints: n.falsenodeids },
        class_treeids: { ints: c.treeids }, class_nodeids: { ints: c.nodeids }, class_ids: { ints: c.ids }, class_weights: { floats: c.weights },
      },
    },
  ];
  const outputs: ModelSpec['outputs'] = [{ name: 'label', elem: text ? 'string' : 'int64', shape: ['N'] }];
  if (opts.zipmap) {
    nodes.push({ op: 'ZipMap', domain: 'ai.onnx.ml', inputs: ['probability_tensor'], outputs: ['probabilities'], attrs: labels });
    outputs.push({ name: 'probabilities', seqMap: true, keys: text ? 'string' : 'int64' });
  } else {
    outputs.push({ name: 'probabilities', elem: 'float', shape: ['N', C] });
  }
  return buildModel({ inputs: [{ name: 'features', elem: 'float', shape: ['N', opts.features] }], outputs, nodes, producer: 'CatBoost' });
}
