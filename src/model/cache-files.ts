/**
 * The files of the model cache: fetching an object into a folder of the cache, hashing what is
 * there (once per file version per process), and publishing a fetched folder whole.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type Stats } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { NightscoreError, toNightscoreError } from '../errors.js';
import { openLocation } from '../storage/open.js';
import { cacheError } from './cache.js';

export interface Digests {
  sha256: string;
  md5: string;
}

/** Files hashed by this process: path → the file version hashed, and its digests. */
const hashed = new Map<string, { version: string } & Digests>();

function versionOf(s: Stats): string {
  return `${s.ino}\0${s.size}\0${s.mtimeMs}`;
}

/** A file's digests (hashed once per file version per process); undefined when it is not there. */
export async function digestsOf(file: string): Promise<Digests | undefined> {
  const s = await stat(file).catch(() => undefined);
  if (!s) return undefined;
  const version = versionOf(s);
  const known = hashed.get(file);
  if (known?.version === version) return known;
  const sha256 = createHash('sha256');
  const md5 = createHash('md5');
  try {
    for await (const chunk of createReadStream(file)) {
      sha256.update(chunk as Buffer);
      md5.update(chunk as Buffer);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const digests = { version, sha256: sha256.digest('hex'), md5: md5.digest('hex') };
  hashed.set(file, digests);
  return digests;
}

/** Whether `file` holds bytes of `sha256`. */
export async function holds(file: string, sha256: string): Promise<boolean> {
  return (await digestsOf(file))?.sha256 === sha256;
}

/**
 * A model's cache folder: its identity and the names of its files. One model file's identity
 * is its bytes' sha256 whatever its name, and two jobs may know it by two names (a path's
 * churn.onnx, the registry's model.onnx): each gets a folder of its own rather than taking
 * the other's for damaged.
 */
export function folderName(sha256: string, names: string[]): string {
  return `${sha256}-${createHash('sha256').update(names.join('\0')).digest('hex').slice(0, 8)}`;
}

export async function incomingFolder(root: string): Promise<string> {
  const folder = join(root, `.incoming-${process.pid}-${randomBytes(6).toString('hex')}`);
  await mkdir(folder).catch((err: unknown) => {
    throw cacheError(err, root);
  });
  return folder;
}

/** Streams an object into `file`, returning its sha256. */
export async function download(uri: string, file: string, version?: string): Promise<string> {
  const { storage, key } = openLocation(uri);
  const hash = createHash('sha256');
  const body = await storage.read(key, undefined, version).catch((err: unknown) => {
    const e = toNightscoreError(err);
    if (e.code !== 'NOT_FOUND') throw e;
    throw new NightscoreError('NOT_FOUND', `cannot read model file ${uri}: there is no such object`, { source: uri, hint: 'Upload the model (and its external data files beside it) there.' });
  });
  body.on('data', (chunk: Buffer) => hash.update(chunk));
  await pipeline(body, createWriteStream(file));
  return hash.digest('hex');
}

/**
 * Renames a fetched folder into place. A folder of that identity already there was published
 * by another process meanwhile (kept, when it holds the right bytes) or is damaged (moved
 * aside first, so a process reading it never sees a half-replaced folder).
 */
export async function publish(incoming: string, folder: string, sound: () => Promise<boolean>): Promise<void> {
  const taken = (err: unknown) => ['ENOTEMPTY', 'EEXIST'].includes(String((err as NodeJS.ErrnoException).code));
  try {
    await rename(incoming, folder);
    return;
  } catch (err) {
    if (!taken(err)) throw err;
  }
  if (await sound()) return;
  const aside = `${folder}.damaged-${process.pid}-${randomBytes(4).toString('hex')}`;
  await rename(folder, aside).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  });
  for (const key of [...hashed.keys()]) if (key.startsWith(`${folder}/`)) hashed.delete(key);
  await rename(incoming, folder);
  await rm(aside, { recursive: true, force: true });
}
