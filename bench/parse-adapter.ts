/**
 * "Parse alone": the run's own chunk path (plan, then scoreChunk from src/run/score-chunk.ts)
 * with a stand-in model that computes nothing and selects no outputs. What is left is what
 * scoring pays besides inference: reading the object, the line ranges, the CSV scan or
 * Parquet decode into float32 batches, and writing the key column to a CSV part. Calling
 * scoreChunk rather than the readers keeps this measuring whatever reader scoring uses,
 * whichever that is; only a change to ChunkContext or Scorer needs a change here (the
 * typecheck points at it).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Scorer } from '../src/model/scorer.js';
import { listInputs, planChunks, planParquetChunks } from '../src/run/plan.js';
import { scoreChunk, type ChunkContext } from '../src/run/score-chunk.js';

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
  const scorer: Scorer = {
    features: opts.features,
    inputName: 'input',
    outputs: [],
    // Read the batch as inference would, so nothing upstream is skipped; produce nothing.
    score: async (features) => {
      touched += features[0] ?? 0;
      return [];
    },
  };
  const ctx: ChunkContext = {
    scorer,
    keys: opts.keys,
    batchRows: opts.batchRows,
    delimiter: ',',
    maxRecordBytes: 1024 * 1024,
    output: { format: 'csv', delimiter: ',', escapeFormulas: false, codec: 'SNAPPY' },
    metadata: {},
    outputUri: `${out}/`,
  };
  const total = { rows: 0, rejected: 0 };
  try {
    const started = performance.now();
    for (const chunk of chunks) {
      const result = await scoreChunk(chunk, ctx);
      total.rows += result.rows.read;
      total.rejected += result.rows.rejected;
    }
    const seconds = (performance.now() - started) / 1000;
    if (Number.isNaN(touched)) throw new Error('unreachable: keeps the batches observed');
    return { seconds, chunks: chunks.length, ...total };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}
