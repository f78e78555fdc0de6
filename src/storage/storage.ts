import type { Readable } from 'node:stream';
import { toNightscoreError } from '../errors.js';

/** An object (S3) or file (local) and its size in bytes. */
export interface ObjectInfo {
  key: string;
  size: number;
  /** What identifies this version of the object: the ETag (S3), or size and mtime (file). */
  version: string;
  /** When the object was last written or touched, in ms since the epoch (storage's clock). */
  modified: number;
}

/** Inclusive byte range, as HTTP Range and fs.createReadStream both count it; no `end` reads to the end. */
export interface ByteRange {
  start: number;
  end?: number;
}

/** A streaming upload. Nothing is visible under the key until `close` resolves. */
export interface ObjectWriter {
  /** Resolves when the sink can take more (backpressure). */
  write(chunk: string | Buffer): Promise<void>;
  /** Finishes the object and makes it visible. */
  close(): Promise<void>;
  /** Drops the upload; the key keeps whatever it had before. */
  abort(): Promise<void>;
}

/**
 * The one storage interface: local files and S3 implement it, and nothing above this
 * folder knows which it is talking to. Keys are absolute paths (file) or object keys (S3).
 */
export interface Storage {
  /** The URI of a key, as users write it and manifests record it. */
  uri(key: string): string;
  /** Key of `name` inside the folder/prefix `prefix`. */
  join(prefix: string, name: string): string;
  /** Every object under a folder/prefix, recursively, sorted by key. */
  list(prefix: string): Promise<ObjectInfo[]>;
  /** Size of one object, or undefined when there is none. */
  stat(key: string): Promise<ObjectInfo | undefined>;
  /**
   * Streams an object or a byte range of it. With `version`, a read of any other version
   * fails with INPUT_CHANGED, so ranges planned on one version never cut another.
   */
  read(key: string, range?: ByteRange, version?: string): Promise<Readable>;
  createWriter(key: string): Promise<ObjectWriter>;
  put(key: string, body: string | Buffer): Promise<void>;
  /**
   * Writes a small object only if there is none under `key`, atomically: of two racing
   * creators exactly one gets true. Local files publish with link(2), which fails when the
   * name exists; S3 sends `If-None-Match: *`, which AWS S3 and MinIO honour (s3rver does not,
   * and overwrites).
   */
  createIfAbsent(key: string, body: string | Buffer): Promise<boolean>;
  /**
   * A small object whole, with the version a replaceIfMatch of it compares: its ETag (S3), or
   * the sha256 of its bytes (local files, whose times are too coarse to tell two quick
   * writes apart). Undefined when there is none.
   */
  readVersioned(key: string): Promise<{ body: Buffer; version: string } | undefined>;
  /**
   * Replaces a small object only if it is still the version `version` (from readVersioned),
   * atomically: of two racing writers that read one version, exactly one gets true. S3 sends
   * `If-Match: <ETag>`, which AWS S3 and MinIO honour (s3rver does not), once (not retried);
   * local files compare the bytes under a lock file beside the key and rename the new bytes
   * into place. Callers write bodies no other writer writes (a generation in them), so a write
   * whose answer was lost is known to have landed when the object holds its bytes.
   */
  replaceIfMatch(key: string, body: string, version: string): Promise<boolean>;
  /** Marks an existing object modified now (a heartbeat); false when it is gone. Never creates one. */
  touch(key: string): Promise<boolean>;
  /** Removes an object; removing one that is not there is not an error. */
  delete(key: string): Promise<void>;
}

/** Key of `name` inside an object-store prefix ("" is the bucket's root). */
export function joinPrefix(prefix: string, name: string): string {
  if (!prefix) return name;
  return prefix.endsWith('/') ? `${prefix}${name}` : `${prefix}/${name}`;
}

/** Reads a small object (a manifest) whole. */
export async function readText(storage: Storage, key: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await storage.read(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A small JSON object nightscore wrote beside a run (`_drift.json`, `_shadow.json`), read back
 * as untrusted: undefined when absent; `invalid(what)` for one larger than `maxBytes` or not
 * JSON. Its type is the caller's to check.
 */
export async function readJsonObject(storage: Storage, key: string, maxBytes: number, invalid: (what: string) => Error): Promise<unknown> {
  const info = await storage.stat(key);
  if (!info) return undefined;
  if (info.size > maxBytes) throw invalid(`it is ${info.size} bytes`);
  try {
    return JSON.parse((await readAll(await storage.read(key), maxBytes)).toString('utf8')) as unknown;
  } catch (err) {
    if (err instanceof SyntaxError) throw invalid(`not JSON: ${err.message}`);
    throw err;
  }
}

/** The whole stream, `maxBytes` at most: an object that grew past the size it was read at is cut there (and then does not parse). */
export async function readAll(stream: Readable, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const bytes = chunk as Buffer;
    chunks.push(bytes.subarray(0, maxBytes - total));
    total += Math.min(bytes.length, maxBytes - total);
    if (total >= maxBytes) {
      stream.destroy();
      break;
    }
  }
  return Buffer.concat(chunks);
}

/**
 * Runs a small read again while it fails with a retried code (a reset mid-body, a body cut
 * short, an object rewritten between its stat and its read), with a short backoff: a manifest
 * or a lock is read in one request, and a transient failure there must not fail a commit or
 * a `status`. Other failures, and the last attempt's, are thrown.
 */
export async function readAgainWhileTransient<T>(read: () => Promise<T>, attempts = 4): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (err) {
      const e = toNightscoreError(err);
      if (!e.retryable || attempt >= attempts) throw e;
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
  }
}
