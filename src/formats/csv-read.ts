import type { Readable } from 'node:stream';
import { NightscoreError } from '../errors.js';
import { CsvScanError, CsvScanner, type ScanLayout, type ScanTarget } from './csv-scan.js';

export interface CsvReadOptions {
  /** URI of the object, for messages. */
  source: string;
  delimiter: string;
  /** A record longer than this fails the read instead of growing memory without bound. */
  maxRecordBytes: number;
  /** The header, when the stream starts mid-object (a byte range) and so has none of its own. */
  header?: CsvHeader;
  /** Set when the stream is a range that ends before the object does (see line-range.ts). */
  endsMidObject?: boolean;
  /** The byte range read, when it does not start at the object's start: line numbers then count from it. */
  range?: { start: number; end: number };
}

/** An object's header: its column names, and the line end its records use. */
export interface CsvHeader {
  names: string[];
  eol: 'lf' | 'cr';
}

/** A CSV object opened for streaming: its header, and a scan of the records after it. */
export interface CsvStream {
  header: CsvHeader;
  /**
   * Scans every record into `target`, yielding it whenever it is full so the caller can
   * drain it; when the iteration ends, the last rows are in the target.
   * Rejected rows carry their line: 1-based within the stream, so a range's count from it.
   */
  scan<T extends ScanTarget>(layout: ScanLayout, target: T): AsyncGenerator<T>;
}

/**
 * Opens a CSV byte stream: reads the header (required, unless given for a mid-object range),
 * then scans records with the byte-level scanner (csv-scan.ts). BOM, CRLF, quoted fields
 * with quoted newlines and blank lines are handled; a record with the wrong field count is
 * a rejected row, not a failed file. Malformed CSV (an unclosed or stray quote, an oversized
 * record) fails the read with the object and line.
 */
export async function openCsv(stream: Readable, opts: CsvReadOptions): Promise<CsvStream> {
  const scanner = new CsvScanner({ delimiter: opts.delimiter, maxRecordBytes: opts.maxRecordBytes, eol: opts.header?.eol });
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let carry: Buffer = EMPTY;
  let header = opts.header;
  try {
    while (!header) {
      const { value, done } = await chunks.next();
      const data = done ? carry : join(carry, value);
      const found = scanner.header(data, !!done);
      if (found) {
        header = { names: found.fields.map((h) => h.trim()), eol: scanner.lineEnd };
        carry = data.subarray(found.next);
      } else if (done) {
        throw new NightscoreError('INPUT_EMPTY', `${opts.source}: the file is empty; expected a header row naming the columns`, {
          source: opts.source,
          line: 1,
          hint: 'Check the upstream export for this date; every CSV input needs a header row.',
        });
      } else {
        carry = data;
        scanner.checkRecordSize(carry.length);
      }
    }
  } catch (err) {
    stream.destroy();
    throw toCsvError(err, opts);
  }
  const rest = carry;
  return { header, scan: (layout, target) => scanRecords(scanner, chunks, rest, layout, target, opts) };
}

async function* scanRecords<T extends ScanTarget>(scanner: CsvScanner, chunks: AsyncIterator<Buffer>, first: Buffer, layout: ScanLayout, target: T, opts: CsvReadOptions): AsyncGenerator<T> {
  const eol = scanner.lineEnd === 'cr' ? 0x0d : 0x0a;
  let carry = first;
  try {
    for (;;) {
      const { value, done } = await chunks.next();
      let data: Buffer = done ? carry : value;
      let pos = 0;
      if (!done && carry.length > 0) {
        // The record cut by the read usually ends at the next line end: finish it in a small
        // buffer of its own, then scan the read in place, rather than copy the whole read
        // behind the carried bytes. A record that goes on (a quoted line break) is joined whole.
        const lineEnd = value.indexOf(eol);
        const head = lineEnd === -1 ? undefined : Buffer.concat([carry, value.subarray(0, lineEnd + 1)]);
        let used = 0;
        if (head) {
          for (;;) {
            used = scanner.rows(head, used, false, layout, target);
            if (!target.full) break;
            yield target;
          }
        }
        if (head && used >= carry.length) pos = used - carry.length;
        else data = join(carry.subarray(used), value);
      }
      for (;;) {
        pos = scanner.rows(data, pos, !!done, layout, target);
        if (!target.full) break;
        yield target;
      }
      if (done) return;
      carry = data.subarray(pos);
    }
  } catch (err) {
    throw toCsvError(err, opts);
  }
}

const EMPTY = Buffer.alloc(0);

function join(carry: Buffer, next: Buffer): Buffer {
  return carry.length === 0 ? next : Buffer.concat([carry, next]);
}

function toCsvError(err: unknown, { source, endsMidObject, range }: CsvReadOptions): unknown {
  if (err instanceof NightscoreError) return err;
  if (err instanceof CsvScanError && err.code === 'CSV_QUOTE_NOT_CLOSED' && endsMidObject) {
    return new NightscoreError('CSV_QUOTED_NEWLINE_AT_SPLIT', `${source}: a quoted field is still open where nightscore split the object into chunks (or a quote is never closed): ${err.message}`, {
      source,
      hint: 'If fields of this input contain newlines, set input.csv.split: false so each object is read whole; otherwise fix the unclosed quote.',
      cause: err,
    });
  }
  if (err instanceof CsvScanError) {
    const tooBig = err.code === 'CSV_MAX_RECORD_SIZE';
    // Inside a byte range lines count from the range's start; say so rather than mislead.
    const where = range ? `${source} (line ${err.line} of the chunk starting at byte ${range.start})` : `${source}:${err.line}`;
    return new NightscoreError(tooBig ? 'CSV_RECORD_TOO_LARGE' : 'CSV_MALFORMED', `${where}: malformed CSV: ${err.message}`, {
      source,
      line: range ? undefined : err.line,
      hint: tooBig
        ? 'A record is larger than input.csv.max_record_bytes; usually an unclosed quote. Fix the file or raise the limit.'
        : 'Fix the quoting in the file at that line (a field with a quote, delimiter or newline must be wrapped in double quotes, with inner quotes doubled).',
      cause: err,
    });
  }
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR') {
    return new NightscoreError('INPUT_CORRUPT', `${source}: cannot decompress: ${(err as Error).message}`, {
      source,
      hint: 'The gzip stream is corrupt or truncated; re-export the file.',
      cause: err,
    });
  }
  return err;
}
