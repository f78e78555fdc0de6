import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { link, mkdir, readdir, readFile, realpath, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { NightscoreError, type ErrorCode } from '../errors.js';
import { inputChanged } from './integrity.js';
import type { ByteRange, ObjectInfo, ObjectWriter, Storage } from './storage.js';

/** Read size: 64 KiB reads (the default) cost a stream round trip and a promise per 600 records. */
const READ_BYTES = 256 * 1024;

/** Local files. Writes go to a temporary sibling and are renamed into place, so a key is never half-written. */
export class FileStorage implements Storage {
  uri(key: string): string {
    return pathToFileURL(key).href;
  }

  join(prefix: string, name: string): string {
    // join(folder, '') names the folder itself, with its trailing separator.
    return path.join(prefix, name === '' ? path.sep : name);
  }

  /**
   * Walks the folder. Links to files are followed (the key is the link's path); links to
   * folders too, once each: a link back to a folder already walked (`loop -> .`, or a second
   * path to the same files) is an error naming it, so a listing ends in bounded time and
   * never lists a file twice. A link to nothing is an error too: a name that looks like data
   * is never dropped in silence.
   */
  async list(prefix: string): Promise<ObjectInfo[]> {
    const root = path.resolve(prefix);
    let rootReal: string;
    try {
      rootReal = await realpath(root);
      if (!(await stat(rootReal)).isDirectory()) return [];
    } catch (err) {
      if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) return [];
      throw fsError(err, prefix, 'list');
    }
    const files: string[] = [];
    const walked = new Set<string>([rootReal]);
    const enter = async (dir: string, real: string): Promise<void> => {
      if (walked.has(real)) {
        throw new NightscoreError('INPUT_SYMLINK_LOOP', `${dir} is ${real}, a folder this listing already includes (a link loop, or a second path to the same files)`, {
          source: this.uri(dir),
          hint: 'Remove the link, or point the location at a folder without links back into itself.',
        });
      }
      walked.add(real);
      await walk(dir, real);
    };
    const walk = async (dir: string, real: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        throw fsError(err, dir, 'list');
      }
      for (const entry of entries) {
        const full = path.join(dir, entry.name);
        if (entry.isFile()) files.push(full);
        else if (entry.isDirectory()) await enter(full, path.join(real, entry.name));
        else if (entry.isSymbolicLink()) {
          const target = await realpath(full).catch((err: unknown) => {
            if (isCode(err, 'ENOENT') || isCode(err, 'ELOOP')) throw new NightscoreError('INPUT_BROKEN_LINK', `${full} is a symbolic link to nothing`, { source: this.uri(full), hint: 'Remove the link, or restore what it points to.' });
            throw fsError(err, full, 'list');
          });
          const s = await stat(target);
          if (s.isFile()) files.push(full);
          else if (s.isDirectory()) await enter(full, target);
        }
      }
    };
    await walk(root, rootReal);
    // Sizes and versions, a bounded number of stats at a time: a day of 20,000 small files.
    const infos: ObjectInfo[] = [];
    for (let i = 0; i < files.length; i += 64) {
      for (const info of await Promise.all(files.slice(i, i + 64).map((f) => this.stat(f)))) if (info) infos.push(info);
    }
    return infos.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(key);
      return s.isFile() ? { key, size: s.size, version: `${s.size}:${s.mtimeMs}`, modified: s.mtimeMs } : undefined;
    } catch (err) {
      if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) return undefined;
      throw fsError(err, key, 'stat');
    }
  }

  async read(key: string, range?: ByteRange, version?: string): Promise<Readable> {
    if (version !== undefined) {
      const now = await this.stat(key);
      if (now?.version !== version) throw inputChanged(this.uri(key));
    }
    const stream = createReadStream(key, { highWaterMark: READ_BYTES, ...(range ? { start: range.start, ...(range.end === undefined ? {} : { end: range.end }) } : {}) });
    // Surface open errors (ENOENT, EACCES) here, as a clear error, rather than mid-parse.
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', (err) => reject(fsError(err, key, 'read')));
    });
    return stream;
  }

  async createWriter(key: string): Promise<ObjectWriter> {
    const tmp = tmpFor(key);
    await this.mkdirFor(key);
    const out = createWriteStream(tmp);
    let failure: Error | undefined;
    out.on('error', (err) => (failure = fsError(err, key, 'write')));
    return {
      write: async (chunk) => {
        if (failure) throw failure;
        if (!out.write(chunk)) await waitDrain(out, () => failure);
      },
      close: async () => {
        // finished() settles on the stream's final state: a write that failed during end()
        // (ENOSPC on the last flush) rejects here instead of publishing a truncated file.
        try {
          if (failure) throw failure;
          out.end();
          await finished(out);
        } catch (err) {
          await rm(tmp, { force: true });
          throw failure ?? fsError(err, key, 'write');
        }
        try {
          await rename(tmp, key);
        } catch (err) {
          throw fsError(err, key, 'write');
        }
      },
      abort: async () => {
        out.destroy();
        await rm(tmp, { force: true });
      },
    };
  }

  async put(key: string, body: string | Buffer): Promise<void> {
    const writer = await this.createWriter(key);
    try {
      await writer.write(body);
      await writer.close();
    } catch (err) {
      await writer.abort();
      throw err;
    }
  }

  async readVersioned(key: string): Promise<{ body: Buffer; version: string } | undefined> {
    let body: Buffer;
    try {
      body = await readFile(key);
    } catch (err) {
      if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) return undefined;
      throw fsError(err, key, 'read');
    }
    return { body, version: contentVersion(body) };
  }

  async replaceIfMatch(key: string, body: string, version: string): Promise<boolean> {
    let release: () => Promise<void>;
    try {
      // A lock of a crashed writer is taken over once its heartbeat is older than `stale`;
      // the retries wait longer than that, so a busy lock is never taken for a conflict.
      release = await lockfile.lock(key, { realpath: false, stale: 10_000, update: 2_000, retries: { retries: 80, factor: 1, minTimeout: 200, maxTimeout: 200 } });
    } catch (err) {
      if (isCode(err, 'ELOCKED')) {
        throw new NightscoreError('FILE_IO', `${key} stayed locked by another writer for over 15 s`, { source: this.uri(key), hint: 'Another nightscore process is writing it; if none is, remove the lock folder beside it.', cause: err });
      }
      throw fsError(err, key, 'write');
    }
    let swapped = false;
    try {
      const now = await this.readVersioned(key);
      if (now?.version !== version) return false;
      const tmp = tmpFor(key);
      try {
        await writeFile(tmp, body, { flag: 'wx' });
        await rename(tmp, key);
        swapped = true;
      } catch (err) {
        await rm(tmp, { force: true });
        throw fsError(err, key, 'write');
      }
      return true;
    } finally {
      // A lock that cannot be released lapses after `stale`; the swap itself has landed.
      await release().catch((err: unknown) => {
        if (!swapped) throw fsError(err, key, 'write');
      });
    }
  }

  async createIfAbsent(key: string, body: string | Buffer): Promise<boolean> {
    await this.mkdirFor(key);
    // Written whole to a temporary name first, then linked: link(2) fails with EEXIST when the
    // name is taken, so the object appears atomically and complete, or not at all.
    const tmp = tmpFor(key);
    try {
      await writeFile(tmp, body, { flag: 'wx' });
      await link(tmp, key);
      return true;
    } catch (err) {
      if (isCode(err, 'EEXIST')) return false;
      throw fsError(err, key, 'write');
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async touch(key: string): Promise<boolean> {
    try {
      const now = new Date();
      await utimes(key, now, now);
      return true;
    } catch (err) {
      if (isCode(err, 'ENOENT')) return false;
      throw fsError(err, key, 'write');
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await rm(key, { force: true });
    } catch (err) {
      throw fsError(err, key, 'delete');
    }
  }

  private async mkdirFor(key: string): Promise<void> {
    try {
      await mkdir(path.dirname(key), { recursive: true });
    } catch (err) {
      throw fsError(err, key, 'write');
    }
  }
}

/** A temporary sibling of `key`; the commit sweeps those of writers that died (OutputNames). */
function contentVersion(body: Buffer): string {
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

function tmpFor(key: string): string {
  return path.join(path.dirname(key), `.${path.basename(key)}.${process.pid}-${Math.random().toString(36).slice(2)}.tmp`);
}

function waitDrain(out: WriteStream, failed: () => Error | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      out.off('error', onError);
      resolve();
    };
    const onError = () => {
      out.off('drain', onDrain);
      reject(failed() ?? new Error('write failed'));
    };
    out.once('drain', onDrain);
    out.once('error', onError);
  });
}

function isCode(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === code;
}

/** Each errno as a code of the table, with what to do; the message keeps the errno itself. */
const ERRNO: Record<string, [ErrorCode, string]> = {
  ENOENT: ['NOT_FOUND', 'Check that the path exists.'],
  EACCES: ['FILE_ACCESS_DENIED', 'Check the permissions of the file or folder.'],
  EPERM: ['FILE_ACCESS_DENIED', 'Check the permissions of the file or folder.'],
  EROFS: ['FILE_READ_ONLY', 'The file system is read-only; write the output somewhere else.'],
  ENOSPC: ['FILE_NO_SPACE', 'The disk is full; free space or write the output somewhere else.'],
  EDQUOT: ['FILE_NO_SPACE', 'The disk quota is used up; free space or write the output somewhere else.'],
  EISDIR: ['FILE_IS_FOLDER', 'A folder stands where a file is expected.'],
  ENOTDIR: ['FILE_NOT_FOLDER', 'A file stands where a folder is expected; move it, or choose another location.'],
  EMFILE: ['FILE_TOO_MANY_OPEN', 'Raise the open-file limit (ulimit -n), or lower --concurrency.'],
  ENFILE: ['FILE_TOO_MANY_OPEN', 'Raise the system\'s open-file limit, or lower --concurrency.'],
};

function fsError(err: unknown, key: string, action: string) {
  const errno = (err as NodeJS.ErrnoException).code ?? 'EIO';
  const [code, hint] = ERRNO[errno] ?? ['FILE_IO', 'Check the local file system.'];
  return new NightscoreError(code, `cannot ${action} ${key}: ${(err as Error).message}`, { source: key, hint, cause: err });
}
