/**
 * The benchmark's models and job files. Models are built from a seed (same bytes every
 * time); job files point at cached datasets and write under .bench/out.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { logisticModel, treeEnsembleModel } from '../scripts/onnx-builder.js';
import { rng } from '../src/demo/churn-data.js';
import { FEATURES, KEY } from './data.js';

export type ModelKind = 'tree' | 'linear';
export type Format = 'csv' | 'parquet';

/** The outputs each model's job selects: what nightscore fetches and writes, and ORT alone fetches. */
export const MODEL_OUTPUTS: Record<ModelKind, Record<string, string | string[]>> = {
  tree: { probability: 'p' },
  linear: { probabilities: ['p0', 'p1'] },
};

/** Writes both models under `dir`; returns their paths. */
export function writeModels(dir: string, seed: number): Record<ModelKind, string> {
  mkdirSync(dir, { recursive: true });
  const names = FEATURES.map((f) => f.name);
  const tree = treeEnsembleModel({ features: names, trees: 150, depth: 4, seed, ranges: FEATURES.map((f) => f.range) });
  // Weights scaled by each feature's range, so every feature moves the logit a little.
  const next = rng(seed + 1);
  const weights = FEATURES.map((f) => (next() * 2 - 1) / Math.max(1e-3, f.range[1] - f.range[0]));
  const linear = logisticModel({ weights, bias: -0.2, featureNames: names });
  const paths = { tree: path.join(dir, 'tree-150x4.onnx'), linear: path.join(dir, 'logistic.onnx') };
  writeFileSync(paths.tree, tree);
  writeFileSync(paths.linear, linear);
  return paths;
}

export interface JobFileOptions {
  name: string;
  inputDir: string;
  format: Format;
  model: ModelKind;
  modelPath: string;
  outRoot: string;
  chunkBytes: number;
  /** Empty inputs need limits.min_rows 0. */
  minRows?: number;
  /** A drift profile (nightscore profile build): the runs count their values on its bins. */
  driftProfile?: string;
  /** A challenger model file, scored beside the model and compared with it (shadow:). */
  challenger?: string;
}

/**
 * Writes a job file: input is a fixed folder (every date reads the same rows), output is
 * per date, so queued runs of consecutive dates never collide.
 */
export function writeJob(dir: string, o: JobFileOptions): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${o.name}.yaml`);
  const columns = Object.entries(MODEL_OUTPUTS[o.model])
    .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
    .join(', ');
  writeFileSync(
    file,
    [
      `name: ${o.name}`,
      `input: { uri: ${JSON.stringify(`${o.inputDir}/`)}, format: ${o.format}, key: [${KEY}] }`,
      `model: { path: ${JSON.stringify(o.modelPath)} }`,
      `output: { uri: ${JSON.stringify(path.join(o.outRoot, o.name, 'dt={date}') + '/')}, format: ${o.format}, columns: { ${columns} } }`,
      `chunk: { rows: 50000, bytes: ${o.chunkBytes} }`,
      ...(o.minRows === undefined ? [] : [`limits: { min_rows: ${o.minRows} }`]),
      ...(o.driftProfile === undefined ? [] : [`drift: { profile: ${JSON.stringify(o.driftProfile)} }`]),
      ...(o.challenger === undefined ? [] : [`shadow: [{ uri: ${JSON.stringify(o.challenger)}, name: challenger }]`]),
      '',
    ].join('\n'),
  );
  return file;
}
