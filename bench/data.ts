/**
 * The benchmark's input: `rows` rows of a string key `id` and 20 numeric features f00…f19
 * written the way exports write numbers (12.345, -0.5, 1e-3, 17, 0/1), as CSV files and as
 * Parquet files of the same rows. Generated once per (rows, seed, GENERATOR) and cached
 * under .bench/data, because writing 4M rows takes longer than scoring them.
 */
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';
import { parquetWriteFile } from 'hyparquet-writer';
import { rng } from '../src/demo/churn-data.js';

/** Bump when the generator changes, so cached data is regenerated. */
const GENERATOR = 'v1';

type Draw = (next: () => number) => string;
const fixed = (lo: number, hi: number, decimals: number): Draw => (next) => (lo + (hi - lo) * next()).toFixed(decimals).replace(/^-(0\.?0*)$/, '$1');
const count = (hi: number): Draw => (next) => String(Math.floor(next() * (hi + 1)));
const flag: Draw = (next) => (next() < 0.3 ? '1' : '0');
// Small rates as Python and most exporters print them: 1e-3, 2.5e-4.
const tiny: Draw = (next) => `${[1, 2.5, 5, 7.5][Math.floor(next() * 4)]}e-${2 + Math.floor(next() * 4)}`;

/** One feature: how its text is drawn and the range tree splits are drawn from. */
export interface FeatureSpec {
  name: string;
  draw: Draw;
  range: [number, number];
}

// Ten kinds, twice over: about 85 bytes a row, as a typical wide export of mostly small numbers.
const KINDS: Array<{ draw: Draw; range: [number, number] }> = [
  { draw: fixed(0, 100, 2), range: [0, 100] }, // amounts: 42.17
  { draw: count(40), range: [0, 40] }, // counts: 17
  { draw: flag, range: [0, 1] }, // flags: 0 / 1
  { draw: fixed(-5, 5, 1), range: [-5, 5] }, // scores: -0.5
  { draw: count(9), range: [0, 9] }, // small counts: 3
  { draw: fixed(0, 10, 3), range: [0, 10] }, // measurements: 2.345
  { draw: flag, range: [0, 1] },
  { draw: tiny, range: [0, 0.075] }, // rates: 1e-3
  { draw: fixed(-5, 5, 1), range: [-5, 5] },
  { draw: flag, range: [0, 1] },
];

export const FEATURES: FeatureSpec[] = Array.from({ length: 20 }, (_, i) => ({ name: `f${String(i).padStart(2, '0')}`, ...KINDS[i % KINDS.length]! }));
export const KEY = 'id';

/** Row `i`'s fields as text: the key, then the features in FEATURES order. */
function* drawRows(rows: number, seed: number): Generator<string[]> {
  const next = rng(seed);
  for (let i = 0; i < rows; i++) yield [`c${String(i).padStart(8, '0')}`, ...FEATURES.map((f) => f.draw(next))];
}

/** The same rows as one row-major float32 matrix (what the CSV parses to), for onnxruntime alone. */
export function featureMatrix(rows: number, seed: number, into: Float32Array<ArrayBufferLike> = new Float32Array(rows * FEATURES.length)): Float32Array<ArrayBufferLike> {
  let at = 0;
  for (const row of drawRows(rows, seed)) for (let j = 1; j < row.length; j++) into[at++] = Number(row[j]);
  return into;
}

export interface Dataset {
  dir: string;
  files: string[];
  bytes: number;
  rows: number;
}

const READY = '_READY';

/**
 * Returns the cached dataset for (format, rows, seed), writing it first when absent: `files`
 * objects of consecutive rows; Parquet in row groups of `rowGroup` rows, features DOUBLE.
 */
export async function ensureDataset(root: string, format: 'csv' | 'parquet', rows: number, seed: number, files = 4, rowGroup = 100_000): Promise<Dataset> {
  const dir = path.join(root, `${format}-${rows}-s${seed}-f${files}-${GENERATOR}`);
  if (!existsSync(path.join(dir, READY))) {
    process.stderr.write(`generating ${rows.toLocaleString('en-US')} rows as ${format} in ${path.relative(process.cwd(), dir)}…\n`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const perFile = Math.ceil(rows / files);
    const source = drawRows(rows, seed);
    for (let f = 0; f * perFile < rows; f++) {
      const n = Math.min(perFile, rows - f * perFile);
      const file = path.join(dir, `part-${String(f).padStart(3, '0')}.${format}`);
      if (format === 'csv') await writeCsv(file, source, n);
      else writeParquet(file, source, n, rowGroup);
    }
    await writeFile(path.join(dir, READY), '');
  }
  const names = (await readdir(dir)).filter((n) => n.endsWith(`.${format}`)).sort();
  const sizes = await Promise.all(names.map((n) => stat(path.join(dir, n)).then((s) => s.size)));
  return { dir, files: names.map((n) => path.join(dir, n)), bytes: sizes.reduce((a, b) => a + b, 0), rows };
}

async function writeCsv(file: string, source: Generator<string[]>, n: number): Promise<void> {
  const out = createWriteStream(file);
  let buffer = `${[KEY, ...FEATURES.map((f) => f.name)].join(',')}\n`;
  for (let r = 0; r < n; r++) {
    buffer += `${(source.next().value as string[]).join(',')}\n`;
    if (buffer.length > 1 << 16) {
      if (!out.write(buffer)) await once(out, 'drain');
      buffer = '';
    }
  }
  out.end(buffer);
  await once(out, 'finish');
}

function writeParquet(file: string, source: Generator<string[]>, n: number, rowGroup: number): void {
  const ids: string[] = new Array<string>(n);
  const columns = FEATURES.map(() => new Float64Array(n));
  for (let r = 0; r < n; r++) {
    const row = source.next().value as string[];
    ids[r] = row[0]!;
    for (let j = 0; j < columns.length; j++) columns[j]![r] = Number(row[j + 1]);
  }
  parquetWriteFile({
    filename: file,
    columnData: [{ name: KEY, data: ids, type: 'STRING', nullable: false }, ...FEATURES.map((f, j) => ({ name: f.name, data: columns[j]!, type: 'DOUBLE' as const, nullable: false }))],
    rowGroupSize: rowGroup,
  });
}

/**
 * `files` CSV objects holding only the header: each becomes one empty chunk, so a run of
 * them measures what the queue costs per chunk with nothing to score.
 */
export async function ensureEmptyFiles(root: string, files: number): Promise<Dataset> {
  const dir = path.join(root, `csv-empty-${files}-${GENERATOR}`);
  if (!existsSync(path.join(dir, READY))) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const header = `${[KEY, ...FEATURES.map((f) => f.name)].join(',')}\n`;
    for (let f = 0; f < files; f++) await writeFile(path.join(dir, `empty-${String(f).padStart(4, '0')}.csv`), header);
    await writeFile(path.join(dir, READY), '');
  }
  const names = (await readdir(dir)).filter((n) => n.endsWith('.csv')).sort();
  const bytes = names.length * Buffer.byteLength(`${[KEY, ...FEATURES.map((f) => f.name)].join(',')}\n`);
  return { dir, files: names.map((n) => path.join(dir, n)), bytes, rows: 0 };
}
