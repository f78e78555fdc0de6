import { parse, CsvError } from 'csv-parse';
import type { Readable } from 'node:stream';
import { inputError, NightscoreError } from '../errors.js';

/** One CSV record and the line on which it ends (equal to where it starts unless a quoted field spans lines). */
export interface CsvRecord {
  fields: string[];
  line: number;
}

export interface CsvReadOptions {
  /** URI of the object, for messages. */
  source: string;
  delimiter: string;
  /** A record longer than this fails the read instead of growing memory without bound. */
  maxRecordBytes: number;
  /** The header, when the stream starts mid-object (a byte range) and so has none of its own. */
  header?: string[];
  /** Set when the stream is a range that ends before the object does (see line-range.ts). */
  endsMidObject?: boolean;
  /** The byte range read, when it does not start at the object's start: line numbers then count from it. */
  range?: { start: number; end: number };
}

/** A CSV object opened for streaming: its header, and the records after it. */
export interface CsvStream {
  header: string[];
  records: AsyncIterableIterator<CsvRecord>;
}

/**
 * Streams records from a CSV byte stream. The header row is required; BOM, CRLF, quoted
 * fields (including quoted newlines) and blank lines are handled by csv-parse. Records keep
 * whatever field count they have: a wrong count is a rejected row, not a failed file.
 * Malformed CSV (an unclosed quote, a stray quote, an oversized record) fails the read with
 * the object and line.
 */
export async function openCsv(stream: Readable, opts: CsvReadOptions): Promise<CsvStream> {
  const parser = stream.pipe(
    parse({
      bom: opts.header === undefined,
      delimiter: opts.delimiter,
      skip_empty_lines: true,
      relax_column_count: true,
      max_record_size: opts.maxRecordBytes,
      info: true,
    }),
  );
  // A failing source (network reset, gzip error) does not propagate through pipe().
  stream.once('error', (err) => parser.destroy(err));
  // The parser starts reading before anyone iterates (the caller still checks the header,
  // opens its writers): a parse error in that window would be an unhandled 'error' event
  // that kills the process. The iterator rethrows the stored error when iteration starts.
  parser.on('error', () => undefined);
  const records = readRecords(parser, opts);
  if (opts.header) return { header: opts.header, records };
  const first = await records.next();
  if (first.done) {
    throw inputError('INPUT_EMPTY', `${opts.source}: the file is empty; expected a header row naming the columns`, {
      source: opts.source,
      line: 1,
      hint: 'Check the upstream export for this date; every CSV input needs a header row.',
    });
  }
  return { header: first.value.fields.map((h) => h.trim()), records };
}

async function* readRecords(parser: AsyncIterable<{ record: string[]; info: { lines: number } }>, opts: CsvReadOptions) {
  try {
    for await (const { record, info } of parser) yield { fields: record, line: info.lines };
  } catch (err) {
    throw toCsvError(err, opts);
  }
}

function toCsvError(err: unknown, { source, endsMidObject, range }: CsvReadOptions): unknown {
  if (err instanceof NightscoreError) return err;
  if (err instanceof CsvError && err.code === 'CSV_QUOTE_NOT_CLOSED' && endsMidObject) {
    return inputError('CSV_QUOTED_NEWLINE_AT_SPLIT', `${source}: a quoted field is still open where nightscore split the object into chunks (or a quote is never closed): ${err.message}`, {
      source,
      hint: 'If fields of this input contain newlines, set input.csv.split: false so each object is read whole; otherwise fix the unclosed quote.',
      cause: err,
    });
  }
  if (err instanceof CsvError) {
    const line = (err as CsvError & { lines?: number }).lines;
    const tooBig = err.code === 'CSV_MAX_RECORD_SIZE';
    // Inside a byte range csv-parse counts lines from the range's start; say so rather than mislead.
    const where = range ? `${source} (line ${line ?? '?'} of the chunk starting at byte ${range.start})` : `${source}:${line ?? '?'}`;
    return inputError(tooBig ? 'CSV_RECORD_TOO_LARGE' : 'CSV_MALFORMED', `${where}: malformed CSV: ${err.message}`, {
      source,
      line: range ? undefined : line,
      hint: tooBig
        ? 'A record is larger than input.csv.max_record_bytes; usually an unclosed quote. Fix the file or raise the limit.'
        : 'Fix the quoting in the file at that line (a field with a quote, delimiter or newline must be wrapped in double quotes, with inner quotes doubled).',
      cause: err,
    });
  }
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR') {
    return inputError('INPUT_CORRUPT', `${source}: cannot decompress: ${(err as Error).message}`, {
      source,
      hint: 'The gzip stream is corrupt or truncated; re-export the file.',
      cause: err,
    });
  }
  return err;
}

/** Line where a record starts, for messages: its end line less the newlines inside its quoted fields. */
export function recordStartLine(record: CsvRecord): number {
  let newlines = 0;
  for (const field of record.fields) for (let i = field.indexOf('\n'); i !== -1; i = field.indexOf('\n', i + 1)) newlines++;
  return record.line - newlines;
}
