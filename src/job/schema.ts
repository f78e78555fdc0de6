import ms, { type StringValue } from 'ms';
import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';

/**
 * The job file schema. Objects are strict so that a typo ("chunck:") is an error that
 * names the key, rather than a setting silently ignored at 02:00.
 */
const name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'expected 1-64 characters of a-z, 0-9, ".", "_" or "-", starting with a letter or digit');

const columnName = z.string().min(1, 'expected a non-empty column name');

/** Every model input and the columns that fill it (model.inputs, shadow[].inputs): one column or a list each. */
const inputColumns = z
  .record(z.string().min(1), z.union([columnName, z.array(columnName).min(1)]))
  .refine((m) => Object.keys(m).length > 0, 'expected at least one input')
  .transform((m) => Object.fromEntries(Object.entries(m).map(([input, columns]) => [input, Array.isArray(columns) ? columns : [columns]])));

const missingPolicy = z.enum(['reject', 'nan']);

const csvInputOptions = z.strictObject({
  /** Field delimiter, one character. @defaultValue "," */
  delimiter: z.string().length(1, 'expected a single character').default(','),
  /** Largest single record in bytes; protects memory from a runaway quoted field. @defaultValue 1 MiB */
  max_record_bytes: z.number().int().positive().default(1024 * 1024),
  /**
   * Whether large objects may be split into byte ranges at newlines. Set false when quoted
   * fields contain newlines, so each object is read whole by one chunk. @defaultValue true
   */
  split: z.boolean().default(true),
});

const csvOutputOptions = z.strictObject({
  delimiter: z.string().length(1, 'expected a single character').default(','),
  /**
   * Prefix text cells (keys, string labels, reject reasons) that start with =, +, -, @, tab
   * or CR with a single quote, so a spreadsheet opening the file runs no formula.
   * Numbers are never changed. @defaultValue false
   */
  escape_formulas: z.boolean().default(false),
});

/** A duration as people write it, "6h", "5m", "30s", "1d" (the `ms` package reads it), in ms. */
const duration = z.union([z.string(), z.number()]).transform((raw, ctx) => {
  const n = typeof raw === 'number' ? Number.NaN : ms(raw as StringValue);
  if (!Number.isFinite(n) || n <= 0 || n > 30 * 86_400_000) {
    ctx.addIssue({ code: 'custom', message: `expected a duration such as "30s", "5m", "6h" or "1d" (at most 30 days), got ${JSON.stringify(raw)}` });
    return z.NEVER;
  }
  return n;
});

/** A share of rows: 0 to 1. */
const share = z.number().min(0).max(1);

/** A statistic's two thresholds: a column warns past the first and drifts past the second. */
const thresholds = z
  .strictObject({ warn: z.number().min(0), drift: z.number().min(0) })
  .refine((t) => t.warn <= t.drift, { message: 'expected warn at most drift', path: ['warn'] });

export const jobSchema = z.strictObject({
  name,
  description: z.string().optional(),
  /**
   * The model registry that `models:/` references in model.uri resolve against: an s3://
   * prefix or a folder. @defaultValue NIGHTSCORE_REGISTRY_URI
   */
  registry: z.string().min(1).optional(),
  schedule: z
    .strictObject({
      // Checked with the parser BullMQ's schedulers use, so a schedule that loads also fires.
      cron: z.string().refine(validCron, 'expected a cron expression such as "0 2 * * *" (minute hour day month weekday)'),
      tz: z.string().refine(validTimeZone, 'expected an IANA time zone such as "UTC" or "Europe/Berlin"').default('UTC'),
      /** Days between the fire date and the logical date it scores. @defaultValue 1 */
      lag: z.number().int().min(0).default(1),
    })
    .optional(),
  input: z.strictObject({
    uri: z.string().min(1),
    format: z.enum(['csv', 'parquet']),
    /**
     * Late upstream data: a run whose input is not there (or not ready) waits, polling every
     * `poll`, and fails with INPUT_NOT_FOUND once `timeout` has passed since it first looked.
     * On the queue it waits as a delayed job, holding no worker slot and no lock.
     * @defaultValue no waiting: a missing input fails the run at once
     */
    wait: z.strictObject({ timeout: duration, poll: duration.default(300_000) }).optional(),
    /**
     * An object the upstream writes last in the input folder (`_SUCCESS`): the input is ready
     * only once it is there, so a day still being written is never scored.
     */
    ready_marker: z.string().regex(/^[^/\\]+$/, 'expected a file name in the input folder, such as _SUCCESS').optional(),
    /** Columns copied to every output and rejects row to identify it. */
    key: z.array(columnName).default([]),
    csv: csvInputOptions.default({ delimiter: ',', max_record_bytes: 1024 * 1024, split: true }),
    /**
     * What a missing feature value (an empty CSV cell, `NaN`/`nan` text, a Parquet null or
     * NaN) does: `reject` the row, or feed `nan` to the model (tree models route NaN down a
     * learned branch). One policy for every feature, or a map of features to policies, the
     * others rejecting. @defaultValue reject
     */
    missing: z.union([missingPolicy, z.record(columnName, missingPolicy)]).default('reject'),
  }),
  model: z.strictObject({
    /** Where the model is: a local path, a file:// URL, an s3:// object (fetched into the model cache), or a registry reference models:/name@alias, models:/name/3, models:/name/latest. */
    uri: z.string().min(1).optional(),
    /** The name model.uri had first; either may be given. */
    path: z.string().min(1).optional(),
    /** Feature columns in the order the model expects; optional when the model carries `feature_names`. */
    features: z.array(columnName).min(1).optional(),
    /** Name of the model input to feed; optional when the model has exactly one input. */
    input: z.string().optional(),
    /**
     * Every model input and the columns that fill it, in order: `{ num: [a, b], region: region }`.
     * Each input's element type comes from the model. Instead of `features` and `input`.
     */
    inputs: inputColumns.optional(),
    /** Pins the model: a model file whose SHA-256 differs is refused. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits (sha256sum of the model file)').optional(),
    /** Intra-op threads for onnxruntime. @defaultValue 1 (parallelism comes from chunks, not from ORT) */
    threads: z.number().int().min(1).max(256).default(1),
  }).refine((m) => m.inputs === undefined || (m.features === undefined && m.input === undefined), {
    message: 'model.inputs names every input and its columns, so model.features and model.input go with it: use one or the other',
    path: ['inputs'],
  }).refine((m) => m.uri !== undefined || m.path !== undefined, {
    message: 'missing; expected model.uri (or model.path): the model file, a local path or an s3:// URI',
    path: ['uri'],
  }).refine((m) => m.uri === undefined || m.path === undefined, {
    message: 'model.path is the older name of model.uri: give one of them',
    path: ['path'],
  }),
  output: z.strictObject({
    uri: z.string().min(1),
    format: z.enum(['csv', 'parquet']),
    /**
     * Which model outputs become columns and what they are called: `label: churned` or
     * `probabilities: [p_stay, p_churn]`. When absent, every tensor output is written
     * under its own name (`o`, or `o_0 … o_{C-1}`).
     */
    columns: z.record(z.string(), z.union([columnName, z.array(columnName).min(1)])).optional(),
    /**
     * Where the rejects files go, a folder (a template, like uri) of their own: by default
     * `_rejects/` inside the output folder. Set it when downstream globs over the output
     * (`out/**\/*.csv`) must see predictions only.
     */
    rejects_uri: z.string().min(1).optional(),
    csv: csvOutputOptions.default({ delimiter: ',', escape_formulas: false }),
    parquet: z
      .strictObject({
        /** Compression of Parquet parts. @defaultValue SNAPPY */
        codec: z.enum(['SNAPPY', 'UNCOMPRESSED']).default('SNAPPY'),
      })
      .default({ codec: 'SNAPPY' }),
  }),
  chunk: z
    .strictObject({
      /** Rows per inference batch: one float32 tensor of [rows, features]. @defaultValue 50000 */
      rows: z.number().int().min(1).max(10_000_000).default(50_000),
      /**
       * Input bytes per chunk, the unit of work (one queue job, one part file): larger objects
       * are split into ranges of this size, smaller ones packed together. @defaultValue 64 MiB
       */
      bytes: z.number().int().min(256, 'expected at least 256 bytes: a chunk is a queue job and a part file, and the default of 64 MiB suits most days').max(2 ** 40).default(64 * 1024 * 1024),
    })
    .default({ rows: 50_000, bytes: 64 * 1024 * 1024 }),
  limits: z
    .strictObject({
      /** The run fails when rejected / read exceeds this. @defaultValue 0.01 */
      max_reject_rate: z.number().min(0).max(1).default(0.01),
      /** The run fails when it reads fewer rows than this: an empty day is usually an upstream failure. @defaultValue 1 */
      min_rows: z.number().int().min(0).default(1),
    })
    .default({ max_reject_rate: 0.01, min_rows: 1 }),
  /**
   * Drift of each run against the model version's reference profile (docs/drift.md). With a
   * profile and no `drift:` block the mode is `warn`.
   */
  drift: z
    .strictObject({
      /** The reference profile (nightscore profile build): a path relative to the job file, or an s3:// URI. */
      profile: z.string().min(1).optional(),
      /**
       * What a run is judged against: `reference` (the profile's counts), or `{ previous: N }`, the
       * union of the last N succeeded dates of this job counted on the same profile (the reference
       * comparison is reported too). @defaultValue reference
       */
      baseline: z.union([z.literal('reference'), z.strictObject({ previous: z.number().int().min(1).max(90) })]).default('reference'),
      /**
       * Profile and report drift per segment of this column (a key column or a column the model
       * reads) too: its most frequent reference values, the rest OTHER, a missing value NULL,
       * fixed in the profile. Segments are reported; the run's status is the whole run's.
       */
      segment: columnName.optional(),
      /** off: not measured; warn: measured and reported; enforce: a run that drifts fails, naming the columns. @defaultValue warn */
      mode: z.enum(['off', 'warn', 'enforce']).default('warn'),
      /** Population stability index on the reference's deciles, for numeric columns. @defaultValue { warn: 0.1, drift: 0.25 } */
      psi: thresholds.default({ warn: 0.1, drift: 0.25 }),
      /** Jensen-Shannon distance (base 2), for categories, labels and probabilities. @defaultValue { warn: 0.1, drift: 0.2 } */
      js: thresholds.default({ warn: 0.1, drift: 0.2 }),
      /** Largest change in a column's share of missing values before it drifts. @defaultValue 0.05 */
      missing_delta: share.default(0.05),
      /** Largest share of values never seen in the reference before a column drifts. @defaultValue 0.01 */
      unseen: share.default(0.01),
      /** The run drifts when at least this share of the features drift (or any prediction does). @defaultValue 0.5 */
      max_drifted_share: z.number().gt(0).max(1).default(0.5),
      /** Thresholds of one column, over the ones above. */
      columns: z
        .record(
          columnName,
          z.strictObject({ psi: thresholds.optional(), js: thresholds.optional(), missing_delta: share.optional(), unseen: share.optional() }),
        )
        .default({}),
    })
    .optional(),
  /**
   * Challengers scored beside the model in the same pass, over the same batches, and compared
   * with it row by row (docs/shadow.md). A challenger never fails the run: one that cannot load
   * or fails is recorded in the manifest, and its comparison says "no data".
   */
  shadow: z
    .array(
      z.strictObject({
        /** The challenger, as model.uri names a model: a path, an s3:// URI, or a models:/ reference. */
        uri: z.string().min(1),
        /** What the comparison calls it. @defaultValue the registry name@version, else the file's name */
        name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, 'expected letters, digits, ".", "_", "@" or "-" (at most 64)').optional(),
        /**
         * Its feature columns in its order, among the columns the model reads. @defaultValue the
         * model's binding (model.features, model.input, model.inputs), else its own feature_names
         */
        features: z.array(columnName).min(1).optional(),
        /** The input `features` feeds, when it has several. */
        input: z.string().optional(),
        /** Every input of it and the columns that fill it, as model.inputs. */
        inputs: inputColumns.optional(),
      }).refine((c) => c.inputs === undefined || (c.features === undefined && c.input === undefined), {
        message: 'shadow[].inputs names every input and its columns: use it or features, not both',
        path: ['inputs'],
      }),
    )
    .max(8)
    .refine((list) => new Set(list.map((s) => s.name ?? s.uri)).size === list.length, { message: 'expected each challenger once (give each a name of its own)' })
    .optional(),
  /**
   * A sticky canary (docs/shadow.md, "The sticky canary"): rows whose key hashes below
   * `fraction` are scored by this model in the published output, the rest by the model, and a
   * `model_version` column says which. The same keys on every date and re-run, for one salt.
   */
  canary: z
    .strictObject({
      /** The canary model, as model.uri names a model. It is bound as the model is and must write the same columns. */
      uri: z.string().min(1),
      /** The share of keys it scores, above 0 and below 1. */
      fraction: z.number().gt(0).lt(1),
      /** Mixed into the hash: a new salt draws other keys. */
      salt: z.string().min(1).max(200),
    })
    .optional(),
  /**
   * What scoring costs: with a price per CPU hour, the manifest gives each model's inference
   * seconds and their cost, per run (docs/shadow.md, "Cost").
   */
  cost: z.strictObject({ per_cpu_hour: z.number().positive() }).optional(),
  /**
   * What "agree" means when challengers are compared with the model: the output and column
   * compared, and the threshold a score is a positive decision at. @defaultValue the model's
   * two-column probabilities output and its column 1 (else its first float output, column 0), threshold 0.5
   */
  compare: z
    .strictObject({
      output: z.string().min(1).optional(),
      column: z.number().int().min(0).optional(),
      threshold: z.number().default(0.5),
    })
    .optional(),
  /**
   * A small JSON POST when a run ends in one of the `on` outcomes: `failed` (any failure but
   * a limit's), `limits` (max_reject_rate, min_rows), `succeeded`, `drift`, and `shadow` (a
   * challenger below min_agreement, or with no data). Slack-compatible (`text`).
   * Never fails the run. @defaultValue NIGHTSCORE_ALERT_WEBHOOK, on failed and limits
   */
  alerts: z
    .strictObject({
      webhook: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
      on: z.array(z.enum(['failed', 'limits', 'succeeded', 'drift', 'shadow'])).min(1).default(['failed', 'limits']),
      /** `shadow`: a run whose challenger agrees with the model on less than this share of rows, or compared none. @defaultValue 0.98 */
      min_agreement: share.default(0.98),
    })
    .optional(),
});

export type JobFile = z.output<typeof jobSchema>;

function validCron(text: string): boolean {
  try {
    CronExpressionParser.parse(text);
    return true;
  } catch {
    return false;
  }
}

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
