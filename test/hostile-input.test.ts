import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel, logisticModel } from '../scripts/onnx-builder.js';
import { CHURN_FEATURES, rng } from '../src/demo/churn-data.js';
import { csvOf } from './support/data.js';
import { allIn, createTestQueue, type TestQueue } from './support/queue.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

/**
 * Hostile files: each gets a clear error (a code, the file, no stack trace) in bounded time,
 * leaves no `_SUCCESS`, and a worker that met one goes on serving other jobs.
 * (bad-input covers the plainer cases: a text file as the model, a float64 input, a wrong
 * feature count, a ZipMap output.)
 */
let ws: Workspace;
let tq: TestQueue | undefined;
beforeAll(async () => {
  ws = await Workspace.create();
});
afterAll(async () => {
  await tq?.close();
  await ws.remove();
});

const header = csvOf(1, 0).split('\n')[0]!;

async function csvJob(name: string, body: string | Buffer, file = 'a.csv') {
  await ws.write(`${name}/in/${file}`, body);
  return ws.job(`${name}.yaml`, {
    name,
    input: { uri: `${name}/in/`, format: 'csv', key: ['customer_id'], csv: { max_record_bytes: 1024 * 1024 } },
    model: { path: `${REPO}/models/churn/model.onnx` },
    output: { uri: `${name}/out/`, format: 'csv' },
    limits: { max_reject_rate: 0.5 },
  });
}

/** Runs the job (`<name>.yaml`, output `<name>/out/`) and checks that it failed cleanly. */
async function expectCleanFailure(job: string, code: RegExp) {
  const t0 = Date.now();
  const res = await runCli(['run', job, '--date', '2026-01-01']);
  expect(res.code).not.toBe(0);
  expect(res.stderr).toMatch(code);
  expect(res.stderr).toContain('\n  hint: ');
  expect(res.stderr).not.toMatch(/\n\s+at /);
  // onnxruntime's own log lines would repeat the error outside nightscore's.
  expect(res.stderr).not.toContain('onnxruntime');
  expect(Date.now() - t0).toBeLessThan(20_000);
  expect(existsSync(ws.path(path.basename(job, '.yaml'), 'out', '_SUCCESS'))).toBe(false);
  return res;
}

const PARQUET = path.join(REPO, 'test/fixtures/parquet-testing/alltypes_plain.parquet');

async function parquetJob(name: string, body: Buffer) {
  await ws.write(`${name}/in/x.parquet`, body);
  return ws.job(`${name}.yaml`, {
    name,
    input: { uri: `${name}/in/`, format: 'parquet' },
    model: { path: await ws.model(`${name}.onnx`, { weights: [1], bias: 0 }), features: ['int_col'] },
    output: { uri: `${name}/out/`, format: 'csv' },
  });
}

/** A job over clean churn CSV whose model is `model` (bytes), fed the first three features. */
async function modelJob(name: string, model: Uint8Array) {
  await ws.write(`${name}/in/a.csv`, csvOf(20, 4));
  return ws.job(`${name}.yaml`, {
    name,
    input: { uri: `${name}/in/`, format: 'csv', key: ['customer_id'] },
    model: { path: await ws.write(`${name}/model.onnx`, model), features: CHURN_FEATURES.slice(0, 3) },
    output: { uri: `${name}/out/`, format: 'csv' },
  });
}

function seededBytes(n: number, seed: number): Buffer {
  const next = rng(seed);
  return Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256)));
}

const W3 = { W: { dims: [3, 1], values: [0.1, 0.2, 0.3] } };

describe('hostile input', () => {
  it('random bytes', async () => {
    await expectCleanFailure(await csvJob('random', randomBytes(200_000)), /nightscore: (CSV_MALFORMED|CSV_RECORD_TOO_LARGE|INPUT_MISSING_COLUMN|INPUT_EMPTY): .*a\.csv/);
  });

  it('a 100 MB single field is capped by max_record_bytes, not read into memory', async () => {
    const big = Buffer.alloc(100 * 1024 * 1024, 'x');
    const res = await expectCleanFailure(await csvJob('bigfield', Buffer.concat([Buffer.from(`${header}\n`), big, Buffer.from(',1\n')])), /CSV_RECORD_TOO_LARGE: .*a\.csv:2: malformed CSV/);
    expect(res.stderr).toContain('input.csv.max_record_bytes');
  });

  it('a header with 100,000 columns (none of the features)', async () => {
    const cols = Array.from({ length: 100_000 }, (_, i) => `c${i}`).join(',');
    await expectCleanFailure(await csvJob('wide', `${cols}\n${cols}\n`), /INPUT_MISSING_COLUMN: .*a\.csv:1: no column "tenure_months" \(feature\); the header has "c0", "c1", .* and 99988 more/);
  });

  it('NUL bytes and invalid UTF-8 in values are rejected rows, not crashes', async () => {
    const good = csvOf(10, 1).trimEnd().split('\n');
    const nul = good[2]!.replace(/,[^,]*$/, ',1\u0000');
    const body = Buffer.concat([Buffer.from(`${good.slice(0, 2).join('\n')}\n${nul}\n`), Buffer.from([0x4b, 0xff, 0xfe, 0x2c]), Buffer.from(`${good[3]!.split(',').slice(1).join(',').replace(/,[^,]*$/, ',\xff')}\n${good.slice(4).join('\n')}\n`)]);
    const job = await csvJob('bytes', body);
    const res = await runCli(['run', job, '--date', '2026-01-01', '--json']);
    expect(res.code).toBe(0);
    const m = JSON.parse(res.stdout);
    expect(m.rows.read).toBe(10);
    expect(m.rows.rejected).toBe(2);
    const rejects = await ws.read('bytes/out/_rejects/part-00000.csv');
    expect(rejects).toContain('expected a number');
  });

  it('a truncated gzip', async () => {
    const gz = gzipSync(csvOf(2000, 2));
    await expectCleanFailure(await csvJob('gz', gz.subarray(0, Math.floor(gz.length / 2)), 'a.csv.gz'), /INPUT_CORRUPT: .*a\.csv\.gz: cannot decompress/);
  });

  it('a Parquet file whose footer declares an absurd size', async () => {
    const good = await readFile(path.join(REPO, 'test/fixtures/parquet-testing/alltypes_plain.parquet'));
    const bad = Buffer.from(good);
    bad.writeUInt32LE(0x7fffffff, bad.length - 8);
    await ws.write('absurd/in/x.parquet', bad);
    const job = await ws.job('absurd.yaml', {
      name: 'absurd',
      input: { uri: 'absurd/in/', format: 'parquet' },
      model: { path: await ws.model('absurd.onnx', { weights: [1], bias: 0 }), features: ['int_col'] },
      output: { uri: 'absurd/out/', format: 'csv' },
    });
    await expectCleanFailure(job, /PARQUET_INVALID: .*x\.parquet: not a readable Parquet file/);
  });

  it.each([
    // Cut inside the trailing magic, inside the footer, and in the middle of the data.
    ['its last 2 bytes', 2],
    ['its last 40 bytes', 40],
    ['its second half', 0.5],
  ])('a Parquet file cut short by %s: its footer is missing', async (_label, cut) => {
    const good = await readFile(PARQUET);
    const keep = cut < 1 ? Math.floor(good.length * cut) : good.length - cut;
    const job = await parquetJob(`cut-${String(cut).replace('.', '')}`, good.subarray(0, keep));
    await expectCleanFailure(job, /PARQUET_INVALID: .*x\.parquet: not a readable Parquet file: it does not end with the magic bytes PAR1, so its footer is missing: the file was cut short/);
  });

  it('a Parquet file with a corrupt head (not PAR1) is refused, not scored', async () => {
    const bad = Buffer.from(await readFile(PARQUET));
    bad.write('PAR0', 0);
    const res = await expectCleanFailure(await parquetJob('badhead', bad), /PARQUET_INVALID: .*x\.parquet: not a readable Parquet file: it ends like Parquet but does not start with the magic bytes PAR1 \(it starts with 50 41 52 30\)/);
    expect(res.stderr).toContain('hint: The file is corrupt');
  });

  it('a CSV named .parquet: neither magic', async () => {
    await expectCleanFailure(await parquetJob('notparquet', Buffer.from(csvOf(20, 5))), /PARQUET_INVALID: .*x\.parquet: not a readable Parquet file: it neither starts nor ends with the magic bytes PAR1 \(it starts with 63 75 73 74\)/);
  });

  it('a Parquet footer of random bytes behind a valid envelope', async () => {
    const good = await readFile(PARQUET);
    const bad = Buffer.from(good);
    const footer = bad.readUInt32LE(bad.length - 8);
    // Seeded, so the test is the same every time; 2,000 random footers all failed in hyparquet within 15 ms.
    seededBytes(footer, 6).copy(bad, bad.length - 8 - footer);
    await expectCleanFailure(await parquetJob('garbled', bad), /PARQUET_INVALID: .*x\.parquet: not a readable Parquet file/);
  });

  it('random bytes as the model', async () => {
    await expectCleanFailure(await modelJob('m-random', seededBytes(64 * 1024, 7)), /MODEL_INVALID: .*m-random\/model\.onnx is not a loadable ONNX model/);
  });

  it('an empty model file', async () => {
    await expectCleanFailure(await modelJob('m-empty', new Uint8Array(0)), /MODEL_INVALID: .*m-empty\/model\.onnx is not a loadable ONNX model/);
  });

  it('a model that takes an element type nightscore does not read', async () => {
    await expectCleanFailure(await modelJob('m-uint8', logisticModel({ weights: [1, 1, 1], bias: 0, inputElem: 'uint8' })), /MODEL_SIGNATURE: .*m-uint8\/model\.onnx: input "input" takes uint8; nightscore reads float32, float64/);
  });

  it('a model with a 3-D input', async () => {
    const model = buildModel({
      inputs: [{ name: 'x', elem: 'float', shape: ['N', 3, 1] }],
      outputs: [{ name: 'y', elem: 'float', shape: ['N', 1] }],
      nodes: [
        { op: 'Flatten', inputs: ['x'], outputs: ['f'], attrs: { axis: 1 } },
        { op: 'MatMul', inputs: ['f', 'W'], outputs: ['y'] },
      ],
      floats: W3,
    });
    await expectCleanFailure(await modelJob('m-3d', model), /MODEL_SIGNATURE: .*m-3d\/model\.onnx: input "x" has shape \[N, 3, 1\], but the job has 3 features; expected \[N, 3\]/);
  });

  it('a model with two inputs and no model.input', async () => {
    const model = buildModel({
      inputs: [
        { name: 'a', elem: 'float', shape: ['N', 3] },
        { name: 'b', elem: 'float', shape: ['N', 3] },
      ],
      outputs: [{ name: 'y', elem: 'float', shape: ['N', 1] }],
      nodes: [
        { op: 'Add', inputs: ['a', 'b'], outputs: ['s'] },
        { op: 'MatMul', inputs: ['s', 'W'], outputs: ['y'] },
      ],
      floats: W3,
    });
    const res = await expectCleanFailure(await modelJob('m-two', model), /MODEL_SIGNATURE: .*m-two\/model\.onnx has 2 inputs \("a", "b"\); model.features feeds one \[rows, features\] tensor/);
    expect(res.stderr).toContain('hint: Map every input to its columns under model.inputs, e.g. model.inputs: { a: [column, …], b: [column, …] }');
  });

  it('a model whose symbolic input width its weights contradict', async () => {
    const model = buildModel({
      inputs: [{ name: 'x', elem: 'float', shape: ['N', 'F'] }],
      outputs: [{ name: 'y', elem: 'float', shape: ['N', 1] }],
      nodes: [{ op: 'MatMul', inputs: ['x', 'W'], outputs: ['y'] }],
      floats: { W: { dims: [5, 1], values: [1, 1, 1, 1, 1] } },
    });
    // No made-up row probes it before the data: it fails on every real row, and the chunk
    // stops once its rejects exceed the limit whatever the rest of the day holds.
    await expectCleanFailure(await modelJob('m-width', model), /MODEL_RUN_FAILED: the model failed on each of the first \d+ rows of the chunk, given alone, and has scored none .*m-width\/in\/a\.csv:2: /);
  });

  it('a worker that met a hostile file goes on serving other jobs', async () => {
    tq = await createTestQueue();
    const bad = await csvJob('q-bad', randomBytes(50_000));
    const good = await csvJob('q-good', csvOf(50, 3));
    const head = Buffer.from(await readFile(PARQUET));
    head.write('PAR0', 0);
    const badParquet = await parquetJob('q-bad-parquet', head);
    await tq.startWorker();
    await runCli(['run', bad, '--date', '2026-01-01', '--queue'], { env: tq.env });
    await runCli(['run', badParquet, '--date', '2026-01-01', '--queue'], { env: tq.env });
    await tq.waitFor(bad, '2026-01-01', '2026-01-01', allIn(['failed']));
    const [failed] = await tq.waitFor(badParquet, '2026-01-01', '2026-01-01', allIn(['failed', 'succeeded']));
    expect(failed!.state).toBe('failed');
    expect(failed!.error).toMatch(/PARQUET_INVALID: .*x\.parquet: not a readable Parquet file: it ends like Parquet but does not start/);
    const res = await runCli(['run', good, '--date', '2026-01-01', '--queue', '--wait'], { env: tq.env });
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('succeeded');
  });
});
