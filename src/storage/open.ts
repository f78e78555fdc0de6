import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { FileStorage } from './file.js';
import type { S3Storage } from './s3.js';
import { joinPrefix, type ByteRange, type Storage } from './storage.js';
import { parseUri } from './uri.js';

/** A storage and the key (folder, prefix or object) a URI names in it. */
export interface Location {
  storage: Storage;
  key: string;
}

const s3Stores = new Map<string, LazyS3Storage>();
const fileStore = new FileStorage();

/** Opens the storage behind a URI (see parseUri). */
export function openLocation(uri: string): Location {
  const parsed = parseUri(uri);
  if (parsed.scheme === 'file') return { storage: fileStore, key: parsed.path };
  let store = s3Stores.get(parsed.bucket);
  if (!store) s3Stores.set(parsed.bucket, (store = new LazyS3Storage(parsed.bucket)));
  return { storage: store, key: parsed.key };
}

/**
 * Whether two locations can hold each other's files: the same storage (file system, or S3
 * bucket) and one path equal to or inside the other, compared by whole path segments after
 * resolving symlinks, so `dt=1` and `dt=10` never overlap while `out -> in/` does.
 */
export async function locationsOverlap(a: string, b: string): Promise<boolean> {
  const pa = parseUri(a);
  const pb = parseUri(b);
  if (pa.scheme === 'file' && pb.scheme === 'file') return segmentsOverlap(await realPrefix(pa.path), await realPrefix(pb.path), path.sep);
  if (pa.scheme === 's3' && pb.scheme === 's3') return pa.bucket === pb.bucket && segmentsOverlap(pa.key, pb.key, '/');
  return false;
}

function segmentsOverlap(a: string, b: string, sep: string): boolean {
  const x = a.split(sep).filter(Boolean);
  const y = b.split(sep).filter(Boolean);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** The real path of `file`'s longest existing ancestor, with the rest of `file` after it. */
async function realPrefix(file: string): Promise<string> {
  const rest: string[] = [];
  let at = path.resolve(file);
  for (;;) {
    try {
      return path.join(await realpath(at), ...rest.reverse());
    } catch {
      const parent = path.dirname(at);
      if (parent === at) return path.resolve(file);
      rest.push(path.basename(at));
      at = parent;
    }
  }
}

/** Forgets cached S3 clients, so changed AWS_* settings (settings.ts `useEnvironment`) take effect (tests start servers on new ports). */
export function resetStorageCache(): void {
  for (const store of s3Stores.values()) store.destroy();
  s3Stores.clear();
}

/**
 * An S3 bucket whose client loads on first use. The AWS SDK takes about 0.3 s and 20 MB to
 * load, which a run on local files, and every scoring thread of one, should not pay.
 */
class LazyS3Storage implements Storage {
  private loaded: Promise<S3Storage> | undefined;

  constructor(private readonly bucket: string) {}

  private s3(): Promise<S3Storage> {
    return (this.loaded ??= import('./s3.js').then((m) => new m.S3Storage(this.bucket)));
  }

  uri(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }

  join(prefix: string, name: string): string {
    return joinPrefix(prefix, name);
  }

  list = async (prefix: string) => (await this.s3()).list(prefix);
  stat = async (key: string) => (await this.s3()).stat(key);
  read = async (key: string, range?: ByteRange, version?: string) => (await this.s3()).read(key, range, version);
  createWriter = async (key: string) => (await this.s3()).createWriter(key);
  put = async (key: string, body: string | Buffer) => (await this.s3()).put(key, body);
  createIfAbsent = async (key: string, body: string | Buffer) => (await this.s3()).createIfAbsent(key, body);
  readVersioned = async (key: string) => (await this.s3()).readVersioned(key);
  replaceIfMatch = async (key: string, body: string, version: string) => (await this.s3()).replaceIfMatch(key, body, version);
  touch = async (key: string) => (await this.s3()).touch(key);
  delete = async (key: string) => (await this.s3()).delete(key);

  destroy(): void {
    void this.loaded?.then((s3) => s3.destroy());
  }
}
