import { UnrecoverableError } from 'bullmq';
import { encodeFailure, NightscoreError, toNightscoreError, worthRetrying } from '../errors.js';
import { SPEC_VERSION } from '../run/spec.js';

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
 * A run or chunk job queued by another nightscore version, without the spec this worker works
 * from or with a spec of another version: it fails (not retried) rather than be scored by a guess.
 */
export function outdatedJob(what: 'run' | 'chunk', id: string, version?: number): NightscoreError {
  const why = version === undefined ? 'was queued by an earlier nightscore and has no run spec' : `was planned with run spec version ${version}, and this worker reads version ${SPEC_VERSION}`;
  return new NightscoreError('QUEUE_JOB_OUTDATED', `${what} job ${id} ${why}; it is not scored`, {
    hint: 'Run the date again (nightscore backfill <job> --from <date> --to <date> --reprocess failed): its new run is planned by this version.',
  });
}
