import { createHash } from 'node:crypto';
import { toNightscoreError } from '../errors.js';
import type { ObjectWriter, Storage } from './storage.js';

/** An object's bytes as a writer counted them: its size and the sha256 of its content. */
export interface Digest {
  bytes: number;
  sha256: string;
}

export type DigestingWriter = ObjectWriter & { digest(): Digest };

/**
 * A writer that counts and hashes what passes through it, so that whoever later keeps the
 * object can check it still holds exactly those bytes (a retry keeping a part, for one).
 * `digest()` is meaningful once `close()` has resolved.
 */
export function digestingWriter(writer: ObjectWriter): DigestingWriter {
  const hash = createHash('sha256');
  let bytes = 0;
  let sha256: string | undefined;
  return {
    async write(chunk) {
      hash.update(chunk);
      bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
      await writer.write(chunk);
    },
    async close() {
      await writer.close();
      sha256 = hash.digest('hex');
    },
    abort: () => writer.abort(),
    digest() {
      if (sha256 === undefined) throw new Error('digest() of a writer that has not closed');
      return { bytes, sha256 };
    },
  };
}

/** The size and sha256 of an object as it reads back now, or undefined when there is none. */
export async function digestObject(storage: Storage, key: string): Promise<Digest | undefined> {
  if (!(await storage.stat(key))) return undefined;
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of await storage.read(key)) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
  } catch (err) {
    // Removed between its stat and its read: there is none.
    if (toNightscoreError(err).code === 'NOT_FOUND') return undefined;
    throw err;
  }
  return { bytes, sha256: hash.digest('hex') };
}
