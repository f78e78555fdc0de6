import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { openCsv, recordStartLine } from '../formats/csv-read.js';
import { formatPredictions, formatRejects, predictionHeader, rejectsHeader } from '../formats/csv-write.js';
import type { Scorer } from '../model/scorer.js';
import type { Location } from '../storage/open.js';
import type { ObjectWriter } from '../storage/storage.js';
import { BatchBuilder, mapColumns, type Reject } from './batch.js';
import { OUTPUT_FILES, partName, type RowCounts } from './manifest.js';
import type { InputObject } from './plan.js';

export interface ScorePartOptions {
  keys: string[];
  /** Rows per inference call. */
  batchRows: number;
  delimiter: string;
  maxRecordBytes: number;
  outputDelimiter: string;
  /** Called after each batch is written, for progress. */
  onBatch?: (counts: RowCounts) => void;
}

export interface WrittenFile {
  key: string;
  uri: string;
  rows: number;
}

export interface PartResult {
  rows: RowCounts;
  part: WrittenFile;
  rejects: WrittenFile | undefined;
}

/**
 * Scores one input object into `part-<index>` (and `_rejects/part-<index>` when any row is
 * rejected). Input is streamed in batches of `batchRows`, so memory is bounded by one batch
 * whatever the object's size. Every record lands in exactly one of the two files.
 */
export async function scorePart(input: InputObject, scorer: Scorer, out: Location, index: number, opts: ScorePartOptions): Promise<PartResult> {
  const raw = await input.storage.read(input.key);
  const stream: Readable = input.gzip ? raw.pipe(createGunzip()) : raw;
  if (input.gzip) raw.once('error', (err) => stream.destroy(err));
  const csv = await openCsv(stream, { source: input.uri, delimiter: opts.delimiter, maxRecordBytes: opts.maxRecordBytes });
  const columns = mapColumns(csv.header, scorer.features, opts.keys, input.uri);
  const builder = new BatchBuilder(columns, opts.batchRows, scorer.features);

  const partKey = out.storage.join(out.key, partName(index, 'csv'));
  const rejectsKey = out.storage.join(out.storage.join(out.key, OUTPUT_FILES.rejectsDir), partName(index, 'csv'));
  const csvOut = { delimiter: opts.outputDelimiter };
  const part = await out.storage.createWriter(partKey);
  let rejectsWriter: ObjectWriter | undefined;
  const rows: RowCounts = { read: 0, scored: 0, rejected: 0 };
  let pendingRejects: Reject[] = [];

  const flush = async () => {
    if (builder.rows > 0) {
      const batch = builder.take();
      const outputs = await scorer.score(batch.features, batch.rows);
      await part.write(formatPredictions(batch, outputs, csvOut));
      rows.scored += batch.rows;
    }
    if (pendingRejects.length > 0) {
      if (!rejectsWriter) {
        rejectsWriter = await out.storage.createWriter(rejectsKey);
        await rejectsWriter.write(rejectsHeader(opts.keys, csvOut));
      }
      await rejectsWriter.write(formatRejects(pendingRejects, csvOut));
      rows.rejected += pendingRejects.length;
      pendingRejects = [];
    }
    opts.onBatch?.({ ...rows });
  };

  try {
    await part.write(predictionHeader(opts.keys, scorer.outputs, csvOut));
    for await (const record of csv.records) {
      rows.read++;
      const reject = builder.add(record.fields, record.line, input.uri);
      if (reject) {
        reject.line = recordStartLine(record);
        pendingRejects.push(reject);
        if (pendingRejects.length >= opts.batchRows) await flush();
      } else if (builder.full) {
        await flush();
      }
    }
    await flush();
    await part.close();
    await rejectsWriter?.close();
  } catch (err) {
    await part.abort();
    await rejectsWriter?.abort();
    stream.destroy();
    throw err;
  }
  return {
    rows,
    part: { key: partKey, uri: out.storage.uri(partKey), rows: rows.scored },
    rejects: rejectsWriter ? { key: rejectsKey, uri: out.storage.uri(rejectsKey), rows: rows.rejected } : undefined,
  };
}
