import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../scripts/onnx-builder.js';
import { linearClassifierModel, treeClassifierModel } from '../scripts/onnx-classifiers.js';
import { runCli, Workspace } from './support/workspace.js';

/**
 * Classifiers as skl2onnx, onnxmltools and CatBoost export them end in a ZipMap (a list of
 * maps, no column form). nightscore scores the [N, C] tensor the ZipMap reads, its columns
 * named `<output>_<class label>`, and the manifest says so.
 */
let ws: Workspace;
const DATE = '2026-03-01';
const ROWS = 40;
const FEATURES = ['f0', 'f1', 'f2', 'f3'];
const values = Array.from({ length: ROWS * FEATURES.length }, (_, i) => (Math.sin(i * 1.7) * 3).toFixed(3));
const CSV = `id,${FEATURES.join(',')}\n${Array.from({ length: ROWS }, (_, r) => `k${r},${values.slice(r * 4, r * 4 + 4).join(',')}`).join('\n')}\n`;

beforeAll(async () => {
  ws = await Workspace.create();
  await ws.write(`in/dt=${DATE}/a.csv`, CSV);
});
afterAll(async () => {
  await ws.remove();
});

async function run(name: string, model: Uint8Array, extra: { model?: Record<string, unknown>; output?: Record<string, unknown> } = {}) {
  const file = await ws.job(`${name}.yaml`, {
    name,
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] },
    model: { path: await ws.write(`models/${name}.onnx`, model), features: FEATURES, ...extra.model },
    output: { uri: `out/${name}/dt={date}/`, format: 'csv', ...extra.output },
  });
  return runCli(['run', file, '--date', DATE]);
}

/** What onnxruntime computes for the day's rows on `model`: the tensor `output`, row-major. */
async function reference(model: Uint8Array, input: string, output: string): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model);
  const result = await session.run({ [input]: new ort.Tensor('float32', Float32Array.from(values.map(Number)), [ROWS, FEATURES.length]) });
  await session.release();
  return result[output]!.data as Float32Array;
}

/** The part's columns named `names`, each cell read back as the float32 it prints. */
async function columns(name: string, names: string[]): Promise<Float32Array> {
  const [header, ...rows] = await ws.csv(`out/${name}/dt=${DATE}/part-00000.csv`);
  const at = names.map((n) => header!.indexOf(n));
  expect(at).not.toContain(-1);
  return Float32Array.from(rows.flatMap((r) => at.map((i) => Number(r[i]))));
}

describe('a classifier ending in ZipMap', () => {
  it('skl2onnx LogisticRegression with text labels: output_probability_<label>, bit-identical to the tensor before ZipMap', async () => {
    const opts = { features: 4, classes: ['no', 'yes', 'maybe'], seed: 11 };
    const res = await run('skl-text', linearClassifierModel({ ...opts, zipmap: true }));
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const [header] = await ws.csv(`out/skl-text/dt=${DATE}/part-00000.csv`);
    expect(header).toEqual(['id', 'output_label', 'output_probability_no', 'output_probability_yes', 'output_probability_maybe']);
    const expected = await reference(linearClassifierModel({ ...opts, zipmap: false }), 'X', 'probabilities');
    const scored = await columns('skl-text', ['output_probability_no', 'output_probability_yes', 'output_probability_maybe']);
    expect(scored).toHaveLength(ROWS * 3);
    expect(Buffer.from(scored.buffer).equals(Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength))).toBe(true);

    const manifest = await ws.manifest(`out/skl-text/dt=${DATE}`);
    expect(manifest.model.unwrapped).toEqual([{ output: 'output_probability', from: 'ZipMap', labels: ['no', 'yes', 'maybe'] }]);
    expect(manifest.models[0]!.unwrapped).toEqual(manifest.model.unwrapped);
    expect(manifest.model.outputs.output_probability).toEqual(['output_probability_no', 'output_probability_yes', 'output_probability_maybe']);
  });

  it('CatBoost-shaped tree ensemble with int64 labels, renamed by prefix: p_<label>, bit-identical', async () => {
    const opts = { features: 4, classes: [1, 2, 5], seed: 5, rounds: 4, depth: 3 };
    const res = await run('cat-int', treeClassifierModel({ ...opts, zipmap: true }), { output: { columns: { label: 'label', probabilities: 'p' } } });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const [header] = await ws.csv(`out/cat-int/dt=${DATE}/part-00000.csv`);
    expect(header).toEqual(['id', 'label', 'p_1', 'p_2', 'p_5']);
    const expected = await reference(treeClassifierModel({ ...opts, zipmap: false }), 'features', 'probabilities');
    const scored = await columns('cat-int', ['p_1', 'p_2', 'p_5']);
    expect(Buffer.from(scored.buffer).equals(Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength))).toBe(true);
    expect((await ws.manifest(`out/cat-int/dt=${DATE}`)).model.unwrapped).toEqual([{ output: 'probabilities', from: 'ZipMap', labels: ['1', '2', '5'] }]);
  });

  it('a list of names renames the columns in the labels\' order', async () => {
    const res = await run('named', linearClassifierModel({ features: 4, classes: ['a', 'b'], seed: 2, zipmap: true }), {
      output: { columns: { output_probability: ['p_a', 'p_b'] } },
    });
    expect(res.code).toBe(0);
    expect((await ws.csv(`out/named/dt=${DATE}/part-00000.csv`))[0]).toEqual(['id', 'p_a', 'p_b']);
  });

  it('labels that cannot end a column name (empty, a control character) number the columns; the manifest keeps the labels', async () => {
    const res = await run('odd-labels', linearClassifierModel({ features: 4, classes: ['', 'x\ny'], seed: 2, zipmap: true }));
    expect(res.stderr).toBe('');
    expect((await ws.csv(`out/odd-labels/dt=${DATE}/part-00000.csv`))[0]).toEqual(['id', 'output_label', 'output_probability_0', 'output_probability_1']);
    expect((await ws.manifest(`out/odd-labels/dt=${DATE}`)).model.unwrapped).toEqual([{ output: 'output_probability', from: 'ZipMap', labels: ['', 'x\ny'] }]);
  });
});

describe('model errors name the exporter\'s fix and the job key used', () => {
  it('a sequence output nightscore cannot unwrap: MODEL_NON_TENSOR_OUTPUT with onnxmltools\' zipmap=False', async () => {
    // A ZipMap over a graph input is no classifier's tail: it stays a list of maps.
    const model = buildModel({
      inputs: [{ name: 'input', elem: 'float', shape: ['N', 4] }],
      outputs: [{ name: 'y', elem: 'float', shape: ['N', 4] }, { name: 'zm', seqMap: true }],
      nodes: [
        { op: 'Identity', inputs: ['input'], outputs: ['y'] },
        { op: 'ZipMap', domain: 'ai.onnx.ml', inputs: ['input'], outputs: ['zm'], attrs: { classlabels_int64s: { ints: [0, 1, 2, 3] } } },
      ],
      producer: 'OnnxMLTools',
    });
    const res = await run('seq-out', model);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('MODEL_NON_TENSOR_OUTPUT');
    expect(res.stderr).toContain('output "zm" is not a tensor (a sequence or map)');
    expect(res.stderr).toContain('hint: nightscore turns a ZipMap that ends the graph into columns; this output is another sequence or map. Select only tensor outputs: output.columns: { y: y }; or re-export without ZipMap (onnxmltools: convert_lightgbm(model, initial_types=…, zipmap=False)).');
  });

  // No made-up row probes a model (#25): a model that fails on the bound columns fails on every real row, given alone.
  const wrongWidth = (producer?: string) => buildModel({
    inputs: [{ name: 'x', elem: 'float', shape: ['N', 'F'] }],
    outputs: [{ name: 'y', elem: 'float', shape: ['N', 1] }],
    nodes: [{ op: 'MatMul', inputs: ['x', 'W'], outputs: ['y'] }],
    floats: { W: { dims: [5, 1], values: [1, 1, 1, 1, 1] } },
    ...(producer ? { producer } : {}),
  });

  it('a model that does not run on the columns of model.inputs: MODEL_RUN_FAILED names model.inputs, not model.features', async () => {
    const res = await run('sig-inputs', wrongWidth(), { model: { features: undefined, inputs: { x: FEATURES } } });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('MODEL_RUN_FAILED');
    expect(res.stderr).toContain('check that model.inputs feeds it the columns it was trained on, in order');
    expect(res.stderr).not.toContain('model.features');
  });

  it('a model from torch that fails on every row: MODEL_RUN_FAILED names torch\'s dynamic axes and model.inputs', async () => {
    const res = await run('run-failed', wrongWidth('pytorch'), { model: { features: undefined, inputs: { x: FEATURES } } });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('MODEL_RUN_FAILED');
    expect(res.stderr).toContain('re-export it with a dynamic batch dimension (torch.onnx.export(..., dynamic_axes={"input": {0: "N"}}))');
    expect(res.stderr).toContain('check that model.inputs feeds it the columns it was trained on');
  });
});
