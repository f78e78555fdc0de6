import { stringify } from 'csv-stringify/sync';
import type { OutputValues } from '../model/scorer.js';
import type { Reject } from '../run/batch.js';
import { formatFloat32 } from './numbers.js';

export interface CsvWriteOptions {
  delimiter: string;
  /** Quote-prefix text cells a spreadsheet would run as formulas. */
  escapeFormulas?: boolean;
}

const FORMULA_START = /^[=+\-@\t\r]/;

/** A text cell a spreadsheet would treat as a formula gets a leading single quote (OWASP's advice). */
export function escapeFormula(text: string): string {
  return FORMULA_START.test(text) ? `'${text}` : text;
}

/** Header of a prediction part: key columns, then prediction columns. */
export function predictionHeader(keys: string[], outputs: OutputValues['columns'][], opts: CsvWriteOptions): string {
  return stringify([[...keys, ...outputs.flatMap((o) => o.names)]], { delimiter: opts.delimiter });
}

/** Header of a rejects part. */
export function rejectsHeader(keys: string[], opts: CsvWriteOptions): string {
  return stringify([['source', 'line', ...keys, 'reason']], { delimiter: opts.delimiter });
}

/** Formats one scored batch as CSV rows (no header). */
export function formatPredictions(keys: unknown[][], outputs: OutputValues[], count: number, opts: CsvWriteOptions): string {
  const formatters = outputs.map((o) => formatterFor(o.columns.type, opts.escapeFormulas));
  const rows: string[][] = new Array(count);
  for (let r = 0; r < count; r++) {
    const row: string[] = (keys[r] as unknown[]).map(opts.escapeFormulas ? (k) => escapeFormula(keyText(k)) : keyText);
    for (let o = 0; o < outputs.length; o++) {
      const { data, columns } = outputs[o] as OutputValues;
      const width = columns.names.length;
      const format = formatters[o] as (v: unknown) => string;
      for (let c = 0; c < width; c++) row.push(format((data as ArrayLike<unknown>)[r * width + c]));
    }
    rows[r] = row;
  }
  // Only the delimiter goes to csv-stringify: its own escape_formulas would also prefix negative numbers.
  return stringify(rows, { delimiter: opts.delimiter });
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

/** Key values as text: CSV keys are text already; Parquet keys may be numbers, bigints or dates. */
export function keyText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

/** Formats final reject rows (source, line, keys…, reason), no header. */
export function formatRejectRows(rows: string[][], opts: CsvWriteOptions): string {
  return stringify(rows, { delimiter: opts.delimiter });
}

/**
 * Per element type: float32 prints the shortest text that reads back as the same float32;
 * float64 as JavaScript's shortest round-trip; integers (int64 labels included) as integers.
 */
function formatterFor(type: string, escapeFormulas = false): (v: unknown) => string {
  if (type === 'float32') return (v) => formatFloat32(v as number);
  if (type === 'bool') return (v) => (v ? 'true' : 'false');
  if (type === 'string' && escapeFormulas) return (v) => escapeFormula(String(v));
  return (v) => String(v);
}
