import { existsSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { buildModel } from '../scripts/onnx-builder.js';
import { runCli, Workspace } from './support/workspace.js';

/**
 * A model is never run on made-up values, and a row it fails on is rejected, not the day.
 * Output widths come from the graph's shapes; when onnxruntime fails on a batch, the batch is
 * halved until the failing rows stand alone: each is rejected with its line, key and
 * onnxruntime's message, and the others are scored as onnxruntime scores them. A chunk stops
 * as soon as its rejects make the reject limit certain to be exceeded.
 */

const DATE = '2026-12-02';
const REGIONS = ['north', 'south', 'east', 'west'];

/**
 * region (string [N,1]) one-hot encoded as skl2onnx writes OneHotEncoder(handle_unknown="error"):
 * ai.onnx.ml OneHotEncoder with zeros=0 fails on a category it does not list, "" included.
 */
const encoderModel = () =>
  buildModel({
    inputs: [{ name: 'region', elem: 'string', shape: ['N', 1] }],
    outputs: [{ name: 'score', elem: 'float', shape: ['N', 1] }],
    nodes: [
      { op: 'OneHotEncoder', domain: 'ai.onnx.ml', inputs: ['region'], outputs: ['onehot3'], attrs: { cats_strings: REGIONS, zeros: 0 } },
      { op: 'Flatten', inputs: ['onehot3'], outputs: ['onehot'], attrs: { axis: 1 } },
      { op: 'MatMul', inputs: ['onehot', 'W'], outputs: ['score'] },
    ],
    floats: { W: { dims: [4, 1], values: [0.125, -0.5, 0.75, 1.5] } },
  });

/** idx (int64 [N]) into a 100 × 4 table, as torch's nn.Embedding exports to Gather; the width is symbolic in the graph. */
const TABLE = 100;
const embeddingModel = () =>
  buildModel({
    inputs: [{ name: 'idx', elem: 'int64', shape: ['N'] }],
    outputs: [{ name: 'emb', elem: 'float', shape: ['N', 'D'] }],
    nodes: [{ op: 'Gather', inputs: ['E', 'idx'], outputs: ['emb'], attrs: { axis: 0 } }],
    floats: { E: { dims: [TABLE, 4], values: Array.from({ length: TABLE * 4 }, (_, i) => Math.sin(i + 1) * 3.7) } },
  });

/**
 * The embedding with its rows reshaped by a shape the graph may be given at run time (an
 * initializer that is also a graph input, as older exporters write them): no shape inference
 * can fix the width, so onnxruntime reports it open ('D').
 */
const WIDTH = 3;
const openModel = () =>
  buildModel({
    inputs: [{ name: 'idx', elem: 'int64', shape: ['N'] }, { name: 'shape', elem: 'int64', shape: [2] }],
    outputs: [{ name: 'emb', elem: 'float', shape: ['N', 'D'] }],
    nodes: [
      { op: 'Gather', inputs: ['E', 'idx'], outputs: ['rows'], attrs: { axis: 0 } },
      { op: 'Reshape', inputs: ['rows', 'shape'], outputs: ['emb'] },
    ],
    floats: { E: { dims: [TABLE, WIDTH], values: Array.from({ length: TABLE * WIDTH }, (_, i) => Math.cos(i + 1) * 2.3) } },
    ints: { shape: { dims: [2], values: [-1, WIDTH] } },
  });

let ws: Workspace;
let encoder: string;
let embedding: string;
let open: string;
beforeAll(async () => {
  ws = await Workspace.create();
  encoder = await ws.write('encoder.onnx', encoderModel());
  embedding = await ws.write('embedding.onnx', embeddingModel());
  open = await ws.write('open.onnx', openModel());
});
afterAll(async () => {
  await ws?.remove();
});

async function run(name: string, rows: string[], model: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  await ws.write(`in/${name}/dt=${DATE}/a.csv`, `${rows.join('\n')}\n`);
  const file = await ws.job(`${name}.yaml`, {
    name,
    input: { uri: `in/${name}/dt={date}/`, format: 'csv', key: ['id'] },
    model,
    output: { uri: `out/${name}/dt={date}/`, format: 'csv' },
    ...extra,
  });
  return runCli(['run', file, '--date', DATE]);
}

/** Prediction rows of the part; the CSV holds the shortest text of each float32, read back as that float32. */
async function predictions(name: string): Promise<Map<string, number[]>> {
  return new Map((await ws.csv(`out/${name}/dt=${DATE}/part-00000.csv`)).slice(1).map((row) => [row[0]!, row.slice(1).map((v) => Math.fround(Number(v)))]));
}

/** Reject rows (source, line, id, reason) of the run. */
async function rejects(name: string): Promise<string[][]> {
  const manifest = await ws.manifest(`out/${name}/dt=${DATE}`);
  const rows: string[][] = [];
  for (const r of manifest.rejects) rows.push(...(await ws.csv(`out/${name}/dt=${DATE}/_rejects/${r.uri.split('/').pop()!}`)).slice(1));
  return rows;
}

describe('a OneHotEncoder that fails on an unknown category (zeros=0)', () => {
  const day = (regions: string[]) => ['id,region', ...regions.map((r, i) => `c${i},${r}`)];

  it('scores a day of known categories: no made-up "" is ever fed to it', async () => {
    const regions = Array.from({ length: 30 }, (_, i) => REGIONS[(i * 7) % 4]!);
    const res = await run('onehot-known', day(regions), { path: encoder, inputs: { region: ['region'] } });
    expect(res.code, res.stderr).toBe(0);
    const got = await predictions('onehot-known');
    expect(got.size).toBe(30);
    expect(got.get('c0')).toEqual([0.125]);
    expect(got.get('c1')).toEqual([1.5]);
  });

  it('rejects the one row with an unknown category, with its line and onnxruntime\'s message, and scores the rest', async () => {
    const regions = Array.from({ length: 30 }, (_, i) => (i === 17 ? 'mars' : REGIONS[i % 4]!));
    const res = await run('onehot-unknown', day(regions), { path: encoder, inputs: { region: ['region'] } }, { chunk: { rows: 8 }, limits: { max_reject_rate: 0.05 } });
    expect(res.code, res.stderr).toBe(0);
    const [reject, ...more] = await rejects('onehot-unknown');
    expect(more).toEqual([]);
    // c17 is the 18th data row: line 19, after the header.
    expect(reject!.slice(1, 3)).toEqual(['19', 'c17']);
    expect(reject![3]).toMatch(/^the model failed on this row: .*OneHotEncoder/);
    const got = await predictions('onehot-unknown');
    expect(got.size).toBe(29);
    expect(got.has('c17')).toBe(false);
    expect(got.get('c18')).toEqual([0.75]);
    const manifest = await ws.manifest(`out/onehot-unknown/dt=${DATE}`);
    expect(manifest.rows).toEqual({ read: 30, scored: 29, rejected: 1 });
  });
});

describe('an embedding fed one out-of-range index among thousands of rows', () => {
  const ROWS = 6_000;
  const BAD = 4_321;
  const index = (i: number) => (i === BAD ? TABLE + 7 : (i * 37) % TABLE);

  it('rejects exactly that row with its line, and scores the rest bit for bit as onnxruntime does', async () => {
    const rows = ['id,idx', ...Array.from({ length: ROWS }, (_, i) => `k${i},${index(i)}`)];
    const res = await run('embedding', rows, { path: embedding, inputs: { idx: ['idx'] } }, { chunk: { rows: 1_000 } });
    expect(res.code, res.stderr).toBe(0);
    const [reject, ...more] = await rejects('embedding');
    expect(more).toEqual([]);
    expect(reject!.slice(1, 3)).toEqual([String(BAD + 2), `k${BAD}`]);
    expect(reject![3]).toMatch(/^the model failed on this row: .*Gather.*out of data bounds, idx=107/);

    // The width is symbolic ('D') in the graph; onnxruntime's shape inference makes it 4.
    const manifest = await ws.manifest(`out/embedding/dt=${DATE}`);
    expect(manifest.model.outputs).toEqual({ emb: ['emb_0', 'emb_1', 'emb_2', 'emb_3'] });
    expect(manifest.rows).toEqual({ read: ROWS, scored: ROWS - 1, rejected: 1 });

    const good = Array.from({ length: ROWS }, (_, i) => i).filter((i) => i !== BAD);
    const session = await ort.InferenceSession.create(embedding);
    const direct = (await session.run({ idx: new ort.Tensor('int64', BigInt64Array.from(good, (i) => BigInt(index(i))), [good.length]) })).emb!.data as Float32Array;
    const got = await predictions('embedding');
    expect(got.size).toBe(good.length);
    good.forEach((i, r) => expect(got.get(`k${i}`), `k${i}`).toEqual(Array.from(direct.subarray(r * 4, r * 4 + 4))));
  });

  it('stops the chunk as soon as its rejects make limits.max_reject_rate certain to be exceeded', async () => {
    // The first 3,000 rows are all out of range: a day of ~60 KB holds at most ~30,000 rows,
    // so past 30 rejects 0.1% is exceeded whatever the rest holds.
    const rows = ['id,idx', ...Array.from({ length: ROWS }, (_, i) => `k${i},${i < 3_000 ? TABLE + i : i % TABLE}`)];
    const res = await run('embedding-limit', rows, { path: embedding, inputs: { idx: ['idx'] } }, { chunk: { rows: 1_000 }, limits: { max_reject_rate: 0.001 } });
    expect(res.code).not.toBe(0);
    const manifest = await ws.manifest(`out/embedding-limit/dt=${DATE}`);
    expect(manifest.status).toBe('failed');
    const most = Math.floor(Buffer.byteLength(`${rows.join('\n')}\n`) / 2) + 1;
    const stopAt = Math.floor(most * 0.001) + 1;
    expect(manifest.error).toMatchObject({
      code: 'MODEL_RUN_FAILED',
      line: 2,
      message: expect.stringContaining(`the model failed on each of the first ${stopAt} rows of the chunk`),
    });
    expect(manifest.error!.source).toMatch(/embedding-limit\/dt=2026-12-02\/a\.csv$/);
  });

  it('once the model has scored rows, a limit certain to be exceeded is REJECT_RATE_EXCEEDED, naming the first failing row', async () => {
    const rows = ['id,idx', ...Array.from({ length: ROWS }, (_, i) => `k${i},${i >= 100 && i % 2 === 0 ? TABLE + i : i % TABLE}`)];
    const res = await run('embedding-rate', rows, { path: embedding, inputs: { idx: ['idx'] } }, { chunk: { rows: 1_000 }, limits: { max_reject_rate: 0.001 } });
    expect(res.code).not.toBe(0);
    const manifest = await ws.manifest(`out/embedding-rate/dt=${DATE}`);
    expect(manifest.error).toMatchObject({
      code: 'REJECT_RATE_EXCEEDED',
      line: 102,
      message: expect.stringMatching(/rejected in this chunk already, so limits.max_reject_rate is 0.10% of the at most \d+ rows the date holds is exceeded whatever the other rows hold; the first, .*a\.csv:102: the model failed on this row: /),
    });
  });
});

describe('a chunk that starts mid-object', () => {
  it('a stop there does not name a line of the range as the object\'s', async () => {
    // chunk.bytes splits the object into ranges; the rows of the second half fail.
    const rows = ['id,idx', ...Array.from({ length: 6_000 }, (_, i) => `k${String(i).padStart(4, '0')},${i >= 3_000 ? TABLE + i : i % TABLE}`)];
    const res = await run('embedding-mid', rows, { path: embedding, inputs: { idx: ['idx'] } }, { chunk: { rows: 500, bytes: 20_000 }, limits: { max_reject_rate: 0.001 } });
    expect(res.code).not.toBe(0);
    const manifest = await ws.manifest(`out/embedding-mid/dt=${DATE}`);
    // k3000 is on line 3,002 of a.csv; its chunk starts mid-object and counts lines from there
    // (the commit numbers them), so the error says so rather than name the wrong line of a.csv.
    expect(manifest.error).toMatchObject({ code: 'REJECT_RATE_EXCEEDED' });
    expect(manifest.error!.line).toBeUndefined();
    expect(manifest.error!.message).toMatch(/the first, \S*a\.csv \(line \d+ of the range starting at byte [1-9]\d*\): .*idx=3100 /);
  });
});

describe('a Parquet object', () => {
  it('a stop names the first failing row by its row index, said as such', async () => {
    const ids = Array.from({ length: 2_000 }, (_, i) => `k${i}`);
    const idx = Array.from({ length: 2_000 }, (_, i) => BigInt(i >= 700 ? TABLE + i : i % TABLE));
    await ws.write(`in/embedding-pq/dt=${DATE}/a.parquet`, new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'id', data: ids, type: 'STRING' }, { name: 'idx', data: idx, type: 'INT64' }] })));
    const file = await ws.job('embedding-pq.yaml', {
      name: 'embedding-pq',
      input: { uri: 'in/embedding-pq/dt={date}/', format: 'parquet', key: ['id'] },
      model: { path: embedding, inputs: { idx: ['idx'] } },
      output: { uri: 'out/embedding-pq/dt={date}/', format: 'csv' },
      chunk: { rows: 500 },
      limits: { max_reject_rate: 0.001 },
    });
    const res = await runCli(['run', file, '--date', DATE]);
    expect(res.code).not.toBe(0);
    const manifest = await ws.manifest(`out/embedding-pq/dt=${DATE}`);
    expect(manifest.error).toMatchObject({ code: 'REJECT_RATE_EXCEEDED' });
    expect(manifest.error!.line).toBeUndefined();
    expect(manifest.error!.message).toMatch(/the first, \S*a\.parquet \(row 700, counted from 0\): .*idx=800 /);
  });
});

describe('a model that fails on a batch of rows but on none of them alone', () => {
  it('is MODEL_RUN_FAILED with the dynamic batch hint, not scored one call a row', async () => {
    // A Reshape to a fixed [1, 2] inside a graph whose input is [N, 2]: one row scores, two do not.
    const model = await ws.write('one-row.onnx', buildModel({
      inputs: [{ name: 'x', elem: 'float', shape: ['N', 2] }],
      outputs: [{ name: 'y', elem: 'float', shape: ['N', 1] }],
      nodes: [
        { op: 'Reshape', inputs: ['x', 'S'], outputs: ['r'] },
        { op: 'MatMul', inputs: ['r', 'W'], outputs: ['y'] },
      ],
      floats: { W: { dims: [2, 1], values: [0.5, 2] } },
      ints: { S: { dims: [2], values: [1, 2] } },
    }));
    const rows = ['id,a,b', ...Array.from({ length: 300 }, (_, i) => `r${i},${i % 7},${i % 11}`)];
    const res = await run('one-row', rows, { path: model, features: ['a', 'b'] });
    expect(res.code).not.toBe(0);
    const manifest = await ws.manifest(`out/one-row/dt=${DATE}`);
    expect(manifest.error).toMatchObject({
      code: 'MODEL_RUN_FAILED',
      message: expect.stringMatching(/fails on 2 rows together but scores each half of them alone, so no row is at fault: .*Reshape/),
      hint: expect.stringContaining('dynamic batch dimension'),
    });
    expect(manifest.rows.scored).toBe(0);
  });
});

describe('an output whose width the graph leaves open', () => {
  const index = (i: number) => (i < 5 ? TABLE + i : (i * 37) % TABLE);

  it('takes its width from the first rows of the day that score: the rows the model fails on before them are the chunk\'s rejects', async () => {
    const session = await ort.InferenceSession.create(open);
    expect(session.outputMetadata[0]).toMatchObject({ name: 'emb', shape: ['N', 'D'] });

    // The first five rows fail; chunk.bytes splits the day into chunks scored on two threads.
    const ROWS = 3_000;
    const rows = ['id,idx', ...Array.from({ length: ROWS }, (_, i) => `k${i},${index(i)}`)];
    await ws.write(`in/open/dt=${DATE}/a.csv`, `${rows.join('\n')}\n`);
    const file = await ws.job('open.yaml', {
      name: 'open',
      input: { uri: 'in/open/dt={date}/', format: 'csv', key: ['id'] },
      model: { path: open, inputs: { idx: ['idx'] } },
      output: { uri: 'out/open/dt={date}/', format: 'csv' },
      chunk: { rows: 4, bytes: 8_192 },
      limits: { max_reject_rate: 0.01 },
    });
    const res = await runCli(['run', file, '--date', DATE, '--threads', '2']);
    expect(res.code, res.stderr).toBe(0);

    const manifest = await ws.manifest(`out/open/dt=${DATE}`);
    expect(manifest.chunks).toBeGreaterThan(1);
    expect(manifest.model.outputs).toEqual({ emb: ['emb_0', 'emb_1', 'emb_2'] });
    expect(manifest.rows).toEqual({ read: ROWS, scored: ROWS - 5, rejected: 5 });
    expect((await rejects('open')).map((r) => r.slice(1, 3))).toEqual([2, 3, 4, 5, 6].map((line) => [String(line), `k${line - 2}`]));

    const good = Array.from({ length: ROWS }, (_, i) => i).filter((i) => i >= 5);
    const direct = (await session.run({ idx: new ort.Tensor('int64', BigInt64Array.from(good, (i) => BigInt(index(i))), [good.length]) })).emb!.data as Float32Array;
    const got = new Map<string, number[]>();
    for (let c = 0; c < manifest.chunks; c++) {
      const [header, ...body] = await ws.csv(`out/open/dt=${DATE}/part-${String(c).padStart(5, '0')}.csv`);
      expect(header).toEqual(['id', 'emb_0', 'emb_1', 'emb_2']);
      for (const row of body) got.set(row[0]!, row.slice(1).map((v) => Math.fround(Number(v))));
    }
    expect(got.size).toBe(good.length);
    good.forEach((i, r) => expect(got.get(`k${i}`), `k${i}`).toEqual(Array.from(direct.subarray(r * WIDTH, r * WIDTH + WIDTH))));
  });

  it('names its columns from a prefix, and holds a list of names to the width the rows show', async () => {
    const rows = ['id,idx', ...Array.from({ length: 20 }, (_, i) => `k${i},${i}`)];
    const prefixed = await run('open-prefix', rows, { path: open, inputs: { idx: ['idx'] } }, { output: { uri: 'out/open-prefix/dt={date}/', format: 'csv', columns: { emb: 'vec' } } });
    expect(prefixed.code, prefixed.stderr).toBe(0);
    expect((await ws.manifest(`out/open-prefix/dt=${DATE}`)).model.outputs).toEqual({ emb: ['vec_0', 'vec_1', 'vec_2'] });

    const listed = await run('open-list', rows, { path: open, inputs: { idx: ['idx'] } }, { output: { uri: 'out/open-list/dt={date}/', format: 'csv', columns: { emb: ['a', 'b'] } } });
    expect(listed.code).not.toBe(0);
    expect((await ws.manifest(`out/open-list/dt=${DATE}`)).error).toMatchObject({ code: 'MODEL_OUTPUT_SHAPE', message: expect.stringContaining('output "emb" has shape [20,3] for 20 rows; expected [20,2]') });
  });

  it('fails a day on which the model scores no row with the reject limit\'s error, before any part is written', async () => {
    const rows = ['id,idx', ...Array.from({ length: 50 }, (_, i) => `k${i},${TABLE + i}`)];
    const res = await run('open-none', rows, { path: open, inputs: { idx: ['idx'] } }, { chunk: { rows: 8 } });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/MODEL_RUN_FAILED/);
    expect(res.stderr).toMatch(/the model failed on each of the first \d+ rows of the chunk, given alone, and has scored none/);
    expect(existsSync(ws.path(`out/open-none/dt=${DATE}/part-00000.csv`))).toBe(false);
  });

  it('is said to be learned by validate, which reads no rows', async () => {
    const file = await ws.job('open-validate.yaml', {
      name: 'open-validate',
      input: { uri: 'in/open/dt={date}/', format: 'csv', key: ['id'] },
      model: { path: open, inputs: { idx: ['idx'] } },
      output: { uri: 'out/open-validate/dt={date}/', format: 'csv' },
    });
    const res = await runCli(['validate', file]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('columns emb_… (its width is learned from the first rows of each date)');
  });

  it('is sized by the golden rows in model check', async () => {
    const session = await ort.InferenceSession.create(open);
    const idx = Array.from({ length: 30 }, (_, i) => (i * 11) % TABLE);
    const emb = (await session.run({ idx: new ort.Tensor('int64', BigInt64Array.from(idx, BigInt), [idx.length]) })).emb!.data as Float32Array;
    const golden = (skew: number) => ['idx,expected_emb_0,expected_emb_1,expected_emb_2', ...idx.map((v, r) => [v, emb[r * 3]!, emb[r * 3 + 1]! + (r === 7 ? skew : 0), emb[r * 3 + 2]!].join(','))].join('\n');
    await ws.write('open-golden.csv', `${golden(0)}\n`);
    await ws.write('open-off.csv', `${golden(0.5)}\n`);
    const pass = await runCli(['model', 'check', open, ws.path('open-golden.csv')]);
    expect(pass.code, pass.stderr).toBe(0);
    expect(pass.stdout).toContain('30 golden rows of open-golden.csv match within tolerance 0.00001 (emb_0, emb_1, emb_2;');
    const off = await runCli(['model', 'check', open, ws.path('open-off.csv')]);
    expect(off.code).toBe(1);
    expect(off.stderr).toMatch(/MODEL_CHECK_FAILED/);
    expect(off.stderr).toContain('line 9');
  });
});

describe('a model that fails on every row, on a day too wide for a chunk to know its limit is exceeded', () => {
  it('fails the run with MODEL_RUN_FAILED and the export\'s fix, not the reject limit\'s "fix the input"', async () => {
    // x is [N, F] with F open in the graph, so no check before scoring sees the job feed 2 columns to a 3-row weight.
    const model = await ws.write('matmul3.onnx', buildModel({
      inputs: [{ name: 'x', elem: 'float', shape: ['N', 'F'] }],
      outputs: [{ name: 'y', elem: 'float', shape: ['N', 1] }],
      nodes: [{ op: 'MatMul', inputs: ['x', 'W'], outputs: ['y'] }],
      floats: { W: { dims: [3, 1], values: [1, 2, 3] } },
    }));
    const rows = ['id,a,b,pad', ...Array.from({ length: 400 }, (_, i) => `r${i},${i},1,${'n'.repeat(300)}`)];
    const res = await run('every-row', rows, { path: model, inputs: { x: ['a', 'b'] } });
    expect(res.code).not.toBe(0);
    const manifest = await ws.manifest(`out/every-row/dt=${DATE}`);
    expect(manifest.rows).toEqual({ read: 400, scored: 0, rejected: 400 });
    expect(manifest.error).toMatchObject({
      code: 'MODEL_RUN_FAILED',
      message: `the model failed on each of the 400 rows of ${DATE}, given alone, and scored none (see the rejects for each row's message)`,
      hint: expect.stringContaining('check that model.inputs feeds it the columns it was trained on'),
    });
  });
});
