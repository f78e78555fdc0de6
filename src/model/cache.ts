/**
 * The model cache's folder: whose it is, which of its model folders are in use, and what its
 * index says. Everything read back from it is checked before it is believed: the folder must be
 * this user's alone, an index entry must parse as one, and a folder in use is never evicted.
 *
 * Layout (NIGHTSCORE_MODEL_CACHE, default `<tmp>/nightscore-models-<uid>`):
 *   <identity sha256>-<names>/<file>        a model's files, published whole (see fetch.ts)
 *   sources/<sha256 of uri, ETag, size>     what an object's version was found to hold (a CacheEntry)
 *   .leases/<folder>/<pid>-<random>.lock    one per use of a folder under way, kept fresh while held
 *   .lock                                   held while a lease is taken or folders are evicted
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { NightscoreError } from '../errors.js';
import { environment } from '../settings.js';
import { checkLocation, modelIdentity, type ModelFile } from './session.js';

/** The files a run pinned for a model: each by its location (a URI for a remote model) with sha256 and size. */
export interface PinnedModel {
  location: string;
  sha256: string;
  files: ModelFile[];
}

/** An index entry: a remote model as fetched, each file with the object version (ETag) it was read at. */
export interface CacheEntry extends PinnedModel {
  files: Array<ModelFile & { version: string }>;
}

/**
 * The cache folder: NIGHTSCORE_MODEL_CACHE of the process's settings. The default is this user's own (tmux's `/tmp/tmux-<uid>` rule): a folder
 * in the shared temp folder that another user created first is refused, never used.
 */
export function cacheRoot(): string {
  const set = environment().settings.NIGHTSCORE_MODEL_CACHE;
  if (set) return set;
  const uid = process.getuid?.();
  return join(tmpdir(), uid === undefined ? 'nightscore-models' : `nightscore-models-${uid}`);
}

/** The cache folder, created private (0700) when missing, and refused unless it is this user's alone. */
export async function openCache(): Promise<string> {
  const root = cacheRoot();
  let s = await stat(root).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw cacheError(err, root);
  });
  if (!s) {
    await mkdir(root, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
      throw cacheError(err, root);
    });
    s = await stat(root);
  }
  const why = unsafeBecause(s, process.getuid?.());
  if (why) {
    throw new NightscoreError('MODEL_CACHE_UNSAFE', `the model cache ${root} ${why}: another user could plant a model in it`, {
      source: root,
      column: 'NIGHTSCORE_MODEL_CACHE',
      hint: 'Point NIGHTSCORE_MODEL_CACHE at a folder this user owns and only it can write (mkdir -m 700), or remove that folder so nightscore creates it privately.',
    });
  }
  return root;
}

/** Why a cache folder cannot be trusted, if it cannot: its owner or its mode. */
export function unsafeBecause(s: Pick<Stats, 'uid' | 'mode' | 'isDirectory'>, uid: number | undefined): string | undefined {
  if (!s.isDirectory()) return 'is not a folder';
  if (uid !== undefined && s.uid !== uid) return `is owned by uid ${s.uid}, not by this process's uid ${uid}`;
  if ((s.mode & 0o022) !== 0) return `is writable by ${(s.mode & 0o002) !== 0 ? 'others' : 'its group'} (mode ${(s.mode & 0o7777).toString(8).padStart(4, '0')})`;
  return undefined;
}

/**
 * A write to the cache that failed, as the table's code: a full disk is FILE_NO_SPACE, a
 * folder this process may not write MODEL_CACHE_UNWRITABLE; anything else as it is.
 */
export function cacheError(err: unknown, root: string): unknown {
  if (err instanceof NightscoreError) return err;
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  if (errno === 'ENOSPC' || errno === 'EDQUOT') {
    return new NightscoreError('FILE_NO_SPACE', `cannot write the model cache ${root}: ${errno} (its disk is full)`, {
      source: root,
      column: 'NIGHTSCORE_MODEL_CACHE',
      hint: 'Free space on its disk, set NIGHTSCORE_MODEL_CACHE_BYTES below the space the cache has, or point NIGHTSCORE_MODEL_CACHE at a larger disk.',
      cause: err,
    });
  }
  if (errno === 'EACCES' || errno === 'EPERM' || errno === 'EROFS') {
    return new NightscoreError('MODEL_CACHE_UNWRITABLE', `cannot write the model cache ${root}: ${errno}`, {
      source: root,
      column: 'NIGHTSCORE_MODEL_CACHE',
      hint: 'Set NIGHTSCORE_MODEL_CACHE to a folder this process can write; in a container with a read-only root, mount an emptyDir or tmpfs at /tmp (the image caches in /tmp/nightscore-models).',
      cause: err,
    });
  }
  return err;
}

/** A lease not refreshed for this long belongs to a process that died: it no longer protects its folder. */
const STALE_MS = 10_000;
const LOCK = { realpath: false, stale: STALE_MS, update: 2_000, onCompromised: () => undefined };

/** Runs `fn` holding the cache's lock: taking a lease and evicting never interleave. */
async function underLock<T>(root: string, fn: () => Promise<T>): Promise<T> {
  let release: () => Promise<void>;
  try {
    // The retries outlast STALE_MS, so the lock of a process that died is taken over rather than failed on.
    release = await lockfile.lock(root, { ...LOCK, lockfilePath: join(root, '.lock'), retries: { retries: 120, factor: 1.2, minTimeout: 10, maxTimeout: 200 } });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw cacheError(err, root);
    throw new NightscoreError('FILE_IO', `the model cache ${root} stayed locked by another process for over 20 s`, { source: join(root, '.lock'), hint: 'Another nightscore process holds the cache; if none is running, remove the .lock folder in it.', cause: err });
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}

/**
 * Marks the model folder `name` in use until the returned release is called. While it is held
 * no process evicts the folder; take it before checking the folder's files, so what was checked
 * is what is loaded.
 */
export async function lease(root: string, name: string): Promise<() => Promise<void>> {
  const dir = join(root, '.leases', name);
  const id = join(dir, `${process.pid}-${randomBytes(6).toString('hex')}`);
  const release = await underLock(root, async () => {
    try {
      await mkdir(dir, { recursive: true });
      return await lockfile.lock(id, LOCK);
    } catch (err) {
      throw cacheError(err, root);
    }
  });
  return () => release().catch(() => undefined);
}

async function leased(root: string, name: string): Promise<boolean> {
  const dir = join(root, '.leases', name);
  for (const e of await readdir(dir).catch(() => [])) {
    if (e.endsWith('.lock') && (await lockfile.check(join(dir, e.slice(0, -'.lock'.length)), LOCK).catch(() => false))) return true;
  }
  return false;
}

export const FOLDER_RE = /^[0-9a-f]{64}-[0-9a-f]{8}$/;

/** Marks a model folder used now: eviction removes the least recently used first. */
export async function touch(folder: string): Promise<void> {
  const now = new Date();
  await utimes(folder, now, now).catch(() => undefined);
}

/**
 * Removes the least recently used model folders while the cache holds more than `limit`
 * bytes. A folder leased by any process is kept, over the bound if need be: its user is
 * between checking its files and loading them.
 */
export async function evict(root: string, limit: number): Promise<void> {
  const removed = await underLock(root, async () => {
    const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
    const folders = (await Promise.all(entries.filter((e) => e.isDirectory() && FOLDER_RE.test(e.name)).map((e) => sizeUp(root, e.name)))).filter((f) => f !== undefined);
    let total = folders.reduce((n, f) => n + f.bytes, 0);
    const aside: string[] = [];
    for (const f of folders.sort((a, b) => a.used - b.used)) {
      if (total <= limit) break;
      if (await leased(root, f.name)) continue;
      // Renamed under the lock, removed after it: a slow delete does not hold up the other processes.
      const to = join(root, `.evicted-${process.pid}-${randomBytes(4).toString('hex')}`);
      if (await rename(join(root, f.name), to).then(() => true, () => false)) aside.push(to);
      await rm(join(root, '.leases', f.name), { recursive: true, force: true });
      total -= f.bytes;
    }
    return aside;
  });
  await Promise.all(removed.map((p) => rm(p, { recursive: true, force: true })));
}

/** A model folder's last use and size; undefined when it vanished meanwhile. */
async function sizeUp(root: string, name: string): Promise<{ name: string; used: number; bytes: number } | undefined> {
  try {
    const folder = join(root, name);
    let bytes = 0;
    for (const e of await readdir(folder, { withFileTypes: true, recursive: true })) {
      if (e.isFile()) bytes += (await stat(join(e.parentPath ?? folder, e.name))).size;
    }
    return { name, used: (await stat(folder)).mtimeMs, bytes };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Where the index entry of an object's version is. */
export function entryPath(root: string, location: string, info: { version: string; size: number }): string {
  return join(root, 'sources', createHash('sha256').update(`${location}\0${info.version}\0${info.size}`).digest('hex'));
}

/** More than any entry of a model's files takes: a larger one is damaged, not read whole. */
const ENTRY_MAX_BYTES = 1024 * 1024;

/** The index entry at `file`, when there is a sound one; a damaged one (cut short, another shape) is removed. */
export async function readEntry(file: string, location: string): Promise<CacheEntry | undefined> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return undefined;
  let text: string;
  try {
    const buffer = Buffer.alloc(ENTRY_MAX_BYTES + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    text = bytesRead > ENTRY_MAX_BYTES ? '' : buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
  const entry = parseEntry(text, location);
  if (!entry) await rm(file, { force: true });
  return entry;
}

const SHA_RE = /^[0-9a-f]{64}$/;

/**
 * An index entry read back, validated as one: the object it names, a sha256 and size and
 * version for each file, plain file names beside the model, and the identity those give.
 * Anything else is undefined.
 */
export function parseEntry(text: string, location: string): CacheEntry | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const e = value as Partial<CacheEntry> | null;
  if (typeof e !== 'object' || e === null || e.location !== location || typeof e.sha256 !== 'string' || !Array.isArray(e.files) || e.files.length < 1 || e.files.length > 1000) return undefined;
  const folder = location.slice(0, location.lastIndexOf('/') + 1);
  const names: string[] = [];
  for (const [i, f] of (e.files as unknown[]).entries()) {
    const file = f as Partial<CacheEntry['files'][number]> | null;
    if (typeof file !== 'object' || file === null || typeof file.path !== 'string' || typeof file.version !== 'string') return undefined;
    if (typeof file.sha256 !== 'string' || !SHA_RE.test(file.sha256) || !Number.isSafeInteger(file.bytes) || file.bytes! < 0) return undefined;
    if (i === 0 ? file.path !== location : !file.path.startsWith(folder)) return undefined;
    const name = file.path.slice(folder.length);
    try {
      checkLocation(location, name);
    } catch {
      return undefined;
    }
    names.push(name);
  }
  if (e.sha256 !== modelIdentity(e.files, names)) return undefined;
  return e as CacheEntry;
}

/** Writes an index entry whole (a temporary file renamed into place), so a full disk never leaves half of one. */
export async function writeEntry(root: string, file: string, entry: CacheEntry): Promise<void> {
  const tmp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    await mkdir(join(root, 'sources'), { recursive: true });
    await writeFile(tmp, JSON.stringify(entry), { flag: 'wx' });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw cacheError(err, root);
  }
}
