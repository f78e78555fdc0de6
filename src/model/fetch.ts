/**
 * Models in object storage (`model.uri: s3://…`): fetched into a local cache folder, once per
 * version, verified by sha256, and loaded from there, so a worker needs nothing on its disk
 * beforehand. A local model is loaded where it is.
 *
 * Cache layout (NIGHTSCORE_MODEL_CACHE, default `<tmp>/nightscore-models`):
 *   <identity sha256>-<names>/<model file name>   the model, and its external data files by name
 *   sources/<sha256 of uri + object version>      the identity an object's version was found to have
 * A folder is published whole (renamed into place) and re-hashed before a process first uses
 * it, so a file corrupted on disk is fetched again, never scored. The least recently used
 * folders are removed while the cache holds more than NIGHTSCORE_MODEL_CACHE_BYTES.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, type Stats } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { NightscoreError, toNightscoreError } from '../errors.js';
import { openLocation, parseUri } from '../storage/open.js';
import { readOnnxMetadata } from './metadata.js';
import { checkLocation, modelIdentity, sha256Of, type ModelFile } from './session.js';

/** The files a run pinned for a model: each by its location (a URI for a remote model) with sha256 and size. */
export interface PinnedModel {
  location: string;
  sha256: string;
  files: ModelFile[];
}

export function cacheRoot(): string {
  return process.env.NIGHTSCORE_MODEL_CACHE || join(tmpdir(), 'nightscore-models');
}

const DEFAULT_CACHE_BYTES = 8 * 1024 ** 3;

function cacheBytes(): number {
  const raw = process.env.NIGHTSCORE_MODEL_CACHE_BYTES;
  const n = raw === undefined || raw === '' ? DEFAULT_CACHE_BYTES : Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new NightscoreError('BAD_ENV', `NIGHTSCORE_MODEL_CACHE_BYTES is ${JSON.stringify(raw)}; expected a whole number of bytes above 0`, {
      column: 'NIGHTSCORE_MODEL_CACHE_BYTES',
      hint: 'Set it to the disk the model cache may use, e.g. 8589934592 for 8 GiB, or unset it.',
    });
  }
  return n;
}

export function isRemote(location: string): boolean {
  return parseUri(location).scheme !== 'file';
}

/** The local path of a model file: a local model's own, or its cached copy fetched from `location`. */
export async function localModel(location: string, pinned?: PinnedModel): Promise<string> {
  const parsed = parseUri(location);
  if (parsed.scheme === 'file') return parsed.path;
  // Threads of one process asking for one model share one fetch.
  const id = pinned ? `pinned\0${pinned.sha256}` : `latest\0${location}`;
  let copy = inFlight.get(id);
  if (!copy) {
    copy = (pinned ? pinnedCopy(pinned) : latestCopy(location)).finally(() => inFlight.delete(id));
    inFlight.set(id, copy);
  }
  return copy;
}

const inFlight = new Map<string, Promise<string>>();

/** The URIs of a remote model's files: the model, then its external data files beside it, by name. */
export function fileUris(location: string, names: string[]): string[] {
  const folder = location.slice(0, location.lastIndexOf('/') + 1);
  return [location, ...names.map((n) => `${folder}${n}`)];
}

/** Files verified by this process: path → the file version whose hash was checked. */
const verified = new Map<string, string>();

function versionOf(s: Stats): string {
  return `${s.ino}\0${s.size}\0${s.mtimeMs}`;
}

/** Whether `file` holds bytes of `sha256` (hashed once per file version per process). */
async function holds(file: string, sha256: string): Promise<boolean> {
  const s = await stat(file).catch(() => undefined);
  if (!s) return false;
  const version = versionOf(s);
  if (verified.get(file) === version) return true;
  if ((await sha256Of(file)) !== sha256) return false;
  verified.set(file, version);
  return true;
}

/** The files of a pinned model in its cache folder, fetched where missing or not the pinned bytes. */
async function pinnedCopy(pinned: PinnedModel): Promise<string> {
  const names = pinned.files.map((f) => f.path.slice(dirname(pinned.location).length + 1));
  // A pinned spec comes through the queue: a name that leaves the cache folder is refused before anything is written.
  for (const n of names) checkLocation(pinned.location, n);
  const folder = join(cacheRoot(), folderName(pinned.sha256, names));
  const paths = names.map((n) => join(folder, n));
  const check = async () => (await Promise.all(pinned.files.map((f, i) => holds(paths[i]!, f.sha256)))).every(Boolean);
  const present = await Promise.all(pinned.files.map((f, i) => holds(paths[i]!, f.sha256)));
  if (present.every(Boolean)) {
    await used(folder);
    return paths[0]!;
  }
  const incoming = await incomingFolder();
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
  } finally {
    await rm(incoming, { recursive: true, force: true });
  }
  await evict(folder);
  return paths[0]!;
}

/**
 * A remote model as it is now, for planning: the identity of the object's current version is
 * remembered, so an unchanged object is not fetched again; a new version is fetched whole,
 * with the external data files it names.
 */
async function latestCopy(location: string): Promise<string> {
  const { storage, key } = openLocation(location);
  const info = await storage.stat(key);
  if (!info) {
    throw new NightscoreError('MODEL_NOT_FOUND', `cannot read model ${location}: there is no such object`, {
      source: location,
      column: 'model.uri',
      hint: 'Check model.uri in the job file, and that the model was uploaded there.',
    });
  }
  const root = cacheRoot();
  const source = join(root, 'sources', createHash('sha256').update(`${location}\0${info.version}\0${info.size}`).digest('hex'));
  const known = await readFile(source, 'utf8').then((text) => JSON.parse(text) as PinnedModel, () => undefined);
  if (known) {
    try {
      return await pinnedCopy(known);
    } catch (err) {
      // The object changed under its recorded version (a server that reuses ETags): fetch it anew.
      if (toNightscoreError(err).code !== 'MODEL_CHANGED') throw err;
    }
  }
  const incoming = await incomingFolder();
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
    const files: ModelFile[] = [{ path: location, sha256: mainSha, bytes: (await stat(main)).size }];
    for (const [i, n] of names.entries()) {
      checkLocation(location, n);
      const file = join(incoming, n);
      await mkdir(dirname(file), { recursive: true });
      const sha256 = await download(uris[i + 1]!, file).catch((err: unknown) => {
        if (toNightscoreError(err).code !== 'NOT_FOUND') throw err;
        throw new NightscoreError('MODEL_EXTERNAL_DATA_MISSING', `${location} keeps tensors in ${uris[i + 1]} ("${n}"), which is not there`, {
          source: uris[i + 1],
          hint: 'Upload the external data file beside the model object, under the name the model gives it (for example model.onnx.data).',
          cause: err,
        });
      });
      files.push({ path: uris[i + 1]!, sha256, bytes: (await stat(file)).size });
    }
    const sha256 = modelIdentity(files, [name, ...names]);
    const folder = join(root, folderName(sha256, [name, ...names]));
    const paths = [name, ...names].map((n) => join(folder, n));
    await publish(incoming, folder, async () => (await Promise.all(files.map((f, i) => holds(paths[i]!, f.sha256)))).every(Boolean));
    await mkdir(dirname(source), { recursive: true });
    await writeFile(source, JSON.stringify({ location, sha256, files } satisfies PinnedModel));
    await evict(folder);
    return join(folder, name);
  } finally {
    await rm(incoming, { recursive: true, force: true });
  }
}

/**
 * A model's cache folder: its identity and the names of its files. One model file's identity
 * is its bytes' sha256 whatever its name, and two jobs may know it by two names (a path's
 * churn.onnx, the registry's model.onnx): each gets a folder of its own rather than taking
 * the other's for damaged.
 */
function folderName(sha256: string, names: string[]): string {
  return `${sha256}-${createHash('sha256').update(names.join('\0')).digest('hex').slice(0, 8)}`;
}

const FOLDER_RE = /^[0-9a-f]{64}-[0-9a-f]{8}$/;

async function incomingFolder(): Promise<string> {
  const folder = join(cacheRoot(), `.incoming-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    await mkdir(folder, { recursive: true });
  } catch (err) {
    // The first write to the cache: a read-only root file system or a folder of another user.
    const e = err as NodeJS.ErrnoException;
    throw new NightscoreError('MODEL_CACHE_UNWRITABLE', `cannot write the model cache ${cacheRoot()}: ${e.code ?? e.message}`, {
      source: cacheRoot(),
      column: 'NIGHTSCORE_MODEL_CACHE',
      hint: 'Set NIGHTSCORE_MODEL_CACHE to a folder this process can write; in a container with a read-only root, mount an emptyDir or tmpfs at /tmp (the image caches in /tmp/nightscore-models).',
      cause: err,
    });
  }
  return folder;
}

/** Streams an object into `file`, returning its sha256. */
async function download(uri: string, file: string, version?: string): Promise<string> {
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
async function publish(incoming: string, folder: string, sound: () => Promise<boolean>): Promise<void> {
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
  for (const key of [...verified.keys()]) if (key.startsWith(`${folder}/`)) verified.delete(key);
  await rename(incoming, folder);
  await rm(aside, { recursive: true, force: true });
}

async function used(folder: string): Promise<void> {
  const now = new Date();
  await utimes(folder, now, now).catch(() => undefined);
}

/** Removes the least recently used model folders while the cache holds more than its bound, never `keep`. */
async function evict(keep: string): Promise<void> {
  await used(keep);
  const root = cacheRoot();
  const limit = cacheBytes();
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  const folders = await Promise.all(
    entries
      .filter((e) => e.isDirectory() && FOLDER_RE.test(e.name))
      .map(async (e) => {
        const path = join(root, e.name);
        return { path, used: (await stat(path)).mtimeMs, bytes: await folderBytes(path) };
      }),
  );
  let total = folders.reduce((n, f) => n + f.bytes, 0);
  for (const f of folders.sort((a, b) => a.used - b.used)) {
    if (total <= limit) break;
    if (f.path === keep) continue;
    // A session already loaded holds its bytes: removing the files does not disturb it.
    await rm(f.path, { recursive: true, force: true });
    total -= f.bytes;
  }
}

async function folderBytes(folder: string): Promise<number> {
  let bytes = 0;
  for (const e of await readdir(folder, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) bytes += (await stat(join(e.parentPath ?? folder, e.name))).size;
  }
  return bytes;
}
