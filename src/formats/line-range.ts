import { inputTruncated } from '../storage/integrity.js';
import { detectLineEnd } from './csv-scan.js';

/**
 * Reading a byte range of a line-oriented object so that consecutive ranges partition its
 * records exactly. A range [start, end) owns the records that begin inside it:
 *   - a range that does not begin at 0 is read from start-1 and skips through the first
 *     newline (so a record beginning exactly at `start` is kept);
 *   - every range reads past `end` up to and including the first newline at or after end-1.
 * The two rules pick the same newline for a boundary, so the last record of one range and
 * the first of the next meet exactly. A boundary that falls inside a quoted field is caught
 * by the CSV reader of the earlier range, which then ends inside an open quote.
 */
export interface LineRangeOptions {
  /** Skip through the first newline (the range does not begin at the object's start). */
  skipFirst: boolean;
  /** Stream position of the range's last owned byte (end-1), or Infinity to read to EOF. */
  last: number;
  /**
   * Bytes the source holds from its start to the object's end, when known (uncompressed
   * objects). A source that ends sooner was cut short, and is an error, never a short read.
   */
  length?: number;
  /** Object URI, for the error. */
  source?: string;
  /**
   * The byte that ends a record in this object: LF (LF and CRLF files), or CR in a file whose
   * lines end in CR alone, where an LF is data; 'auto' reads it from the header, for a range
   * that starts at the object's start. @defaultValue LF
   */
  eol?: number | 'auto';
}

/** Counts the line ends a slice emitted, for absolute line numbers later. */
export interface LineRangeStats {
  newlines: number;
}

export const LF = 0x0a;
export const CR = 0x0d;

export async function* sliceLineRange(source: AsyncIterable<Buffer>, opts: LineRangeOptions, stats: LineRangeStats): AsyncGenerator<Buffer> {
  if (opts.eol === 'auto') {
    // Hold the first bytes until the header's line end says which byte ends a record, then
    // slice them and the rest with it.
    const reads = source[Symbol.asyncIterator]();
    let held: Buffer = Buffer.alloc(0);
    let found: 'lf' | 'cr' | undefined;
    while (found === undefined) {
      const { value, done } = await reads.next();
      if (!done) held = held.length === 0 ? value : Buffer.concat([held, value]);
      found = detectLineEnd(held, hasBom(held) ? 3 : 0, !!done);
    }
    const replay = async function* () {
      if (held.length > 0) yield held;
      for (let r = await reads.next(); !r.done; r = await reads.next()) yield r.value;
    };
    yield* sliceLineRange(replay(), { ...opts, eol: found === 'cr' ? CR : LF }, stats);
    return;
  }
  const NL = opts.eol ?? LF;
  let pos = 0;
  let skipping = opts.skipFirst;
  for await (const buf of source) {
    let from = 0;
    if (skipping) {
      const nl = buf.indexOf(NL);
      if (nl === -1) {
        pos += buf.length;
        continue;
      }
      // The record spanning the boundary also spans the whole range: this range owns nothing.
      if (pos + nl >= opts.last) return;
      from = nl + 1;
      skipping = false;
    }
    let to = buf.length;
    let done = false;
    const searchFrom = Math.max(from, opts.last - pos);
    if (searchFrom < buf.length) {
      const nl = buf.indexOf(NL, searchFrom);
      if (nl !== -1) {
        to = nl + 1;
        done = true;
      }
    }
    const out = buf.subarray(from, to);
    stats.newlines += countByte(out, NL);
    if (out.length > 0) yield out;
    pos += buf.length;
    if (done) return;
  }
  if (opts.length !== undefined && pos !== opts.length) {
    throw inputTruncated(opts.source ?? 'input', `the body ended after ${pos} of ${opts.length} bytes`);
  }
}

function hasBom(buf: Buffer): boolean {
  return buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf;
}

function countByte(buf: Buffer, byte: number): number {
  let n = 0;
  for (let i = buf.indexOf(byte); i !== -1; i = buf.indexOf(byte, i + 1)) n++;
  return n;
}
