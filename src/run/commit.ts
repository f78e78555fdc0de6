import { parse } from 'csv-parse';
import { escapeFormula } from '../formats/csv-text.js';
import { formatRejectRows, rejectsHeader } from '../formats/csv-write.js';
import { NightscoreError } from '../errors.js';
import { openLocation, type Location } from '../storage/open.js';
import { readAgainWhileTransient, readText } from '../storage/storage.js';
import { isOwnedRejects, mergeOwns, OUTPUT_FILES, OutputNames, ownsOf, PART_LIKE_RE, rejectsFile, type RunManifest } from './manifest.js';
import { readManifestAs } from './output-folder.js';
import type { ChunkResult } from './chunk-result.js';

/**
 * The commit protocol of a run's output folder. Readers trust a folder only while it
 * holds `_SUCCESS`, so:
 *   1. `beginOutput` removes `_SUCCESS` first, then the files of earlier attempts, and
 *      writes a `running` manifest that owns this attempt's names and theirs;
 *   2. chunks write their parts under deterministic names;
 *   3. `commitOutput` removes every owned file this attempt did not write, writes the
 *      manifest, and writes `_SUCCESS` last, only when the run succeeded.
 * A reader that waits for `_SUCCESS` therefore never sees a mix of two attempts. Only the
 * names the manifests own are ever removed (OutputNames): a folder shared with other files
 * keeps them.
 */
export async function beginOutput(out: Location, manifest: RunManifest, rejects?: Location, keep: ReadonlySet<string> = new Set()): Promise<void> {
  const files = await listRelative(out);
  // Only what the earlier attempts own is read from their manifest, and checked as it is
  // (ownsOf): a manifest damaged elsewhere must not stop the run that writes a new one.
  const previous = files.some((f) => f.relative === OUTPUT_FILES.manifest) ? await readManifestAs(out, ownership) : undefined;
  const ownedBefore = previous?.value ?? {};
  manifest.owns = mergeOwns(ownedBefore, manifest.owns);
  const names = new OutputNames(manifest.owns);
  const strangers = files.filter((f) => PART_LIKE_RE.test(f.relative) && !names.isPart(f.relative));
  if (strangers.length > 0) {
    throw new NightscoreError('OUTPUT_NOT_OURS', `${out.storage.uri(out.storage.join(out.key, ''))} holds ${strangers.length} file(s) named like nightscore parts that no manifest there accounts for, such as ${strangers[0]!.relative}; this run would mix with them and left the folder untouched`, {
      source: out.storage.uri(strangers[0]!.key),
      hint: 'Readers of the folder would take those files for this date\'s predictions: remove them (they may be from a run whose _manifest.json was deleted), or point output.uri at a folder of its own.',
    });
  }
  const rejectsFiles = rejects ? await claimRejects(out, rejects, ownedBefore) : [];
  await out.storage.delete(out.storage.join(out.key, OUTPUT_FILES.success));
  // An earlier attempt's drift and comparison are not this one's: measured again at commit, or not at all.
  await out.storage.delete(out.storage.join(out.key, OUTPUT_FILES.drift));
  await out.storage.delete(out.storage.join(out.key, OUTPUT_FILES.shadow));
  // `keep`: the parts (and staged rejects) of chunks a retry does not score again.
  for (const f of files) if (names.isPart(f.relative) && !keep.has(f.key)) await out.storage.delete(f.key);
  for (const f of rejectsFiles) if (isOwnedRejects(f.relative, ownedBefore) && !keep.has(f.key)) await rejects!.storage.delete(f.key);
  await writeManifest(out, manifest);
}

/**
 * A rejects folder of its own (output.rejects_uri) names the output folder it belongs to in
 * `_OWNER.json`, written by the first run there: its files are that output's, owned by the
 * chunk counts of that output's manifests. A folder of another output's, or files named like
 * rejects that the output's earlier attempts did not write, stop the run before anything is
 * touched. Returns the folder's files.
 */
async function claimRejects(out: Location, rejects: Location, ownedBefore: Record<string, number>): Promise<Array<{ key: string; relative: string; size: number }>> {
  const outUri = out.storage.uri(out.storage.join(out.key, ''));
  const folderUri = rejects.storage.uri(rejects.storage.join(rejects.key, ''));
  const files = await listRelative(rejects);
  const ownerKey = rejects.storage.join(rejects.key, OUTPUT_FILES.rejectsOwner);
  const owner = files.some((f) => f.relative === OUTPUT_FILES.rejectsOwner)
    ? await readAgainWhileTransient(() => readText(rejects.storage, ownerKey)).then((text) => (JSON.parse(text) as { output?: unknown }).output, () => null)
    : undefined;
  if (owner !== undefined && owner !== outUri) {
    throw new NightscoreError('OUTPUT_NOT_OURS', `${folderUri} (output.rejects_uri) holds the rejects of ${typeof owner === 'string' ? owner : 'another output (its _OWNER.json cannot be read)'}, not of ${outUri}; this run left both folders untouched`, {
      source: rejects.storage.uri(ownerKey),
      hint: 'Give each job and date a rejects folder of its own (output.rejects_uri with the job\'s name and {date} in it).',
    });
  }
  const owned = owner === undefined ? {} : ownedBefore;
  const foreign = files.filter((f) => /^part-\d{5,}\.csv$/.test(f.relative) && !isOwnedRejects(f.relative, owned));
  if (foreign.length > 0) {
    throw new NightscoreError('OUTPUT_NOT_OURS', `${folderUri} (output.rejects_uri) holds ${foreign.length} file(s) named like nightscore rejects that no manifest of ${outUri} accounts for, such as ${foreign[0]!.relative}; this run would mix with them and left both folders untouched`, {
      source: rejects.storage.uri(foreign[0]!.key),
      hint: 'Readers of the folder would take those files for this date\'s rejects: remove them, or point output.rejects_uri at a folder of its own for each job and date.',
    });
  }
  if (owner === undefined) await rejects.storage.put(ownerKey, `${JSON.stringify({ output: outUri })}\n`);
  return files;
}

/**
 * Writes the final manifest and, on success, `_SUCCESS`. `keep` lists the keys this attempt
 * wrote; `fence` throws when the attempt no longer holds the output lock, and is checked
 * before each publishing write.
 */
export async function commitOutput(out: Location, manifest: RunManifest, keep: Set<string>, fence: () => Promise<void>, rejects?: Location): Promise<void> {
  const names = new OutputNames(manifest.owns);
  for (const f of await listRelative(out)) if (names.isPart(f.relative) && !keep.has(f.key)) await out.storage.delete(f.key);
  if (rejects) for (const f of await listRelative(rejects)) if (isOwnedRejects(f.relative, manifest.owns) && !keep.has(f.key)) await rejects.storage.delete(f.key);
  await fence();
  await writeManifest(out, manifest);
  if (manifest.status !== 'succeeded') return;
  await fence();
  await out.storage.put(out.storage.join(out.key, OUTPUT_FILES.success), '');
}

export async function writeManifest(out: Location, manifest: RunManifest): Promise<void> {
  await out.storage.put(out.storage.join(out.key, OUTPUT_FILES.manifest), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** The names a manifest read back says its attempt owns; none when it is not a JSON object. */
function ownership(value: unknown, source: string): Record<string, number> {
  return value !== null && typeof value === 'object' ? ownsOf(value as Partial<RunManifest>, source) : {};
}

/** Every object of the output folder, with its name relative to the folder ('/'-separated). */
async function listRelative(out: Location): Promise<Array<{ key: string; relative: string; size: number }>> {
  const folder = out.storage.join(out.key, '');
  return (await out.storage.list(folder)).map(({ key, size }) => ({ key, size, relative: key.slice(folder.length).split('\\').join('/') }));
}

/**
 * Lines before each segment of each object, from the newline counts the chunks reported:
 * consecutive ranges partition an object, so a segment's first line number is one more
 * than the newlines of all segments before it.
 */
export function lineOffsets(results: ChunkResult[]): Map<string, number> {
  const byObject = new Map<string, Array<{ start: number; newlines: number }>>();
  for (const r of results) {
    for (const s of r.segments) {
      const list = byObject.get(s.uri);
      if (list) list.push(s);
      else byObject.set(s.uri, [s]);
    }
  }
  const offsets = new Map<string, number>();
  for (const [uri, segments] of byObject) {
    let before = 0;
    for (const s of segments.sort((a, b) => a.start - b.start)) {
      offsets.set(`${uri}@${s.start}`, before);
      before += s.newlines;
    }
  }
  return offsets;
}

/**
 * Turns a chunk's staged rejects into `part-<index>.csv` of the rejects folder, with
 * absolute line numbers, streaming, then removes the staged file. Rerunning it after a crash
 * gives the same file.
 */
export async function publishRejects(rejects: Location, result: ChunkResult, offsets: Map<string, number>, keys: string[], csv: { delimiter: string; escapeFormulas: boolean }): Promise<string> {
  const { delimiter } = csv;
  const published = rejectsFile(rejects, result.index);
  const staged = openLocation(result.stagedRejects!.uri);
  if (!(await staged.storage.stat(staged.key))) {
    // Published by an earlier try of this commit that died before the manifest.
    if (await rejects.storage.stat(published)) return published;
    throw new NightscoreError('REJECTS_MISSING', `${result.stagedRejects!.uri} and ${rejects.storage.uri(published)} are both missing; ${result.stagedRejects!.rows} rejected rows cannot be accounted for`, {
      hint: 'Something removed files from the output folder during the run; re-run the date.',
    });
  }
  const writer = await rejects.storage.createWriter(published);
  const source = await staged.storage.read(staged.key);
  try {
    await writer.write(rejectsHeader(keys, { delimiter }));
    const parser = source.pipe(parse({ delimiter, from_line: 2, relax_column_count: true }));
    // pipe() does not forward a source error (an S3 reset) to the parser: without this the
    // commit would hang or the error would go unhandled.
    source.once('error', (err) => parser.destroy(err));
    let batch: string[][] = [];
    let bytes = 0;
    source.on('data', (d: Buffer) => (bytes += d.length));
    for await (const row of parser as AsyncIterable<string[]>) {
      const [source = '', start = '0', line = '0', ...rest] = row;
      const cells = csv.escapeFormulas ? rest.map(escapeFormula) : rest;
      batch.push([source, String(Number(line) + (offsets.get(`${source}@${start}`) ?? 0)), ...cells]);
      if (batch.length >= 10_000) {
        await writer.write(formatRejectRows(batch, csv));
        batch = [];
      }
    }
    if (batch.length) await writer.write(formatRejectRows(batch, csv));
    // The chunk counted the bytes it staged: a staged file that reads back shorter (a body cut
    // short behind a matching length) must not publish a short rejects file.
    const { bytes: staged = bytes } = result.stagedRejects!;
    if (bytes !== staged) {
      throw new NightscoreError('REJECTS_READ_SHORT', `${result.stagedRejects!.uri} read back ${bytes} of the ${staged} bytes its chunk staged`, {
        source: result.stagedRejects!.uri,
        hint: 'The storage returned the staged rejects incompletely; the commit is tried again on the queue. Run the date again if it persists.',
      });
    }
    await writer.close();
  } catch (err) {
    await writer.abort();
    throw err;
  } finally {
    source.destroy();
  }
  await staged.storage.delete(staged.key);
  return published;
}
