import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { parquetReadObjects } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel, ELEM } from '../scripts/onnx-builder.js';
import { runOnQueue } from './support/queue.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

/**
 * Models with several named inputs of their own element types: `model.inputs` maps each to
 * its columns, and every value is parsed and checked for its input's type. Each model is
 * shaped like an exporter's: a scikit-learn ColumnTransformer pipeline (one input per
 * column, a OneHotEncoder on the string one, as skl2onnx writes it), an embedding model (float
 * numerics plus int64 category indices, as torch's nn.Embedding exports to Gather), and one
 * input of every other type.
 */

const DATE = '2026-12-01';
const REGIONS = ['north', 'south', 'east', 'west'];

/** tenure, charges (float [N,1]), region (string [N,1]), plan (int64 [N,1]) → probability [N,1]. */
const pipelineModel = () =>
  buildModel({
    inputs: [
      { name: 'tenure', elem: 'float', shape: ['N', 1] },
      { name: 'charges', elem: 'float', shape: ['N', 1] },
      { name: 'region', elem: 'string', shape: ['N', 1] },
      { name: 'plan', elem: 'int64', shape: ['N', 1] },
    ],
    outputs: [{ name: 'probability', elem: 'float', shape: ['N', 1] }],
    nodes: [
      { op: 'OneHotEncoder', domain: 'ai.onnx.ml', inputs: ['region'], outputs: ['region_1h3'], attrs: { cats_strings: REGIONS, zeros: 1 } },
      { op: 'Flatten', inputs: ['region_1h3'], outputs: ['region_1h'], attrs: { axis: 1 } },
      { op: 'Cast', inputs: ['plan'], outputs: ['plan_f'], attrs: { to: ELEM.float } },
      { op: 'Concat', inputs: ['tenure', 'charges', 'region_1h', 'plan_f'], outputs: ['x'], attrs: { axis: 1 } },
      { op: 'MatMul', inputs: ['x', 'W'], outputs: ['z0'] },
      { op: 'Add', inputs: ['z0', 'B'], outputs: ['z'] },
      { op: 'Sigmoid', inputs: ['z'], outputs: ['probability'] },
    ],
    floats: { W: { dims: [7, 1], values: [0.031, -0.0123, 0.4, -0.7, 0.15, 0.9, 0.37] }, B: { dims: [1], values: [-0.2] } },
  });

/** num (float [N,2]) and cat (int64 [N,2]) category indices into a 5 × 3 embedding → score [N,1]. */
const embeddingModel = () =>
  buildModel({
    inputs: [
      { name: 'num', elem: 'float', shape: ['N', 2] },
      { name: 'cat', elem: 'int64', shape: ['N', 2] },
    ],
    outputs: [{ name: 'score', elem: 'float', shape: ['N', 1] }],
    nodes: [
      { op: 'Gather', inputs: ['E', 'cat'], outputs: ['emb3'], attrs: { axis: 0 } },
      { op: 'Flatten', inputs: ['emb3'], outputs: ['emb'], attrs: { axis: 1 } },
      { op: 'Concat', inputs: ['num', 'emb'], outputs: ['x'], attrs: { axis: 1 } },
      { op: 'MatMul', inputs: ['x', 'W'], outputs: ['score'] },
    ],
    floats: {
      E: { dims: [5, 3], values: Array.from({ length: 15 }, (_, i) => Math.sin(i + 1)) },
      W: { dims: [8, 1], values: [0.5, -0.25, 1, 2, 3, -1, -2, -3] },
    },
  });

/**
 * One input of each remaining type, each cast to float and summed with weights; the float64
 * input is also echoed as a float64 output, which shows it was read at double precision.
 */
const everyTypeModel = () =>
  buildModel({
    inputs: [
      { name: 'd', elem: 'double', shape: ['N', 1] },
      { name: 'h', elem: 'float16', shape: ['N', 1] },
      { name: 'i', elem: 'int32', shape: ['N'] },
      { name: 'b', elem: 'bool', shape: ['N', 1] },
      { name: 'f', elem: 'float', shape: ['N', 1] },
    ],
    outputs: [
      { name: 'y', elem: 'float', shape: ['N', 1] },
      { name: 'echo', elem: 'double', shape: ['N', 1] },
    ],
    nodes: [
      { op: 'Identity', inputs: ['d'], outputs: ['echo'] },
      { op: 'Cast', inputs: ['d'], outputs: ['df'], attrs: { to: ELEM.float } },
      { op: 'Cast', inputs: ['h'], outputs: ['hf'], attrs: { to: ELEM.float } },
      { op: 'Cast', inputs: ['i'], outputs: ['i1'], attrs: { to: ELEM.float } },
      { op: 'Unsqueeze', inputs: ['i1', 'AXIS'], outputs: ['if'] },
      { op: 'Cast', inputs: ['b'], outputs: ['bf'], attrs: { to: ELEM.float } },
      { op: 'Concat', inputs: ['df', 'hf', 'if', 'bf', 'f'], outputs: ['x'], attrs: { axis: 1 } },
      { op: 'MatMul', inputs: ['x', 'W'], outputs: ['y'] },
    ],
    floats: { W: { dims: [5, 1], values: [1, 10, 100, 1000, 0.5] } },
    ints: { AXIS: { dims: [1], values: [1] } },
  });

interface Customer {
  id: string;
  tenure: number;
  charges: number;
  region: string;
  plan: bigint;
}

const CUSTOMERS: Customer[] = Array.from({ length: 40 }, (_, i) => ({
  id: `c${i}`,
  tenure: (i * 7) % 61,
  charges: Math.fround(20 + ((i * 13.37) % 90)),
  // A region the encoder never saw (all zeros), and one with a space, are values too.
  region: i % 9 === 0 ? 'mars' : i % 11 === 0 ? ' east' : REGIONS[i % 4]!,
  plan: BigInt(i % 3),
}));

let ws: Workspace;
let pipeline: string;
let embedding: string;
let everyType: string;
beforeAll(async () => {
  ws = await Workspace.create();
  pipeline = await ws.write('pipeline.onnx', pipelineModel());
  embedding = await ws.write('embedding.onnx', embeddingModel());
  everyType = await ws.write('every-type.onnx', everyTypeModel());
  const csv = ['id,tenure,charges,region,plan', ...CUSTOMERS.map((c) => `${c.id},${c.tenure},${c.charges},${c.region},${c.plan}`)];
  await ws.write(`csv/dt=${DATE}/a.csv`, `${csv.join('\n')}\n`);
  await ws.write(
    `parquet/dt=${DATE}/a.parquet`,
    new Uint8Array(
      parquetWriteBuffer({
        columnData: [
          { name: 'id', data: CUSTOMERS.map((c) => c.id), type: 'STRING' },
          { name: 'tenure', data: CUSTOMERS.map((c) => c.tenure), type: 'INT32' },
          { name: 'charges', data: CUSTOMERS.map((c) => c.charges), type: 'DOUBLE' },
          { name: 'region', data: CUSTOMERS.map((c) => c.region), type: 'STRING' },
          { name: 'plan', data: CUSTOMERS.map((c) => c.plan), type: 'INT64' },
        ],
      }),
    ),
  );
});
afterAll(async () => {
  await ws?.remove();
});

/** What onnxruntime itself gives for the customers, fed tensors built here. */
async function direct(model: string, feeds: Record<string, ort.Tensor>, output: string): Promise<Map<string, number>> {
  const session = await ort.InferenceSession.create(model);
  const out = await session.run(feeds);
  return new Map(CUSTOMERS.map((c, i) => [c.id, (out[output]!.data as Float32Array)[i]!]));
}

const n = CUSTOMERS.length;
const pipelineFeeds = () => ({
  tenure: new ort.Tensor('float32', Float32Array.from(CUSTOMERS, (c) => c.tenure), [n, 1]),
  charges: new ort.Tensor('float32', Float32Array.from(CUSTOMERS, (c) => c.charges), [n, 1]),
  region: new ort.Tensor('string', CUSTOMERS.map((c) => c.region), [n, 1]),
  plan: new ort.Tensor('int64', BigInt64Array.from(CUSTOMERS, (c) => c.plan), [n, 1]),
});

async function job(name: string, format: 'csv' | 'parquet', model: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<string> {
  return ws.job(`${name}.yaml`, {
    name,
    input: { uri: `${format}/dt={date}/`, format, key: ['id'] },
    model,
    output: { uri: `out/${name}/dt={date}/`, format: 'csv' },
    limits: { max_reject_rate: 1 },
    ...extra,
  });
}

/** Prediction per key; the CSV holds the shortest text of each float32, read back as that float32. */
async function scored(name: string): Promise<Map<string, number>> {
  return new Map((await ws.csv(`out/${name}/dt=${DATE}/part-00000.csv`)).slice(1).map((row) => [row[0]!, Math.fround(Number(row[1]))]));
}

async function rejected(name: string): Promise<Map<string, string>> {
  const manifest = await ws.manifest(`out/${name}/dt=${DATE}`);
  const rows = new Map<string, string>();
  for (const r of manifest.rejects) for (const row of (await ws.csv(`out/${name}/dt=${DATE}/_rejects/${r.uri.split('/').pop()!}`)).slice(1)) rows.set(row[2]!, row[3]!);
  return rows;
}

const PIPELINE_INPUTS = { tenure: 'tenure', charges: ['charges'], region: 'region', plan: 'plan' };

describe('a scikit-learn pipeline with four named inputs (float, float, string, int64)', () => {
  it.each(['csv', 'parquet'] as const)('scores %s input exactly as onnxruntime does on the same values', async (format) => {
    const expected = await direct(pipeline, pipelineFeeds(), 'probability');
    const res = await runCli(['run', await job(`pipe-${format}`, format, { path: pipeline, inputs: PIPELINE_INPUTS }), '--date', DATE]);
    expect(res.code, res.stderr).toBe(0);
    expect(await scored(`pipe-${format}`)).toEqual(expected);
    // The unseen region and the padded one are scored as the encoder sees them, not cleaned up.
    expect(expected.get('c0')).not.toBe(expected.get('c4'));
    const manifest = await ws.manifest(`out/pipe-${format}/dt=${DATE}`);
    expect(manifest.models[0]!.binding.inputs).toEqual([
      { name: 'tenure', type: 'float32', columns: ['tenure'], rank: 2 },
      { name: 'charges', type: 'float32', columns: ['charges'], rank: 2 },
      { name: 'region', type: 'string', columns: ['region'], rank: 2 },
      { name: 'plan', type: 'int64', columns: ['plan'], rank: 2 },
    ]);
  });

  it('on the queue too: the binding travels in the run spec', async () => {
    const expected = await direct(pipeline, pipelineFeeds(), 'probability');
    const status = await runOnQueue(await job('pipe-queue', 'parquet', { path: pipeline, inputs: PIPELINE_INPUTS }), DATE);
    expect(status.state, status.error).toBe('succeeded');
    expect(await scored('pipe-queue')).toEqual(expected);
  });

  it('rejects a value its input type does not take, naming the column and the type expected', async () => {
    const lines = [
      'id,tenure,charges,region,plan',
      'ok,3,20.5,north,2',
      'frac,3,20.5,north,1.5',
      'word,3,20.5,north,gold',
      'huge,3,20.5,north,9223372036854775808',
      'empty,3,20.5,north,',
      'text,x,20.5,north,1',
      'blank-region,3,20.5,,1',
    ];
    await ws.write(`bad/dt=${DATE}/a.csv`, `${lines.join('\n')}\n`);
    const file = await ws.job('pipe-bad.yaml', {
      name: 'pipe-bad',
      input: { uri: 'bad/dt={date}/', format: 'csv', key: ['id'], missing: 'nan' },
      model: { path: pipeline, inputs: PIPELINE_INPUTS },
      output: { uri: 'out/pipe-bad/dt={date}/', format: 'csv' },
      limits: { max_reject_rate: 1 },
    });
    const res = await runCli(['run', file, '--date', DATE]);
    expect(res.code, res.stderr).toBe(0);
    expect([...(await scored('pipe-bad')).keys()]).toEqual(['ok', 'blank-region']);
    expect(await rejected('pipe-bad')).toEqual(
      new Map([
        ['frac', 'column plan: expected an integer (int64), got "1.5"'],
        ['word', 'column plan: expected an integer (int64), got "gold"'],
        ['huge', 'column plan: out of int64 range: "9223372036854775808"'],
        ['empty', 'column plan: empty value (an int64 input has no missing value)'],
        ['text', 'column tenure: expected a number, got "x"'],
      ]),
    );
  });

  it('a Parquet column of the wrong kind for its input fails the run, naming it', async () => {
    const file = await job('pipe-swapped', 'parquet', { path: pipeline, inputs: { ...PIPELINE_INPUTS, region: 'plan', plan: 'region' } });
    const res = await runCli(['run', file, '--date', DATE]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/INPUT_COLUMN_TYPE: .*a\.parquet: feature column "plan" is INT64; its model input takes string, so expected text/);
  });

  it('model.inputs must name every input of the model, and only those', async () => {
    const missing = await runCli(['validate', await job('pipe-short', 'csv', { path: pipeline, inputs: { tenure: 'tenure', charges: 'charges', region: 'region' } })]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('MODEL_SIGNATURE: model.inputs does not feed "plan"; the model\'s inputs are "tenure" (float32), "charges" (float32), "region" (string), "plan" (int64)');
    const extra = await runCli(['validate', await job('pipe-extra', 'csv', { path: pipeline, inputs: { ...PIPELINE_INPUTS, other: 'x' } })]);
    expect(extra.stderr).toContain('MODEL_SIGNATURE: model.inputs names "other", which');
    const both = await runCli(['validate', await job('pipe-both', 'csv', { path: pipeline, inputs: PIPELINE_INPUTS, features: ['tenure'] })]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('model.inputs: model.inputs names every input and its columns, so model.features and model.input go with it');
    const valid = await runCli(['validate', await job('pipe-valid', 'csv', { path: pipeline, inputs: PIPELINE_INPUTS })]);
    expect(valid.code, valid.stderr).toBe(0);
    expect(valid.stdout).toContain('input "region" string [N, 1]; features region');
  });

  it('input.missing cannot feed NaN to an integer input', async () => {
    const file = await ws.job('pipe-nan.yaml', {
      name: 'pipe-nan',
      input: { uri: 'csv/dt={date}/', format: 'csv', key: ['id'], missing: { charges: 'nan', plan: 'nan' } },
      model: { path: pipeline, inputs: PIPELINE_INPUTS },
      output: { uri: 'out/pipe-nan/dt={date}/', format: 'csv' },
    });
    const res = await runCli(['validate', file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('JOB_INVALID: ');
    expect(res.stderr).toContain('input.missing.plan is nan, but "plan" feeds int64 input "plan", which has no NaN');
  });
});

describe('an embedding model: float numerics and int64 category indices', () => {
  const feeds = () => ({
    num: new ort.Tensor('float32', Float32Array.from(CUSTOMERS.flatMap((c) => [c.tenure, c.charges])), [n, 2]),
    cat: new ort.Tensor('int64', BigInt64Array.from(CUSTOMERS.flatMap((c) => [c.plan, c.plan + 2n])), [n, 2]),
  });

  it.each(['csv', 'parquet'] as const)('scores %s input exactly as onnxruntime does, the category columns fed as int64', async (format) => {
    // plan + 2 as a second category column: the test data carries it as "plan2".
    const expected = await direct(embedding, feeds(), 'score');
    const dir = `emb-${format}`;
    const rows = CUSTOMERS.map((c) => ({ ...c, plan2: c.plan + 2n }));
    if (format === 'csv') await ws.write(`${dir}/dt=${DATE}/a.csv`, ['plan2,id,plan,charges,tenure', ...rows.map((c) => `${c.plan2},${c.id},${c.plan},${c.charges},${c.tenure}`)].join('\n') + '\n');
    else {
      await ws.write(
        `${dir}/dt=${DATE}/a.parquet`,
        new Uint8Array(
          parquetWriteBuffer({
            columnData: [
              { name: 'id', data: rows.map((c) => c.id), type: 'STRING' },
              { name: 'tenure', data: rows.map((c) => c.tenure), type: 'DOUBLE' },
              { name: 'charges', data: rows.map((c) => c.charges), type: 'FLOAT' },
              { name: 'plan', data: rows.map((c) => Number(c.plan)), type: 'INT32' },
              { name: 'plan2', data: rows.map((c) => c.plan2), type: 'INT64' },
            ],
          }),
        ),
      );
    }
    const file = await ws.job(`${dir}.yaml`, {
      name: dir,
      input: { uri: `${dir}/dt={date}/`, format, key: ['id'] },
      model: { path: embedding, inputs: { num: ['tenure', 'charges'], cat: ['plan', 'plan2'] } },
      output: { uri: `out/${dir}/dt={date}/`, format: 'csv' },
    });
    const res = await runCli(['run', file, '--date', DATE]);
    expect(res.code, res.stderr).toBe(0);
    expect(await scored(dir)).toEqual(expected);
    if (format === 'csv') {
      const status = await runOnQueue(file, DATE);
      expect(status.state, status.error).toBe('succeeded');
      expect(await scored(dir)).toEqual(expected);
    }
  });
});

/** One string input, one-hot over REGIONS and weighted 1..4: north scores 1, west 4, an unseen region 0. */
function regionScoreModel(): Uint8Array {
  return buildModel({
    inputs: [{ name: 'region', elem: 'string', shape: ['N', 1] }],
    outputs: [{ name: 'score', elem: 'float', shape: ['N', 1] }],
    nodes: [
      { op: 'OneHotEncoder', domain: 'ai.onnx.ml', inputs: ['region'], outputs: ['r3'], attrs: { cats_strings: REGIONS, zeros: 1 } },
      { op: 'Flatten', inputs: ['r3'], outputs: ['r'], attrs: { axis: 1 } },
      { op: 'MatMul', inputs: ['r', 'W'], outputs: ['score'] },
    ],
    floats: { W: { dims: [4, 1], values: [1, 2, 3, 4] } },
  });
}

describe('a string input from a field inside a Parquet struct', () => {
  it('reads the field, not the struct, and scores as onnxruntime does', async () => {
    const model = await ws.write(
      'region.onnx',
      regionScoreModel(),
    );
    await mkdir(ws.path(`nested/dt=${DATE}`), { recursive: true });
    await copyFile(`${REPO}/test/fixtures/keys/nested.parquet`, ws.path(`nested/dt=${DATE}/nested.parquet`));
    const file = await ws.job('struct-string.yaml', {
      name: 'struct-string',
      input: { uri: 'nested/dt={date}/', format: 'parquet', key: ['id'] },
      model: { path: model, inputs: { region: 's.region' } },
      output: { uri: 'out/struct-string/dt={date}/', format: 'csv' },
    });
    const res = await runCli(['run', file, '--date', DATE]);
    expect(res.code, res.stderr).toBe(0);
    // north, west and an unseen region, as the fixture holds them.
    expect([...(await scored('struct-string')).values()]).toEqual([1, 4, 0]);
  });
});

describe('a string value holding a NUL', () => {
  // onnxruntime-node passes string tensors to the model as C strings: "north\0x" would be scored as "north".
  const ROWS = [
    { id: 'k1', region: 'north' },
    { id: 'k\0ey', region: 'south' },
    { id: 'k3', region: 'north\0x' },
    { id: 'k4', region: 'north\0y' },
  ];

  it.each(['csv', 'parquet'] as const)('%s: is refused with its line and column, never cut short; a key holding one is copied exactly', async (format) => {
    const model = await ws.write(
      'region-nul.onnx',
      regionScoreModel(),
    );
    const dir = `nul-${format}`;
    if (format === 'csv') await ws.write(`${dir}/dt=${DATE}/a.csv`, `id,region\n${ROWS.map((r, i) => `${r.id},${i === 3 ? `"${r.region}"` : r.region}`).join('\n')}\n`);
    else await ws.write(`${dir}/dt=${DATE}/a.parquet`, new Uint8Array(parquetWriteBuffer({ columnData: ['id', 'region'].map((name) => ({ name, data: ROWS.map((r) => r[name as 'id']), type: 'STRING' })) })));
    // region is a key too: a key that feeds a string input is held to the input's rule.
    const file = await ws.job(`${dir}.yaml`, {
      name: dir,
      input: { uri: `${dir}/dt={date}/`, format, key: ['id', 'region'] },
      model: { path: model, inputs: { region: 'region' } },
      output: { uri: `out/${dir}/dt={date}/`, format: 'csv' },
      limits: { max_reject_rate: 1 },
    });
    const res = await runCli(['run', file, '--date', DATE]);
    expect(res.code, res.stderr).toBe(0);
    expect((await ws.csv(`out/${dir}/dt=${DATE}/part-00000.csv`)).slice(1)).toEqual([
      ['k1', 'north', '1'],
      ['k\0ey', 'south', '2'],
    ]);
    const rejects = (await ws.csv(`out/${dir}/dt=${DATE}/_rejects/part-00000.csv`)).slice(1);
    const line = (row: number) => String(format === 'csv' ? row + 2 : row);
    expect(rejects.map((r) => r.slice(1))).toEqual([
      [line(2), 'k3', 'north\0x', 'column region: holds a NUL character, where onnxruntime would cut the text short: "north\\u0000x"'],
      [line(3), 'k4', 'north\0y', 'column region: holds a NUL character, where onnxruntime would cut the text short: "north\\u0000y"'],
    ]);
  });
});

describe('inputs of every element type nightscore reads', () => {
  const ROWS = [
    { id: 'r0', d: '0.1', h: '1.5', i: '7', b: 'true', f: '2' },
    { id: 'r1', d: '123456789.123456789', h: '0.333', i: '-3', b: '0', f: '-1.25' },
    { id: 'r2', d: '-2.5e-300', h: '65504', i: '2147483647', b: 'False', f: '0' },
  ];
  const BAD = [
    { id: 'x-half', d: '1', h: '70000', i: '1', b: '1', f: '1', reason: 'column h: out of float16 range: "70000"' },
    { id: 'x-int32', d: '1', h: '1', i: '2147483648', b: '1', f: '1', reason: 'column i: out of int32 range: "2147483648"' },
    { id: 'x-bool', d: '1', h: '1', i: '1', b: 'yes', f: '1', reason: 'column b: expected a bool (true, false, 1 or 0), got "yes"' },
    { id: 'x-double', d: '1e400', h: '1', i: '1', b: '1', f: '1', reason: 'column d: not finite: "1e400"' },
  ];

  it('reads each value for its type: float64 at double precision, float16 rounded as a cast rounds, int32 and bool checked', async () => {
    const all = [...ROWS, ...BAD];
    await ws.write(`every/dt=${DATE}/a.csv`, ['id,d,h,i,b,f', ...all.map((r) => [r.id, r.d, r.h, r.i, r.b, r.f].join(','))].join('\n') + '\n');
    const file = await ws.job('every.yaml', {
      name: 'every',
      input: { uri: 'every/dt={date}/', format: 'csv', key: ['id'] },
      model: { path: everyType, inputs: { d: 'd', h: 'h', i: 'i', b: 'b', f: 'f' } },
      output: { uri: 'out/every/dt={date}/', format: 'csv' },
      limits: { max_reject_rate: 1 },
    });
    const res = await runCli(['run', file, '--date', DATE]);
    expect(res.code, res.stderr).toBe(0);
    const session = await ort.InferenceSession.create(everyType);
    const k = ROWS.length;
    const out = await session.run({
      d: new ort.Tensor('float64', Float64Array.from(ROWS, (r) => Number(r.d)), [k, 1]),
      h: new ort.Tensor('float16', Uint16Array.from(ROWS, (r) => f16(Number(r.h))), [k, 1]),
      i: new ort.Tensor('int32', Int32Array.from(ROWS, (r) => Number(r.i)), [k]),
      b: new ort.Tensor('bool', Uint8Array.from(ROWS, (r) => (/^(true|1)$/i.test(r.b) ? 1 : 0)), [k, 1]),
      f: new ort.Tensor('float32', Float32Array.from(ROWS, (r) => Number(r.f)), [k, 1]),
    });
    const rows = (await ws.csv(`out/every/dt=${DATE}/part-00000.csv`)).slice(1);
    expect(rows.map((r) => r[0])).toEqual(ROWS.map((r) => r.id));
    expect(rows.map((r) => Math.fround(Number(r[1])))).toEqual(Array.from(out.y!.data as Float32Array));
    // The float64 echo reads back as the double of the input text, not a float32 of it.
    expect(rows.map((r) => Number(r[2]))).toEqual(ROWS.map((r) => Number(r.d)));
    expect(await rejected('every')).toEqual(new Map(BAD.map((b) => [b.id, b.reason])));
  });
});

describe('a float16 output', () => {
  it.each(['csv', 'parquet'] as const)('is written to %s as the value it holds, not its bits', async (format) => {
    const model = await ws.write(
      'half-out.onnx',
      buildModel({
        inputs: [{ name: 'x', elem: 'float', shape: ['N', 1] }],
        outputs: [{ name: 'half', elem: 'float16', shape: ['N', 1] }],
        nodes: [{ op: 'Cast', inputs: ['x'], outputs: ['half'], attrs: { to: ELEM.float16 } }],
      }),
    );
    await ws.write(`half/dt=${DATE}/a.csv`, 'id,x\na,1.5\nb,-0\nc,0.1\nd,65504\n');
    const name = `half-${format}`;
    const file = await ws.job(`${name}.yaml`, {
      name,
      input: { uri: 'half/dt={date}/', format: 'csv', key: ['id'] },
      model: { path: model, features: ['x'] },
      output: { uri: `out/${name}/dt={date}/`, format },
    });
    const res = await runCli(['run', file, '--date', DATE]);
    expect(res.code, res.stderr).toBe(0);
    // 0.1 as a half is 0.0999755859375, which reads back from its shortest float32 text.
    const expected = ['1.5', '-0', '0.099975586', '65504'];
    if (format === 'csv') expect((await ws.csv(`out/${name}/dt=${DATE}/part-00000.csv`)).slice(1).map((r) => r[1])).toEqual(expected);
    else {
      const rows = await parquetReadObjects({ file: (await readFile(ws.path(`out/${name}/dt=${DATE}/part-00000.parquet`))).buffer as ArrayBuffer });
      expect(rows.map((r) => (Object.is(r.half, -0) ? '-0' : String(r.half)))).toEqual(['1.5', '-0', String(Math.fround(0.0999755859375)), '65504']);
    }
  });
});

/** IEEE half bits of x, round to nearest even (as onnxruntime's Cast and numpy do). */
function f16(x: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, x);
  const bits = view.getUint32(0);
  const sign = (bits >>> 16) & 0x8000;
  const exp = ((bits >>> 23) & 0xff) - 127 + 15;
  const mant = bits & 0x7fffff;
  if (exp <= 0) return sign; // the test's values are all normal halves
  let half = sign | (exp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1))) half++;
  return half;
}
