import { stringify } from 'csv-stringify/sync';
import type { OutputValues } from '../model/scorer.js';
import type { BatchKeys, Reject } from './batch.js';
import { CsvText, escapeFormula } from './csv-text.js';
import { keyText } from './key-values.js';
import { float16Value, formatFloat32, formatFloat64 } from './numbers.js';

export interface CsvWriteOptions {
  delimiter: string;
  /** Quote-prefix text cells a spreadsheet would run as formulas. */
  escapeFormulas?: boolean;
}

/** Header of a prediction part: key columns, then prediction columns. */
export function predictionHeader(keys: string[], outputs: OutputValues['columns'][], opts: CsvWriteOptions): string {
  return stringify([[...keys, ...outputs.flatMap((o) => o.names)]], { delimiter: opts.delimiter });
}

/** Header of a rejects part. */
export function rejectsHeader(keys: string[], opts: CsvWriteOptions): string {
  return stringify([['source', 'line', ...keys, 'reason']], { delimiter: opts.delimiter });
}

/**
 * Formats one scored batch as CSV rows (no header), as bytes: keys then predictions, float32
 * in the shortest text that reads back bit-exact. Only cells that need it are quoted.
 */
export function formatPredictions(keys: BatchKeys, keyCount: number, outputs: OutputValues[], count: number, opts: CsvWriteOptions): Buffer {
  // A delimiter that can occur in a number's text (a digit, '.', 'e', '-') quotes numbers too.
  const plainNumbers = !/[\w.+-]/.test(opts.delimiter);
  // Room for a row of short keys and shortest floats (up to 15 characters and a delimiter
  // each), so the buffer is not outgrown and copied mid-batch; pages never written to cost
  // no memory.
  const cellsPerRow = keyCount + outputs.reduce((n, o) => n + o.columns.names.length, 0);
  const out = new CsvText(Math.max(1024, count * 16 * (cellsPerRow + 1)), opts.delimiter.charCodeAt(0), new RegExp(`["\r\n${escapeRegExp(opts.delimiter)}]`));
  const cells = outputs.map((o) => cellWriter(out, o.columns.type, plainNumbers, opts.escapeFormulas));
  const escape = opts.escapeFormulas ?? false;
  for (let r = 0; r < count; r++) {
    for (let k = 0; k < keyCount; k++) {
      if (k > 0) out.separator();
      keys.writeCsv(r, k, out, escape);
    }
    let first = keyCount === 0;
    for (let o = 0; o < outputs.length; o++) {
      const data = (outputs[o] as OutputValues).data as ArrayLike<unknown>;
      const width = (outputs[o] as OutputValues).columns.names.length;
      const cell = cells[o] as (data: ArrayLike<unknown>, i: number) => void;
      for (let c = 0; c < width; c++) {
        if (!first) out.separator();
        first = false;
        cell(data, r * width + c);
      }
    }
    out.endRow();
  }
  return out.bytes();
}

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|-]/g, '\\$&');
}

/**
 * Staged rejects carry the byte offset of the segment they came from, because a chunk that
 * reads a range from the middle of an object cannot know how many lines precede it; the
 * run's commit adds that count and writes the final rejects file.
 */
export function stagedRejectsHeader(keys: string[], opts: CsvWriteOptions): string {
  return stringify([['source', 'segment_start', 'line', ...keys, 'reason']], { delimiter: opts.delimiter });
}

export function formatStagedRejects(rejects: Reject[], segmentStart: number, opts: CsvWriteOptions): string {
  return stringify(
    rejects.map((r) => [r.source, String(segmentStart), String(r.line), ...r.key.map(keyText), r.reason]),
    { delimiter: opts.delimiter },
  );
}

/** Formats final reject rows (source, line, keys…, reason), no header. */
export function formatRejectRows(rows: string[][], opts: CsvWriteOptions): string {
  return stringify(rows, { delimiter: opts.delimiter });
}

const INTEGER_TYPES = new Set(['int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64']);

/**
 * Per element type: float32 (and float16) prints the shortest text that reads back as the same float32;
 * float64 as JavaScript's shortest round-trip (-0 as `-0`); integers (int64 labels included) as integers.
 */
function cellWriter(out: CsvText, type: string, plainNumbers: boolean, escapeFormulas = false): (data: ArrayLike<unknown>, i: number) => void {
  // Cells take the output array and an index, not the value: see CsvText.float32At.
  if (type === 'string') return escapeFormulas ? (d, i) => out.text(escapeFormula(String(d[i]))) : (d, i) => out.text(String(d[i]));
  // float16 data are the halves' bits: printed as the values they hold.
  if (type === 'float16') return plainNumbers ? (d, i) => out.ascii(formatFloat32(float16Value(d[i] as number))) : (d, i) => out.text(formatFloat32(float16Value(d[i] as number)));
  if (!plainNumbers) return type === 'float32' ? (d, i) => out.text(formatFloat32(d[i] as number)) : type === 'float64' ? (d, i) => out.text(formatFloat64(d[i] as number)) : type === 'bool' ? (d, i) => out.text(d[i] ? 'true' : 'false') : (d, i) => out.text(String(d[i]));
  if (type === 'float32') return (d, i) => out.float32At(d as Float32Array, i);
  if (type === 'float64') return (d, i) => out.ascii(formatFloat64(d[i] as number));
  if (type === 'bool') return (d, i) => out.ascii(d[i] ? 'true' : 'false');
  if (INTEGER_TYPES.has(type)) return (d, i) => out.integer(d[i] as number | bigint);
  return (d, i) => out.ascii(String(d[i]));
}
