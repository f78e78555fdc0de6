import { parquetWriteBuffer } from 'hyparquet-writer';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../scripts/onnx-builder.js';
import { runOnQueue } from './support/queue.js';
import { runCli, Workspace } from './support/workspace.js';

/**
 * Missing values are a model input for tree models (LightGBM and XGBoost route NaN down a
 * learned branch, and their ONNX exports keep it): `input.missing: nan` feeds them NaN,
 * `reject` (the default) rejects the row and says how to feed them instead.
 */

/**
 * One tree: a <= 0.5 (a missing `a` goes true) → 1; else b <= 0 (a missing `b` goes false) → 2, else 3.
 * NaN compares false, so only the learned routing sends a missing `a` to 1.
 */
const routingTree = () =>
  buildModel({
    inputs: [{ name: 'input', elem: 'float', shape: ['N', 2] }],
    outputs: [{ name: 'score', elem: 'float', shape: ['N', 1] }],
    nodes: [
      {
        op: 'TreeEnsembleRegressor',
        domain: 'ai.onnx.ml',
        inputs: ['input'],
        outputs: ['score'],
        attrs: {
          n_targets: 1,
          aggregate_function: 'SUM',
          post_transform: 'NONE',
          nodes_treeids: { ints: [0, 0, 0, 0, 0] },
          nodes_nodeids: { ints: [0, 1, 2, 3, 4] },
          nodes_featureids: { ints: [0, 0, 1, 0, 0] },
          nodes_values: { floats: [0.5, 0, 0, 0, 0] },
          nodes_modes: ['BRANCH_LEQ', 'LEAF', 'BRANCH_LEQ', 'LEAF', 'LEAF'],
          nodes_truenodeids: { ints: [1, 0, 3, 0, 0] },
          nodes_falsenodeids: { ints: [2, 0, 4, 0, 0] },
          nodes_missing_value_tracks_true: { ints: [1, 0, 0, 0, 0] },
          target_treeids: { ints: [0, 0, 0] },
          target_nodeids: { ints: [1, 3, 4] },
          target_ids: { ints: [0, 0, 0] },
          target_weights: { floats: [1, 2, 3] },
        },
      },
    ],
  });

const DATE = '2026-12-01';
/** Rows as CSV text: id, a, b; those marked `bad` are not numbers and are rejected under any policy. */
const ROWS: Array<{ id: string; a: string; b: string; bad?: true }> = [
  { id: 'k0', a: '', b: '1' },
  { id: 'k1', a: 'NaN', b: '' },
  { id: 'k2', a: '1', b: '' },
  { id: 'k3', a: '1', b: '-1' },
  { id: 'k4', a: 'nan', b: 'nan' },
  { id: 'k5', a: '0.25', b: '4' },
  { id: 'k6', a: 'x', b: '1', bad: true },
  { id: 'k7', a: 'Infinity', b: '1', bad: true },
];
const value = (text: string) => (text === '' || /^nan$/i.test(text) ? NaN : Number(text));

let ws: Workspace;
let model: string;
/** Scores of the good rows, from onnxruntime fed NaN directly. */
let expected: Map<string, number>;
beforeAll(async () => {
  ws = await Workspace.create();
  model = await ws.write('tree.onnx', routingTree());
  await ws.write(`csv/dt=${DATE}/a.csv`, ['id,a,b', ...ROWS.map((r) => `${r.id},${r.a},${r.b}`)].join('\n') + '\n');
  const good = ROWS.filter((r) => !r.bad);
  const session = await ort.InferenceSession.create(model);
  const out = await session.run({ input: new ort.Tensor('float32', Float32Array.from(good.flatMap((r) => [value(r.a), value(r.b)])), [good.length, 2]) });
  expected = new Map(good.map((r, i) => [r.id, (out.score!.data as Float32Array)[i]!]));
  // The learned routing matters: a missing `a` scores 1, where NaN alone (false) would score 2 or 3.
  expect(expected.get('k0')).toBe(1);
  expect(expected.get('k2')).toBe(3);
});
afterAll(async () => {
  await ws?.remove();
});

async function job(name: string, missing: unknown, format: 'csv' | 'parquet' = 'csv'): Promise<string> {
  return ws.job(`${name}.yaml`, {
    name,
    input: { uri: `${format}/dt={date}/`, format, key: ['id'], ...(missing === undefined ? {} : { missing }) },
    model: { path: model, features: ['a', 'b'] },
    output: { uri: `out/${name}/dt={date}/`, format: 'csv' },
    limits: { max_reject_rate: 1 },
  });
}

async function scored(name: string): Promise<Map<string, number>> {
  return new Map((await ws.csv(`out/${name}/dt=${DATE}/part-00000.csv`)).slice(1).map(([id, s]) => [id!, Number(s)]));
}

async function rejected(name: string): Promise<Array<[string, string]>> {
  const manifest = await ws.manifest(`out/${name}/dt=${DATE}`);
  const rows: Array<[string, string]> = [];
  for (const r of manifest.rejects) rows.push(...(await ws.csv(`out/${name}/dt=${DATE}/_rejects/${r.uri.split('/').pop()!}`)).slice(1).map((row) => [row[2]!, row[3]!] as [string, string]));
  return rows.sort();
}

describe('input.missing: nan', () => {
  it('feeds empty cells and NaN text to the model as NaN, scoring them as onnxruntime does; text that is not a number is still rejected', async () => {
    const res = await runCli(['run', await job('nan', 'nan'), '--date', DATE]);
    expect(res.code, res.stderr).toBe(0);
    expect(await scored('nan')).toEqual(expected);
    expect(await rejected('nan')).toEqual([
      ['k6', 'column a: expected a number, got "x"'],
      ['k7', 'column a: not finite: "Infinity"'],
    ]);
  });

  it('per feature: a map scores the features it names as NaN, and the others reject', async () => {
    expect((await runCli(['run', await job('map', { a: 'nan' }), '--date', DATE])).code).toBe(0);
    expect(await scored('map')).toEqual(new Map([...expected].filter(([id]) => ['k0', 'k3', 'k5'].includes(id))));
    const reasons = new Map(await rejected('map'));
    expect(reasons.get('k2')).toBe('column b: empty value (set input.missing: nan to score it as a missing value)');
    expect(reasons.get('k4')).toBe('column b: not finite: "nan" (set input.missing: nan to score it as a missing value)');
  });

  it('reads Parquet nulls and NaN as missing values', async () => {
    const good = ROWS.filter((r) => !r.bad);
    const column = (pick: (r: (typeof good)[number]) => string, nullWhenEmpty: boolean) =>
      good.map((r) => (pick(r) === '' && nullWhenEmpty ? null : value(pick(r))));
    await ws.write(
      `parquet/dt=${DATE}/a.parquet`,
      new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'id', data: good.map((r) => r.id), type: 'STRING' }, { name: 'a', data: column((r) => r.a, true), type: 'DOUBLE' }, { name: 'b', data: column((r) => r.b, true), type: 'DOUBLE' }] })),
    );
    const res = await runCli(['run', await job('pq', 'nan', 'parquet'), '--date', DATE]);
    expect(res.code, res.stderr).toBe(0);
    expect(await scored('pq')).toEqual(expected);
  });

  it('holds on the queue: the run spec carries the policy to every chunk', async () => {
    const file = await job('queued', 'nan');
    const status = await runOnQueue(file, DATE);
    expect(status.state, status.error).toBe('succeeded');
    expect(await scored('queued')).toEqual(expected);
  });
});

describe('input.missing: reject (the default)', () => {
  it('rejects a row with a missing value, saying how to score it instead', async () => {
    expect((await runCli(['run', await job('reject', undefined), '--date', DATE])).code).toBe(0);
    expect([...(await scored('reject')).keys()]).toEqual(['k3', 'k5']);
    const reasons = new Map(await rejected('reject'));
    expect(reasons.get('k0')).toBe('column a: empty value (set input.missing: nan to score it as a missing value)');
    expect(reasons.get('k1')).toBe('column a: not finite: "NaN" (set input.missing: nan to score it as a missing value)');
  });

  it('a map naming a column that is not a feature is MISSING_COLUMN_UNKNOWN at validate', async () => {
    const file = await job('unknown', { a: 'nan', id: 'nan' });
    const res = await runCli(['validate', file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('MISSING_COLUMN_UNKNOWN: ');
    expect(res.stderr).toContain('input.missing names "id", which is not a feature of the model; its features are "a", "b"');
  });
});
