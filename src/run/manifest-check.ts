/**
 * A manifest read back is input: anyone who can write the output folder may have written it.
 * checkManifest validates, as their types, the fields readers of a date's state use (the UI's
 * grid and run page: status, counts, model, files, error, times), so that a damaged or
 * hand-made manifest is one clear MANIFEST_INVALID rather than a page that throws on
 * `undefined.length` or shows an object where a number belongs.
 *
 * Fields nobody reads from a manifest found on disk (`retry`, `owns`, the rest of `models`, …)
 * are kept as they are and not checked here: whoever uses them checks them.
 */
import { z } from 'zod';
import { NightscoreError } from '../errors.js';
import { segmentOfSchema } from '../drift/profile.js';
import type { RunManifest } from './manifest.js';

/**
 * A manifest larger than this is not read. A failed run of the largest plan (100,000 chunks,
 * each with its plan and result kept for retry) writes about a hundred MiB.
 */
export const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;

const count = z.number().int().nonnegative();
const text = z.string();
const fileEntry = z.looseObject({ uri: text, rows: count });

const errorRecord = z.looseObject({
  code: text,
  kind: z.enum(['usage', 'config', 'input', 'model', 'storage', 'limit', 'internal']),
  message: text,
  hint: text.optional(),
  source: text.optional(),
  line: count.optional(),
  column: text.optional(),
  retryable: z.boolean().optional(),
});

// Fields added over releases are optional here (older manifests lack them), as the readers treat them.
const manifestSchema = z.looseObject({
  job: text,
  date: text,
  status: z.enum(['running', 'succeeded', 'failed']),
  attempt: text,
  model: z.looseObject({
    ref: text.optional(),
    name: text.nullish(),
    version: count.nullish(),
    alias: text.nullish(),
    sha256: text,
    path: text,
  }),
  chunks: count,
  rows: z.looseObject({ read: count, scored: count, rejected: count }),
  inputs: z.array(z.looseObject({ uri: text, bytes: count, rows: count })),
  skipped: z.array(z.looseObject({ uri: text, reason: text })).default([]),
  parts: z.array(fileEntry),
  rejects: z.array(fileEntry),
  limits: z.looseObject({ max_reject_rate: z.number().min(0).max(1), min_rows: count }),
  error: errorRecord.nullish().transform((e) => e ?? null),
  started_at: text,
  finished_at: text.nullish().transform((t) => t ?? null),
  duration_ms: z.number().nonnegative().nullish().transform((d) => d ?? null),
  nightscore: z.looseObject({ version: text, host: text, pid: count }),
  // Read by the page, status and the drift command: the overall status and the names, each checked as its type.
  drift: z
    .looseObject({
      status: z.enum(['ok', 'warn', 'drift', 'inconclusive']),
      mode: z.enum(['off', 'warn', 'enforce']),
      drifted: z.array(text),
      warned: z.array(text),
      inconclusive: z.array(text),
      file: z.literal('_drift.json'),
      profile: z.looseObject({ uri: text, sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
      segments: z
        .looseObject({
          column: text,
          drifted: z.array(segmentOfSchema),
          drifted_total: count,
        })
        .optional(),
    })
    .optional(),
  // Read by status, the promotion gate and the run page: the rule and each challenger's figures, checked as their types.
  shadow: z
    .looseObject({
      file: z.literal('_shadow.json'),
      compare: z.looseObject({ output: text, column: count, threshold: z.number(), kind: z.enum(['score', 'label']) }),
      challengers: z.array(z.looseObject({ name: text, status: z.enum(['compared', 'no data']), rows_compared: count, agreement: z.number().min(0).max(1).nullable(), error: text.nullable(), seconds: z.number().nonnegative() })),
    })
    .optional(),
  // Read by backfill --reprocess stale and status: a canary date's second model.
  canary: z
    .looseObject({
      fraction: z.number().gt(0).lt(1),
      salt: text,
      threshold: z.string().regex(/^\d{1,20}$/),
      labels: z.looseObject({ champion: text, canary: text }),
      model: z.looseObject({ sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
      rows: z.looseObject({ champion: count, canary: count }),
    })
    .optional(),
  // Read by backfill --reprocess stale (and the page's "stale model"): the engine is part of the model's identity.
  models: z.array(z.looseObject({ engine: z.looseObject({ name: text, version: text.optional(), threads: count }).optional() })).optional(),
});

/**
 * `value` (a parsed `_manifest.json` at `source`) as a RunManifest, or MANIFEST_INVALID
 * naming the first field that is not of its type.
 */
export function checkManifest(value: unknown, source: string): RunManifest {
  const parsed = manifestSchema.safeParse(value);
  if (parsed.success) return parsed.data as unknown as RunManifest;
  const issue = parsed.error.issues[0]!;
  const field = issue.path.length > 0 ? issue.path.map(String).join('.') : '(the whole document)';
  throw new NightscoreError('MANIFEST_INVALID', `${source} is not a manifest nightscore writes: ${field}: ${issue.message}`, {
    source,
    column: field,
    hint: 'Something other than nightscore wrote or damaged it. Run the date again (nightscore run, or backfill --reprocess failed) to write a new one; find out who else writes to the output folder.',
  });
}

/** MANIFEST_INVALID for a manifest at `source` too large for nightscore to have written: it is not read. */
export function manifestTooLarge(source: string, bytes: number): NightscoreError {
  return new NightscoreError('MANIFEST_INVALID', `${source} is ${bytes} bytes; a manifest nightscore writes is under ${MAX_MANIFEST_BYTES}, and it is not read`, {
    source,
    hint: 'Something other than nightscore wrote it: run the date again to write a new one, and find out who else writes to the output folder.',
  });
}
