/**
 * What may be asked of the queue, with its rules, in one place: submit the run of a date
 * (the --force, in-flight and succeeded rules), decide and start a backfill (its options
 * checked), cancel one. Each function takes plain values and a queue handle, returns what it
 * did as plain data and refuses with a NightscoreError; none writes to the terminal.
 * `run --queue`, `backfill`, the scheduler's fires and any later front door (an HTTP API)
 * call these and word the outcome themselves.
 */
import { NightscoreError } from '../errors.js';
import { checkModelAsOf, modelAsOf } from '../job/dates.js';
import { modelLocation, type JobDefinition } from '../job/load.js';
import { parseLogicalDate } from '../job/template.js';
import { isModelRef, parseModelRef } from '../registry/ref.js';
import { applyBackfill, expectedModel, planBackfill, succeededAfter, type BackfillDecision, type ExpectedModel, type NoExpectedModel, type Reprocess } from './backfill.js';
import { runId } from './config.js';
import { isInFlight, requeueRun, type Queues } from './queues.js';

export { cancelBackfill, type CancelOutcome } from './backfills.js';

export interface SubmitRunOptions {
  /**
   * Run the date again though it succeeded. Never replaces a run in flight: that is refused.
   * @defaultValue false
   */
  force?: boolean;
}

/** What submitting the run of a date did. */
export interface SubmittedRun {
  /** The run's id on the queue, runId(job, date). */
  id: string;
  /** Whether a run was put on the queue now. */
  added: boolean;
  /**
   * The date's run as it was found: its BullMQ state, `unknown` when the queue held none;
   * `completed` too when the queue held none, or a failed one, and the output says the date
   * succeeded since (a record trimmed from Redis, a date scored in process).
   */
  was: string;
}

/**
 * Submits the run of one date, by the queue's rules:
 * - nothing on the queue, the output not succeeded: enqueued (`was` unknown);
 * - its run failed: enqueued again, as it was asked for (its --model-as-of, its backfill);
 * - it succeeded, on the queue or as its output says: left alone (`was` completed);
 *   with `force`, enqueued again;
 * - its run is in flight (IN_FLIGHT_STATES): left alone (`was` its state), and with `force`
 *   refused with RUN_IN_PROGRESS, since replacing it would race the run being run.
 */
export async function submitRun(queues: Queues, job: JobDefinition, date: string, opts: SubmitRunOptions = {}): Promise<SubmittedRun> {
  const id = runId(job.name, parseLogicalDate(date));
  const { added, was } = await requeueRun(queues, job.name, job.file, date, { force: opts.force, succeededAfter: (ms) => succeededAfter(job, date, ms) });
  if (!added && opts.force && isInFlight(was)) {
    throw new NightscoreError('RUN_IN_PROGRESS', `${id} is in flight on the queue (${was}); --force re-runs a date that failed or succeeded, never one being run`, {
      hint: 'Wait for it to finish (nightscore status), then force it again.',
    });
  }
  return { id, added, was };
}

/** The ways a backfill picks its dates (see planBackfill). */
export const REPROCESS_MODES: readonly Reprocess[] = ['missing', 'failed', 'all', 'stale'];

/** A backfill's options as asked, before they are checked. */
export interface BackfillOptions {
  /** Which dates it runs: missing, failed, all or stale (see planBackfill). */
  reprocess: string;
  /** `date`, `now` or a YYYY-MM-DD: the registry alias as it was then (see modelAsOf); absent: as each run is planned. */
  modelAsOf?: string;
  /** Runs of this backfill in flight at once; absent: every date is enqueued at once. */
  maxParallel?: number;
}

/**
 * Checks what of a backfill's options needs no job file: BAD_OPTION for an unknown
 * --reprocess or a --model-as-of of the wrong form. Returns the --reprocess mode.
 */
export function checkBackfillOptions(opts: Pick<BackfillOptions, 'reprocess' | 'modelAsOf'>): Reprocess {
  if (!(REPROCESS_MODES as readonly string[]).includes(opts.reprocess)) {
    throw new NightscoreError('BAD_OPTION', `--reprocess takes missing, failed, all or stale, got "${opts.reprocess}"`);
  }
  checkModelAsOf(opts.modelAsOf);
  return opts.reprocess as Reprocess;
}

/** --model-as-of reads a registry alias as it was: a job naming its model otherwise has no past to read (BAD_OPTION). */
export function checkModelAsOfFits(job: JobDefinition, asOf: string | undefined): void {
  if (asOf === undefined || asOf === 'now') return;
  const written = modelLocation(job);
  if (!isModelRef(written) || parseModelRef(written).kind !== 'alias') {
    throw new NightscoreError('BAD_OPTION', `--model-as-of reads a registry alias as it was, and ${job.file} names its model by ${written}, which is not one`, {
      hint: 'Give the job model.uri: models:/<name>@<alias>, or leave --model-as-of out (a version or a path is the same model on every date).',
    });
  }
}

/** A backfill decided but not started: what `startBackfill` enqueues, and what a dry run shows. */
export interface BackfillPlan {
  job: JobDefinition;
  /** Every date asked for, in the order given, with whether it is enqueued and why. */
  decisions: BackfillDecision[];
  options: BackfillOptions & { reprocess: Reprocess };
}

/**
 * Decides, per date, whether a backfill of the job enqueues it (planBackfill's rules: a
 * run in flight is never touched), after checking its options. Changes nothing on the queue.
 */
export async function decideBackfill(queues: Queues, job: JobDefinition, dates: string[], opts: BackfillOptions): Promise<BackfillPlan> {
  const reprocess = checkBackfillOptions(opts);
  checkModelAsOfFits(job, opts.modelAsOf);
  const decisions = await planBackfill(queues, job, dates.map(parseLogicalDate), reprocess, expectedModels(job, opts.modelAsOf));
  return { job, decisions, options: { ...opts, reprocess } };
}

/**
 * Starts a decided backfill: records it and enqueues its dates (all at once, or fed
 * `maxParallel` at a time by a feeder on the queue). Returns its id and how many dates it runs.
 */
export async function startBackfill(queues: Queues, plan: BackfillPlan): Promise<{ id: string; added: number }> {
  const { maxParallel, modelAsOf: asOf, reprocess } = plan.options;
  return applyBackfill(queues, plan.job, plan.decisions, { maxParallel, modelAsOf: asOf, reprocess });
}

/**
 * What a run of each date would pin now (for --reprocess stale): a registry reference resolved
 * per date (with --model-as-of) or once; a model by location loaded once, for its sha256.
 */
function expectedModels(job: JobDefinition, asOf: string | undefined): (date: string) => Promise<ExpectedModel | NoExpectedModel> {
  // One resolution per instant asked (every date is "now", or each its own end with --model-as-of date).
  const found = new Map<string, Promise<ExpectedModel | NoExpectedModel>>();
  return (date) => {
    const at = isModelRef(modelLocation(job)) ? modelAsOf(asOf, date, job.schedule?.tz ?? 'UTC') : undefined;
    const key = at?.toISOString() ?? 'now';
    let model = found.get(key);
    if (!model) found.set(key, (model = expectedModel(job, at)));
    return model;
  };
}
