import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { openCsv, recordStartLine, type CsvStream } from '../formats/csv-read.js';
import { formatPredictions, formatStagedRejects, predictionHeader, stagedRejectsHeader } from '../formats/csv-write.js';
import { sliceLineRange, type LineRangeStats } from '../formats/line-range.js';
import type { Scorer } from '../model/scorer.js';
import { openLocation } from '../storage/open.js';
import type { ObjectWriter } from '../storage/storage.js';
import { BatchBuilder, mapColumns, type Reject } from './batch.js';
import { chunkFiles, type RowCounts } from './manifest.js';
import type { ChunkPlan, Segment } from './plan.js';

/** What scoring a chunk needs besides the chunk: the bound model and the job's format options. */
export interface ChunkContext {
  scorer: Scorer;
  keys: string[];
  /** Rows per inference call. */
  batchRows: number;
  delimiter: string;
  maxRecordBytes: number;
  outputDelimiter: string;
  /** The run's output folder URI. */
  outputUri: string;
  /** Called after each batch is written, for progress. */
  onBatch?: (counts: RowCounts) => void;
}

/** Per segment: how many records it held, and how many newlines, for absolute reject line numbers. */
export interface SegmentResult {
  uri: string;
  start: number;
  rows: number;
  bytes: number;
  newlines: number;
}

/** A chunk's outcome; plain JSON, because in the queue it is the chunk job's return value. */
export interface ChunkResult {
  index: number;
  rows: RowCounts;
  part: { uri: string; rows: number };
  /** Staged rejects (lines relative to their segment) when any row was rejected. */
  stagedRejects: { uri: string; rows: number } | null;
  segments: SegmentResult[];
}

/**
 * Scores one chunk into `part-<index>`. Rows stream through in batches of `batchRows`, so
 * memory is bounded by one batch whatever the chunk's size. Every record of the chunk's
 * segments lands in exactly one place: the part, or the staged rejects file that the run's
 * commit turns into `_rejects/part-<index>` with absolute line numbers.
 * The part is written under a deterministic name and only becomes visible when complete,
 * so a chunk that runs twice (a retry, a crashed worker) overwrites its own part and
 * nothing else.
 */
export async function scoreChunk(chunk: ChunkPlan, ctx: ChunkContext): Promise<ChunkResult> {
  const out = openLocation(ctx.outputUri);
  const files = chunkFiles(out, chunk.index);
  const csvOut = { delimiter: ctx.outputDelimiter };
  const part = await out.storage.createWriter(files.part);
  let rejects: ObjectWriter | undefined;
  const rows: RowCounts = { read: 0, scored: 0, rejected: 0 };
  const segments: SegmentResult[] = [];
  try {
    await part.write(predictionHeader(ctx.keys, ctx.scorer.outputs, csvOut));
    for (const segment of chunk.segments) {
      const stats: LineRangeStats = { newlines: 0, bytes: 0 };
      const csv = await openSegment(segment, ctx, stats);
      const columns = mapColumns(csv.header, ctx.scorer.features, ctx.keys, segment.uri);
      const builder = new BatchBuilder(columns, ctx.batchRows, ctx.scorer.features);
      let pending: Reject[] = [];
      const before = rows.read;
      const flush = async () => {
        if (builder.rows > 0) {
          const batch = builder.take();
          const outputs = await ctx.scorer.score(batch.features, batch.rows);
          await part.write(formatPredictions(batch, outputs, csvOut));
          rows.scored += batch.rows;
        }
        if (pending.length > 0) {
          if (!rejects) {
            rejects = await out.storage.createWriter(files.stagedRejects);
            await rejects.write(stagedRejectsHeader(ctx.keys, csvOut));
          }
          await rejects.write(formatStagedRejects(pending, segment.start, csvOut));
          rows.rejected += pending.length;
          pending = [];
        }
        ctx.onBatch?.({ ...rows });
      };
      for await (const record of csv.records) {
        rows.read++;
        const reject = builder.add(record.fields, record.line, segment.uri);
        if (reject) {
          reject.line = recordStartLine(record);
          pending.push(reject);
          if (pending.length >= ctx.batchRows) await flush();
        } else if (builder.full) {
          await flush();
        }
      }
      await flush();
      segments.push({ uri: segment.uri, start: segment.start, rows: rows.read - before, bytes: stats.bytes, newlines: stats.newlines });
    }
    await part.close();
    await rejects?.close();
  } catch (err) {
    await part.abort();
    await rejects?.abort();
    throw err;
  }
  return {
    index: chunk.index,
    rows,
    part: { uri: out.storage.uri(files.part), rows: rows.scored },
    stagedRejects: rejects ? { uri: out.storage.uri(files.stagedRejects), rows: rows.rejected } : null,
    segments,
  };
}

async function openSegment(segment: Segment, ctx: ChunkContext, stats: LineRangeStats): Promise<CsvStream> {
  const { storage, key } = openLocation(segment.uri);
  const whole = segment.start === 0 && segment.end >= segment.bytes;
  const mid = segment.start > 0;
  const raw = await storage.read(key, mid ? { start: segment.start - 1 } : undefined);
  let source: Readable = raw;
  if (segment.gzip) {
    source = raw.pipe(createGunzip());
    raw.once('error', (err) => source.destroy(err));
  }
  const sliced = Readable.from(sliceLineRange(source, { skipFirst: mid, last: whole ? Infinity : segment.end - 1 - (mid ? segment.start - 1 : 0) }, stats));
  return openCsv(sliced, {
    source: segment.uri,
    delimiter: ctx.delimiter,
    maxRecordBytes: ctx.maxRecordBytes,
    header: mid ? await readHeader(segment, ctx) : undefined,
    endsMidObject: !whole && segment.end < segment.bytes,
    range: mid ? { start: segment.start, end: segment.end } : undefined,
  });
}

/** The header of an object, for a range that starts mid-object: parsed from the object's first record. */
async function readHeader(segment: Segment, ctx: ChunkContext): Promise<string[]> {
  const { storage, key } = openLocation(segment.uri);
  const stream = await storage.read(key);
  try {
    return (await openCsv(stream, { source: segment.uri, delimiter: ctx.delimiter, maxRecordBytes: ctx.maxRecordBytes })).header;
  } finally {
    stream.destroy();
  }
}
