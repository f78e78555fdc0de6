import { setFloat16 } from '@petamoriken/float16';
import { parquetWriteBuffer } from 'hyparquet-writer';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rng } from '../src/demo/churn-data.js';
import { parseJob } from '../src/job/load.js';
import { prepareJob } from '../src/run/bind.js';
import { runJob } from '../src/run/run.js';
import { buildModel, ELEM, type ElemType } from '../scripts/onnx-builder.js';
import { Workspace } from './support/workspace.js';

/**
 * Every column a model reads reaches its own input, whatever else the column is. A model
 * with an input of every element type nightscore reads echoes each value it is fed; the
 * matrix makes every subset of its columns (and of a key-only `id`) the job's key, in a
 * shuffled key order and a shuffled CSV header, and checks each run, from CSV and from
 * Parquet, against onnxruntime fed the same values directly: the predictions, the keys
 * copied, and the rows rejected with the column that refused them.
 */

const DATE = '2026-12-01';

interface Column {
  name: string;
  /** The model input it feeds, of that input's element type. */
  input: string;
  type: 'float32' | 'float64' | 'float16' | 'int64' | 'int32' | 'bool' | 'string';
  /** Per good row: its text in CSV, and its value in Parquet. */
  text: string[];
  value: unknown[];
  /** A CSV text and a Parquet value the input refuses, and the reason given. */
  bad: { text: string; value: unknown; csv: string; parquet: string };
}

const NUL_REASON = 'column s: holds a NUL character, where onnxruntime would cut the text short: "a\\u0000b"';
const WORDS = ['north', 'south', ' east', 'west', 'mars', 'Ünïcode'];
const GOOD = WORDS.length;

/** Columns of the model's inputs, in model order; int64 has two, so a key can be one column of a wider input. */
const COLUMNS: Column[] = [
  col('f32', 'f32', 'float32', (r) => String(r * 2.5 - 4), Number, 'x', null, 'column f32: expected a number, got "x"', 'column f32: null value (set input.missing: nan to score it as a missing value)'),
  col('f64', 'f64', 'float64', (r) => `${1000 + r}.123456789012`, Number, 'one', null, 'column f64: expected a number (float64), got "one"', 'column f64: null value (set input.missing: nan to score it as a missing value)'),
  col('f16', 'f16', 'float16', (r) => `${r}.25`, Number, '70000', null, 'column f16: out of float16 range: "70000"', 'column f16: null value (set input.missing: nan to score it as a missing value)'),
  col('i64', 'i64', 'int64', (r) => String(10n ** 12n + BigInt(r)), BigInt, '1.5', null, 'column i64: expected an integer (int64), got "1.5"', 'column i64: null value (a int64 input has no missing value)'),
  col('i64b', 'i64', 'int64', (r) => String(-7 - r), BigInt, 'gold', null, 'column i64b: expected an integer (int64), got "gold"', 'column i64b: null value (a int64 input has no missing value)'),
  col('i32', 'i32', 'int32', (r) => String(r * 1000 - 2), Number, '2147483648', null, 'column i32: out of int32 range: "2147483648"', 'column i32: null value (a int32 input has no missing value)'),
  col('b', 'b', 'bool', (r) => ['true', '0', 'False', '1', 'TRUE', 'false'][r]!, (t) => /^(true|1)$/i.test(t), 'yes', null, 'column b: expected a bool (true, false, 1 or 0), got "yes"', 'column b: null value (a bool input has no missing value)'),
  col('s', 's', 'string', (r) => WORDS[r]!, String, 'a\0b', 'a\0b', NUL_REASON, NUL_REASON),
];

function col(name: string, input: string, type: Column['type'], text: (r: number) => string, parse: (t: string) => unknown, badText: string, badValue: unknown, csv: string, parquet: string): Column {
  const texts = Array.from({ length: GOOD }, (_, r) => text(r));
  return { name, input, type, text: texts, value: texts.map(parse), bad: { text: badText, value: badValue, csv, parquet } };
}

const ONNX_ELEM: Record<Column['type'], ElemType> = { float32: 'float', float64: 'double', float16: 'float16', int64: 'int64', int32: 'int32', bool: 'bool', string: 'string' };

/** Each input cast to float64 (the string one through a label map) and side by side: y is [N, 8], one column per input column. */
const echoModel = () => {
  const inputs = [...new Set(COLUMNS.map((c) => c.input))].map((input) => {
    const columns = COLUMNS.filter((c) => c.input === input);
    return { name: input, type: columns[0]!.type, width: columns.length };
  });
  return buildModel({
    inputs: inputs.map((i) => ({ name: i.name, elem: ONNX_ELEM[i.type], shape: i.type === 'int32' ? ['N'] : ['N', i.width] })),
    outputs: [{ name: 'y', elem: 'double', shape: ['N', COLUMNS.length] }],
    nodes: [
      { op: 'LabelEncoder', domain: 'ai.onnx.ml', inputs: ['s'], outputs: ['s_f'], attrs: { keys_strings: WORDS, values_floats: { floats: WORDS.map((_, i) => i + 0.5) }, default_float: -0.5 } },
      ...inputs.filter((i) => i.name !== 's').map((i) => ({ op: 'Cast', inputs: [i.name], outputs: [`${i.name}_d`], attrs: { to: ELEM.double } })),
      { op: 'Cast', inputs: ['s_f'], outputs: ['s_d'], attrs: { to: ELEM.double } },
      { op: 'Unsqueeze', inputs: ['i32_d', 'AXIS'], outputs: ['i32_2d'] },
      { op: 'Concat', inputs: inputs.map((i) => (i.name === 'i32' ? 'i32_2d' : `${i.name}_d`)), outputs: ['y'], attrs: { axis: 1 } },
    ],
    ints: { AXIS: { dims: [1], values: [1] } },
  });
};

/** onnxruntime's own y for the good rows, fed tensors built here from the typed values. */
async function direct(model: string): Promise<number[][]> {
  const session = await ort.InferenceSession.create(model);
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of [...new Set(COLUMNS.map((c) => c.input))]) {
    const columns = COLUMNS.filter((c) => c.input === input);
    const type = columns[0]!.type;
    const values = Array.from({ length: GOOD }, (_, r) => columns.map((c) => c.value[r])).flat();
    const data = type === 'float32' ? Float32Array.from(values as number[])
      : type === 'float64' ? Float64Array.from(values as number[])
      : type === 'float16' ? Uint16Array.from(values as number[], half)
      : type === 'int64' ? BigInt64Array.from(values as bigint[])
      : type === 'int32' ? Int32Array.from(values as number[])
      : type === 'bool' ? Uint8Array.from(values as boolean[], Number)
      : (values as string[]);
    feeds[input] = new ort.Tensor(type, data as never, type === 'int32' ? [GOOD] : [GOOD, columns.length]);
  }
  const y = (await session.run(feeds)).y!.data as Float64Array;
  return Array.from({ length: GOOD }, (_, r) => Array.from(y.subarray(r * COLUMNS.length, (r + 1) * COLUMNS.length)));
}

const HALF = new DataView(new ArrayBuffer(2));
function half(x: number): number {
  setFloat16(HALF, 0, x);
  return HALF.getUint16(0);
}

let ws: Workspace;
let model: string;
let expected: number[][];
beforeAll(async () => {
  ws = await Workspace.create();
  model = await ws.write('echo.onnx', echoModel());
  expected = await direct(model);
});
afterAll(async () => {
  await ws?.remove();
});

const ID = { text: Array.from({ length: GOOD }, (_, r) => `k${r}`) };

/** The rows of a run's input: the good ones, then one per column holding a value its input refuses. */
function inputRows(): { id: string; text: (c: Column) => string; value: (c: Column) => unknown }[] {
  return [
    ...ID.text.map((id, r) => ({ id, text: (c: Column) => c.text[r]!, value: (c: Column) => c.value[r] })),
    ...COLUMNS.map((bad, b) => ({ id: `bad-${bad.name}`, text: (c: Column) => (c === bad ? c.bad.text : c.text[b % GOOD]!), value: (c: Column) => (c === bad ? c.bad.value : c.value[b % GOOD]) })),
  ];
}

const PARQUET_TYPE: Record<Column['type'], string> = { float32: 'FLOAT', float64: 'DOUBLE', float16: 'DOUBLE', int64: 'INT64', int32: 'INT32', bool: 'BOOLEAN', string: 'STRING' };

async function writeInput(dir: string, format: 'csv' | 'parquet', header: string[]): Promise<void> {
  const rows = inputRows();
  const byName = new Map(COLUMNS.map((c) => [c.name, c]));
  if (format === 'csv') {
    const cell = (name: string, row: (typeof rows)[number]) => (name === 'id' ? row.id : row.text(byName.get(name)!));
    const quoted = (t: string) => (/[",\n\r]|^\s|\s$/.test(t) ? `"${t.replaceAll('"', '""')}"` : t);
    await ws.write(`${dir}/dt=${DATE}/a.csv`, [header.join(','), ...rows.map((row) => header.map((h) => quoted(cell(h, row))).join(','))].join('\n') + '\n');
    return;
  }
  const columnData = header.map((name) =>
    name === 'id' ? { name, data: rows.map((r) => r.id), type: 'STRING' } : { name, data: rows.map((r) => r.value(byName.get(name)!)), type: PARQUET_TYPE[byName.get(name)!.type], nullable: true },
  );
  await ws.write(`${dir}/dt=${DATE}/a.parquet`, new Uint8Array(parquetWriteBuffer({ columnData: columnData as never })));
}

/** A key's text in the CSV output: a CSV field's own text, a Parquet value as nightscore prints it. */
function keyText(name: string, r: number, format: 'csv' | 'parquet'): string {
  if (name === 'id') return ID.text[r]!;
  const c = COLUMNS.find((x) => x.name === name)!;
  return format === 'csv' ? c.text[r]! : String(c.value[r]);
}

function shuffled<T>(items: T[], next: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const NAMES = ['id', ...COLUMNS.map((c) => c.name)];

/**
 * The keys of the matrix: none; each column alone; each pair of columns, in both orders; all
 * but one column; all of them. So every column, of every type, is a key and not one, before
 * and after every other as a key, and beside every other as a feature only. (Every subset
 * would be 512 runs a format; these are 92.) Orders are shuffled, seeded: a failure names its case.
 */
function keySets(): string[][] {
  const next = rng(24);
  const pairs = NAMES.flatMap((a, i) => NAMES.slice(i + 1).flatMap((b) => [[a, b], [b, a]]));
  const allBut = NAMES.map((skip) => shuffled(NAMES.filter((n) => n !== skip), next));
  return [[], ...NAMES.map((n) => [n]), ...pairs, ...allBut, shuffled(NAMES, next)];
}

async function runCase(format: 'csv' | 'parquet', keys: string[], header: string[]): Promise<{ scored: string[][]; rejected: string[][] }> {
  const name = `${format}-${keys.join('-') || 'none'}`;
  await writeInput(`in/${name}`, format, header);
  const file = await ws.job(`${name}.yaml`, {
    name,
    input: { uri: `in/${name}/dt={date}/`, format, key: keys },
    model: { path: model, inputs: Object.fromEntries([...new Set(COLUMNS.map((c) => c.input))].map((i) => [i, COLUMNS.filter((c) => c.input === i).map((c) => c.name)])) },
    output: { uri: `out/${name}/dt={date}/`, format: 'csv' },
    limits: { max_reject_rate: 1 },
  });
  const manifest = await runJob(await prepareJob(parseJob(await ws.read(`${name}.yaml`), file)), DATE, { threads: 1 });
  expect(manifest.status, `${name}: ${JSON.stringify(manifest.error)}`).toBe('succeeded');
  const out = `out/${name}/dt=${DATE}`;
  const rejected = (await ws.list(out)).some((f) => f.startsWith('_rejects/')) ? (await ws.csv(`${out}/_rejects/part-00000.csv`)).slice(1) : [];
  return { scored: (await ws.csv(`${out}/part-00000.csv`)).slice(1), rejected };
}

describe('each column reaches its own input, whichever columns are keys', () => {
  it.each(['csv', 'parquet'] as const)('%s: every key set, against onnxruntime fed the same values', async (format) => {
    const next = rng(format === 'csv' ? 1 : 2);
    const cases = keySets().map((keys) => ({ keys, header: shuffled(NAMES, next) }));
    // A few runs at once: each waits on its files and onnxruntime as much as it computes.
    const outcomes = [];
    for (let i = 0; i < cases.length; i += 4) outcomes.push(...(await Promise.all(cases.slice(i, i + 4).map((c) => runCase(format, c.keys, c.header)))));
    for (const [i, { keys, header }] of cases.entries()) {
      const { scored, rejected } = outcomes[i]!;
      const what = `${format}, key [${keys.join(', ')}], header ${header.join(',')}`;
      expect(scored.map((row) => row.slice(0, keys.length)), what).toEqual(ID.text.map((_, r) => keys.map((k) => keyText(k, r, format))));
      expect(scored.map((row) => row.slice(keys.length).map(Number)), what).toEqual(expected);
      // source, line, keys…, reason: one row per column, on its line, naming it and its value.
      expect(rejected.map((row) => [row[1], row.at(-1)]), what).toEqual(COLUMNS.map((c, b) => [String(format === 'csv' ? GOOD + b + 2 : GOOD + b), c.bad[format]]));
    }
  });
});
