import path from 'node:path';
import { inputError } from '../errors.js';
import { openLocation } from '../storage/open.js';
import type { Storage } from '../storage/storage.js';

/** One input object of a run. */
export interface InputObject {
  storage: Storage;
  key: string;
  uri: string;
  bytes: number;
  gzip: boolean;
}

const EXTENSIONS: Record<string, string[]> = { csv: ['.csv', '.csv.gz'] };

/**
 * Lists the objects a run reads. A URI naming an object reads that object; otherwise it is
 * a folder/prefix and every object under it with the format's extension is read, in key
 * order. Names starting with "_" or "." (markers like _SUCCESS, temp files) are skipped,
 * as Hadoop and Spark do.
 */
export async function listInputs(uri: string, format: string, date: string): Promise<InputObject[]> {
  const { storage, key } = openLocation(uri);
  const exts = EXTENSIONS[format] ?? [];
  const single = key.endsWith('/') || key.endsWith(path.sep) ? undefined : await storage.stat(key);
  const found = single ? [single] : (await storage.list(key)).filter((o) => isDataObject(o.key.slice(key.length), exts));
  if (found.length === 0) {
    throw inputError('INPUT_NOT_FOUND', `no input for ${date}: ${uri} has no ${exts.join(' or ')} objects`, {
      source: uri,
      hint: 'Check the date, and that the upstream export for it has landed; input.uri is templated with {date}.',
    });
  }
  return found.map((o) => ({ storage, key: o.key, uri: storage.uri(o.key), bytes: o.size, gzip: o.key.endsWith('.gz') }));
}

function isDataObject(relative: string, exts: string[]): boolean {
  const segments = relative.split(/[\\/]/).filter(Boolean);
  if (segments.some((s) => s.startsWith('_') || s.startsWith('.'))) return false;
  return exts.some((e) => relative.endsWith(e));
}
