/**
 * Waiting for late input (input.wait): when to look again, and the failure once the wait is
 * over. The queue waits as a delayed job (run-processor.ts); `run --wait-for-input` waits here.
 */
import ms from 'ms';
import { NightscoreError, toNightscoreError } from '../errors.js';
import { locateRun, type JobDefinition } from '../job/load.js';
import { checkReady, listInputs } from './plan.js';

export interface InputWait {
  /** How long after the first look the run gives up, in ms. */
  timeout: number;
  /** Between looks, in ms. */
  poll: number;
}

/** When to look again for an input first missed at `since`, or undefined once the wait is over. */
export function nextLook(wait: InputWait | undefined, since: number, now: number): number | undefined {
  if (!wait) return undefined;
  const deadline = since + wait.timeout;
  if (now >= deadline) return undefined;
  return Math.min(now + wait.poll, deadline);
}

/** The INPUT_NOT_FOUND of the last look, saying how long the run waited. */
export function afterWaiting(missing: NightscoreError, wait: InputWait, since: number): NightscoreError {
  return new NightscoreError('INPUT_NOT_FOUND', `${missing.message}, after waiting ${ms(wait.timeout, { long: true })} (since ${new Date(since).toISOString()}, looking every ${ms(wait.poll, { long: true })})`, {
    source: missing.source,
    hint: 'The upstream export did not land in time. Once it has, run the date again (nightscore run … --queue re-runs a failed date), or raise input.wait.timeout.',
  });
}

/** Why a date's input is not there yet (an INPUT_NOT_FOUND), or undefined when it is ready to plan. */
export async function inputMissing(job: JobDefinition, date: string): Promise<NightscoreError | undefined> {
  const { inputUri } = locateRun(job, date);
  try {
    await checkReady(inputUri, job.input.ready_marker, date);
    await listInputs(inputUri, job.input.format, date);
    return undefined;
  } catch (err) {
    const e = toNightscoreError(err);
    if (e.code === 'INPUT_NOT_FOUND') return e;
    throw e;
  }
}

export interface WaitState {
  reason: string;
  /** When the next look is, and when the wait ends (ms since the epoch). */
  next: number;
  deadline: number;
}

/**
 * Waits in this process until the date's input is there (and ready), looking every
 * `wait.poll`; INPUT_NOT_FOUND once `wait.timeout` has passed, RUN_INTERRUPTED when `signal`
 * aborts meanwhile.
 */
export async function waitForInput(job: JobDefinition, date: string, wait: InputWait, opts: { signal?: AbortSignal; onWait?: (state: WaitState) => void } = {}): Promise<void> {
  const since = Date.now();
  for (;;) {
    const missing = await inputMissing(job, date);
    if (!missing) return;
    const next = nextLook(wait, since, Date.now());
    if (next === undefined) throw afterWaiting(missing, wait, since);
    opts.onWait?.({ reason: missing.message, next, deadline: since + wait.timeout });
    await new Promise<void>((resolve) => {
      const onAbort = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        opts.signal?.removeEventListener('abort', onAbort);
        resolve();
      }, Math.max(0, next - Date.now()));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
    if (opts.signal?.aborted) {
      throw new NightscoreError('RUN_INTERRUPTED', `stopped (${String(opts.signal.reason)}) while waiting for the input of ${date}: ${missing.message}`, {
        hint: 'Nothing was written for the date. Run it again when its input has landed.',
      });
    }
  }
}
