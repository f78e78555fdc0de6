import { redactSecrets } from './redact.js';

/**
 * Every failure nightscore reports to a user is a NightscoreError: a stable `code`
 * for scripts and alerting, a message that names where the problem is (file, key
 * path, line, column), and a hint that says what to do about it.
 *
 * `kind` decides two things elsewhere: the CLI exit code, and (in the queue) whether
 * a failure is worth retrying. Config, usage, input-schema and model errors never
 * get better on retry; storage hiccups may.
 */
export type ErrorKind = 'usage' | 'config' | 'input' | 'model' | 'storage' | 'limit' | 'internal';

export interface ErrorDetails {
  /** What to do about it, in one sentence. */
  hint?: string;
  /** Where the problem is: a file or object URI. */
  source?: string;
  /** 1-based line in `source`. */
  line?: number;
  /** Column name (CSV header) or key path (job file). */
  column?: string;
  /** Transient failures (network, 5xx) may succeed when tried again. */
  retryable?: boolean;
  cause?: unknown;
}

export class NightscoreError extends Error {
  override readonly name: string = 'NightscoreError';
  readonly hint: string | undefined;
  readonly source: string | undefined;
  readonly line: number | undefined;
  readonly column: string | undefined;
  readonly retryable: boolean;

  constructor(
    readonly kind: ErrorKind,
    readonly code: string,
    message: string,
    details: ErrorDetails = {},
  ) {
    // Messages often quote a URL or a library's error; neither may carry a credential out.
    super(redactSecrets(message), details.cause === undefined ? undefined : { cause: details.cause });
    this.hint = details.hint === undefined ? undefined : redactSecrets(details.hint);
    this.source = details.source === undefined ? undefined : redactSecrets(details.source);
    this.line = details.line;
    this.column = details.column;
    this.retryable = details.retryable ?? false;
  }

  get exitCode(): number {
    return exitCodeFor(this.kind);
  }

  /** The text a person reads: code, message, then the remedy. */
  describe(): string {
    return this.hint ? `${this.code}: ${this.message}\n  hint: ${this.hint}` : `${this.code}: ${this.message}`;
  }

  toJSON(): ErrorRecord {
    return errorRecord(this);
  }
}

/**
 * An error as plain data: what crosses a thread, a queue failure reason and a manifest, and
 * what `status` and metrics read back. One shape, written and read by the functions below
 * only, so a failure reads the same however the date was run.
 */
export interface ErrorRecord {
  code: string;
  kind: ErrorKind;
  message: string;
  hint?: string;
  source?: string;
  line?: number;
  column?: string;
  retryable?: boolean;
}

export function errorRecord(e: NightscoreError): ErrorRecord {
  return {
    code: e.code,
    kind: e.kind,
    message: e.message,
    ...(e.hint === undefined ? {} : { hint: e.hint }),
    ...(e.source === undefined ? {} : { source: e.source }),
    ...(e.line === undefined ? {} : { line: e.line }),
    ...(e.column === undefined ? {} : { column: e.column }),
    ...(e.retryable ? { retryable: true } : {}),
  };
}

export function fromErrorRecord(r: ErrorRecord): NightscoreError {
  return new NightscoreError(r.kind, r.code, r.message, { hint: r.hint, source: r.source, line: r.line, column: r.column, retryable: r.retryable });
}

/** The text a queue job fails with: the error's record as JSON (BullMQ keeps it as the job's failedReason). */
export function encodeFailure(err: unknown): string {
  return JSON.stringify(errorRecord(toNightscoreError(err)));
}

/**
 * Reads a failure reason back. Reasons nightscore did not write (BullMQ's own, "job stalled
 * more than allowable limit") are internal failures quoting it.
 */
export function decodeFailure(reason: string): NightscoreError {
  try {
    const r = JSON.parse(reason) as Partial<ErrorRecord>;
    if (r && typeof r.code === 'string' && typeof r.kind === 'string' && typeof r.message === 'string') return fromErrorRecord(r as ErrorRecord);
  } catch {
    // not one of ours
  }
  return new NightscoreError('internal', 'CHUNK_FAILED', reason, { hint: 'The queue failed the job for a reason of its own; see the worker logs.' });
}

/**
 * The one retry rule: transient failures (storage 5xx, timeouts, cut bodies) and unexpected
 * ones may succeed when tried again; config, input, model and limit errors never do.
 */
export function worthRetrying(e: NightscoreError): boolean {
  return e.retryable || e.code === 'INTERNAL';
}

/** Exit code contract (README "Exit codes"): 2 usage/config, 3 data-quality limit, 1 anything else. */
export function exitCodeFor(kind: ErrorKind): number {
  if (kind === 'usage' || kind === 'config') return 2;
  if (kind === 'limit') return 3;
  return 1;
}

export const usageError = (code: string, message: string, details?: ErrorDetails) =>
  new NightscoreError('usage', code, message, details);
export const configError = (code: string, message: string, details?: ErrorDetails) =>
  new NightscoreError('config', code, message, details);
export const inputError = (code: string, message: string, details?: ErrorDetails) =>
  new NightscoreError('input', code, message, details);
export const modelError = (code: string, message: string, details?: ErrorDetails) =>
  new NightscoreError('model', code, message, details);
export const storageError = (code: string, message: string, details?: ErrorDetails) =>
  new NightscoreError('storage', code, message, details);

/** Wraps anything thrown into a NightscoreError so the CLI never prints a bare stack trace. */
export function toNightscoreError(err: unknown): NightscoreError {
  if (err instanceof NightscoreError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new NightscoreError('internal', 'INTERNAL', message, {
    cause: err,
    hint: 'This is unexpected; rerun with NIGHTSCORE_LOG_LEVEL=debug and report the log.',
  });
}
