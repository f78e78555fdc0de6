import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { parquetReadObjects } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../scripts/onnx-builder.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

/**
 * Keys are copied from input to output as values of their own type and precision, so that
 * predictions join back to their rows. The fixtures (test/fixtures/keys/make.py, written by
 * pyarrow) hold the values JavaScript's own types would change; DuckDB reads the input and
 * both outputs, and every key must compare equal, value for value.
 */

const DATE = '2026-12-01';
const FIXTURES = path.join(REPO, 'test/fixtures/keys');
const KEYS = ['id', 'dec', 'cents', 'ts_us', 'ts_ns', 'day', 'big', 'name'];
/** The key columns' types as DuckDB reads them from the input, for reading the CSV output back. */
const CSV_TYPES = "{'id': 'INTEGER', 'dec': 'DECIMAL(20,0)', 'cents': 'DECIMAL(12,2)', 'ts_us': 'TIMESTAMPTZ', 'ts_ns': 'TIMESTAMP_NS', 'day': 'DATE', 'big': 'BIGINT', 'name': 'VARCHAR', 'score': 'FLOAT'}";

let ws: Workspace;
let duck: DuckDBConnection;
beforeAll(async () => {
  ws = await Workspace.create();
  for (const [dir, file] of [['pq', 'keys.parquet'], ['i96', 'keys-int96.parquet']] as const) {
    await mkdir(ws.path(`${dir}/dt=${DATE}`), { recursive: true });
    await copyFile(path.join(FIXTURES, file), ws.path(`${dir}/dt=${DATE}/${file}`));
  }
  await ws.model('model.onnx', { weights: [0.5], bias: 0 });
  duck = await (await DuckDBInstance.create(':memory:')).connect();
  await duck.run("SET TimeZone = 'UTC'");
});
afterAll(async () => {
  duck?.closeSync();
  await ws?.remove();
});

async function score(name: string, input: string, keys: string[], format: 'csv' | 'parquet'): Promise<string> {
  const file = await ws.job(`${name}.yaml`, {
    name,
    input: { uri: `${input}/dt={date}/`, format: 'parquet', key: keys },
    model: { path: 'model.onnx', features: ['x'] },
    output: { uri: `out/${name}/dt={date}/`, format, columns: { probabilities: ['p0', 'score'] } },
  });
  const res = await runCli(['run', file, '--date', DATE]);
  expect(res.code, res.stderr).toBe(0);
  return ws.path(`out/${name}/dt=${DATE}`);
}

async function rows(sql: string): Promise<Record<string, unknown>[]> {
  return (await duck.runAndReadAll(sql)).getRowObjectsJS();
}

/** Rows of `a` not in `b` and of `b` not in `a`, as DuckDB compares them (NULLs equal NULLs). */
async function difference(a: string, b: string): Promise<Record<string, unknown>[]> {
  return rows(`(SELECT * FROM (${a}) EXCEPT ALL SELECT * FROM (${b})) UNION ALL (SELECT * FROM (${b}) EXCEPT ALL SELECT * FROM (${a}))`);
}

const input = `SELECT ${KEYS.join(', ')} FROM read_parquet('${'{input}'}')`;

describe('keys are copied losslessly', () => {
  it('to Parquet output: each key keeps its type (DECIMAL, timestamp unit and zone, DATE, int64) and its value', async () => {
    const out = await score('to-parquet', 'pq', KEYS, 'parquet');
    const source = input.replace('{input}', ws.path(`pq/dt=${DATE}/keys.parquet`));
    const written = `SELECT ${KEYS.join(', ')} FROM read_parquet('${out}/part-*.parquet')`;
    const types = async (sql: string) => rows(`SELECT ${KEYS.map((k) => `typeof(${k}) AS ${k}`).join(', ')} FROM (${sql}) LIMIT 1`);
    expect(await types(written)).toEqual(await types(source));
    expect(await types(written)).toEqual([{ id: 'INTEGER', dec: 'DECIMAL(20,0)', cents: 'DECIMAL(12,2)', ts_us: 'TIMESTAMP WITH TIME ZONE', ts_ns: 'TIMESTAMP_NS', day: 'DATE', big: 'BIGINT', name: 'VARCHAR' }]);
    expect(await difference(source, written)).toEqual([]);
    expect((await rows(`SELECT count(*)::INTEGER AS n FROM (${written})`))[0]!.n).toBe(4);
    // A null and an empty string are two values.
    expect(await rows(`SELECT id, name IS NULL AS is_null, name = '' AS is_empty FROM (${written}) WHERE id IN (1, 2) ORDER BY id`)).toEqual([
      { id: 1, is_null: false, is_empty: true },
      { id: 2, is_null: true, is_empty: null },
    ]);
  });

  it('to CSV output: exact text that reads back as the same values (DuckDB with allow_quoted_nulls=false)', async () => {
    const out = await score('to-csv', 'pq', KEYS, 'csv');
    const source = input.replace('{input}', ws.path(`pq/dt=${DATE}/keys.parquet`));
    const written = `SELECT ${KEYS.join(', ')} FROM read_csv('${out}/part-*.csv', header = true, allow_quoted_nulls = false, columns = ${CSV_TYPES.replace(", 'score': 'FLOAT'", ", 'p0': 'FLOAT', 'score': 'FLOAT'")})`;
    expect(await difference(source, written)).toEqual([]);
    const text = (await ws.csv(`out/to-csv/dt=${DATE}/part-00000.csv`)).map((r) => r.slice(0, KEYS.length));
    expect(text).toEqual([
      KEYS,
      ['0', '9007199254740993007', '-12.50', '2023-11-14T22:13:20.123457Z', '2023-11-14T22:13:20.123456789', '2020-01-01', '9007199254740993', 'alpha'],
      ['1', '-9007199254740993009', '0.01', '1969-12-31T23:59:59.999999Z', '1969-12-31T23:59:59.999999999', '1969-12-31', '-9223372036854775808', ''],
      ['2', '0', '9999999999.99', '1970-01-01T00:00:00.000000Z', '1970-01-01T00:00:00.000000001', '0001-01-01', '9223372036854775807', ''],
      ['3', '', '', '', '', '', '', 'naïve, "quoted"'],
    ]);
    // In the file, the empty string is quoted and the null is not (docs/output.md, "Keys").
    const raw = (await ws.read(`out/to-csv/dt=${DATE}/part-00000.csv`)).split('\n');
    expect(raw[2]).toMatch(/,9223372036854775808,"",|,-9223372036854775808,"",/);
    expect(raw[3]).toMatch(/,9223372036854775807,,/);
  });

  it('INT96 timestamps keep their nanoseconds: TIMESTAMP(NANOS) without a zone in Parquet (as pyarrow reads INT96), nine digits in CSV', async () => {
    const pq = await score('int96-parquet', 'i96', ['id', 't96'], 'parquet');
    const csv = await score('int96-csv', 'i96', ['id', 't96'], 'csv');
    const truth = `SELECT id, epoch_ns(ts_ns) AS ns FROM read_parquet('${ws.path(`pq/dt=${DATE}/keys.parquet`)}')`;
    // DuckDB itself reads INT96 at microseconds: the nanoseconds are compared with the ns column they were made from.
    expect(await difference(truth, `SELECT id, epoch_ns(t96) AS ns FROM read_parquet('${pq}/part-*.parquet')`)).toEqual([]);
    expect(await difference(truth, `SELECT id, epoch_ns(t96) AS ns FROM read_csv('${csv}/part-*.csv', header = true, columns = {'id': 'INTEGER', 't96': 'TIMESTAMP_NS', 'p0': 'FLOAT', 'score': 'FLOAT'})`)).toEqual([]);
    expect((await ws.csv(`out/int96-csv/dt=${DATE}/part-00000.csv`))[1]![1]).toBe('2023-11-14T22:13:20.123456789');
  });

  it('from CSV input: a quoted empty key is an empty string, an empty cell a null, in both outputs; text is copied byte for byte', async () => {
    await ws.write(`csv/dt=${DATE}/a.csv`, 'id,name,x\n1,,0.5\n2,"",0.5\n9007199254740993,  padded ,0.5\n');
    const file = (name: string, format: 'csv' | 'parquet') =>
      ws.job(`${name}.yaml`, {
        name,
        input: { uri: 'csv/dt={date}/', format: 'csv', key: ['id', 'name'] },
        model: { path: 'model.onnx', features: ['x'] },
        output: { uri: `out/${name}/dt={date}/`, format },
      });
    for (const format of ['csv', 'parquet'] as const) expect((await runCli(['run', await file(`from-csv-${format}`, format), '--date', DATE])).code).toBe(0);
    expect((await ws.read(`out/from-csv-csv/dt=${DATE}/part-00000.csv`)).split('\n').slice(1, 4).map((l) => l.split(',').slice(0, 2).join(','))).toEqual(['1,', '2,""', '9007199254740993,  padded ']);
    expect(await rows(`SELECT id, name FROM read_parquet('${ws.path(`out/from-csv-parquet/dt=${DATE}`)}/part-*.parquet')`)).toEqual([
      { id: '1', name: null },
      { id: '2', name: '' },
      { id: '9007199254740993', name: '  padded ' },
    ]);
  });

  it('keys inside a struct keep their own type (a DECIMAL, a timestamp), as top-level keys do', async () => {
    await mkdir(ws.path(`nested/dt=${DATE}`), { recursive: true });
    await copyFile(path.join(FIXTURES, 'nested.parquet'), ws.path(`nested/dt=${DATE}/nested.parquet`));
    await score('nested-csv', 'nested', ['id', 's.d', 's.ts', 'ts_local'], 'csv');
    expect((await ws.csv(`out/nested-csv/dt=${DATE}/part-00000.csv`)).map((r) => r.slice(0, 4))).toEqual([
      ['id', 's.d', 's.ts', 'ts_local'],
      ['0', '9007199254740993007', '2023-11-14T22:13:20.123457', '2023-11-14T22:13:20.123457'],
      ['1', '-1', '1969-12-31T23:59:59.999999', '1970-01-01T00:00:00.000000'],
      ['2', '', '', ''],
    ]);
  });

  it('a local timestamp declared with both a logical and a converted type prints without a zone', async () => {
    const element = { name: 't', type: 'INT64', converted_type: 'TIMESTAMP_MICROS', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: false, unit: 'MICROS' }, repetition_type: 'OPTIONAL' } as const;
    const bytes = parquetWriteBuffer({
      schema: [{ name: 'root', num_children: 2 }, element, { name: 'x', type: 'DOUBLE', repetition_type: 'REQUIRED' }],
      columnData: [{ name: 't', data: [1_700_000_000_123_457n] }, { name: 'x', data: [1] }],
    });
    await ws.write(`both/dt=${DATE}/a.parquet`, new Uint8Array(bytes));
    await score('both', 'both', ['t'], 'csv');
    expect((await ws.csv(`out/both/dt=${DATE}/part-00000.csv`))[1]![0]).toBe('2023-11-14T22:13:20.123457');
  });

  it('a key that is a feature too is copied and scored, from CSV as from Parquet', async () => {
    await ws.write(`dual/dt=${DATE}/a.csv`, 'x,id\n1.5,a\n"-2",b\n');
    const file = await ws.job('dual.yaml', {
      name: 'dual',
      input: { uri: 'dual/dt={date}/', format: 'csv', key: ['x', 'id'] },
      model: { path: 'model.onnx', features: ['x'] },
      output: { uri: 'out/dual/dt={date}/', format: 'csv', columns: { probabilities: ['p0', 'score'] } },
    });
    expect((await runCli(['run', file, '--date', DATE])).code).toBe(0);
    const rows = (await ws.csv(`out/dual/dt=${DATE}/part-00000.csv`)).slice(1);
    expect(rows.map((r) => [r[0], r[1]])).toEqual([['1.5', 'a'], ['-2', 'b']]);
    const sigmoid = (v: number) => Math.fround(1 / (1 + Math.exp(-0.5 * v)));
    expect(rows.map((r) => Number(r[3]))).toEqual([1.5, -2].map((v) => expect.closeTo(sigmoid(v), 6)));
    // The same rows from Parquet score the same.
    await score('dual-pq', 'pq', ['x', 'id'], 'csv');
    const pqRows = (await ws.csv(`out/dual-pq/dt=${DATE}/part-00000.csv`)).slice(1);
    expect(pqRows.map((r) => [r[0], Number(r[3])])).toEqual([1, 2, 3, 4].map((v) => [String(v), expect.closeTo(sigmoid(v), 6)]));
  });
});

describe('signed zero', () => {
  /** -0 beside 0 in every float column: a writer that merges them, or prints String(-0), is caught. */
  const X = [-0, 0, -0, 2.5, -0];
  const sign = (v: unknown) => (Object.is(v, -0) ? '-0' : String(v));

  beforeAll(async () => {
    await ws.write(
      'echo64.onnx',
      buildModel({
        inputs: [{ name: 'x', elem: 'double', shape: ['N', 1] }],
        outputs: [{ name: 'y', elem: 'double', shape: ['N', 1] }],
        nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }],
      }),
    );
    await ws.write(
      `zeros/dt=${DATE}/a.parquet`,
      new Uint8Array(
        parquetWriteBuffer({
          // PLAIN: hyparquet-writer's dictionary takes -0 and 0 for one value.
          columnData: [
            { name: 'd', data: X, type: 'DOUBLE', encoding: 'PLAIN' },
            { name: 'f', data: X, type: 'FLOAT', encoding: 'PLAIN' },
          ],
        }),
      ),
    );
  });

  const job = (name: string, input: string, format: 'csv' | 'parquet', key: string[], feature: string) =>
    ws.job(`${name}.yaml`, {
      name,
      input: { uri: `${input}/dt={date}/`, format, key },
      model: { path: 'echo64.onnx', inputs: { x: feature } },
      output: { uri: `out/${name}/dt={date}/`, format: 'csv' },
    });

  it('Parquet float keys -0.0 and float64 predictions -0 are written -0 in CSV, and stay -0 in Parquet output', async () => {
    const csv = await runCli(['run', await job('zeros-csv', 'zeros', 'parquet', ['d', 'f'], 'd'), '--date', DATE]);
    expect(csv.code, csv.stderr).toBe(0);
    expect(await ws.csv(`out/zeros-csv/dt=${DATE}/part-00000.csv`)).toEqual([['d', 'f', 'y'], ...X.map((x) => [sign(x), sign(x), sign(x)])]);

    const pq = await ws.job('zeros-pq.yaml', {
      name: 'zeros-pq',
      input: { uri: 'zeros/dt={date}/', format: 'parquet', key: ['d', 'f'] },
      model: { path: 'echo64.onnx', inputs: { x: 'f' } },
      output: { uri: 'out/zeros-pq/dt={date}/', format: 'parquet' },
    });
    const res = await runCli(['run', pq, '--date', DATE]);
    expect(res.code, res.stderr).toBe(0);
    const rows = await parquetReadObjects({ file: (await readFile(ws.path(`out/zeros-pq/dt=${DATE}/part-00000.parquet`))).buffer as ArrayBuffer });
    expect(rows.map((r) => [sign(r.d), sign(r.f), sign(r.y)])).toEqual(X.map((x) => [sign(x), sign(x), sign(x)]));
  });

  it('a CSV value -0 read as float64 is predicted and written -0; its key text is copied as it was', async () => {
    await ws.write(`zeros-text/dt=${DATE}/a.csv`, 'k,x\n-0,-0\n0,0\n-0.0,-0.0\n');
    const res = await runCli(['run', await job('zeros-text', 'zeros-text', 'csv', ['k'], 'x'), '--date', DATE]);
    expect(res.code, res.stderr).toBe(0);
    expect(await ws.read(`out/zeros-text/dt=${DATE}/part-00000.csv`)).toBe('k,y\n-0,-0\n0,0\n-0.0,-0\n');
  });
});
