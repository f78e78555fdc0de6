import { describe, expect, it } from 'vitest';
import { decodeFailure, encodeFailure, ERROR_CODES, exitCodeFor, NightscoreError, worthRetrying, type ErrorCode } from '../src/errors.js';
import { section } from './support/docs.js';

/** The one error table: code → kind, retried, exit code. docs/errors.md lists it for operators. */

describe('the error table', () => {
  it('is the "Error codes" table of docs/errors.md, row for row', () => {
    const rows = [...section('docs/errors.md', 'Error codes').matchAll(/^\| `([A-Z0-9_]+)` \| (\w+) \| (yes|no) \| (\d) \| (.+) \|$/gm)].map((m) => m.slice(1, 6));
    const table = Object.entries(ERROR_CODES).map(([code, c]) => [code, c.kind, c.retryable ? 'yes' : 'no', String(exitCodeFor(c.kind)), c.means]);
    expect(rows).toEqual(table);
  });

  it('decides kind and retry for every error of a code, and survives a queue failure reason whole', () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      const e = new NightscoreError(code, 'm', { hint: 'h', source: 's', line: 3, column: 'c' });
      expect(e.kind).toBe(ERROR_CODES[code].kind);
      expect(worthRetrying(e)).toBe(ERROR_CODES[code].retryable);
      expect(decodeFailure(encodeFailure(e)).toJSON()).toEqual(e.toJSON());
    }
  });

  it('keeps what a record of another version says of a code this one does not know', () => {
    const e = decodeFailure(JSON.stringify({ code: 'FROM_THE_FUTURE', kind: 'storage', message: 'm', retryable: true }));
    expect(e.toJSON()).toEqual({ code: 'FROM_THE_FUTURE', kind: 'storage', message: 'm', retryable: true });
    expect(decodeFailure('job stalled more than allowable limit').toJSON()).toMatchObject({ code: 'CHUNK_FAILED', kind: 'internal' });
  });

  it('reads a failed job that carries no reason (read as the queue retries it) as a failure saying so', () => {
    expect(decodeFailure(undefined).toJSON()).toMatchObject({ code: 'CHUNK_FAILED', kind: 'internal', message: 'the queue marked the job failed without a reason' });
  });
});
