import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configError } from '../errors.js';
import { FileStorage } from './file.js';
import { S3Storage } from './s3.js';
import type { Storage } from './storage.js';

/** A storage and the key (folder, prefix or object) a URI names in it. */
export interface Location {
  storage: Storage;
  key: string;
}

const s3Stores = new Map<string, S3Storage>();
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
    if (!store) s3Stores.set(bucket, (store = new S3Storage(bucket)));
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
