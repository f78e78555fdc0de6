import { UnrecoverableError } from 'bullmq';
import { encodeFailure, toNightscoreError, worthRetrying } from '../errors.js';

/**
 * The error a queue job fails with: its message is the error's record (encodeFailure), which
 * the commit, `status` and metrics read back with decodeFailure. BullMQ retries plain errors
 * with backoff and fails an UnrecoverableError at once (worthRetrying decides).
 */
export function toQueueError(err: unknown): Error {
  const e = toNightscoreError(err);
  return worthRetrying(e) ? new Error(encodeFailure(e)) : new UnrecoverableError(encodeFailure(e));
}
