import { DuckDBInstance } from '@duckdb/node-api';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { ByteWriter, parquetWrite, parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rng } from '../src/demo/churn-data.js';
import { startS3, type S3Server } from './support/s3.js';
import { parseCsv, runCli, Workspace } from './support/workspace.js';

// A vendored subset of apache/parquet-testing (see its README.md): the tests carry what they read.
const PARQUET_TESTING = path.resolve(__dirname, 'fixtures/parquet-testing');
const ALLTYPES = ['bool_col', 'tinyint_col', 'smallint_col', 'int_col', 'bigint_col', 'float_col', 'double_col'];

let ws: Workspace;
beforeAll(async () => {
  ws = await Workspace.create();
});
afterAll(async () => {
  await ws.remove();
});

/** A model over `n` features with known weights, and a job that scores `input` with it. */
async function jobFor(name: string, input: string, features: string[], extra: { key?: string[]; output?: Record<string, unknown>; limits?: Record<string, unknown>; chunk?: Record<string, unknown> } = {}) {
  const model = await ws.model(`models/${name}.onnx`, { weights: features.map((_, j) => 0.01 * (j + 1)), bias: -0.1 });
  return ws.job(`${name}.yaml`, {
    name,
    input: { uri: input, format: 'parquet', key: extra.key ?? [] },
    model: { path: model, features },
    output: { uri: `out/${name}/dt={date}/`, format: 'csv', columns: { probabilities: ['p0', 'p1'] }, ...extra.output },
    limits: { max_reject_rate: 1, ...extra.limits },
    ...(extra.chunk ? { chunk: extra.chunk } : {}),
  });
}

/** The probabilities onnxruntime gives for rows of float32 features. */
async function direct(model: string, rows: number[][]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model);
  const out = await session.run({ input: new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, rows[0]!.length]) });
  return out.probabilities!.data as Float32Array;
}

const asNumber = (v: unknown) => (typeof v === 'boolean' ? Number(v) : typeof v === 'bigint' ? Number(v) : (v as number));

describe('Parquet input from other writers (apache/parquet-testing)', () => {
  const cases: Array<[string, string[], string[]]> = [
    ['alltypes_plain.parquet', ALLTYPES, ['id']],
    ['alltypes_plain.snappy.parquet', ALLTYPES, ['id']],
    ['alltypes_dictionary.parquet', ALLTYPES, ['id']],
    ['alltypes_tiny_pages.parquet', [...ALLTYPES, 'year', 'month'], ['id']],
    ['byte_stream_split.zstd.parquet', ['f32', 'f64'], []],
    ['datapage_v2.snappy.parquet', ['b', 'c', 'd'], ['a']],
    ['nulls.snappy.parquet', ['b_struct.b_c_int'], []],
  ];

  it.each(cases)('%s: every row is read, scored like onnxruntime scores it, or rejected with a reason', async (file, features, key) => {
    const name = file.replace(/\W+/g, '-');
    const job = await jobFor(name, path.join(PARQUET_TESTING, file), features, { key });
    const res = await runCli(['run', job, '--date', '2026-01-01', '--json']);
    expect(res.stderr).toBe('');
    const m = JSON.parse(res.stdout);
    const rows = await parquetReadObjects({ file: (await readFile(path.join(PARQUET_TESTING, file))).buffer as ArrayBuffer, compressors });
    expect(m.rows.read).toBe(rows.length);
    expect(m.rows.scored + m.rows.rejected).toBe(rows.length);

    const values = rows.map((r) => features.map((f) => f.split('.').reduce<unknown>((o, p) => (o == null ? null : (o as Record<string, unknown>)[p]), r)));
    const good = values.map((v, i) => [v, i] as const).filter(([v]) => v.every((x) => x !== null && x !== undefined));
    expect(m.rows.scored).toBe(good.length);
    if (good.length < rows.length) {
      const rejects = parseCsv(await ws.read(`out/${name}/dt=2026-01-01/_rejects/part-00000.csv`)).slice(1);
      expect(rejects.length).toBe(rows.length - good.length);
      for (const r of rejects) expect(r.at(-1)).toMatch(/^column .*: null value \(set input\.missing: nan to score it as a missing value\)$/);
    }
    if (good.length === 0) return;
    const expected = await direct(ws.path(`models/${name}.onnx`), good.map(([v]) => v.map(asNumber)));
    const parts = m.parts.map((p: { uri: string }) => p.uri.split('/').pop());
    const out = (await Promise.all(parts.map((p: string) => ws.csv(`out/${name}/dt=2026-01-01/${p}`)))).flatMap((rowsOf) => rowsOf.slice(1));
    expect(out.length).toBe(good.length);
    out.forEach((row, i) => {
      if (key.length) expect(row[0]).toBe(String(rows[good[i]![1]]![key[0]!] ?? ''));
      expect(Math.fround(Number(row.at(-1)))).toBe(expected[2 * i + 1]);
    });
  });

  it('a non-numeric feature column and a file that is not Parquet are clear errors', async () => {
    const strings = await jobFor('strings', path.join(PARQUET_TESTING, 'alltypes_plain.parquet'), ['string_col']);
    const res = await runCli(['run', strings, '--date', '2026-01-01']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/INPUT_COLUMN_TYPE: .*alltypes_plain\.parquet: feature column "string_col" is BYTE_ARRAY; expected a number/);

    const good = await readFile(path.join(PARQUET_TESTING, 'alltypes_plain.parquet'));
    await ws.write('bad/truncated.parquet', good.subarray(0, good.length - 20));
    await ws.write('bad2/magic.parquet', Buffer.concat([good.subarray(0, good.length - 4), Buffer.from('XXXX')]));
    for (const dir of ['bad', 'bad2']) {
      const job = await jobFor(`corrupt-${dir}`, `${dir}/`, ['int_col']);
      const r = await runCli(['run', job, '--date', '2026-01-01']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/PARQUET_INVALID: .*\.parquet: not a readable Parquet file/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe('Parquet from an independent writer (DuckDB): delta encodings and data page v2', () => {
  it('scores a DuckDB-written V2 file with DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY and BYTE_STREAM_SPLIT columns', async () => {
    const file = ws.path('v2/in/v2.parquet');
    await ws.write('v2/in/.keep', '');
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    await conn.run(
      `COPY (select i::INTEGER as id, 'key-' || i as k, i * 3 as a, (i * 7)::BIGINT as b, i / 3.0 as c, (i % 2 = 0) as d from range(5000) t(i))
       TO '${file}' (FORMAT parquet, PARQUET_VERSION V2, ROW_GROUP_SIZE 2000)`,
    );
    const encodings = (await conn.runAndReadAll(`select distinct encodings from parquet_metadata('${file}')`)).getRowObjects().map((r) => r.encodings);
    expect(encodings).toEqual(expect.arrayContaining(['DELTA_BINARY_PACKED', 'DELTA_LENGTH_BYTE_ARRAY', 'BYTE_STREAM_SPLIT']));
    const groups = (await conn.runAndReadAll(`select distinct row_group_id, row_group_num_rows from parquet_metadata('${file}') order by 1`)).getRowObjects();
    conn.closeSync();

    const job = await jobFor('v2', 'v2/in/', ['a', 'b', 'c', 'd'], { key: ['id', 'k'], chunk: { rows: 900 } });
    const res = await runCli(['run', job, '--date', '2026-01-01', '--json']);
    expect(res.stderr).toBe('');
    const m = JSON.parse(res.stdout);
    expect(m.rows).toEqual({ read: 5000, scored: 5000, rejected: 0 });
    // Row groups of more than two batches (2 × chunk.rows) are split into equal row ranges.
    expect(groups.length).toBeGreaterThan(1);
    expect(m.chunks).toBe(groups.reduce((n, g) => n + Math.ceil(Number(g.row_group_num_rows) / 1800), 0));
    expect(m.chunks).toBeGreaterThan(groups.length);
    const expected = await direct(ws.path('models/v2.onnx'), Array.from({ length: 5000 }, (_, i) => [i * 3, i * 7, i / 3, i % 2 === 0 ? 1 : 0]));
    const out = (await Promise.all(m.parts.map((p: { uri: string }) => ws.csv(`out/v2/dt=2026-01-01/${p.uri.split('/').pop()}`)))).flatMap((r) => r.slice(1));
    expect(out.map((r) => r[0])).toEqual(Array.from({ length: 5000 }, (_, i) => String(i)));
    expect(out.map((r) => r[1])).toEqual(Array.from({ length: 5000 }, (_, i) => `key-${i}`));
    out.forEach((r, i) => expect(Math.fround(Number(r[3]))).toBe(expected[2 * i + 1]));
  });

  it('reads DELTA_BYTE_ARRAY keys', async () => {
    const ids = Array.from({ length: 300 }, (_, i) => `customer-${String(i).padStart(6, '0')}`);
    const buf = parquetWriteBuffer({
      columnData: [
        { name: 'id', data: ids, type: 'STRING', encoding: 'DELTA_BYTE_ARRAY' },
        { name: 'x', data: Float64Array.from(ids, (_, i) => i / 10), type: 'DOUBLE' },
      ],
    });
    await ws.write('dba/in/d.parquet', new Uint8Array(buf));
    const job = await jobFor('dba', 'dba/in/', ['x'], { key: ['id'] });
    expect((await runCli(['run', job, '--date', '2026-01-01'])).code).toBe(0);
    expect((await ws.csv('out/dba/dt=2026-01-01/part-00000.csv')).slice(1).map((r) => r[0])).toEqual(ids);
  });
});

describe('Parquet types', () => {
  it('INT64 beyond 2^53, nulls and NaN are rejected with reasons; BOOLEAN is 0/1 and DECIMAL its value', async () => {
    const w = new ByteWriter();
    parquetWrite({
      writer: w,
      columnData: [
        // Row 6 fails all three ways (its first failing column is named); row 7 follows rejects.
        { name: 'id', data: [1, 2, 3, 4, 5, 6, 7] },
        { name: 'big', data: [1n, 2n ** 53n, 2n ** 53n + 1n, 4n, 5n, 2n ** 60n, 7n] },
        { name: 'flag', data: [true, false, true, null, true, null, false] },
        { name: 'dec', data: [1.25, 2.5, 3.75, 4, Number.NaN, Number.NaN, -0.5] },
      ],
      schema: [
        { name: 'root', num_children: 4 },
        { name: 'id', type: 'INT32', repetition_type: 'REQUIRED' },
        { name: 'big', type: 'INT64', repetition_type: 'REQUIRED' },
        { name: 'flag', type: 'BOOLEAN', repetition_type: 'OPTIONAL' },
        { name: 'dec', type: 'DOUBLE', repetition_type: 'REQUIRED' },
      ],
    });
    await ws.write('types/in/t.parquet', new Uint8Array(w.getBuffer()));
    // Batches of 2 rows: chunks of rows 0-2 and 3-6, so rejects and rows come from batches
    // that start inside the decoded columns.
    const job = await jobFor('types', 'types/in/', ['big', 'flag', 'dec'], { key: ['id'], chunk: { rows: 2 } });
    const res = await runCli(['run', job, '--date', '2026-01-01', '--json']);
    const m = JSON.parse(res.stdout);
    expect(m.rows).toEqual({ read: 7, scored: 3, rejected: 4 });
    expect(m.chunks).toBe(2);
    const name = (uri: string) => uri.split('/dt=2026-01-01/')[1]!;
    const rejectParts = await Promise.all(m.rejects.map((r: { uri: string }) => ws.read(`out/types/dt=2026-01-01/${name(r.uri)}`)));
    const rejects = rejectParts.flatMap((text, i) => parseCsv(text).slice(i === 0 ? 0 : 1));
    expect(rejects).toEqual([
      ['source', 'line', 'id', 'reason'],
      [expect.stringMatching(/t\.parquet$/), '2', '3', 'column big: INT64 value 9007199254740993 is beyond 2^53 and cannot be converted exactly'],
      [expect.stringMatching(/t\.parquet$/), '3', '4', 'column flag: null value (set input.missing: nan to score it as a missing value)'],
      [expect.stringMatching(/t\.parquet$/), '4', '5', 'column dec: not finite: NaN (set input.missing: nan to score it as a missing value)'],
      [expect.stringMatching(/t\.parquet$/), '5', '6', 'column big: INT64 value 1152921504606846976 is beyond 2^53 and cannot be converted exactly'],
    ]);
    const expected = await direct(ws.path('models/types.onnx'), [
      [1, 1, 1.25],
      [2 ** 53, 0, 2.5],
      [7, 0, -0.5],
    ]);
    const out = [['header'], ...(await Promise.all(m.parts.map((p: { uri: string }) => ws.csv(`out/types/dt=2026-01-01/${name(p.uri)}`)))).flatMap((rows) => rows.slice(1))];
    expect(out.slice(1).map((r) => [r[0], Math.fround(Number(r[2]))])).toEqual([
      ['1', expected[1]],
      ['2', expected[3]],
      ['7', expected[5]],
    ]);
  });

  it('DECIMAL columns score as their value', async () => {
    const w = new ByteWriter();
    parquetWrite({
      writer: w,
      columnData: [{ name: 'price', data: [1.23, 4.56, 7] }],
      schema: [
        { name: 'root', num_children: 1 },
        { name: 'price', type: 'INT32', converted_type: 'DECIMAL', scale: 2, precision: 5, repetition_type: 'REQUIRED' },
      ],
    });
    await ws.write('dec/in/d.parquet', new Uint8Array(w.getBuffer()));
    const job = await jobFor('dec', 'dec/in/', ['price']);
    expect((await runCli(['run', job, '--date', '2026-01-01'])).code).toBe(0);
    const expected = await direct(ws.path('models/dec.onnx'), [[1.23], [4.56], [7]]);
    const out = await ws.csv('out/dec/dt=2026-01-01/part-00000.csv');
    expect(out.slice(1).map((r) => Math.fround(Number(r[1])))).toEqual([expected[1], expected[3], expected[5]]);
  });
});

describe('Parquet and CSV', () => {
  it('predictions from Parquet input equal those from the same rows as CSV, and Parquet output reads back in DuckDB', async () => {
    const next = rng(3);
    const n = 500;
    const ids = Array.from({ length: n }, (_, i) => `k${i}`);
    const a = Array.from({ length: n }, () => Math.round(next() * 1e4) / 100);
    const b = Array.from({ length: n }, () => Math.round(next() * 1e4) / 100);
    await ws.write('same/pq/x.parquet', new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'id', data: ids, type: 'STRING' }, { name: 'a', data: a, type: 'DOUBLE' }, { name: 'b', data: b, type: 'DOUBLE' }] })));
    await ws.write('same/csv/x.csv', ['id,a,b', ...ids.map((id, i) => `${id},${a[i]},${b[i]}`)].join('\n'));
    const fromParquet = await jobFor('from-pq', 'same/pq/', ['a', 'b'], { key: ['id'], chunk: { rows: 128 } });
    const model = ws.path('models/from-pq.onnx');
    const fromCsv = await ws.job('from-csv.yaml', {
      name: 'from-csv',
      input: { uri: 'same/csv/', format: 'csv', key: ['id'] },
      model: { path: model, features: ['a', 'b'] },
      output: { uri: 'out/from-csv/dt={date}/', format: 'parquet' },
    });
    expect((await runCli(['run', fromParquet, '--date', '2026-01-01'])).code).toBe(0);
    expect((await runCli(['run', fromCsv, '--date', '2026-01-01'])).code).toBe(0);

    const pq = JSON.parse(await ws.read('out/from-pq/dt=2026-01-01/_manifest.json'));
    // 500 rows in one row group, chunk.rows 128: equal ranges of at most two batches.
    expect(pq.chunks).toBe(2);
    const csvRows = (await Promise.all(pq.parts.map((p: { uri: string }) => ws.csv(`out/from-pq/dt=2026-01-01/${p.uri.split('/').pop()}`)))).flatMap((r) => r.slice(1));

    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    const part = ws.path('out/from-csv/dt=2026-01-01/part-00000.parquet');
    const fromDuck = (await conn.runAndReadAll(`select * from read_parquet('${part}', hive_partitioning = false)`)).getRowObjects();
    expect(fromDuck.length).toBe(n);
    fromDuck.forEach((row, i) => {
      expect(row.id).toBe(csvRows[i]![0]);
      expect(Math.fround(Number(row.probabilities_0))).toBe(Math.fround(Number(csvRows[i]![1])));
      expect(Math.fround(Number(row.probabilities_1))).toBe(Math.fround(Number(csvRows[i]![2])));
      expect(Number(row.label)).toBe(Number(row.probabilities_1) > Number(row.probabilities_0) ? 1 : 0);
    });
    const schema = (await conn.runAndReadAll(`select column_name, column_type from (describe select * from read_parquet('${part}', hive_partitioning = false))`)).getRowObjects();
    expect(schema).toEqual([
      { column_name: 'id', column_type: 'VARCHAR' },
      { column_name: 'label', column_type: 'BIGINT' },
      { column_name: 'probabilities_0', column_type: 'FLOAT' },
      { column_name: 'probabilities_1', column_type: 'FLOAT' },
    ]);
    const kv = (await conn.runAndReadAll(`select decode(key) as k, decode(value) as v from parquet_kv_metadata('${part}')`)).getRowObjects();
    expect(kv).toEqual(
      expect.arrayContaining([
        { k: 'nightscore.job', v: 'from-csv' },
        { k: 'nightscore.date', v: '2026-01-01' },
        { k: 'nightscore.model_sha256', v: expect.stringMatching(/^[0-9a-f]{64}$/) },
      ]),
    );
    const codec = (await conn.runAndReadAll(`select distinct compression from parquet_metadata('${part}')`)).getRowObjects();
    expect(codec).toEqual([{ compression: 'SNAPPY' }]);
    conn.closeSync();
  });

  it('Parquet in, Parquet out keeps the key columns in their source types', async () => {
    const job = await jobFor('pq-pq', path.join(PARQUET_TESTING, 'alltypes_plain.parquet'), ['int_col', 'double_col'], { key: ['id', 'timestamp_col'], output: { format: 'parquet' } });
    expect((await runCli(['run', job, '--date', '2026-01-01'])).code).toBe(0);
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    const part = ws.path('out/pq-pq/dt=2026-01-01/part-00000.parquet');
    const schema = (await conn.runAndReadAll(`select column_name, column_type from (describe select * from read_parquet('${part}', hive_partitioning = false))`)).getRowObjects();
    expect(schema.slice(0, 2)).toEqual([
      { column_name: 'id', column_type: 'INTEGER' },
      { column_name: 'timestamp_col', column_type: 'TIMESTAMP_NS' },
    ]);
    const rows = (await conn.runAndReadAll(`select id, strftime(timestamp_col, '%Y-%m-%d %H:%M') as t from read_parquet('${part}', hive_partitioning = false)`)).getRowObjects();
    expect(rows[0]).toEqual({ id: 4, t: '2009-03-01 00:00' });
    expect(rows).toHaveLength(8);
    conn.closeSync();
  });
});

describe('Parquet from S3 by byte ranges', () => {
  let s3: S3Server;
  let proxy: Server;
  let fetched = 0;
  beforeAll(async () => {
    s3 = await startS3(['lake']);
    const target = new URL(s3.endpoint);
    // Counts the bytes of every object body the S3 server sends back.
    proxy = createServer((req, res) => {
      const up = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.on('data', (d: Buffer) => {
          if (req.method === 'GET' && !req.url?.includes('list-type')) fetched += d.length;
        });
        upRes.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    proxy?.close();
    await s3?.close();
  });

  it('scoring a row group fetches its footer and the needed column chunks: a small fraction of the object', async () => {
    const next = rng(8);
    const rows = 20_000;
    const columns = Array.from({ length: 30 }, (_, c) => ({ name: `c${c}`, data: Float64Array.from({ length: rows * 4 }, () => next()), type: 'DOUBLE' as const }));
    const file = parquetWriteBuffer({ columnData: [{ name: 'id', data: Int32Array.from({ length: rows * 4 }, (_, i) => i), type: 'INT32' }, ...columns], rowGroupSize: rows, codec: 'UNCOMPRESSED' });
    await s3.put('lake', 'wide/dt=2026-01-01/w.parquet', Buffer.from(file));
    const env = { ...s3.env, AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` };
    const job = await jobFor('wide', 's3://lake/wide/dt={date}/', ['c3', 'c17'], { key: ['id'], chunk: { rows } });
    fetched = 0;
    const res = await runCli(['run', job, '--date', '2026-01-01', '--json'], { env });
    expect(res.stderr).toBe('');
    const m = JSON.parse(res.stdout);
    expect(m.chunks).toBe(4);
    expect(m.rows).toEqual({ read: rows * 4, scored: rows * 4, rejected: 0 });
    // 3 of 31 columns for all four row groups, plus the footer for the plan and for each chunk.
    const fraction = fetched / file.byteLength;
    expect(fraction).toBeLessThan(0.15);
    expect(fraction).toBeGreaterThan(3 / 31 - 0.01);
  });
});
