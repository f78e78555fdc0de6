import path from 'node:path';
import { NightscoreError } from '../errors.js';
import { openLocation } from '../storage/open.js';
import type { ObjectInfo } from '../storage/storage.js';

/** One input object of a run. */
export interface InputObject {
  uri: string;
  bytes: number;
  gzip: boolean;
  /** The version planned on; every read of the object must find this version. */
  version: string;
  /** Parquet: the rows its footer gives (planParquetChunks sets it). */
  rows?: number;
}

/**
 * A byte range of one object: the records that *start* in [start, end). The reader of a
 * range that does not begin at 0 skips to the first record boundary, and the reader of
 * every range reads past `end` to finish its last record, so consecutive ranges partition
 * the object's records exactly (see formats/line-range.ts).
 */
export interface Segment {
  uri: string;
  /** Size of the whole object. */
  bytes: number;
  start: number;
  end: number;
  gzip: boolean;
  version: string;
  /** Parquet: the row range [start, end) read instead of a byte range. */
  rows?: { start: number; end: number };
}

/** One unit of work: a queue job, and one part file. */
export interface ChunkPlan {
  index: number;
  segments: Segment[];
}

const EXTENSIONS: Record<string, string[]> = { csv: ['.csv', '.csv.gz'], parquet: ['.parquet'] };

/** An object under an input prefix that is not read, and why: listed in the manifest and on the terminal. */
export interface SkippedObject {
  uri: string;
  reason: string;
}

/** A run's input: the objects read, and every other object under the prefix, said out loud. */
export interface InputListing {
  objects: InputObject[];
  skipped: SkippedObject[];
}

/**
 * Lists the objects a run reads. A URI naming an object reads that object; otherwise it is
 * a folder/prefix and every object under it, at any depth, whose name ends in the format's
 * extension in any case (`.csv`, `.CSV.GZ`) is read, in key order. Names starting with "_"
 * or "." (markers like _SUCCESS, temp files) are skipped, as Hadoop and Spark do; every
 * other object that is not read is returned in `skipped`.
 */
export async function listInputs(uri: string, format: string, date: string): Promise<InputListing> {
  const { storage, key } = openLocation(uri);
  const exts = EXTENSIONS[format] ?? [];
  const single = key === '' || key.endsWith('/') || key.endsWith(path.sep) ? undefined : await storage.stat(key);
  const objects: ObjectInfo[] = [];
  const skipped: SkippedObject[] = [];
  if (single) objects.push(single);
  else {
    // Keys come back under the folder's own spelling (one separator after it), whatever the URI's.
    const folder = storage.join(key, '');
    for (const o of await storage.list(key)) {
      const relative = o.key.slice(folder.length);
      if (relative.split(/[\\/]/).some((s) => s.startsWith('_') || s.startsWith('.'))) continue;
      if (hasExtension(relative, exts)) objects.push(o);
      else skipped.push({ uri: storage.uri(o.key), reason: `not ${exts.join(' or ')}` });
    }
  }
  if (objects.length === 0) {
    throw new NightscoreError('INPUT_NOT_FOUND', `no input for ${date}: ${uri} has no ${exts.join(' or ')} objects${skipped.length ? ` (it has ${skipped.length} other object(s), such as ${skipped[0]!.uri})` : ''}`, {
      source: uri,
      hint: 'Check the date, and that the upstream export for it has landed; input.uri is templated with {date}.',
    });
  }
  return {
    objects: objects.map((o) => ({ uri: storage.uri(o.key), bytes: o.size, gzip: o.key.toLowerCase().endsWith('.gz'), version: o.version })),
    skipped,
  };
}

/**
 * Whether the upstream says the input is complete: its marker object (input.ready_marker)
 * in the input folder, or beside the input object. INPUT_NOT_FOUND naming it otherwise.
 */
export async function checkReady(uri: string, marker: string | undefined, date: string): Promise<void> {
  if (marker === undefined) return;
  const { storage, key } = openLocation(uri);
  // A folder or an object as listInputs decides it: a URI without its trailing slash that
  // names no object is the folder, and its marker is inside it.
  const isObject = !(key === '' || key.endsWith('/') || key.endsWith(path.sep)) && (await storage.stat(key)) !== undefined;
  const folder = isObject ? key.slice(0, Math.max(key.lastIndexOf('/'), key.lastIndexOf(path.sep)) + 1) : storage.join(key, '');
  const markerKey = storage.join(folder, marker);
  if (await storage.stat(markerKey)) return;
  throw new NightscoreError('INPUT_NOT_FOUND', `the input for ${date} is not ready: ${storage.uri(markerKey)} is not there (input.ready_marker)`, {
    source: storage.uri(markerKey),
    hint: 'The upstream writes the marker once the day is complete. Let the run wait for it (input.wait), or check the upstream export.',
  });
}

function hasExtension(name: string, exts: string[]): boolean {
  const lower = name.toLowerCase();
  return exts.some((e) => lower.endsWith(e));
}

export interface PlanOptions {
  /** Target input bytes per chunk. */
  chunkBytes: number;
  /** When false, an object is never split (records may hold quoted newlines anywhere). */
  split: boolean;
}

/**
 * Rows a Parquet chunk may hold, in batches: a chunk is read whole, one decode per column, so
 * memory is bounded by this many batches of rows.
 */
const PARQUET_CHUNK_BATCHES = 2;

/**
 * Plans Parquet chunks from each object's footer: a chunk is one row group, and a row group
 * with more than PARQUET_CHUNK_BATCHES × `batchRows` rows is split into equal row ranges of
 * at most that many, so memory stays bounded by 2 × `chunk.rows` rows whatever the row groups' size.
 * A row group is not split any finer than that: a page is decoded whole, and without an
 * offset index so is every page before a range, so a row group of two batches read as two
 * ranges was decoded twice (a third of the read time of a 100,000-row group).
 */
export async function planParquetChunks(inputs: InputObject[], batchRows: number): Promise<ChunkPlan[]> {
  // Loaded here rather than with the module, so that planning CSV does not load hyparquet.
  const { openParquet, rowGroups } = await import('../formats/parquet-read.js');
  const maxRows = PARQUET_CHUNK_BATCHES * batchRows;
  const chunks: ChunkPlan[] = [];
  for (const input of inputs) {
    const { metadata } = await openParquet(input.uri, input.bytes, input.version, { checkHead: true });
    input.rows = 0;
    for (const group of rowGroups(metadata)) {
      input.rows += group.rowEnd - group.rowStart;
      for (const [from, to] of equalRanges(group.rowEnd - group.rowStart, maxRows)) {
        const start = group.rowStart + from;
        const end = group.rowStart + to;
        chunks.push({ index: chunks.length, segments: [{ uri: input.uri, bytes: input.bytes, start, end, gzip: false, version: input.version, rows: { start, end } }] });
      }
    }
  }
  return chunks;
}

/**
 * [0, length) cut into the fewest ranges of at most `max`, of equal size but the last: chunks
 * of like size keep every worker busy until the end (17 MB in 16 MB chunks is 8.5 + 8.5, not
 * 16 + 1).
 */
function equalRanges(length: number, max: number): Array<[number, number]> {
  const size = Math.ceil(length / Math.ceil(length / max));
  const ranges: Array<[number, number]> = [];
  for (let start = 0; start < length; start += size) ranges.push([start, Math.min(start + size, length)]);
  return ranges;
}

/**
 * Plans a run's chunks from its inputs, without reading any data: objects larger than
 * `chunkBytes` are split into ranges of that size, and consecutive small objects are
 * packed together until a chunk holds `chunkBytes`. Compressed objects are never split.
 * The plan depends only on the inputs' names and sizes, so the same day always plans the
 * same chunks, and a chunk that runs twice writes the same part.
 */
export function planChunks(inputs: InputObject[], opts: PlanOptions): ChunkPlan[] {
  const chunks: ChunkPlan[] = [];
  let open: Segment[] = [];
  let openBytes = 0;
  const close = () => {
    if (open.length > 0) chunks.push({ index: chunks.length, segments: open });
    open = [];
    openBytes = 0;
  };
  for (const input of inputs) {
    const whole = { uri: input.uri, bytes: input.bytes, start: 0, end: input.bytes, gzip: input.gzip, version: input.version };
    if (input.bytes <= opts.chunkBytes || input.gzip || !opts.split) {
      if (openBytes > 0 && openBytes + input.bytes > opts.chunkBytes) close();
      open.push(whole);
      openBytes += input.bytes;
      continue;
    }
    close();
    for (const [start, end] of equalRanges(input.bytes, opts.chunkBytes)) chunks.push({ index: chunks.length, segments: [{ ...whole, start, end }] });
  }
  close();
  return chunks;
}
