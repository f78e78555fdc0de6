import { parse } from 'csv-parse';
import { escapeFormula, formatRejectRows, rejectsHeader } from '../formats/csv-write.js';
import { NightscoreError } from '../errors.js';
import { openLocation, type Location } from '../storage/open.js';
import { chunkFiles, OUTPUT_FILES, OWNED_FILE_RE, type RunManifest } from './manifest.js';
import type { ChunkResult } from './score-chunk.js';

/**
 * The commit protocol of a run's output folder. Readers trust a folder only while it
 * holds `_SUCCESS`, so:
 *   1. `beginOutput` removes `_SUCCESS` first, then the files of earlier attempts, and
 *      writes a `running` manifest;
 *   2. chunks write their parts under deterministic names;
 *   3. `commitOutput` removes every owned file this attempt did not write, writes the
 *      manifest, and writes `_SUCCESS` last, only when the run succeeded.
 * A reader that waits for `_SUCCESS` therefore never sees a mix of two attempts.
 */
export async function beginOutput(out: Location, manifest: RunManifest): Promise<void> {
  await out.storage.delete(out.storage.join(out.key, OUTPUT_FILES.success));
  await removeOwnedFiles(out, new Set());
  await writeManifest(out, manifest);
}

/**
 * Writes the final manifest and, on success, `_SUCCESS`. `keep` lists the keys this attempt
 * wrote; `fence` throws when the attempt no longer holds the output lock, and is checked
 * before each publishing write.
 */
export async function commitOutput(out: Location, manifest: RunManifest, keep: Set<string>, fence: () => Promise<void>): Promise<void> {
  await removeOwnedFiles(out, keep);
  await fence();
  await writeManifest(out, manifest);
  if (manifest.status !== 'succeeded') return;
  await fence();
  await out.storage.put(out.storage.join(out.key, OUTPUT_FILES.success), '');
}

export async function writeManifest(out: Location, manifest: RunManifest): Promise<void> {
  await out.storage.put(out.storage.join(out.key, OUTPUT_FILES.manifest), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Removes every file the run owns (parts, staged rejects, dead writers' temp files) that is not in `keep`. */
async function removeOwnedFiles(out: Location, keep: Set<string>): Promise<void> {
  const folder = out.storage.join(out.key, '');
  for (const { key } of await out.storage.list(folder)) {
    const relative = key.slice(folder.length).split('\\').join('/');
    if (OWNED_FILE_RE.test(relative) && !keep.has(key)) await out.storage.delete(key);
  }
}

/**
 * Lines before each segment of each object, from the newline counts the chunks reported:
 * consecutive ranges partition an object, so a segment's first line number is one more
 * than the newlines of all segments before it.
 */
export function lineOffsets(results: ChunkResult[]): Map<string, number> {
  const byObject = new Map<string, Array<{ start: number; newlines: number }>>();
  for (const r of results) for (const s of r.segments) byObject.set(s.uri, [...(byObject.get(s.uri) ?? []), s]);
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
 * Turns a chunk's staged rejects into `_rejects/part-<index>` with absolute line numbers,
 * streaming, then removes the staged file. Rerunning it after a crash gives the same file.
 */
export async function publishRejects(out: Location, result: ChunkResult, offsets: Map<string, number>, keys: string[], csv: { delimiter: string; escapeFormulas: boolean }): Promise<string> {
  const { delimiter } = csv;
  const files = chunkFiles(out, result.index);
  const staged = openLocation(result.stagedRejects!.uri);
  if (!(await staged.storage.stat(staged.key))) {
    // Published by an earlier try of this commit that died before the manifest.
    if (await out.storage.stat(files.rejects)) return files.rejects;
    throw new NightscoreError('storage', 'REJECTS_MISSING', `${result.stagedRejects!.uri} and ${out.storage.uri(files.rejects)} are both missing; ${result.stagedRejects!.rows} rejected rows cannot be accounted for`, {
      hint: 'Something removed files from the output folder during the run; re-run the date.',
    });
  }
  const writer = await out.storage.createWriter(files.rejects);
  const source = await staged.storage.read(staged.key);
  try {
    await writer.write(rejectsHeader(keys, { delimiter }));
    const parser = source.pipe(parse({ delimiter, from_line: 2, relax_column_count: true }));
    // pipe() does not forward a source error (an S3 reset) to the parser: without this the
    // commit would hang or the error would go unhandled.
    source.once('error', (err) => parser.destroy(err));
    let batch: string[][] = [];
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
    await writer.close();
  } catch (err) {
    await writer.abort();
    throw err;
  } finally {
    source.destroy();
  }
  await staged.storage.delete(staged.key);
  return files.rejects;
}
