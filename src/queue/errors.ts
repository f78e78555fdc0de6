import { UnrecoverableError } from 'bullmq';
import { encodeFailure, NightscoreError, toNightscoreError, worthRetrying } from '../errors.js';

/**
 * The error a queue job fails with: its message is the error's record (encodeFailure), which
 * the commit, `status` and metrics read back with decodeFailure. BullMQ retries plain errors
 * with backoff and fails an UnrecoverableError at once (worthRetrying decides).
 */
export function toQueueError(err: unknown): Error {
  const e = toNightscoreError(err);
  return worthRetrying(e) ? new Error(encodeFailure(e)) : new UnrecoverableError(encodeFailure(e));
}

/**
 * A run or chunk job queued by a nightscore older than this worker, without the spec it
 * now works from: it fails (not retried) rather than be scored from a guess.
 */
export function outdatedJob(what: 'run' | 'chunk', id: string): NightscoreError {
  return new NightscoreError('QUEUE_JOB_OUTDATED', `${what} job ${id} was queued by an earlier nightscore and has no run spec; it is not scored`, {
    hint: 'Run the date again (nightscore backfill <job> --from <date> --to <date> --reprocess failed): its new run is planned by this version.',
  });
}
