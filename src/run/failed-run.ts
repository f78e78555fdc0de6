/**
 * A run's manifest read back by `nightscore retry`. Whoever can write the output folder can
 * write it, so nothing in it is taken on trust: each field retry uses is checked as its type,
 * the files it names must be the ones our own layout gives each chunk's index (and retry then
 * uses those, never a URI it read), and a part is kept only while it holds the very bytes its
 * chunk wrote (see checkKept).
 */
import { NightscoreError } from '../errors.js';
import { digestObject, type Digest } from '../storage/digest.js';
import type { Location } from '../storage/open.js';
import { chunkFiles, MAX_CHUNKS, type RunManifest } from './manifest.js';
import type { ChunkPlan } from './plan.js';
import type { ChunkResult, ChunkStats } from './chunk-result.js';
import type { RunSpec } from './spec.js';
import { isColumnCounts, isSegmentKey } from '../drift/profile.js';
import type { ColumnCounts } from '../drift/counts.js';

/** A failed run's plan and the chunks of it that succeeded, as `RunManifest.retry` records them. */
export interface FailedPlan {
  spec: RunSpec;
  chunks: ChunkPlan[];
  completed: ChunkResult[];
}

/** Where a manifest came from, and the command that scores its date whole instead: for the errors. */
export interface ReadBack {
  source: string;
  rerun: string;
}

const SHA256_RE = /^[0-9a-f]{64}$/;
const INSTANT_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?Z$/;

/**
 * The instant the date's registry alias was read at when it was planned (backfill
 * --model-as-of), for a retry to read it at again, as the queue's run does; undefined when the
 * plan read the alias as it was then (no as_of), or when the job names another model now (the
 * retry then says the plan changed).
 */
export function plannedAsOf(manifest: RunManifest, modelRef: string, from: ReadBack): Date | undefined {
  const bad: Bad = refuse(from);
  const models = list(manifest.models, 'models', bad);
  if (models.length === 0) return undefined;
  const registry = object(models[0], 'models[0]', bad).registry;
  if (registry === null || registry === undefined) return undefined;
  const pin = object(registry, 'models[0].registry', bad);
  const ref = text(pin.ref, 'models[0].registry.ref', bad);
  text(pin.name, 'models[0].registry.name', bad);
  if (!Number.isSafeInteger(pin.version) || (pin.version as number) < 1) bad('models[0].registry.version', 'a version number (a whole number from 1)');
  if (pin.alias !== null) text(pin.alias, 'models[0].registry.alias', bad);
  if (pin.as_of === null || ref !== modelRef) return undefined;
  const asOf = text(pin.as_of, 'models[0].registry.as_of', bad);
  const at = Date.parse(asOf);
  if (!INSTANT_RE.test(asOf) || !Number.isFinite(at)) bad('models[0].registry.as_of', 'an instant (YYYY-MM-DDTHH:MM:SSZ)');
  return new Date(at);
}

/**
 * A failed manifest's `retry`, each field checked as its type, and each completed chunk's
 * files checked against our own names for its index in `out`. Returns the chunks with those
 * derived URIs; throws MANIFEST_INVALID for a manifest that is not what nightscore writes.
 */
export function readFailedPlan(manifest: RunManifest, out: Location, from: ReadBack): FailedPlan {
  const bad: Bad = refuse(from);
  const retry = object(manifest.retry, 'retry', bad);
  const spec = object(retry.spec, 'retry.spec', bad);
  const input = object(spec.input, 'retry.spec.input', bad);
  list(input.objects, 'retry.spec.input.objects', bad, Infinity).forEach((o, i) => {
    const at = `retry.spec.input.objects[${i}]`;
    const obj = object(o, at, bad);
    text(obj.uri, `${at}.uri`, bad);
    text(obj.version, `${at}.version`, bad);
    count(obj.bytes, `${at}.bytes`, bad);
  });
  list(spec.models, 'retry.spec.models', bad).forEach((m, i) => {
    const model = object(m, `retry.spec.models[${i}]`, bad);
    sha256(model.sha256, `retry.spec.models[${i}].sha256`, bad);
    // Compared with a fresh plan's, and named in the reason when it differs (no version before run spec 5).
    const engine = object(model.engine, `retry.spec.models[${i}].engine`, bad);
    text(engine.name, `retry.spec.models[${i}].engine.name`, bad);
    if (engine.version !== undefined) text(engine.version, `retry.spec.models[${i}].engine.version`, bad);
    count(engine.threads, `retry.spec.models[${i}].engine.threads`, bad);
  });
  const format = object(spec.output, 'retry.spec.output', bad).format;
  if (format !== 'csv' && format !== 'parquet') bad('retry.spec.output.format', 'csv or parquet');
  const chunks = list(retry.chunks, 'retry.chunks', bad);
  const seen = new Set<number>();
  const completed = list(retry.completed, 'retry.completed', bad).map((r, i) => {
    const result = chunkResult(r, `retry.completed[${i}]`, chunks.length, out, format, bad);
    if (seen.has(result.index)) bad(`retry.completed[${i}].index`, `a chunk not listed before (${result.index} is)`);
    seen.add(result.index);
    return result;
  });
  return { spec: spec as unknown as RunSpec, chunks: chunks as ChunkPlan[], completed };
}

/**
 * Checks that each completed chunk read the segments the plan gives its index (the line
 * numbers of its rejects are counted from them) and counted rows of those objects only.
 */
export function checkAgainstPlan(completed: ChunkResult[], chunks: ChunkPlan[], from: ReadBack): void {
  const bad: Bad = refuse(from);
  completed.forEach((r, i) => {
    const planned = chunks[r.index]!.segments;
    const at = `retry.completed[${i}]`;
    if (r.segments.length !== planned.length || r.segments.some((s, j) => s.uri !== planned[j]!.uri || s.start !== planned[j]!.start)) bad(`${at}.segments`, `the segments chunk ${r.index} is planned with`);
    const uris = new Set(planned.map((s) => s.uri));
    const stranger = Object.keys(r.stats.inputs).find((uri) => !uris.has(uri));
    if (stranger !== undefined) bad(`${at}.stats.inputs`, `counts of chunk ${r.index}'s objects only (it counts ${JSON.stringify(stranger).slice(0, 200)})`);
  });
}

/**
 * Which completed chunks still hold exactly the bytes they wrote (the size and sha256 their
 * chunk recorded), part and staged rejects: only those are kept; the others are scored again,
 * each with the reason. Anything else (a part cut short, rewritten, gone, or recorded by a
 * nightscore that kept no sha256) would be published as it is under `_SUCCESS`.
 */
export async function checkKept(out: Location, completed: ChunkResult[], format: string): Promise<{ kept: ChunkResult[]; rescored: Array<{ index: number; reason: string }> }> {
  const kept: ChunkResult[] = [];
  const rescored: Array<{ index: number; reason: string }> = [];
  for (const r of completed) {
    const files = chunkFiles(out, r.index, format);
    const reason = (await unlike(out, files.part, r.part)) ?? (r.stagedRejects ? await unlike(out, files.stagedRejects, r.stagedRejects) : undefined);
    if (reason) rescored.push({ index: r.index, reason: `${reason}: chunk ${r.index} is scored again` });
    else kept.push(r);
  }
  return { kept, rescored };
}

/** Why the object at `key` is not the one recorded, or undefined when it is. */
async function unlike(out: Location, key: string, recorded: { bytes?: number; sha256?: string }): Promise<string | undefined> {
  const name = out.storage.uri(key);
  if (recorded.bytes === undefined || recorded.sha256 === undefined) return `the failed run recorded no size and sha256 of ${name} (an earlier nightscore)`;
  const now = await digestObject(out.storage, key);
  if (!now) return `${name} is gone`;
  const then: Digest = { bytes: recorded.bytes, sha256: recorded.sha256 };
  if (now.bytes === then.bytes && now.sha256 === then.sha256) return undefined;
  return `${name} is not what its chunk wrote (${now.bytes} bytes, sha256 ${now.sha256.slice(0, 12)}… now; ${then.bytes} bytes, sha256 ${then.sha256.slice(0, 12)}… then)`;
}

/** One completed chunk's result, checked as its type; its URIs must be our names for its index, and are those. */
function chunkResult(value: unknown, at: string, chunks: number, out: Location, format: string, bad: Bad): ChunkResult {
  const r = object(value, at, bad);
  const index = count(r.index, `${at}.index`, bad);
  if (index >= chunks) bad(`${at}.index`, `the index of one of the ${chunks} chunks planned`);
  const files = chunkFiles(out, index, format);
  const part = object(r.part, `${at}.part`, bad);
  const written = { uri: ourUri(part.uri, out, files.part, `${at}.part.uri`, bad), rows: count(part.rows, `${at}.part.rows`, bad), ...digest(part, `${at}.part`, bad) };
  let staged: ChunkResult['stagedRejects'] = null;
  if (r.stagedRejects !== null) {
    const s = object(r.stagedRejects, `${at}.stagedRejects`, bad);
    staged = { uri: ourUri(s.uri, out, files.stagedRejects, `${at}.stagedRejects.uri`, bad), rows: count(s.rows, `${at}.stagedRejects.rows`, bad), ...digest(s, `${at}.stagedRejects`, bad) };
  }
  const stats = object(r.stats, `${at}.stats`, bad);
  const rows = object(stats.rows, `${at}.stats.rows`, bad);
  const counts = { read: count(rows.read, `${at}.stats.rows.read`, bad), scored: count(rows.scored, `${at}.stats.rows.scored`, bad), rejected: count(rows.rejected, `${at}.stats.rows.rejected`, bad) };
  const inputs = object(stats.inputs, `${at}.stats.inputs`, bad);
  const perObject = Object.entries(inputs).map(([uri, n]) => [uri, count(n, `${at}.stats.inputs["${uri}"]`, bad)] as const);
  // The counts must add up as a chunk writes them: a part's rows are its scored rows, and so on.
  if (counts.scored !== written.rows || counts.rejected !== (staged?.rows ?? 0) || counts.read !== counts.scored + counts.rejected || perObject.reduce((s, [, n]) => s + n, 0) !== counts.read) {
    bad(`${at}.stats`, `counts that add up (part rows ${written.rows}, rejects ${staged?.rows ?? 0}, read ${counts.read})`);
  }
  const segments = list(r.segments, `${at}.segments`, bad).map((s, j) => {
    const seg = object(s, `${at}.segments[${j}]`, bad);
    return { uri: text(seg.uri, `${at}.segments[${j}].uri`, bad), start: count(seg.start, `${at}.segments[${j}].start`, bad), newlines: count(seg.newlines, `${at}.segments[${j}].newlines`, bad) };
  });
  return { index, stats: { rows: counts, inputs: Object.fromEntries(perObject), ...stageCounts(stats.stages, `${at}.stats.stages`, bad), ...driftCounts(stats.drift, `${at}.stats.drift`, bad), ...segmentCounts(stats.drift_segments, `${at}.stats.drift_segments`, counts.scored, bad) }, part: written, stagedRejects: staged, segments };
}

/** A kept chunk's drift counts (ChunkStats.drift), each column's checked as its type; absent when the run measured none. */
function driftCounts(value: unknown, at: string, bad: Bad): Pick<ChunkStats, 'drift'> {
  if (value === undefined) return {};
  const columns = object(value, at, bad);
  for (const [column, counts] of Object.entries(columns)) {
    if (!isColumnCounts(counts)) bad(`${at}["${column}"]`, 'a column\'s drift counts (bins, missing, n, exact sums) as nightscore writes them');
  }
  return { drift: columns as ChunkStats['drift'] };
}

/**
 * A kept chunk's per-segment drift counts (ChunkStats.drift_segments): each segment's key as
 * the counter writes it, its rows a whole number adding up to the chunk's scored rows, and each
 * column's counts of its type counting those rows; absent when the run measured no segments.
 */
function segmentCounts(value: unknown, at: string, scored: number, bad: Bad): Pick<ChunkStats, 'drift_segments'> {
  if (value === undefined) return {};
  const segments = object(value, at, bad);
  let total = 0;
  for (const [key, entry] of Object.entries(segments)) {
    const where = `${at}["${key}"]`;
    if (!isSegmentKey(key)) bad(where, 'a segment key (value:<text>, other or null)');
    const s = object(entry, where, bad);
    const rows = count(s.rows, `${where}.rows`, bad);
    total += rows;
    for (const [column, counts] of Object.entries(object(s.counts, `${where}.counts`, bad))) {
      if (!isColumnCounts(counts)) bad(`${where}.counts["${column}"]`, 'a column\'s drift counts (bins, missing, n, exact sums) as nightscore writes them');
      const c = counts as ColumnCounts;
      if (c.n + c.missing + c.nan + c.pos_inf + c.neg_inf !== rows) bad(`${where}.counts["${column}"]`, `counts of the segment's ${rows} rows`);
    }
  }
  // Every row the chunk scored is in one segment.
  if (total !== scored) bad(at, `segments whose rows add up to the chunk's ${scored} scored rows`);
  return { drift_segments: segments as ChunkStats['drift_segments'] };
}

/** The counts a chunk's stages added (ChunkStats.stages), kept with the chunk; absent when no stage counted. */
function stageCounts(value: unknown, at: string, bad: Bad): Pick<ChunkStats, 'stages'> {
  if (value === undefined) return {};
  const stages = Object.entries(object(value, at, bad)).map(([stage, counts]) => {
    const named = Object.entries(object(counts, `${at}["${stage}"]`, bad)).map(([name, n]) => [name, count(n, `${at}["${stage}"]["${name}"]`, bad)] as const);
    return [stage, Object.fromEntries(named)] as const;
  });
  return { stages: Object.fromEntries(stages) };
}

/** A recorded size and sha256, when there is one (nightscores before them recorded none). */
function digest(file: Record<string, unknown>, at: string, bad: Bad): Partial<Digest> {
  if (file.bytes === undefined && file.sha256 === undefined) return {};
  return { bytes: count(file.bytes, `${at}.bytes`, bad), sha256: sha256(file.sha256, `${at}.sha256`, bad) };
}

/** The URI our layout gives the file, when the manifest names that one; any other is refused. */
function ourUri(value: unknown, out: Location, key: string, at: string, bad: Bad): string {
  const uri = out.storage.uri(key);
  if (text(value, at, bad) !== uri) bad(at, `${uri}, the name nightscore gives that chunk's file (it names ${JSON.stringify(value).slice(0, 200)})`);
  return uri;
}

type Bad = (at: string, what: string) => never;

function refuse(from: ReadBack): Bad {
  return (at, what) => {
    throw new NightscoreError('MANIFEST_INVALID', `${from.source}: ${at} is not ${what}; the manifest is not as nightscore wrote it, and retry keeps or removes nothing on its word`, {
      source: from.source,
      hint: `Something other than nightscore changed the manifest. Score the whole date again rather than retry it: ${from.rerun} (on the queue: run --queue --force).`,
    });
  };
}

function object(v: unknown, at: string, bad: Bad): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : bad(at, 'an object');
}

function list(v: unknown, at: string, bad: Bad, max = MAX_CHUNKS): unknown[] {
  return Array.isArray(v) && v.length <= max ? v : bad(at, `a list${Number.isFinite(max) ? ` of at most ${max}` : ''}`);
}

function text(v: unknown, at: string, bad: Bad): string {
  return typeof v === 'string' ? v : bad(at, 'a string');
}

function count(v: unknown, at: string, bad: Bad): number {
  return Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : bad(at, 'a whole number from 0');
}

function sha256(v: unknown, at: string, bad: Bad): string {
  return typeof v === 'string' && SHA256_RE.test(v) ? v : bad(at, 'a sha256 (64 lowercase hex digits)');
}
