/** Rows the model fails on, as rejects; and the reject limit a chunk stops at. */
import type { Batch, BatchKeys, Reject } from '../formats/batch.js';
import { NightscoreError } from '../errors.js';
import type { RowFailure } from '../model/scorer.js';
import type { ChunkSpec } from './spec.js';

/** A row the model failed on, as a reject: its line, key and onnxruntime's message. */
export function modelReject(source: string, batch: Batch, failure: RowFailure, keyCount: number): Reject {
  const { row, message } = failure;
  return { source, line: batch.lines[row]!, key: Array.from({ length: keyCount }, (_, k) => batch.keys.value(row, k)), reason: `the model failed on this row: ${message}` };
}

/** The keys of a batch's rows but the failed ones, renumbered from 0. */
export function keptKeys(keys: BatchKeys, rows: number, failed: RowFailure[]): BatchKeys {
  const gone = new Set(failed.map((f) => f.row));
  return keysOfRows(keys, Int32Array.from({ length: rows }, (_, r) => r).filter((r) => !gone.has(r)));
}

/** The keys of the rows `kept` of a batch, in that order, renumbered from 0. */
export function keysOfRows(keys: BatchKeys, kept: Int32Array): BatchKeys {
  return {
    value: (r, k) => keys.value(kept[r]!, k),
    isNull: (r, k) => keys.isNull(kept[r]!, k),
    writeCsv: (r, k, out, escape) => keys.writeCsv(kept[r]!, k, out, escape),
  };
}

/** Where a reject's line counts from: the segment it was read in (a CSV byte offset, or a Parquet row range's first row). */
export interface RejectPlace {
  format: 'csv' | 'parquet';
  start: number;
}

/**
 * The error that stops a chunk whose rejects already exceed limits.max_reject_rate of the
 * most rows the date can hold (the run would fail at its commit whatever the other rows hold,
 * and finding each failing row costs inference calls), or undefined while it may not be.
 * MODEL_RUN_FAILED when the model has scored no row of the chunk: more likely the model than the data.
 */
export function rejectLimitError(limits: ChunkSpec['limits'], rejected: number, first: Reject, at: RejectPlace, noneScored: boolean, runFailedHint: string): NightscoreError | undefined {
  const { max_reject_rate: rate, rows_at_most: most } = limits;
  const certain = most === null ? rate === 0 : rejected > rate * most;
  if (!certain) return undefined;
  // A range's lines count from its start until the commit numbers them (see lineOffsets), and
  // a Parquet reject's line is its row index: said as such, never as the object's line.
  const where = at.format === 'parquet' ? `${first.source} (row ${first.line}, counted from 0)` : at.start > 0 ? `${first.source} (line ${first.line} of the range starting at byte ${at.start})` : `${first.source}:${first.line}`;
  const line = at.format === 'csv' && at.start === 0 ? first.line : undefined;
  const limit = `limits.max_reject_rate is ${(rate * 100).toFixed(2)}%${most === null ? '' : ` of the at most ${most} rows the date holds`}`;
  if (noneScored) {
    return new NightscoreError('MODEL_RUN_FAILED', `the model failed on each of the first ${rejected} rows of the chunk, given alone, and has scored none (${limit}); the first, ${where}: ${first.reason.replace(/^the model failed on this row: /, '')}`, {
      source: first.source,
      line,
      hint: runFailedHint,
    });
  }
  return new NightscoreError('REJECT_RATE_EXCEEDED', `the model failed on rows it was given alone: ${rejected} rejected in this chunk already, so ${limit} is exceeded whatever the other rows hold; the first, ${where}: ${first.reason}`, {
    source: first.source,
    line,
    hint: 'The model refuses values in these rows (a category it was not trained on, an index outside its table…): fix them upstream, export the model to accept them (scikit-learn: OneHotEncoder(handle_unknown="ignore")), or raise limits.max_reject_rate.',
  });
}
