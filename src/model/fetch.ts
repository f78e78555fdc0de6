/**
 * Models in object storage (`model.uri: s3://…`): fetched into the model cache (cache.ts) once
 * per version, verified by sha256, and loaded from there, so a worker needs nothing on its
 * disk beforehand. A local model is loaded where it is.
 *
 * A model folder is named by its identity and published whole (renamed into place); its
 * files are re-hashed before a process first uses them, so a file corrupted on disk is fetched
 * again, never scored. The index (`sources/`) only says which identity an object's version
 * was found to have, and that claim is checked against the object before it is believed.
 */
import { copyFile, mkdir, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { NightscoreError, toNightscoreError } from '../errors.js';
import { environment } from '../settings.js';
import { openLocation } from '../storage/open.js';
import { parseUri } from '../storage/uri.js';
import type { ObjectInfo } from '../storage/storage.js';
import { cacheError, entryPath, evict, lease, openCache, readEntry, touch, writeEntry, type CacheEntry, type PinnedModel } from './cache.js';
import { digestsOf, download, folderName, holds, incomingFolder, publish } from './cache-files.js';
import { readOnnxMetadata } from './metadata.js';
import { checkLocation, modelIdentity } from './session.js';

export type { PinnedModel } from './cache.js';

export function isRemote(location: string): boolean {
  return parseUri(location).scheme !== 'file';
}

/**
 * Calls `use` with the local path of a model file: a local model's own, or its cached copy
 * fetched from `location` (`pinned`: the files a run pinned). The cached copy is leased while
 * `use` runs, so no process sharing the cache evicts it before it is loaded.
 */
export async function withLocalModel<T>(location: string, pinned: PinnedModel | undefined, use: (path: string) => Promise<T>): Promise<T> {
  const parsed = parseUri(location);
  if (parsed.scheme === 'file') return use(parsed.path);
  const root = await openCache();
  const copy = pinned ? await pinnedCopy(root, pinned) : await latestCopy(root, location);
  try {
    return await use(copy.path);
  } finally {
    await copy.release();
  }
}

/** A leased copy in the cache. */
interface Copy {
  path: string;
  release: () => Promise<void>;
}

/** Threads of one process asking for one model share one fetch. */
const inFlight = new Map<string, Promise<unknown>>();

function once<T>(id: string, fetch: () => Promise<T>): Promise<T> {
  let p = inFlight.get(id) as Promise<T> | undefined;
  if (!p) {
    p = fetch().finally(() => inFlight.delete(id));
    inFlight.set(id, p);
  }
  return p;
}

/** The URIs of a remote model's files: the model, then its external data files beside it, by name. */
export function fileUris(location: string, names: string[]): string[] {
  const folder = location.slice(0, location.lastIndexOf('/') + 1);
  return [location, ...names.map((n) => `${folder}${n}`)];
}

/** The names of a pinned model's files in its folder, each a plain name (a record read back may say otherwise). */
function namesOf(pinned: PinnedModel): string[] {
  const names = pinned.files.map((f) => f.path.slice(dirname(pinned.location).length + 1));
  for (const n of names) checkLocation(pinned.location, n);
  return names;
}

/** The files of a pinned model in its cache folder, leased, fetched where missing or not the pinned bytes. */
async function pinnedCopy(root: string, pinned: PinnedModel): Promise<Copy> {
  const names = namesOf(pinned);
  const name = folderName(pinned.sha256, names);
  const release = await lease(root, name);
  try {
    await once(`pinned\0${root}\0${name}`, () => fetchPinned(root, pinned, names, name));
    return { path: join(root, name, names[0]!), release };
  } catch (err) {
    await release();
    throw err;
  }
}

/** Fetches what a (leased) pinned folder lacks. */
async function fetchPinned(root: string, pinned: PinnedModel, names: string[], name: string): Promise<void> {
  const folder = join(root, name);
  const paths = names.map((n) => join(folder, n));
  const check = async () => (await Promise.all(pinned.files.map((f, i) => holds(paths[i]!, f.sha256)))).every(Boolean);
  const present = await Promise.all(pinned.files.map((f, i) => holds(paths[i]!, f.sha256)));
  if (present.every(Boolean)) {
    await touch(folder);
    return;
  }
  const incoming = await incomingFolder(root);
  try {
    for (const [i, f] of pinned.files.entries()) {
      const file = join(incoming, names[i]!);
      await mkdir(dirname(file), { recursive: true });
      // Files that hold their bytes are kept; only the others are fetched again.
      if (present[i]) {
        await copyFile(paths[i]!, file);
        continue;
      }
      const sha256 = await download(f.path, file);
      if (sha256 !== f.sha256) {
        throw new NightscoreError('MODEL_CHANGED', `${f.path} changed during the run: it has sha256 ${sha256} now, but the run was planned with sha256 ${f.sha256}`, {
          source: f.path,
          column: 'model.uri',
          hint: 'A model object was replaced while the date was being scored. Run the date again to score it whole with the new model, and publish models between runs (or register versions, which never change).',
        });
      }
    }
    await publish(incoming, folder, check);
  } catch (err) {
    throw cacheError(err, root);
  } finally {
    await rm(incoming, { recursive: true, force: true });
  }
  await touch(folder);
  await evict(root, environment().settings.NIGHTSCORE_MODEL_CACHE_BYTES);
}

/**
 * A remote model as it is now, for planning: an object version seen before is not fetched
 * again when its index entry checks out against the object (see `confirmed`); a new version is
 * fetched whole, with the external data files it names.
 */
async function latestCopy(root: string, location: string): Promise<Copy> {
  const { storage, key } = openLocation(location);
  const info = await storage.stat(key);
  if (!info) {
    throw new NightscoreError('MODEL_NOT_FOUND', `cannot read model ${location}: there is no such object`, {
      source: location,
      column: 'model.uri',
      hint: 'Check model.uri in the job file, and that the model was uploaded there.',
    });
  }
  const source = entryPath(root, location, info);
  const known = await readEntry(source, location);
  if (known) {
    const copy = await confirmed(root, known, info);
    if (copy) return copy;
    await rm(source, { force: true });
  }
  const entry = await once(`latest\0${source}`, () => fetchLatest(root, location, info, source));
  return pinnedCopy(root, entry);
}

/**
 * The copy an index entry names, when the entry is true of the object now. The entry is read
 * back from disk, so its claim is checked, not believed: each file's object is still at the
 * version and size recorded, and where its ETag is the MD5 of its bytes (a single-part upload)
 * the cached bytes have that MD5. A folder planted with other bytes under a forged entry fails
 * that check, or (when its folder is gone) the fetch by sha256 does.
 */
async function confirmed(root: string, entry: CacheEntry, info: ObjectInfo): Promise<Copy | undefined> {
  const infos = [info, ...(await Promise.all(entry.files.slice(1).map((f) => statUri(f.path))))];
  if (entry.files.some((f, i) => infos[i]?.version !== f.version || infos[i]?.size !== f.bytes)) return undefined;
  let copy: Copy;
  try {
    copy = await pinnedCopy(root, entry);
  } catch (err) {
    // The object changed under its recorded version (a server that reuses ETags), or the entry lied.
    if (toNightscoreError(err).code === 'MODEL_CHANGED') return undefined;
    throw err;
  }
  const folder = dirname(copy.path);
  const names = namesOf(entry);
  for (const [i, f] of entry.files.entries()) {
    const md5 = plainMd5(f.version);
    if (md5 !== undefined && (await digestsOf(join(folder, names[i]!)))?.md5 !== md5) {
      await copy.release();
      return undefined;
    }
  }
  return copy;
}

async function statUri(uri: string): Promise<ObjectInfo | undefined> {
  const { storage, key } = openLocation(uri);
  return storage.stat(key);
}

/** The MD5 an ETag is, when it is one: multipart uploads and SSE-KMS objects have ETags of another kind. */
export function plainMd5(etag: string): string | undefined {
  return /^"?([0-9a-fA-F]{32})"?$/.exec(etag)?.[1]?.toLowerCase();
}

/** Fetches an object's current version with its external data into the cache, and indexes it. */
async function fetchLatest(root: string, location: string, info: ObjectInfo, source: string): Promise<CacheEntry> {
  const incoming = await incomingFolder(root);
  try {
    const name = location.slice(location.lastIndexOf('/') + 1);
    const main = join(incoming, name);
    const mainSha = await download(location, main, info.version);
    let names: string[];
    try {
      names = readOnnxMetadata(await readFile(main)).externalData;
    } catch {
      // Not a model: loading the fetched file says so, with the usual error.
      names = [];
    }
    const uris = fileUris(location, names);
    const files: CacheEntry['files'] = [{ path: location, sha256: mainSha, bytes: (await stat(main)).size, version: info.version }];
    for (const [i, n] of names.entries()) {
      checkLocation(location, n);
      const file = join(incoming, n);
      await mkdir(dirname(file), { recursive: true });
      const missing = (err?: unknown) =>
        new NightscoreError('MODEL_EXTERNAL_DATA_MISSING', `${location} keeps tensors in ${uris[i + 1]} ("${n}"), which is not there`, {
          source: uris[i + 1],
          hint: 'Upload the external data file beside the model object, under the name the model gives it (for example model.onnx.data).',
          cause: err,
        });
      const at = await statUri(uris[i + 1]!);
      if (!at) throw missing();
      const sha256 = await download(uris[i + 1]!, file, at.version).catch((err: unknown) => {
        throw toNightscoreError(err).code === 'NOT_FOUND' ? missing(err) : err;
      });
      files.push({ path: uris[i + 1]!, sha256, bytes: (await stat(file)).size, version: at.version });
    }
    const sha256 = modelIdentity(files, [name, ...names]);
    const folderKey = folderName(sha256, [name, ...names]);
    const folder = join(root, folderKey);
    const paths = [name, ...names].map((n) => join(folder, n));
    // Leased from publishing until indexed: no other process evicts it meanwhile.
    const release = await lease(root, folderKey);
    try {
      await publish(incoming, folder, async () => (await Promise.all(files.map((f, i) => holds(paths[i]!, f.sha256)))).every(Boolean));
      const entry: CacheEntry = { location, sha256, files };
      await writeEntry(root, source, entry);
      await touch(folder);
      await evict(root, environment().settings.NIGHTSCORE_MODEL_CACHE_BYTES);
      return entry;
    } finally {
      await release();
    }
  } catch (err) {
    throw cacheError(err, root);
  } finally {
    await rm(incoming, { recursive: true, force: true });
  }
}
