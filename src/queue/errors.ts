import { UnrecoverableError } from 'bullmq';
import { NightscoreError, toNightscoreError, type ErrorKind } from '../errors.js';

/**
 * The error a queue job fails with. BullMQ retries plain errors with backoff and fails an
 * UnrecoverableError at once: config, model, schema and input errors never get better on
 * retry; storage hiccups and unknown failures may. The message keeps the error code first,
 * so `status` and the run's manifest can show it.
 */
export function toQueueError(err: unknown): Error {
  const e = toNightscoreError(err);
  const message = `${e.code}: ${e.message}${e.hint ? ` (hint: ${e.hint})` : ''}`;
  if (e.retryable || e.kind === 'internal') return new Error(message);
  return new UnrecoverableError(message);
}

const HINT_RE = / \(hint: (.*)\)$/s;

/** Reads a failed job's reason back into an error: its code, kind and hint. */
export function fromFailedReason(reason: string): NightscoreError {
  const m = /^([A-Z0-9_]+): (.*)$/s.exec(reason);
  const code = m?.[1] ?? 'CHUNK_FAILED';
  let message = m?.[2] ?? reason;
  const hint = HINT_RE.exec(message)?.[1];
  message = message.replace(HINT_RE, '');
  return new NightscoreError(kindOf(code), code, message, hint ? { hint } : {});
}

function kindOf(code: string): ErrorKind {
  if (code.startsWith('MODEL_')) return 'model';
  if (code.startsWith('S3_') || code.startsWith('FILE_') || code === 'NOT_FOUND') return 'storage';
  if (code === 'INTERNAL' || code === 'CHUNK_FAILED') return 'internal';
  if (code.startsWith('JOB_') || code.startsWith('OUTPUT_')) return 'config';
  return 'input';
}
