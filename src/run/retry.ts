/**
 * `nightscore retry`: a failed run's chunks that succeeded are kept, and only the others are
 * scored again, when the date still plans exactly as it did (the same input objects at the
 * same versions, the same model, the same job settings). Otherwise the whole date runs again,
 * and the reason is said. The failed manifest is read back as untrusted (failed-run.ts): the
 * model is the one the date was planned with, and a kept part holds the bytes its chunk wrote.
 */
import { describeEngine } from '../engine/engine.js';
import { locateRun, modelLocation, type JobDefinition } from '../job/load.js';
import { openLocation } from '../storage/open.js';
import { prepareJob, type PreparedJob } from './bind.js';
import { planDate, type DatePlan } from './begin.js';
import { readManifest } from './output-folder.js';
import { checkAgainstPlan, checkKept, plannedAsOf, readFailedPlan } from './failed-run.js';
import type { ChunkResult } from './chunk-result.js';
import type { RunSpec } from './spec.js';

export type RetryPlan =
  | { kind: 'chunks'; prepared: PreparedJob; planned: DatePlan; completed: ChunkResult[]; todo: number[]; rescored: Array<{ index: number; reason: string }> }
  | { kind: 'whole'; prepared: PreparedJob; reason: string }
  | { kind: 'nothing'; reason: string };

export async function planRetry(job: JobDefinition, date: string): Promise<RetryPlan> {
  const out = openLocation(locateRun(job, date).outputUri);
  const previous = await readManifest(out);
  if (!previous) return { kind: 'whole', prepared: await prepareJob(job), reason: `no run of ${date} has left a manifest` };
  if (previous.status === 'succeeded') return { kind: 'nothing', reason: `${date} succeeded (attempt ${String(previous.attempt)}); nothing to retry (run … --force to score it again)` };
  const from = { source: out.storage.uri(out.storage.join(out.key, '_manifest.json')), rerun: `nightscore run ${job.file} --date ${date}` };
  // The model the date was planned with: an alias read as it was then (backfill --model-as-of), as the queue's run reads it.
  const prepared = await prepareJob(job, { asOf: plannedAsOf(previous, modelLocation(job), from) });
  const whole = (reason: string): RetryPlan => ({ kind: 'whole', prepared, reason });
  if (previous.status !== 'failed') return whole(`its last attempt did not finish (${String(previous.status)})`);
  if (!previous.retry) return whole('its manifest, written by an earlier nightscore, keeps no plan to retry');
  const failed = readFailedPlan(previous, out, from);
  const fresh = await planDate(prepared, date);
  const changed = differs(failed.spec, fresh.spec) ?? (JSON.stringify(failed.chunks) === JSON.stringify(fresh.chunks) ? undefined : 'the chunks plan differently');
  if (changed) return whole(`the date no longer plans as it did: ${changed}`);
  checkAgainstPlan(failed.completed, fresh.chunks, from);
  const { kept, rescored } = await checkKept(out, failed.completed, fresh.spec.output.format);
  if (failed.completed.length > 0 && kept.length === 0) return whole(`no part can be kept: ${rescored[0]!.reason}${rescored.length > 1 ? ` (and ${rescored.length - 1} more)` : ''}`);
  const done = new Set(kept.map((r) => r.index));
  const todo = fresh.chunks.map((c) => c.index).filter((i) => !done.has(i));
  if (todo.length === 0) return whole(`every chunk had succeeded; the run failed at its commit (${String(previous.error?.code ?? 'unknown')})`);
  return { kind: 'chunks', prepared, planned: fresh, completed: kept, todo, rescored };
}

/** What differs between two plans of a date, in words, or undefined when they are the same (but for the attempt). */
function differs(before: RunSpec, now: RunSpec): string | undefined {
  const objects = (s: RunSpec) => new Map(s.input.objects.map((o) => [o.uri, o]));
  const [a, b] = [objects(before), objects(now)];
  for (const [uri, o] of a) {
    const n = b.get(uri);
    if (!n) return `${uri} is gone`;
    if (n.version !== o.version || n.bytes !== o.bytes) return `${uri} changed (its version was ${o.version}, it is ${n.version} now)`;
  }
  for (const uri of b.keys()) if (!a.has(uri)) return `${uri} is new`;
  if (before.version !== now.version) return `it was planned by another nightscore (run spec version ${String(before.version)}, ${now.version} now)`;
  if (before.models[0]?.sha256 !== now.models[0]?.sha256) return `the model is another (sha256 ${before.models[0]?.sha256.slice(0, 12)} then, ${now.models[0]?.sha256.slice(0, 12)} now)`;
  // The engine is part of the model's identity: another engine version or setting is another model.
  const [then, engine] = [before.models[0]?.engine, now.models[0]?.engine];
  if (then && engine && !(then.name === engine.name && then.version === engine.version && then.threads === engine.threads)) {
    return `the model scores under another engine (${describeEngine(then)} then, ${describeEngine(engine)} now)`;
  }
  if (JSON.stringify(before.drift) !== JSON.stringify(now.drift)) return 'the drift profile or policy is another (drift counted then could not be merged with drift counted now)';
  const rest = (s: RunSpec) => JSON.stringify({ ...s, attempt: '', input: { ...s.input, objects: [] } });
  return rest(before) === rest(now) ? undefined : 'the job file changed (keys, output, batch, limits or model binding)';
}
