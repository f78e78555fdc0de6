import { namesInBrief } from '../drift/history.js';
import type { DriftSummary } from '../drift/report.js';
import { decodeFailure, fromErrorRecord, type NightscoreError } from '../errors.js';
import { locateRun, type JobDefinition } from '../job/load.js';
import { addRows, emptyRows, type ChunkResult, type RowCounts } from '../run/chunk-result.js';
import { findOutputLock, isLive } from '../run/lock.js';
import type { RunManifest } from '../run/manifest.js';
import { outputStateOf, readDateOutput, succeededSince } from '../run/output-folder.js';
import { openLocation } from '../storage/open.js';
import { runId, runLockOwner } from './config.js';
import type { Queues, RunJobData } from './queues.js';

/**
 * `interrupted`: the date's output says a run began, and no run is left to finish it (its
 * process died, or the queue lost it: Redis restarted without its data). Run it again.
 */
export type DateState = 'scheduled' | 'running' | 'succeeded' | 'failed' | 'interrupted' | 'missing' | 'cancelled';

export interface DateStatus {
  date: string;
  state: DateState;
  /** Chunks finished and planned, while running. */
  chunks?: { done: number; total: number };
  rows?: RowCounts;
  duration_ms?: number | null;
  sha256?: string;
  /** The registry version that scored the date (name@version), when the job names one. */
  model?: string;
  attempts?: number;
  /** From the queue, while it keeps the run: when it was enqueued, and once it ended, when (ISO 8601). */
  enqueued_at?: string;
  finished_at?: string;
  error?: string;
  /** When the date's output was last begun (its manifest's started_at), and the backfill its queued run belongs to. */
  started_at?: string;
  backfill?: string;
  /** input.wait: a queued run whose input is not there yet, since when, and why. */
  waiting_for_input?: { since: string; reason: string };
  /** The run's drift against its profile, as its manifest says, when it measured one. */
  drift?: DateDrift;
  /** Each challenger's agreement with the model (null: it compared no row), as the manifest says, when the run had any. */
  shadow?: Array<{ name: string; agreement: number | null }>;
  /** A canary date's second model: the rows it published (the manifest's canary block). */
  canary?: { model: string; rows: number };
}

/** A date's drift in brief: the overall status and the columns by status (the rest in `_drift.json`). */
export type DateDrift = Pick<DriftSummary, 'status' | 'drifted' | 'warned' | 'inconclusive'>;

/** A date's challengers and canary in brief, from its manifest's shadow and canary blocks. */
function modelsOf(manifest: Pick<RunManifest, 'shadow' | 'canary'>): Pick<DateStatus, 'shadow' | 'canary'> {
  return {
    ...(manifest.shadow ? { shadow: manifest.shadow.challengers.map((c) => ({ name: c.name, agreement: c.agreement })) } : {}),
    ...(manifest.canary ? { canary: { model: manifest.canary.labels.canary, rows: manifest.canary.rows.canary } } : {}),
  };
}

/** The manifest's drift block in brief, for a status line and a grid cell. */
export function dateDriftOf(manifest: Pick<RunManifest, 'drift'>): { drift?: DateDrift } {
  const d = manifest.drift;
  return d ? { drift: { status: d.status, drifted: d.drifted, warned: d.warned, inconclusive: d.inconclusive } } : {};
}

/**
 * One line per date, from the queue (state, chunk progress, attempts, failure reason) and
 * from the output folder (the manifest: rows, duration, model; `_SUCCESS`).
 */
export async function readStatus(queues: Queues, job: JobDefinition, dates: string[]): Promise<DateStatus[]> {
  return Promise.all(
    dates.map(async (date): Promise<DateStatus> => {
      // The queue's state first, then the job and the output: a run that finishes between
      // the reads has already written its failure reason and _SUCCESS when they are read.
      const id = runId(job.name, date);
      const state = await queues.runs.getJobState(id);
      const run = state === 'unknown' ? undefined : await queues.runs.getJob(id);
      const output = await readDateOutput(job, date);
      const { success, manifest } = output;
      const fromManifest = manifest && manifest.status !== 'running'
        ? { rows: manifest.rows, duration_ms: manifest.duration_ms, sha256: manifest.model.sha256, ...(manifest.model.name ? { model: `${manifest.model.name}@${manifest.model.version}` } : {}), ...(manifest.error ? { error: summary(fromErrorRecord(manifest.error)) } : {}), ...dateDriftOf(manifest), ...modelsOf(manifest) }
        : {};
      const backfill = (run?.data as RunJobData | undefined)?.backfill;
      const origin = { ...(manifest ? { started_at: manifest.started_at } : {}), ...(backfill ? { backfill } : {}) };
      const withOrigin = (status: DateStatus): DateStatus => ({ ...status, ...origin });
      if (run) {
        const attempts = run.attemptsMade;
        const enqueued_at = new Date(run.timestamp).toISOString();
        const ended = { attempts, enqueued_at, ...(run.finishedOn ? { finished_at: new Date(run.finishedOn).toISOString() } : {}), ...fromManifest };
        // A date scored since its queued run failed (in process, say) is what its output says.
        const scoredSince = run.finishedOn !== undefined && succeededSince(output, run.finishedOn);
        if (state === 'failed' && scoredSince) return withOrigin({ date, state: 'succeeded', ...fromManifest });
        if (state === 'failed') return withOrigin({ date, state: 'failed', ...ended, error: summary(decodeFailure(run.failedReason)) });
        if (state === 'completed') {
          return withOrigin(success
            ? { date, state: 'succeeded', ...ended }
            : { date, state: 'failed', ...ended, error: 'the run completed, but its output has no _SUCCESS now (changed since?)' });
        }
        const data = run.data as RunJobData;
        if (state === 'active' || state === 'waiting-children' || data.plan) {
          const counts = await run.getDependenciesCount({ processed: true, ignored: true, failed: true });
          const done = (counts.processed ?? 0) + (counts.ignored ?? 0) + (counts.failed ?? 0);
          // Rows of the chunks scored so far, from their results (the manifest comes at the commit).
          const results = Object.values(await run.getChildrenValues<Partial<ChunkResult> | null>().catch(() => ({})));
          const rows = results.flatMap((r) => (r?.stats?.rows ? [r.stats.rows] : [])).reduce(addRows, emptyRows());
          return withOrigin({ date, state: 'running', attempts, enqueued_at, chunks: { done, total: data.plan?.chunks.length ?? 0 }, rows });
        }
        const waiting = data.waitingSince === undefined ? {} : { waiting_for_input: { since: new Date(data.waitingSince).toISOString(), reason: data.waitingFor ?? '' } };
        return withOrigin({ date, state: 'scheduled', attempts, enqueued_at, ...waiting });
      }
      const folder = outputStateOf(output);
      if (folder === 'succeeded' || folder === 'failed') return withOrigin({ date, state: folder, ...fromManifest });
      if (folder === 'running') return withOrigin({ date, state: await unqueuedRunState(queues, job, date) });
      return withOrigin({ date, state: 'missing' });
    }),
  );
}

/**
 * A date whose manifest says running while the queue holds no run of it: run elsewhere (a
 * `nightscore run`, another queue) while another's live lock says so; otherwise nothing is
 * left to finish it. This queue's own run of the date renews its lock only while the queue
 * holds the run, so its lock, live or not, speaks for no one once the run is gone.
 */
async function unqueuedRunState(queues: Queues, job: JobDefinition, date: string): Promise<'running' | 'interrupted'> {
  const id = runId(job.name, date);
  const lock = await findOutputLock(openLocation(locateRun(job, date).outputUri));
  if (lock && isLive(lock) && lock.record?.owner !== runLockOwner(queues.config.prefix, id)) return 'running';
  // Enqueued and planned since the queue was first read: it runs.
  return (await queues.runs.getJobState(id)) === 'unknown' ? 'interrupted' : 'running';
}

/** A status table for a terminal. */
export function formatStatus(rows: DateStatus[]): string {
  const lines = rows.map((r) => {
    const state = r.state === 'running' && r.chunks ? `running ${r.chunks.done}/${r.chunks.total} chunks` : r.waiting_for_input ? 'waiting for input' : r.state;
    const parts = [r.date, state.padEnd(22)];
    if (r.rows) parts.push(`${r.rows.scored.toLocaleString('en-US')} scored, ${r.rows.rejected.toLocaleString('en-US')} rejected`);
    if (r.duration_ms != null) parts.push(`${(r.duration_ms / 1000).toFixed(1)} s`);
    if (r.sha256) parts.push(`model ${r.model ? `${r.model} ` : ''}${r.sha256.slice(0, 12)}`);
    if (r.attempts !== undefined) parts.push(`attempts ${r.attempts}`);
    if (r.error) parts.push(`error: ${r.error}`);
    if (r.waiting_for_input) parts.push(`since ${r.waiting_for_input.since}: ${r.waiting_for_input.reason}`);
    if (r.canary) parts.push(`canary ${r.canary.model} ${r.canary.rows.toLocaleString('en-US')} rows`);
    const drift = driftMark(r.drift);
    if (drift) parts.push(drift);
    if (r.shadow) parts.push(`· shadow: ${r.shadow.map((c) => `${c.name} ${c.agreement === null ? 'no data' : `${(c.agreement * 100).toFixed(2)}%`}`).join(', ')}`);
    return parts.join('  ');
  });
  return lines.join('\n');
}

/**
 * `· drift: f1, f2`: a date whose run drifted, or warned, marked at the end of its line (ok and
 * inconclusive are the usual case and say nothing; `nightscore drift` shows them all).
 */
function driftMark(drift: DateStatus['drift']): string | undefined {
  if (!drift || (drift.status !== 'drift' && drift.status !== 'warn')) return undefined;
  const names = namesInBrief(drift.drifted);
  return `· ${drift.status === 'drift' ? 'drift' : 'drift warn'}${names ? `: ${names}` : ''}`;
}

/** `4 succeeded · 1 failed`: counts by state, in one order everywhere. */
export function statesLine(counts: Record<string, number>): string {
  const order: DateState[] = ['succeeded', 'failed', 'interrupted', 'running', 'scheduled', 'missing', 'cancelled'];
  return order.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`).join(' · ');
}

/** A failure in one line: its code and message. */
function summary(e: NightscoreError): string {
  return `${e.code}: ${e.message}`;
}
