/**
 * `nightscore retry`: a failed run's chunks that succeeded are kept, and only the others are
 * scored again, when the date still plans exactly as it did (the same input objects at the
 * same versions, the same model, the same job settings). Otherwise the whole date runs again,
 * and the reason is said.
 */
import { locateRun } from '../job/load.js';
import { openLocation } from '../storage/open.js';
import type { PreparedJob } from './bind.js';
import { planDate, type DatePlan } from './begin.js';
import { readManifest } from './commit.js';
import type { ChunkResult } from './score-chunk.js';
import type { RunSpec } from './spec.js';

export type RetryPlan =
  | { kind: 'chunks'; planned: DatePlan; completed: ChunkResult[]; todo: number[] }
  | { kind: 'whole'; reason: string }
  | { kind: 'nothing'; reason: string };

export async function planRetry(prepared: PreparedJob, date: string): Promise<RetryPlan> {
  const out = openLocation(locateRun(prepared.job, date).outputUri);
  const previous = await readManifest(out);
  if (!previous) return { kind: 'whole', reason: `no run of ${date} has left a manifest` };
  if (previous.status === 'succeeded') return { kind: 'nothing', reason: `${date} succeeded (attempt ${previous.attempt}); nothing to retry (run … --force to score it again)` };
  if (previous.status !== 'failed') return { kind: 'whole', reason: `its last attempt did not finish (${previous.status})` };
  if (!previous.retry) return { kind: 'whole', reason: 'its manifest, written by an earlier nightscore, keeps no plan to retry' };
  const fresh = await planDate(prepared, date);
  const changed = differs(previous.retry.spec, fresh.spec) ?? (JSON.stringify(previous.retry.chunks) === JSON.stringify(fresh.chunks) ? undefined : 'the chunks plan differently');
  if (changed) return { kind: 'whole', reason: `the date no longer plans as it did: ${changed}` };
  const { completed } = previous.retry;
  for (const r of completed) {
    const { storage, key } = openLocation(r.part.uri);
    if (!(await storage.stat(key))) return { kind: 'whole', reason: `${r.part.uri}, the part of chunk ${r.index}, is gone` };
  }
  const done = new Set(completed.map((r) => r.index));
  const todo = fresh.chunks.map((c) => c.index).filter((i) => !done.has(i));
  if (todo.length === 0) return { kind: 'whole', reason: `every chunk had succeeded; the run failed at its commit (${previous.error?.code ?? 'unknown'})` };
  return { kind: 'chunks', planned: fresh, completed, todo };
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
  if (before.models[0]?.sha256 !== now.models[0]?.sha256) return `the model is another (sha256 ${before.models[0]?.sha256.slice(0, 12)} then, ${now.models[0]?.sha256.slice(0, 12)} now)`;
  const rest = (s: RunSpec) => JSON.stringify({ ...s, attempt: '', input: { ...s.input, objects: [] } });
  return rest(before) === rest(now) ? undefined : 'the job file changed (keys, output, batch, limits or model binding)';
}
