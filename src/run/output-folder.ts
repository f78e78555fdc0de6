/**
 * A date's output folder read back: its manifest, whether `_SUCCESS` is there, and the state
 * the two say together. The one reader of the folder for the commit, retry, status, backfill
 * and the page.
 *
 * What is read back is input (manifest-check.ts): the keys read are derived from the folder's
 * own layout (OUTPUT_FILES), never from anything found in it; a manifest is bounded in size,
 * read at the version its stat saw, and checked as its type before anyone uses it.
 *
 * `_SUCCESS` is written empty (commit.ts): only whether it is there says anything.
 */
import { NightscoreError, toNightscoreError } from '../errors.js';
import { locateRun, type JobDefinition } from '../job/load.js';
import { openLocation, type Location } from '../storage/open.js';
import { readAgainWhileTransient, readAll } from '../storage/storage.js';
import { checkManifest, manifestTooLarge, MAX_MANIFEST_BYTES } from './manifest-check.js';
import { OUTPUT_FILES, type RunManifest } from './manifest.js';

/**
 * What a folder says of its date, without the queue:
 *   succeeded: `_SUCCESS` is there (it is written last, and removed first by a run again);
 *   failed:    no `_SUCCESS`, and the manifest says failed;
 *   running:   no `_SUCCESS`, and the manifest says running (a run began: whether one is left
 *              to finish it is for the output lock or the queue to say);
 *   missing:   neither, or a manifest that says succeeded without `_SUCCESS` (its run died
 *              between the two, or someone removed it): readers trust the folder only with it.
 * A manifest that is not one nightscore writes is not a state: reading it throws MANIFEST_INVALID.
 */
export type OutputState = 'succeeded' | 'failed' | 'running' | 'missing';

/** A date's output folder as read. */
export interface OutputFolder {
  /** Whether `_SUCCESS` is there. */
  success: boolean;
  /** The manifest, checked as its type; undefined when there is none (or none that parses yet). */
  manifest: RunManifest | undefined;
  /** The manifest's version (ETag, or size and mtime): a run of the date changes it. */
  version: string | undefined;
}

export function outputStateOf({ success, manifest }: Pick<OutputFolder, 'success' | 'manifest'>): OutputState {
  if (success) return 'succeeded';
  if (manifest?.status === 'failed' || manifest?.status === 'running') return manifest.status;
  return 'missing';
}

/**
 * Whether the folder says its date succeeded in a run that finished after `ms` (epoch ms):
 * `_SUCCESS` and a succeeded manifest that says when. A date scored since its queued run
 * ended (in process, say) is what its output says.
 */
export function succeededSince({ success, manifest }: Pick<OutputFolder, 'success' | 'manifest'>, ms: number): boolean {
  return success && manifest?.status === 'succeeded' && Date.parse(manifest.finished_at ?? '') > ms;
}

/** The output folder of `job` for `date`, as its output template names it. */
export async function readDateOutput(job: JobDefinition, date: string): Promise<OutputFolder> {
  return readOutputFolder(openLocation(locateRun(job, date).outputUri));
}

/**
 * `_SUCCESS` and the manifest of the folder `out`. With `previous` (this folder as read
 * before), a manifest still at the version read then is not read again: one stat tells.
 */
export async function readOutputFolder(out: Location, previous?: OutputFolder): Promise<OutputFolder> {
  const known = previous?.manifest && previous.version !== undefined ? { value: previous.manifest, version: previous.version } : undefined;
  // Both reads at once, but one error whichever fails first: a folder that cannot be read
  // fails both, and the error then names the manifest, every time.
  const [read, success] = await Promise.allSettled([readManifestAs(out, checkManifest, known), out.storage.stat(out.storage.join(out.key, OUTPUT_FILES.success))]);
  if (read.status === 'rejected') throw read.reason;
  if (success.status === 'rejected') throw success.reason;
  return { success: success.value !== undefined, manifest: read.value?.value, version: read.value?.version };
}

/** The folder's manifest, checked as its type; undefined when there is none. */
export async function readManifest(out: Location): Promise<RunManifest | undefined> {
  return (await readManifestAs(out, checkManifest))?.value;
}

/**
 * The folder's `_manifest.json`, parsed and passed through `check` (which throws
 * MANIFEST_INVALID for what it refuses); undefined when there is none.
 *
 * A running attempt rewrites its manifest: S3 and local writes replace it whole, but some
 * S3-compatible servers let a reader see a half-written body, and a rewrite between the stat
 * and the read changes its version. Such a read is tried again, and a manifest that still does
 * not parse counts as absent for now. A body shorter than its size (cut short in transit) must
 * never pass for a damaged manifest: it is MANIFEST_READ_SHORT, retryable.
 */
export async function readManifestAs<T>(out: Location, check: (value: unknown, source: string) => T, known?: { value: T; version: string }): Promise<{ value: T; version: string } | undefined> {
  const key = out.storage.join(out.key, OUTPUT_FILES.manifest);
  const source = out.storage.uri(key);
  for (let attempt = 1; ; attempt++) {
    try {
      const read = await readAgainWhileTransient(async () => {
        const info = await out.storage.stat(key);
        if (!info) return undefined;
        if (known?.version === info.version) return { version: info.version, body: undefined };
        if (info.size > MAX_MANIFEST_BYTES) throw manifestTooLarge(source, info.size);
        // Read at the version stat saw: the body is the one the version names.
        const body = await readBody(out, key, info.version);
        if (body === undefined) return undefined;
        if (body.length !== info.size) throw new NightscoreError('MANIFEST_READ_SHORT', `${source}: read ${body.length} of ${info.size} bytes`, { source });
        return { version: info.version, body };
      });
      if (!read) return undefined;
      if (!read.body) return known;
      return { value: check(JSON.parse(read.body.toString('utf8')), source), version: read.version };
    } catch (err) {
      if (!(err instanceof SyntaxError) && toNightscoreError(err).code !== 'INPUT_CHANGED') throw err;
      if (attempt >= 3) return undefined;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** The manifest's body, or undefined when it was removed between its stat and its read (a run again beginning). */
async function readBody(out: Location, key: string, version: string): Promise<Buffer | undefined> {
  try {
    return await readAll(await out.storage.read(key, undefined, version), MAX_MANIFEST_BYTES);
  } catch (err) {
    if (toNightscoreError(err).code === 'NOT_FOUND') return undefined;
    throw err;
  }
}
