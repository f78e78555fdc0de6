import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configError } from '../errors.js';
import { FileStorage } from './file.js';
import type { S3Storage } from './s3.js';
import { joinPrefix, type ByteRange, type Storage } from './storage.js';

/** A storage and the key (folder, prefix or object) a URI names in it. */
export interface Location {
  storage: Storage;
  key: string;
}

const s3Stores = new Map<string, LazyS3Storage>();
const fileStore = new FileStorage();

/**
 * Opens the storage behind a URI: `s3://bucket/key`, `file:///abs/path` or an absolute path.
 * A trailing slash is kept: it is how a URI says "prefix" rather than "object".
 */
export function openLocation(uri: string): Location {
  if (uri.startsWith('s3://')) {
    const rest = uri.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    if (!bucket) throw configError('BAD_URI', `"${uri}" names no bucket`, { hint: 'Write s3://bucket/prefix/.' });
    let store = s3Stores.get(bucket);
    if (!store) s3Stores.set(bucket, (store = new LazyS3Storage(bucket)));
    return { storage: store, key: slash === -1 ? '' : rest.slice(slash + 1) };
  }
  const file = uri.startsWith('file://') ? fileURLToPath(uri) + (uri.endsWith('/') ? '/' : '') : uri;
  if (!path.isAbsolute(file)) {
    throw configError('BAD_URI', `"${uri}" is a relative path`, { hint: 'Relative paths resolve against the job file; pass an absolute one here.' });
  }
  return { storage: fileStore, key: file };
}

/** Forgets cached S3 clients, so a changed AWS_* environment takes effect (tests start servers on new ports). */
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
  createIfAbsent = async (key: string, body: string) => (await this.s3()).createIfAbsent(key, body);
  touch = async (key: string) => (await this.s3()).touch(key);
  delete = async (key: string) => (await this.s3()).delete(key);

  destroy(): void {
    void this.loaded?.then((s3) => s3.destroy());
  }
}
