/** Finishing a run: merging its chunks' results, checking the limits, and committing the output. */
import { errorRecord, NightscoreError, toNightscoreError, worthRetrying } from '../errors.js';
import { openLocation, type Location } from '../storage/open.js';
import type { RunPlan } from './begin.js';
import { commitOutput, lineOffsets, publishRejects, writeManifest } from './commit.js';
import { readManifest } from './output-folder.js';
import { checkOutputLock, releaseOutputLock, type HeldLock } from './lock.js';
import { OUTPUT_FILES, rejectsApart, rejectsFile, type CanarySummary, type RunManifest } from './manifest.js';
import { mergeStats, modelSeconds, type ChunkResult, type ChunkStats } from './chunk-result.js';
import { champion } from './spec.js';
import { runFailedHint } from '../model/hints.js';
import { readProfile } from '../drift/profile.js';
import { driftBytes, enforceDrift, reportDrift, summarizeDrift } from '../drift/report.js';
import { readPreviousCounts } from './drift-baseline.js';
import { reportShadow, shadowBytes, summarizeShadow } from '../shadow/report.js';

/**
 * Commits a run from its chunks' results: publishes rejects with absolute line numbers,
 * checks the limits, writes the final manifest and, on success, `_SUCCESS`, then releases
 * the output lock. A `failure` (a chunk that could not be scored) fails the run with that
 * error. Throws RUN_LOCK_LOST, writing nothing, when the attempt no longer holds the lock,
 * and a retried code (ERROR_CODES) met while committing unless `retried` is false.
 */
export async function finishRun(plan: RunPlan, results: ChunkResult[], failure?: unknown, opts: { retried?: boolean } = {}): Promise<RunManifest> {
  const manifest: RunManifest = structuredClone(plan.manifest);
  const { spec } = plan;
  const out = openLocation(spec.output.uri);
  const rejects = openLocation(spec.output.rejects_uri);
  const keys = spec.input.key;
  const csv = { delimiter: spec.output.csv.delimiter, escapeFormulas: spec.output.csv.escape_formulas };
  const done = [...results].sort((a, b) => a.index - b.index);
  const keep = new Set<string>();
  const offsets = lineOffsets(done);
  const fence = () => checkOutputLock(out, plan.lock);
  try {
    await fence();
  } catch (err) {
    // A commit that runs again after it published and released the lock (its queue lock
    // lapsed, a retry, a duplicate delivery) finds its own attempt's result and reports it.
    const published = toNightscoreError(err).code === 'RUN_LOCK_LOST' ? await publishedBy(out, plan.manifest.attempt) : undefined;
    if (published) return published;
    throw err;
  }
  try {
    if (failure !== undefined) throw failure;
    if (done.length !== plan.chunks.length || done.some((r, i) => r.index !== i)) {
      throw new NightscoreError('RUN_INCOMPLETE', `expected results for ${plan.chunks.length} chunks, got [${done.map((r) => r.index).join(', ')}]`);
    }
    for (const r of done) {
      keep.add(openLocation(r.part.uri).key);
      manifest.parts.push({ uri: r.part.uri, rows: r.part.rows });
      if (r.stagedRejects) {
        const key = await publishRejects(rejects, r, offsets, keys, csv);
        keep.add(key);
        manifest.rejects.push({ uri: rejects.storage.uri(key), rows: r.stagedRejects.rows });
      }
    }
    const stats = countDone(manifest, plan, done);
    checkModelScored(manifest, plan, stats);
    checkLimits(manifest);
    if (spec.canary) manifest.canary = canarySummary(plan, stats);
    if (spec.cost) manifest.cost = costOf(plan, stats);
    if (spec.shadow) await compareChallengers(out, manifest, plan, stats);
    if (spec.drift) await measureDrift(out, manifest, plan, stats);
    manifest.status = 'succeeded';
  } catch (err) {
    const error = toNightscoreError(err);
    // A storage hiccup while committing is not the run's fault: where the commit is retried
    // (the queue, with backoff), let it be rather than fail a good night. Where it is not (in
    // process), the run ends failed with the error, not with a `running` manifest.
    if (err !== failure && worthRetrying(error) && opts.retried !== false) throw error;
    manifest.status = 'failed';
    manifest.error = errorRecord(error);
    manifest.retry = { spec, chunks: plan.chunks, completed: done };
    // A failed run says what it did: the rows its finished chunks read, the objects it listed,
    // and the parts those chunks left in the folder (kept below), not a run that read nothing.
    countDone(manifest, plan, done);
    manifest.parts = done.map((r) => ({ uri: r.part.uri, rows: r.part.rows }));
    // Keep what the chunks wrote, rejects included, for whoever looks into the failure.
    for (const r of done) {
      keep.add(openLocation(r.part.uri).key);
      if (r.stagedRejects) {
        keep.add(openLocation(r.stagedRejects.uri).key);
        keep.add(rejectsFile(rejects, r.index));
      }
    }
  }
  const finished = Date.now();
  manifest.finished_at = new Date(finished).toISOString();
  manifest.duration_ms = finished - Date.parse(manifest.started_at);
  await commitOutput(out, manifest, keep, fence, rejectsApart(spec.output) ? rejects : undefined);
  await releaseOutputLock(out, plan.lock);
  return manifest;
}

/**
 * Ends an attempt that cannot go on (a run queued by an older nightscore, whose plan this one
 * cannot score): its manifest says failed with `error`, its files stay for whoever looks, and
 * its lock is released so the next attempt need not wait out the lease. Throws
 * RUN_LOCK_LOST, writing nothing, when the attempt no longer holds the lock.
 */
export async function abandonRun(outputUri: string, running: RunManifest, lock: HeldLock, error: NightscoreError): Promise<RunManifest> {
  const out = openLocation(outputUri);
  await checkOutputLock(out, lock);
  const finished = Date.now();
  const manifest: RunManifest = { ...running, status: 'failed', error: errorRecord(error), finished_at: new Date(finished).toISOString(), duration_ms: finished - Date.parse(running.started_at) };
  await writeManifest(out, manifest);
  await releaseOutputLock(out, lock);
  return manifest;
}

/** The final manifest of `attempt` when it was published whole: failed, or succeeded with `_SUCCESS`. */
async function publishedBy(out: Location, attempt: string): Promise<RunManifest | undefined> {
  const manifest = await readManifest(out);
  if (manifest?.attempt !== attempt || manifest.status === 'running') return undefined;
  if (manifest.status === 'succeeded' && !(await out.storage.stat(out.storage.join(out.key, OUTPUT_FILES.success)))) return undefined;
  return manifest;
}

/** The rows and input objects of the chunks that finished, into the manifest (every chunk, when the run succeeds); returns their merged stats. */
function countDone(manifest: RunManifest, plan: RunPlan, done: ChunkResult[]): ChunkStats {
  const stats = mergeStats(done.map((r) => r.stats));
  manifest.rows = stats.rows;
  manifest.inputs = plan.spec.input.objects.map((i) => ({ uri: i.uri, bytes: i.bytes, rows: stats.inputs[i.uri] ?? 0 }));
  return stats;
}

/**
 * A day on which the champion scored no row, and every row was rejected because it failed
 * on it alone, says more of the model than of the data (a graph that takes no batch of our
 * shape, columns fed in the wrong order): MODEL_RUN_FAILED with the export's fix, rather than
 * the reject limit's "fix the input". A chunk stops on this itself only when its reject limit
 * is certain to be exceeded, which a loose bound on the day's rows can keep it from knowing.
 */
function checkModelScored(manifest: RunManifest, plan: RunPlan, stats: ChunkStats): void {
  const { rows } = manifest;
  if (rows.scored > 0 || rows.rejected === 0) return;
  const failed = stats.stages?.['score.champion']?.failed ?? 0;
  if (failed !== rows.rejected) return;
  const model = champion(plan.spec);
  throw new NightscoreError('MODEL_RUN_FAILED', `the model failed on each of the ${rows.rejected} rows of ${plan.spec.date}, given alone, and scored none (see the rejects for each row's message)`, {
    source: model.location,
    hint: runFailedHint(model.producer, model.binding.job_key ?? 'model.features'),
  });
}

/**
 * The run's drift against its pinned profile: `_drift.json` written beside the parts, the
 * summary in the manifest, and under drift.mode: enforce, DRIFT_DETECTED when it drifted (the
 * file stays, for whoever looks into why).
 */
async function measureDrift(out: Location, manifest: RunManifest, plan: RunPlan, stats: ChunkStats): Promise<void> {
  const { spec } = plan;
  const { profile: pin, policy } = spec.drift!;
  const { profile } = await readProfile(pin.uri, pin.sha256);
  const previous = await readPreviousCounts(spec.drift!);
  const report = reportDrift({ job: spec.job.name, date: spec.date, model: champion(spec).sha256 }, profile, pin, policy, stats.drift, previous && { wanted: spec.drift!.previous!.dates, ...previous }, spec.drift!.segment !== null ? (stats.drift_segments ?? {}) : undefined);
  await out.storage.put(out.storage.join(out.key, OUTPUT_FILES.drift), driftBytes(report));
  manifest.drift = summarizeDrift(report);
  enforceDrift(report);
}

/** The run's challengers against its champion: `_shadow.json` beside the parts, the summary in the manifest. A challenger never fails the run. */
async function compareChallengers(out: Location, manifest: RunManifest, plan: RunPlan, stats: ChunkStats): Promise<void> {
  const report = reportShadow(plan.spec, stats);
  await out.storage.put(out.storage.join(out.key, OUTPUT_FILES.shadow), shadowBytes(report));
  manifest.shadow = summarizeShadow(report, stats);
}

/**
 * Each model's inference seconds (wall time inside its scoring calls, over every chunk and
 * thread) at the job's price per CPU hour: an inference thread is busy on one core meanwhile.
 */
function costOf(plan: RunPlan, stats: ChunkStats): NonNullable<RunManifest['cost']> {
  const { per_cpu_hour } = plan.spec.cost!;
  const models = plan.spec.models.map((m) => {
    const seconds = modelSeconds(stats, m.role);
    return { role: m.role, seconds, cost: (seconds / 3600) * per_cpu_hour };
  });
  return { per_cpu_hour, models, total: models.reduce((t, m) => t + m.cost, 0) };
}

function canarySummary(plan: RunPlan, stats: ChunkStats): CanarySummary {
  const model = plan.spec.models.find((m) => m.role === 'canary')!;
  const rows = (role: string) => stats.stages?.[`score.${role}`]?.rows ?? 0;
  return { ...plan.spec.canary!, model: { sha256: model.sha256, ref: model.registry?.ref ?? null, version: model.registry?.version ?? null }, rows: { champion: rows('champion'), canary: rows('canary') } };
}

function checkLimits(manifest: RunManifest): void {
  const { rows } = manifest;
  const { max_reject_rate: maxRate, min_rows: minRows } = manifest.limits;
  if (rows.read < minRows) {
    throw new NightscoreError('TOO_FEW_ROWS', `read ${rows.read} rows; limits.min_rows is ${minRows}`, {
      hint: 'An empty day usually means the upstream export failed; check it, or lower limits.min_rows.',
    });
  }
  const rate = rows.read === 0 ? 0 : rows.rejected / rows.read;
  if (rate > maxRate) {
    throw new NightscoreError('REJECT_RATE_EXCEEDED', `rejected ${rows.rejected} of ${rows.read} rows (${(rate * 100).toFixed(2)}%); limits.max_reject_rate is ${(maxRate * 100).toFixed(2)}%`, {
      hint: 'See the rejects file for each row\'s line and reason; fix the input, or raise limits.max_reject_rate.',
    });
  }
}
