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

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      kind: this.kind,
      message: this.message,
      hint: this.hint,
      source: this.source,
      line: this.line,
      column: this.column,
    };
  }
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
