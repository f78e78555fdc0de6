/**
 * The first rows of a run's rejects files, for its page. The page reads them with its own
 * file system and credentials, so which files it reads is never the manifest's to say: a
 * manifest naming `file:///etc/passwd` or another bucket would otherwise have the page serve
 * them. The files are derived from the job and date (the run's rejects folder, and the
 * chunk index in each listed name); a listed URI that is not one of them is refused with a
 * notice, as is, on local disk, a rejects file that is a link leading out of the run's folder.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { NightscoreError } from '../errors.js';
import { locateRun, type JobDefinition } from '../job/load.js';
import { runFolders } from '../run/begin.js';
import { rejectsApart, rejectsFile, type RunManifest } from '../run/manifest.js';
import { openLocation, type Location } from '../storage/open.js';
import { parseUri } from '../storage/uri.js';
import { readAll } from '../storage/storage.js';

/** One row of a rejects file: where the row was, its key, and why it was refused. */
export interface RejectRow {
  source: string;
  line: string;
  key: string[];
  reason: string;
}

export interface FirstRejects {
  /** The key columns, as the rejects files' header names them. */
  keys: string[];
  rows: RejectRow[];
  /** Rejected rows in all, per the manifest. */
  total: number;
}

/**
 * The first `limit` rows of the date's rejects files, in the manifest's order. Each file is
 * read from its start, `maxBytes` at most: a day that rejected millions of rows costs one
 * small read. `refused` says which listed files were not read, and why.
 */
export async function readFirstRejects(job: JobDefinition, date: string, manifest: RunManifest, limit = 20, maxBytes = 64 * 1024): Promise<{ rejects: FirstRejects; refused: NightscoreError[] }> {
  const folders = runFolders(locateRun(job, date));
  const folder = openLocation(folders.rejects);
  // The folder no file read may leave: the output folder holds `_rejects/`.
  const root = rejectsApart({ uri: folders.uri, rejects_uri: folders.rejects }) ? folders.rejects : folders.uri;
  const result: FirstRejects = { keys: [], rows: [], total: manifest.rows.rejected };
  const outside: string[] = [];
  const linked: string[] = [];
  // Each file nightscore lists holds a row at least: `limit` files are enough, a few more
  // when some are gone. A manifest listing a million is not looked through.
  for (const file of manifest.rejects.slice(0, 10 * limit)) {
    if (result.rows.length >= limit) break;
    const key = rejectsKeyOf(folder, file.uri);
    if (key === undefined) {
      outside.push(file.uri);
      continue;
    }
    if (!(await staysInside(root, key))) {
      linked.push(file.uri);
      continue;
    }
    const info = await folder.storage.stat(key);
    if (!info || info.size === 0) continue;
    const cut = info.size > maxBytes;
    const bytes = await readAll(await folder.storage.read(key, { start: 0, end: Math.min(info.size, maxBytes) - 1 }), maxBytes);
    const [header, ...rows] = parsePrefix(bytes.toString('utf8'), job.output.csv.delimiter, cut);
    if (!header) continue;
    result.keys = header.slice(2, -1);
    for (const r of rows.slice(0, limit - result.rows.length)) {
      result.rows.push({ source: r[0] ?? '', line: r[1] ?? '', key: r.slice(2, -1), reason: r.length > 2 ? (r.at(-1) ?? '') : '' });
    }
  }
  const refused: NightscoreError[] = [];
  const manifestUri = `${folders.uri}_manifest.json`;
  if (outside.length > 0) {
    refused.push(new NightscoreError('MANIFEST_INVALID', `${manifestUri} lists ${describe(outside)} among its rejects files, which ${outside.length === 1 ? 'is not a rejects file' : 'are not rejects files'} of this run (${folders.rejects}part-<chunk>.csv); the page does not read ${outside.length === 1 ? 'it' : 'them'}`, {
      source: manifestUri,
      column: 'rejects',
      hint: 'Something other than nightscore wrote the manifest, or the job\'s output.uri / output.rejects_uri changed since the run: run the date again to write a manifest of this job.',
    }));
  }
  if (linked.length > 0) {
    refused.push(new NightscoreError('MANIFEST_INVALID', `the rejects file ${describe(linked)} ${linked.length === 1 ? 'is a link' : 'are links'} leading out of ${root}; the page does not read ${linked.length === 1 ? 'it' : 'them'}`, {
      source: manifestUri,
      column: 'rejects',
      hint: 'nightscore never writes links there: find out who did, remove them, and run the date again.',
    }));
  }
  return { rejects: result, refused };
}

function describe(uris: string[]): string {
  const shown = uris.slice(0, 3).map((u) => `"${u}"`).join(', ');
  return uris.length > 3 ? `${shown} and ${uris.length - 3} more` : shown;
}

/** The key of the rejects file `uri` names, when it is exactly the one a chunk of this run writes in `folder`; else undefined. */
function rejectsKeyOf(folder: Location, uri: string): string | undefined {
  const m = /\/part-(\d{5,})\.csv$/.exec(uri);
  if (!m) return undefined;
  const key = rejectsFile(folder, Number(m[1]));
  return folder.storage.uri(key) === uri ? key : undefined;
}

/**
 * Whether a local file's real path (its links followed) is inside `root`'s. Objects on S3
 * have no links: their derived key is where they are. A file that is not there is let
 * through: reading it then finds nothing.
 */
async function staysInside(root: string, key: string): Promise<boolean> {
  const parsed = parseUri(root);
  if (parsed.scheme !== 'file') return true;
  try {
    const [realRoot, realFile] = await Promise.all([realpath(parsed.path), realpath(key)]);
    return realFile.startsWith(realRoot.endsWith(path.sep) ? realRoot : `${realRoot}${path.sep}`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return true;
    if (code === 'ELOOP') return false;
    throw err;
  }
}

/**
 * The whole records of the start of a CSV file. When the text was cut, its last record may
 * be partial, and a quoted field cut short does not parse: such tails are dropped.
 */
function parsePrefix(text: string, delimiter: string, cut: boolean): string[][] {
  let body = cut ? text.slice(0, text.lastIndexOf('\n') + 1) : text;
  for (let tries = 0; tries < 20 && body.length > 0; tries++) {
    try {
      return parse(body, { delimiter, relax_column_count: true, skip_empty_lines: true }) as string[][];
    } catch {
      body = body.slice(0, body.lastIndexOf('\n', body.length - 2) + 1);
    }
  }
  return [];
}
