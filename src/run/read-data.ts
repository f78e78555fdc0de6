/**
 * Reading data that is not a day of the job (a profile's reference, labelled data to evaluate)
 * as a run reads a day: the same planning into chunks, readers, binding and model, and nothing
 * written. The caller's sink gets the rows the model scored and their outputs.
 */
import type { Batch, BatchBuilder } from '../formats/batch.js';
import type { FeatureColumn } from '../model/features.js';
import type { OutputValues, Scorer } from '../model/scorer.js';
import { runSpec } from './begin.js';
import type { PreparedJob } from './bind.js';
import { sizedOnDate } from './learn-widths.js';
import { listInputs, planChunks, planParquetChunks, type ChunkPlan } from './plan.js';
import { chunkContext, feedSegment, type BatchSink } from './score-chunk.js';
import { chunkSpec, type RunSpec } from './spec.js';

/** Data planned for reading: its chunks, the spec they are read with, the model sized on it, and the columns it reads. */
export interface DataReading {
  spec: RunSpec;
  chunks: ChunkPlan[];
  prepared: PreparedJob;
  columns: readonly FeatureColumn[];
}

/** Data's format as its name tells it (.parquet; .csv, .csv.gz), if it does. */
export function formatOf(uri: string): 'csv' | 'parquet' | undefined {
  const name = uri.toLowerCase();
  if (name.endsWith('.parquet')) return 'parquet';
  if (name.endsWith('.csv') || name.endsWith('.csv.gz')) return 'csv';
  return undefined;
}

/**
 * Plans reading `uri` with a prepared job's readers and model; `what` names the data in errors
 * ("the reference"). Its format is `format`, else what its name says, else the job's input.format.
 */
export async function planReading(prepared: PreparedJob, uri: string, asked: 'csv' | 'parquet' | undefined, what: string): Promise<DataReading> {
  const { job } = prepared;
  const format = asked ?? formatOf(uri) ?? job.input.format;
  const { objects } = await listInputs(uri, format, what);
  const chunks = format === 'parquet' ? await planParquetChunks(objects, job.chunk.rows) : planChunks(objects, { chunkBytes: job.chunk.bytes, split: job.input.csv.split });
  // The spec of a run over the data: only its input side is read; nothing is written.
  const base = runSpec(job, 'reference', 'reference', uri, { uri, rejects: uri }, objects, [prepared.spec]);
  const sized = await sizedOnDate(prepared, base, chunks);
  const spec: RunSpec = { ...base, input: { ...base.input, format }, models: [sized.spec] };
  const columns = chunkContext(chunkSpec(spec, chunks[0] ?? { index: 0, segments: [] }), new Map([['champion', sized.scorer]])).columns;
  return { spec, chunks, prepared: sized, columns };
}

/** Feeds every chunk of the data to `sink`, in plan order. */
export async function readAll(reading: DataReading, sink: BatchSink): Promise<void> {
  for (const chunk of reading.chunks) {
    const ctx = chunkContext(chunkSpec(reading.spec, chunk), new Map([['champion', reading.prepared.scorer]]));
    for (const segment of chunk.segments) await feedSegment(segment, ctx, sink);
  }
}

/** Scores each batch and hands the rows that scored, and their outputs, to `take`; counts the rest. */
export abstract class ScoringSink implements BatchSink {
  scored = 0;
  rejected = 0;

  constructor(protected readonly scorer: Scorer) {}

  async open(): Promise<void> {}

  async flush(builder: BatchBuilder): Promise<void> {
    const batch = builder.rows > 0 ? builder.take() : undefined;
    this.rejected += builder.takeRejects().length;
    if (!batch) return;
    const { outputs, failed } = await this.scorer.score(batch);
    this.rejected += failed.length;
    this.scored += batch.rows - failed.length;
    this.take(batch, failed.map((f) => f.row), outputs);
  }

  /** The batch's rows, the ones the model failed on (ascending, not scored), and the outputs of the others, in order. */
  protected abstract take(batch: Batch, failed: number[], outputs: OutputValues[]): void;
}
