/**
 * "Parse alone": the run's own chunk path (plan, then scoreChunk from src/run/score-chunk.ts)
 * with a stand-in model that computes nothing and selects no outputs. What is left is what
 * scoring pays besides inference: reading the object, the line ranges, the CSV scan or
 * Parquet decode into float32 batches, and writing the key column to a CSV part. Calling
 * scoreChunk rather than the readers keeps this measuring whatever reader scoring uses,
 * whichever that is; only a change to ChunkSpec or Scorer needs a change here (the
 * typecheck points at it).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Scorer } from '../src/model/scorer.js';
import { listInputs, planChunks, planParquetChunks } from '../src/run/plan.js';
import { scoreChunk } from '../src/run/score-chunk.js';
import { SPEC_VERSION, type ChunkSpec } from '../src/run/spec.js';

export interface ParseOptions {
  format: 'csv' | 'parquet';
  features: string[];
  keys: string[];
  /** Rows per batch, as chunk.rows. */
  batchRows: number;
  /** CSV chunk size, as chunk.bytes. */
  chunkBytes: number;
  /** Where the key-only parts go; removed afterwards. */
  scratchDir: string;
}

export interface ParseResult {
  seconds: number;
  chunks: number;
  rows: number;
  rejected: number;
}

/** Reads every object in `dir` through the chunk path, chunk after chunk on this thread. */
export async function parseDataset(dir: string, opts: ParseOptions): Promise<ParseResult> {
  const inputs = (await listInputs(`${dir}/`, opts.format, 'bench')).objects;
  const chunks = opts.format === 'parquet' ? await planParquetChunks(inputs, opts.batchRows) : planChunks(inputs, { chunkBytes: opts.chunkBytes, split: true });
  const out = await mkdtemp(path.join(opts.scratchDir, 'parse-'));
  let touched = 0;
  const binding = [{ name: 'input', type: 'float32' as const, columns: opts.features, rank: 2 as const }];
  const scorer: Scorer = {
    inputs: binding,
    features: opts.features,
    outputs: [],
    open: [],
    sized: () => Promise.resolve(scorer),
    runFailedHint: '',
    // Read the batch as inference would, so nothing upstream is skipped; produce nothing.
    score: async (batch) => {
      touched += batch.features[0] ?? 0;
      return { outputs: [], failed: [] };
    },
  };
  // The spec of a chunk scored by the stand-in: it names a model no thread loads.
  const spec = (chunk: (typeof chunks)[number]): ChunkSpec => ({
    version: SPEC_VERSION,
    run: { job: 'bench', date: 'bench', attempt: 'bench' },
    index: chunk.index,
    segments: chunk.segments,
    input: { format: opts.format, key: opts.keys, csv: { delimiter: ',', max_record_bytes: 1024 * 1024, split: true }, missing: [] },
    output: { uri: `${out}/`, rejects_uri: `${out}/_rejects/`, format: 'csv', csv: { delimiter: ',', escape_formulas: false }, parquet: { codec: 'SNAPPY' } },
    batch: { rows: opts.batchRows },
    limits: { max_reject_rate: 1, rows_at_most: null },
    models: [{ role: 'champion', location: 'stand-in', sha256: 'stand-in', files: [], binding: { inputs: binding }, outputs: [], engine: { name: 'stand-in', version: 'stand-in', threads: 1 }, registry: null }],
    drift: null,
    compare: null,
    canary: null,
    timed: false,
  });
  const total = { rows: 0, rejected: 0 };
  try {
    const started = performance.now();
    for (const chunk of chunks) {
      const { stats } = await scoreChunk(spec(chunk), new Map([['champion', scorer]]));
      total.rows += stats.rows.read;
      total.rejected += stats.rows.rejected;
    }
    const seconds = (performance.now() - started) / 1000;
    if (Number.isNaN(touched)) throw new Error('unreachable: keeps the batches observed');
    return { seconds, chunks: chunks.length, ...total };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}
