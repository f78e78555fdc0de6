import { cachedAsyncBuffer, parquetMetadataAsync, parquetScan, parquetSchema, type FileMetaData, type ParquetParsers, type SchemaElement, type SchemaTree } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { NightscoreError } from '../errors.js';
import { missingFeatureHint, type ElementType } from '../model/features.js';
import type { JobKey } from '../model/hints.js';
import { inputTruncated } from '../storage/integrity.js';
import { openLocation } from '../storage/open.js';
import { DateKey, DecimalKey, TimestampKey } from './key-values.js';
import { checkParquetEnvelope } from './parquet-envelope.js';
import { didYouMean } from '../suggest.js';

/**
 * A Parquet object read straight from storage by byte ranges: the footer first, then only
 * the column chunks a chunk needs. hyparquet asks for each range it needs; the cache keeps
 * a range it asks for twice (the footer) from being fetched twice.
 */
export interface ParquetSource {
  uri: string;
  metadata: FileMetaData;
  file: { byteLength: number; slice(start: number, end?: number): Promise<ArrayBuffer> | ArrayBuffer };
}

export interface OpenParquetOptions {
  /**
   * Check the leading magic bytes too (one more small read on large files): the plan opens
   * every file once with it, chunks skip it.
   * @defaultValue false
   */
  checkHead?: boolean;
}

/** A 64 kB tail read holds the footer of most files; hyparquet fetches more when it does not. */
const TAIL_BYTES = 64 * 1024;

export async function openParquet(uri: string, bytes: number, version?: string, opts: OpenParquetOptions = {}): Promise<ParquetSource> {
  const { storage, key } = openLocation(uri);
  const raw = {
    byteLength: bytes,
    async slice(start: number, end = bytes): Promise<ArrayBuffer> {
      if (end <= start) return new ArrayBuffer(0);
      const parts: Buffer[] = [];
      for await (const part of await storage.read(key, { start, end: end - 1 }, version)) parts.push(part as Buffer);
      const buf = Buffer.concat(parts);
      // A short read (a truncated body, an object that shrank) must never be decoded as data.
      if (buf.length !== end - start) {
        throw inputTruncated(uri, `asked for bytes ${start}-${end - 1}, got ${buf.length} bytes`);
      }
      return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
    },
  };
  const file = cachedAsyncBuffer(raw, { minSize: TAIL_BYTES });
  // The tail it reads is the one hyparquet asks for next, served from the cache.
  await checkParquetEnvelope(uri, bytes, (start, end) => file.slice(start, end), { head: opts.checkHead ?? false, tailBytes: TAIL_BYTES });
  try {
    return { uri, metadata: await parquetMetadataAsync(file, { initialFetchSize: TAIL_BYTES }), file };
  } catch (err) {
    // Storage errors keep their own kind, so a transient one is retried, not called corrupt.
    if (err instanceof NightscoreError) throw err;
    throw new NightscoreError('PARQUET_INVALID', `${uri}: not a readable Parquet file: ${(err as Error).message}`, {
      source: uri,
      hint: 'Check that the object is a complete Parquet file (magic bytes PAR1, a footer); re-export it if it was cut short.',
      cause: err,
    });
  }
}

/** Row groups as row ranges of the file. */
export function rowGroups(metadata: FileMetaData): Array<{ rowStart: number; rowEnd: number }> {
  let start = 0;
  return metadata.row_groups.map((g) => {
    const range = { rowStart: start, rowEnd: start + Number(g.num_rows) };
    start = range.rowEnd;
    return range;
  });
}

/** How a feature column is read: its top-level column and the path inside a struct, if any. */
export interface ColumnRef {
  name: string;
  top: string;
  path: string[];
  /** The column's own schema element (the leaf, for a field inside a struct). */
  element: SchemaElement;
}

const NUMERIC_PHYSICAL = new Set(['INT32', 'INT64', 'FLOAT', 'DOUBLE', 'BOOLEAN']);
const NOT_A_NUMBER = new Set(['DATE', 'TIME_MILLIS', 'TIME_MICROS', 'TIMESTAMP_MILLIS', 'TIMESTAMP_MICROS', 'INTERVAL', 'UTF8', 'ENUM', 'JSON', 'BSON']);

function describeType(tree: SchemaTree): string {
  const e = tree.element;
  const logical = e.logical_type?.type ?? e.converted_type;
  return logical ? `${e.type ?? 'GROUP'} (${logical})` : String(e.type ?? 'GROUP');
}

/**
 * Finds a column by name, where a dotted name (`b_struct.b_c_int`) reaches into a struct.
 * A feature column is checked for its input's element type (`role`): text for a string
 * input, else a number (INT32, INT64, FLOAT, DOUBLE, BOOLEAN or DECIMAL).
 */
export function resolveColumn(metadata: FileMetaData, name: string, role: ElementType | 'key', uri: string, namedBy?: JobKey): ColumnRef {
  const root = parquetSchema(metadata);
  let node: SchemaTree | undefined = root.children.find((c) => c.element.name === name);
  let path: string[] = [];
  if (!node && name.includes('.')) {
    const [top, ...rest] = name.split('.');
    node = root.children.find((c) => c.element.name === top);
    for (const part of rest) node = node?.children.find((c) => c.element.name === part);
    path = rest;
  }
  if (!node) {
    const names = root.children.map((c) => JSON.stringify(c.element.name));
    throw new NightscoreError('INPUT_MISSING_COLUMN', `${uri}: no column "${name}" (${role})${didYouMean(name, root.children.map((c) => c.element.name))}; the file has ${names.slice(0, 12).join(', ')}${names.length > 12 ? ` and ${names.length - 12} more` : ''}`, {
      source: uri,
      column: name,
      hint: role === 'key' ? 'Fix input.key in the job file, or the upstream export.' : missingFeatureHint(namedBy),
    });
  }
  const e = node.element;
  if (role === 'string') {
    // Not JSON: hyparquet parses it, and a string input takes the text.
    const text = node.children.length === 0 && e.type === 'BYTE_ARRAY' && [undefined, 'UTF8', 'ENUM'].includes(e.converted_type) && [undefined, 'STRING', 'ENUM'].includes(e.logical_type?.type);
    if (!text) {
      throw new NightscoreError('INPUT_COLUMN_TYPE', `${uri}: feature column "${name}" is ${describeType(node)}; its model input takes string, so expected text (BYTE_ARRAY, STRING)`, {
        source: uri,
        column: name,
        hint: 'Cast the column to a string upstream, or feed it to a numeric input.',
      });
    }
    return { name, top: path.length > 0 ? name.split('.')[0]! : name, path, element: e };
  }
  const numeric = node.children.length === 0 && (NUMERIC_PHYSICAL.has(String(e.type)) || e.converted_type === 'DECIMAL' || e.logical_type?.type === 'DECIMAL');
  const excluded = NOT_A_NUMBER.has(String(e.converted_type)) || ['DATE', 'TIME', 'TIMESTAMP', 'STRING', 'ENUM', 'JSON', 'BSON', 'UUID'].includes(String(e.logical_type?.type));
  if (role !== 'key' && (!numeric || excluded)) {
    throw new NightscoreError('INPUT_COLUMN_TYPE', `${uri}: feature column "${name}" is ${describeType(node)}; expected a number (INT32, INT64, FLOAT, DOUBLE, BOOLEAN or DECIMAL)${role === 'float32' ? '' : ` for its ${role} input`}`, {
      source: uri,
      column: name,
      hint: 'Cast the column to a numeric type upstream, or drop it from model.features.',
    });
  }
  if (role === 'key' && node.children.length > 0) {
    throw new NightscoreError('INPUT_COLUMN_TYPE', `${uri}: key column "${name}" is a nested group; expected a scalar column`, { source: uri, column: name, hint: 'Use scalar columns as keys.' });
  }
  // A name with a dot that a top-level column has is that column, not a path into a struct.
  return { name, top: path.length > 0 ? name.split('.')[0]! : name, path, element: e };
}

/** Reads batches of rows of some columns; only those columns' chunks are fetched. */
export type ColumnReader = (rowStart: number, rowEnd: number) => Promise<ArrayLike<unknown>[]>;

/**
 * Prepares one scan of `refs` for a whole segment (the page indexes are loaded once), and
 * returns a reader of row ranges within it.
 */
export function parquetColumnReader(source: ParquetSource, refs: ColumnRef[]): Promise<ColumnReader> {
  return columnReader(source, refs, {});
}

/**
 * A reader of key columns, whose values must be copied exactly (key-values.ts): DECIMALs,
 * timestamps and dates are read from their stored integers, not as the numbers and
 * millisecond Dates hyparquet makes of them for everyone else.
 */
export async function parquetKeyReader(source: ParquetSource, refs: ColumnRef[]): Promise<ColumnReader> {
  if (refs.length === 0) return async () => [];
  const elements = refs.map((r) => r.element);
  // hyparquet scales DECIMALs through a float64 whatever the parsers: undeclared, they come
  // as their stored integers or bytes.
  const metadata = { ...source.metadata, schema: source.metadata.schema.map((e) => (elements.includes(e) && isDecimal(e) ? { ...e, converted_type: undefined, logical_type: undefined } : e)) };
  const read = await columnReader(source, refs, { metadata, utf8: false, parsers: RAW_TIME });
  return async (rowStart, rowEnd) => (await read(rowStart, rowEnd)).map((values, i) => keyValues(values, elements[i]!));
}

/** Timestamps and dates as their stored integers; keyValues gives them their unit. */
const RAW_TIME = {
  timestampFromMilliseconds: (v: bigint) => v,
  timestampFromMicroseconds: (v: bigint) => v,
  timestampFromNanoseconds: (v: bigint) => v,
  dateFromDays: (v: number) => v,
} as unknown as Partial<ParquetParsers>;

function isDecimal(e: SchemaElement): boolean {
  return e.converted_type === 'DECIMAL' || e.logical_type?.type === 'DECIMAL';
}

const utf8 = new TextDecoder();

/** A key column's stored values as the exact values key-values.ts defines; nulls stay null. */
function keyValues(values: ArrayLike<unknown>, e: SchemaElement): ArrayLike<unknown> {
  const map = (f: (v: never) => unknown) => Array.from(values, (v) => (v === null || v === undefined ? null : f(v as never)));
  if (isDecimal(e)) {
    const scale = e.scale ?? (e.logical_type?.type === 'DECIMAL' ? e.logical_type.scale : 0);
    return map((v: number | bigint | Uint8Array) => new DecimalKey(v instanceof Uint8Array ? signedBigEndian(v) : BigInt(v), scale));
  }
  // INT96 holds nanoseconds; pyarrow and DuckDB read it as a timestamp without a zone, and so does nightscore.
  if (e.type === 'INT96') return map((v: bigint) => new TimestampKey(v, 'NANOS', false));
  // The logical type says whether the time is UTC; writers set the converted type beside it
  // for local times too, so only a file without a logical type is read by the converted one.
  if (e.logical_type?.type === 'TIMESTAMP') {
    const { unit, isAdjustedToUTC } = e.logical_type;
    return map((v: bigint) => new TimestampKey(v, unit, isAdjustedToUTC));
  }
  if (e.converted_type === 'TIMESTAMP_MILLIS') return map((v: bigint) => new TimestampKey(v, 'MILLIS', true));
  if (e.converted_type === 'TIMESTAMP_MICROS') return map((v: bigint) => new TimestampKey(v, 'MICROS', true));
  if (e.converted_type === 'DATE' || e.logical_type?.type === 'DATE') return map((v: number) => new DateKey(v));
  // Read with utf8 off (so undeclared DECIMAL bytes stay bytes): undeclared BYTE_ARRAY is text, as hyparquet reads it.
  if (e.type === 'BYTE_ARRAY' && values.length > 0) return map((v: string | Uint8Array) => (typeof v === 'string' ? v : utf8.decode(v)));
  return values;
}

/** A two's-complement big-endian integer, as DECIMAL bytes store it. */
function signedBigEndian(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  const bits = BigInt(bytes.length * 8);
  return bytes.length > 0 && (bytes[0]! & 0x80) !== 0 ? value - (1n << bits) : value;
}

async function columnReader(source: ParquetSource, refs: ColumnRef[], scanOptions: { metadata?: FileMetaData; utf8?: boolean; parsers?: Partial<ParquetParsers> }): Promise<ColumnReader> {
  const tops = [...new Set(refs.map((r) => r.top))];
  const decodeError = (err: unknown, what: string) => {
    if (err instanceof NightscoreError) return err;
    return new NightscoreError('PARQUET_INVALID', `${source.uri}: cannot decode ${what}: ${(err as Error).message}`, {
      source: source.uri,
      hint: 'The file is corrupt or uses a feature the reader does not support; re-export it.',
      cause: err,
    });
  };
  const scan = await parquetScan({ file: source.file, metadata: source.metadata, columns: tops, compressors, useOffsetIndex: true, ...scanOptions }).catch((err: unknown) => {
    throw decodeError(err, 'its page indexes');
  });
  return async (rowStart, rowEnd) => {
    try {
      const byTop = new Map<string, ArrayLike<unknown>>();
      for (const top of tops) byTop.set(top, await scan.readColumn({ column: top, rowStart, rowEnd }));
      return refs.map((r) => {
        const data = byTop.get(r.top)!;
        if (r.path.length === 0) return data;
        return Array.from(data as ArrayLike<Record<string, unknown> | null>, (v) => r.path.reduce<unknown>((o, p) => (o == null ? null : (o as Record<string, unknown>)[p]), v));
      });
    } catch (err) {
      throw decodeError(err, `rows ${rowStart}-${rowEnd - 1}`);
    }
  };
}
