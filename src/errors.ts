import { redactSecrets } from './redact.js';

/**
 * Every failure nightscore reports to a user is a NightscoreError: a stable `code`
 * for scripts and alerting, a message that names where the problem is (file, key
 * path, line, column), and a hint that says what to do about it.
 *
 * A code's kind decides the CLI exit code; whether it is retried (in the queue, and by a
 * commit) is the code's too. Both come from ERROR_CODES, the one table, so a failure reads
 * the same — and is treated the same — however and wherever it was raised.
 */
export type ErrorKind = 'usage' | 'config' | 'input' | 'model' | 'storage' | 'limit' | 'internal';

export interface ErrorContract {
  kind: ErrorKind;
  /** Transient failures (network, 5xx, a cut body) may succeed when tried again; nothing else is retried. */
  retryable: boolean;
  /** What it means, in a few words (docs/errors.md, "Error codes", lists the table). */
  means: string;
}

const code = (kind: ErrorKind, means: string, retryable = false): ErrorContract => ({ kind, retryable, means });

/** Every code nightscore raises, with its kind and retry rule. docs/errors.md, "Error codes", is this table. */
export const ERROR_CODES = {
  BAD_DATE: code('usage', 'a --date, --from or --to that is not a calendar date'),
  BAD_OPTION: code('usage', 'a command-line option out of its range or missing'),
  BAD_RANGE: code('usage', 'a backfill range that ends before it starts, or is too long'),
  HTTP_HOST_REFUSED: code('usage', 'a request to the health server for a host name it does not answer for'),
  UI_NOT_FOUND: code('usage', 'a UI page or API path that names no job or page'),
  UI_READ_ONLY: code('usage', 'a UI request other than GET or HEAD: the UI changes nothing'),
  UI_UNAUTHORIZED: code('usage', 'a UI request without the NIGHTSCORE_UI_TOKEN bearer token'),

  BAD_ENV: code('config', 'an environment setting out of its range or not of its form'),
  BAD_REDIS_URL: code('config', 'NIGHTSCORE_REDIS_URL is not a redis:// or rediss:// URL'),
  BAD_TEMPLATE: code('config', 'a URI template with an unknown placeholder'),
  BAD_URI: code('config', 'a location that is not a local path, file:// or s3:// URI'),
  GATE_INVALID: code('config', 'a promotion gate file (model promote --gate) that is not YAML or breaks its schema'),
  GOLDEN_INVALID: code('config', 'a golden rows file that cannot be compared: no expected_ column, a row the reader refuses, a value not of its output\'s type'),
  HTTP_LISTEN: code('config', 'the health server cannot listen on its address'),
  HTTP_PORT_IN_USE: code('config', 'the health server\'s port is taken'),
  JOB_INVALID: code('config', 'a job file that is not valid YAML or breaks the schema'),
  JOB_NAME_DUPLICATE: code('config', 'two job files with one name'),
  JOB_NOT_FOUND: code('config', 'a job file that cannot be read'),
  JOBS_DIR_NOT_FOUND: code('config', 'a jobs folder that cannot be read'),
  MANIFEST_INVALID: code('config', 'a run\'s manifest (or _drift.json, _shadow.json) read back with a field not of its type, or naming a file outside its run\'s folders'),
  MISSING_COLUMN_UNKNOWN: code('config', 'input.missing names a column that is not a feature'),
  MODEL_CACHE_UNWRITABLE: code('config', 'a model cache folder this process cannot write'),
  MODEL_CACHE_UNSAFE: code('config', 'a model cache folder another user owns or can write'),
  MODEL_NO_FEATURES: code('config', 'no model.features and no feature_names in the model'),
  MODEL_REF_INVALID: code('config', 'a models:/ reference that is not one of its forms'),
  OUTPUT_COLUMN_CLASH: code('config', 'a prediction column named like a key or another output'),
  OUTPUT_COLUMNS_WIDTH: code('config', 'output.columns names more or fewer columns than the output has, or no row of the date scored to show an open width'),
  OUTPUT_NOT_OURS: code('config', 'the output folder holds part files nightscore did not write'),
  OUTPUT_OVERLAPS_INPUT: code('config', 'the output (or rejects) folder is, or is inside, the input (or around it)'),
  OUTPUT_UNKNOWN: code('config', 'output.columns names an output the model does not have'),
  PLAN_TOO_LARGE: code('config', 'a date that plans into more chunks than a run takes'),
  PROFILE_INVALID: code('config', 'a drift profile read back that is not one nightscore writes: a field not of its type, counts that do not add up'),
  PROFILE_MISMATCH: code('config', 'a drift profile built for another model, without a column the model reads or writes, or without the segments drift.segment asks for'),
  PROFILE_NOT_FOUND: code('config', 'a drift profile that cannot be read'),
  REDIS_AUTH: code('config', 'Redis refused the credentials'),
  REDIS_CA_FILE: code('config', 'the Redis CA file cannot be read'),
  REDIS_TLS: code('config', 'the Redis server\'s certificate is not trusted'),
  REGISTRY_NOT_SET: code('config', 'a models:/ reference, and no registry location set'),
  REJECTS_URI_CLASH: code('config', 'output.rejects_uri is the output folder itself'),
  S3_CREDENTIALS: code('config', 'no AWS credentials were found, or S3 rejected them'),
  UI_TOKEN_REQUIRED: code('config', 'the UI listens beyond loopback and NIGHTSCORE_UI_TOKEN is not set'),

  CSV_MALFORMED: code('input', 'a CSV record that cannot be parsed (quotes, column count)'),
  CSV_QUOTED_NEWLINE_AT_SPLIT: code('input', 'a quoted newline where a large object was split'),
  CSV_RECORD_TOO_LARGE: code('input', 'a CSV record larger than input.csv.max_record_bytes'),
  INPUT_BROKEN_LINK: code('input', 'a symbolic link in the input that points nowhere'),
  INPUT_CHANGED: code('input', 'an input object changed or vanished after the run was planned'),
  INPUT_COLUMN_TYPE: code('input', 'a Parquet column of a type that cannot be a feature or key'),
  INPUT_CORRUPT: code('input', 'an input object that cannot be decoded (gzip, Parquet pages)'),
  INPUT_DUPLICATE_COLUMN: code('input', 'a header that names one column twice'),
  INPUT_EMPTY: code('input', 'an input object with no header'),
  INPUT_MISSING_COLUMN: code('input', 'a feature or key column missing from an input'),
  INPUT_NOT_FOUND: code('input', 'no input objects for the date'),
  INPUT_SYMLINK_LOOP: code('input', 'symbolic links in the input that loop'),
  PARQUET_INVALID: code('input', 'a file that is not valid Parquet'),

  PROFILE_CHANGED: code('input', 'the drift profile changed after the run was planned'),

  CANARY_MISMATCH: code('model', 'a canary model fed or writing other columns than the model, whose rows it publishes beside'),
  MODEL_ALIAS_NOT_FOUND: code('model', 'a registry alias that is not set (or was not, at the date asked)'),
  MODEL_ALIAS_NO_PREVIOUS: code('model', 'a rollback of an alias whose history holds no earlier version'),
  MODEL_CHANGED: code('model', 'the model file changed after the run was planned'),
  MODEL_CHECK_FAILED: code('model', 'a model whose predictions differ from its golden rows beyond the tolerance'),
  MODEL_ENGINE_CHANGED: code('model', 'a chunk planned under another inference engine version than the worker has'),
  MODEL_EXTERNAL_DATA_INVALID: code('model', 'a model whose external data is named outside its folder'),
  MODEL_EXTERNAL_DATA_MISSING: code('model', 'an external data file of the model that cannot be read'),
  MODEL_FIXED_BATCH: code('model', 'a model whose input takes a fixed number of rows'),
  MODEL_INVALID: code('model', 'a file that is not a loadable ONNX model'),
  MODEL_LOCALE_MISSING: code('model', 'a text model whose StringNormalizer asks for a locale this machine does not have'),
  MODEL_NON_TENSOR_OUTPUT: code('model', 'a selected output that is not a tensor (a sequence or map other than a ZipMap ending the graph)'),
  MODEL_NOT_FOUND: code('model', 'a model file that cannot be read'),
  MODEL_OUTPUT_SHAPE: code('model', 'an output without one row per input row'),
  MODEL_RUN_FAILED: code('model', 'a model that fails on every row it is given, one at a time; or on a batch of rows whose halves it scores (no row is at fault: a graph built for one row, memory)'),
  MODEL_SHA_MISMATCH: code('model', 'a model file whose sha256 is not the pinned model.sha256'),
  MODEL_SIGNATURE: code('model', 'a model whose inputs do not fit the job\'s features'),
  REGISTRY_CORRUPT: code('model', 'a registered version whose stored bytes or records are not what was registered'),
  REGISTRY_HISTORY_INCOMPLETE: code('model', 'a registry whose alias history has a hole (a deleted event)'),
  SHADOW_COLUMNS: code('model', 'a challenger that reads a column the model does not (or as another type), or lacks the output compared (recorded; the run goes on)'),

  ALIAS_CONFLICT: code('storage', 'another move of the model\'s aliases landed first'),
  BACKFILL_LOST: code('storage', 'the queue lost a backfill being followed (Redis restarted without its data)'),
  FILE_ACCESS_DENIED: code('storage', 'the file system refused access (permissions)'),
  FILE_IO: code('storage', 'a local file operation failed'),
  FILE_IS_FOLDER: code('storage', 'a folder stands where a file is expected'),
  FILE_NO_SPACE: code('storage', 'the disk is full'),
  FILE_NOT_FOLDER: code('storage', 'a file stands where a folder is expected'),
  FILE_READ_ONLY: code('storage', 'the file system is read-only'),
  FILE_TOO_MANY_OPEN: code('storage', 'the process ran out of file descriptors', true),
  INPUT_TRUNCATED: code('storage', 'an object read back shorter than its size', true),
  LOCK_CONTENDED: code('storage', 'the output lock kept changing while being taken'),
  LOCK_READ_SHORT: code('storage', 'the output lock read back shorter than its size', true),
  MANIFEST_READ_SHORT: code('storage', 'the manifest read back shorter than its size', true),
  NOT_FOUND: code('storage', 'an object or file that does not exist'),
  REDIS_UNAVAILABLE: code('storage', 'Redis does not answer', true),
  REGISTRY_CONFLICT: code('storage', 'a version number or record taken by another writer'),
  REJECTS_MISSING: code('storage', 'a chunk\'s rejects vanished from the output folder'),
  REJECTS_READ_SHORT: code('storage', 'a chunk\'s staged rejects read back shorter than staged', true),
  RUN_IN_PROGRESS: code('storage', 'another attempt holds the date\'s output lock'),
  RUN_LOCK_LOST: code('storage', 'the attempt lost its output lock to another'),
  S3_ACCESS_DENIED: code('storage', 'S3 refused the credentials or the bucket policy'),
  S3_REQUEST_REJECTED: code('storage', 'S3 refused the request (4xx)'),
  S3_UNAVAILABLE: code('storage', 'S3 did not answer, or answered 5xx or throttled', true),

  DRIFT_DETECTED: code('limit', 'a run whose data drifted from the reference, under drift.mode: enforce'),
  REJECT_RATE_EXCEEDED: code('limit', 'more rejected rows than limits.max_reject_rate'),
  TOO_FEW_ROWS: code('limit', 'fewer rows read than limits.min_rows'),

  CHUNK_FAILED: code('internal', 'the queue failed a chunk for a reason of its own (stalled)'),
  INTERNAL: code('internal', 'an unexpected error: a bug to report', true),
  QUEUE_JOB_OUTDATED: code('internal', 'a job queued by an older nightscore, without a run spec'),
  RUN_INCOMPLETE: code('internal', 'a commit without a result for every chunk'),
  RUN_INTERRUPTED: code('internal', 'the run was stopped by a signal'),
  STATS_NOT_EXACT: code('internal', 'a row count that is not an exact integer'),
  THREAD_EXITED: code('internal', 'a scoring thread died (out of memory, a crash)', true),
} as const satisfies Record<string, ErrorContract>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The contract of a code; codes from another nightscore version (a queue failure reason) keep what their record says. */
export function contractOf(code: string, recorded?: { kind: ErrorKind; retryable?: boolean }): ErrorContract {
  const known = (ERROR_CODES as Record<string, ErrorContract>)[code];
  if (known) return known;
  return { kind: recorded?.kind ?? 'internal', retryable: recorded?.retryable ?? false, means: 'a code this version does not know' };
}

export interface ErrorDetails {
  /** What to do about it, in one sentence. */
  hint?: string;
  /** Where the problem is: a file or object URI. */
  source?: string;
  /** 1-based line in `source`. */
  line?: number;
  /** Column name (CSV header) or key path (job file). */
  column?: string;
  cause?: unknown;
}

export class NightscoreError extends Error {
  override readonly name: string = 'NightscoreError';
  readonly kind: ErrorKind;
  readonly retryable: boolean;
  readonly hint: string | undefined;
  readonly source: string | undefined;
  readonly line: number | undefined;
  readonly column: string | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    details: ErrorDetails = {},
    contract: Pick<ErrorContract, 'kind' | 'retryable'> = contractOf(code),
  ) {
    // Messages often quote a URL or a library's error; neither may carry a credential out.
    super(redactSecrets(message), details.cause === undefined ? undefined : { cause: details.cause });
    this.hint = details.hint === undefined ? undefined : redactSecrets(details.hint);
    this.source = details.source === undefined ? undefined : redactSecrets(details.source);
    this.line = details.line;
    this.column = details.column;
    this.kind = contract.kind;
    this.retryable = contract.retryable;
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
  return new NightscoreError(r.code as ErrorCode, r.message, { hint: r.hint, source: r.source, line: r.line, column: r.column }, contractOf(r.code, r));
}

/** The text a queue job fails with: the error's record as JSON (BullMQ keeps it as the job's failedReason). */
export function encodeFailure(err: unknown): string {
  return JSON.stringify(errorRecord(toNightscoreError(err)));
}

/**
 * Reads a failure reason back. Reasons nightscore did not write (BullMQ's own, "job stalled
 * more than allowable limit") are internal failures quoting it.
 */
export function decodeFailure(reason: string | undefined): NightscoreError {
  // BullMQ's type says string, but a job read just as it is retried or replaced can carry none.
  if (!reason) return new NightscoreError('CHUNK_FAILED', 'the queue marked the job failed without a reason', { hint: 'Look again in a moment (the job may have just been retried), or see the worker logs.' });
  try {
    const r = JSON.parse(reason) as Partial<ErrorRecord>;
    if (r && typeof r.code === 'string' && typeof r.kind === 'string' && typeof r.message === 'string') return fromErrorRecord(r as ErrorRecord);
  } catch {
    // not one of ours
  }
  return new NightscoreError('CHUNK_FAILED', reason, { hint: 'The queue failed the job for a reason of its own; see the worker logs.' });
}

/**
 * The one retry rule, the table's: transient failures (storage 5xx, timeouts, cut bodies)
 * and unexpected ones may succeed when tried again; config, input, model and limit errors never do.
 */
export function worthRetrying(e: NightscoreError): boolean {
  return e.retryable;
}

/** Exit code contract (docs/errors.md, "Exit codes"): 2 usage/config, 3 data-quality limit, 1 anything else. */
export function exitCodeFor(kind: ErrorKind): number {
  if (kind === 'usage' || kind === 'config') return 2;
  if (kind === 'limit') return 3;
  return 1;
}

/** Wraps anything thrown into a NightscoreError so the CLI never prints a bare stack trace. */
export function toNightscoreError(err: unknown): NightscoreError {
  if (err instanceof NightscoreError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new NightscoreError('INTERNAL', message, {
    cause: err,
    hint: 'This is unexpected; rerun with NIGHTSCORE_LOG_LEVEL=debug and report the log.',
  });
}
