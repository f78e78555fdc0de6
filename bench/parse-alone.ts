/**
 * Parse alone, as its own process: a dataset through the chunk path with no model
 * (bench/parse-adapter.ts), on this one thread. Prints JSON { seconds, chunks, rows, rejected },
 * timed from the first chunk to the last.
 *
 *   tsx bench/parse-alone.ts --format csv --dir .bench/data/csv-… --scratch .bench/out [--batch 50000] [--chunk-bytes 16777216]
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { FEATURES, KEY } from './data.js';
import { parseDataset } from './parse-adapter.js';

const { values } = parseArgs({
  options: {
    format: { type: 'string', default: 'csv' },
    dir: { type: 'string' },
    scratch: { type: 'string', default: '.bench/out' },
    batch: { type: 'string', default: '50000' },
    'chunk-bytes': { type: 'string', default: String(16 * 1024 * 1024) },
  },
});
if (!values.dir) throw new Error('--dir is required');
mkdirSync(values.scratch, { recursive: true });
const result = await parseDataset(path.resolve(values.dir), {
  format: values.format === 'parquet' ? 'parquet' : 'csv',
  features: FEATURES.map((f) => f.name),
  keys: [KEY],
  batchRows: Number(values.batch),
  chunkBytes: Number(values['chunk-bytes']),
  scratchDir: path.resolve(values.scratch),
});
process.stdout.write(`${JSON.stringify(result)}\n`);
