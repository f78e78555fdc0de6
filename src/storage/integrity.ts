import { NightscoreError } from '../errors.js';

/**
 * The two ways a read can be of the wrong bytes. Both are decided at the storage edge and
 * never scored: a changed object cannot be read with ranges planned on its old version,
 * and a short body is tried again.
 */

/** The object is not the version a run was planned on: its byte ranges no longer fit it. */
export function inputChanged(uri: string) {
  return new NightscoreError('INPUT_CHANGED', `${uri} changed (or vanished) after the run was planned`, {
    source: uri,
    hint: 'An upstream job rewrote the input during the run; re-run the date once the input is final.',
  });
}

/** A body that ended before the bytes it should hold: retryable, because the next read may be whole. */
export function inputTruncated(uri: string, detail: string) {
  return new NightscoreError('INPUT_TRUNCATED', `${uri}: ${detail}`, {
    source: uri,
    hint: 'The transfer was cut short (or the object changed); it is read again on retry.',
  });
}
