import { NightscoreError } from '../errors.js';

/**
 * The envelope every Parquet file has, checked before a footer is decoded:
 *   PAR1 · column chunks · footer (thrift FileMetaData) · footer length (u32 LE) · PAR1
 * hyparquet checks only the trailing magic and decodes whatever the length points at, so a
 * file cut short, or one that is not Parquet at all, would fail deep in the thrift decoder
 * with a message that names neither; and a corrupt head goes unnoticed, because column
 * chunks are read by offset. Each case gets its own reason here.
 */

const MAGIC = 0x31524150; // "PAR1" read as a little-endian u32
/** PAR1 + footer length + PAR1: the smallest file that can hold a footer at all. */
const ENVELOPE = 12;

/** Reads `[start, end)` of the object, as hyparquet's AsyncBuffer does. */
export type SliceFn = (start: number, end: number) => Promise<ArrayBuffer> | ArrayBuffer;

export interface ParquetEnvelopeOptions {
  /**
   * Also check the leading magic. Costs one small read on files larger than the tail that
   * is fetched anyway, so the plan checks it once per file and chunk reads skip it.
   * @defaultValue false
   */
  head?: boolean;
  /** Bytes read from the end; hyparquet's initial footer fetch, so the cache serves both. */
  tailBytes: number;
}

/** Throws PARQUET_INVALID with the reason when the object is not a whole Parquet file. */
export async function checkParquetEnvelope(uri: string, bytes: number, slice: SliceFn, opts: ParquetEnvelopeOptions): Promise<void> {
  if (bytes < ENVELOPE) {
    throw invalid(uri, `it holds ${bytes} bytes, fewer than the ${ENVELOPE} of an empty Parquet file`, CUT_HINT);
  }
  const tail = new DataView(await slice(Math.max(0, bytes - opts.tailBytes), bytes));
  const endsRight = tail.getUint32(tail.byteLength - 4, true) === MAGIC;
  const head = opts.head ? new DataView(await slice(0, 4)) : undefined;
  const startsRight = head === undefined || head.getUint32(0, true) === MAGIC;
  if (!startsRight && !endsRight) {
    throw invalid(uri, `it neither starts nor ends with the magic bytes PAR1 (it starts with ${hex(head!)})`, 'Check input.format and the input folder: this object is not Parquet.');
  }
  if (!endsRight) {
    throw invalid(uri, `it does not end with the magic bytes PAR1, so its footer is missing: the file was cut short (or is still being written)`, CUT_HINT);
  }
  if (!startsRight) {
    throw invalid(uri, `it ends like Parquet but does not start with the magic bytes PAR1 (it starts with ${hex(head!)})`, 'The file is corrupt; re-export it from the source.');
  }
  const footer = tail.getUint32(tail.byteLength - 8, true);
  if (footer > bytes - ENVELOPE) {
    throw invalid(uri, `its footer declares ${footer} bytes of metadata, but the whole file holds ${bytes}`, CUT_HINT);
  }
}

const CUT_HINT = 'Check that the object is a complete Parquet file; re-export or re-upload it if it was cut short.';

function invalid(uri: string, reason: string, hint: string) {
  return new NightscoreError('PARQUET_INVALID', `${uri}: not a readable Parquet file: ${reason}`, { source: uri, hint });
}

function hex(view: DataView): string {
  return Array.from({ length: view.byteLength }, (_, i) => view.getUint8(i).toString(16).padStart(2, '0')).join(' ');
}
