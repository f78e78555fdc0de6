import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { NightscoreError, toNightscoreError } from '../errors.js';
import { locateRun, modelPath, type JobDefinition } from '../job/load.js';
import { createScorer, type Scorer } from '../model/scorer.js';
import { loadModel, type LoadedModel } from '../model/session.js';
import { openLocation, type Location } from '../storage/open.js';
import { VERSION } from '../version.js';
import { beginOutput, commitOutput } from './commit.js';
import type { RowCounts, RunManifest } from './manifest.js';
import { listInputs, type InputObject } from './plan.js';
import { scorePart } from './score-part.js';

/** Progress events for a terminal or a log. */
export type RunEvent =
  | { type: 'planned'; inputs: number; bytes: number }
  | { type: 'batch'; rows: RowCounts; part: number; parts: number }
  | { type: 'part'; rows: RowCounts; part: number; parts: number };

export interface RunJobOptions {
  onEvent?: (event: RunEvent) => void;
}

/** A job bound to its model: everything checked that can be checked before reading data. */
export interface PreparedJob {
  job: JobDefinition;
  model: LoadedModel;
  scorer: Scorer;
}

/** Loads the model once and checks its signature against the job. */
export async function prepareJob(job: JobDefinition): Promise<PreparedJob> {
  const model = await loadModel(modelPath(job), { threads: job.model.threads });
  const scorer = await createScorer(model, {
    features: job.model.features,
    input: job.model.input,
    columns: job.output.columns,
    keys: job.input.key,
  });
  return { job, model, scorer };
}

/**
 * Scores one logical date in this process, end to end: lists the inputs, removes the
 * previous attempt's `_SUCCESS`, scores every object into its part, and commits. Returns
 * the final manifest, whose `status` and `error` say how the run ended. Failures before the
 * output is touched (no input for the date) throw, and leave the output folder as it was.
 */
export async function runJob(prepared: PreparedJob, date: string, opts: RunJobOptions = {}): Promise<RunManifest> {
  const { job } = prepared;
  const where = locateRun(job, date);
  const started = Date.now();
  const inputs = await listInputs(where.inputUri, job.input.format, date);
  const out = openLocation(where.outputUri);
  const manifest = newManifest(prepared, date, where.inputUri, out, started);
  opts.onEvent?.({ type: 'planned', inputs: inputs.length, bytes: inputs.reduce((s, i) => s + i.bytes, 0) });

  await beginOutput(out, manifest);
  const written = new Set<string>();
  try {
    await scoreInputs(prepared, inputs, out, manifest, written, opts);
    checkLimits(job, manifest.rows);
    manifest.status = 'succeeded';
  } catch (err) {
    const error = toNightscoreError(err);
    manifest.status = 'failed';
    manifest.error = { code: error.code, kind: error.kind, message: error.message, ...(error.hint ? { hint: error.hint } : {}) };
    finish(manifest, started);
    await commitOutput(out, manifest, written);
    return manifest;
  }
  finish(manifest, started);
  await commitOutput(out, manifest, written);
  return manifest;
}

async function scoreInputs(
  { job, scorer }: PreparedJob,
  inputs: InputObject[],
  out: Location,
  manifest: RunManifest,
  written: Set<string>,
  opts: RunJobOptions,
): Promise<void> {
  for (const [index, input] of inputs.entries()) {
    const before = { ...manifest.rows };
    const result = await scorePart(input, scorer, out, index, {
      keys: job.input.key,
      batchRows: job.chunk.rows,
      delimiter: job.input.csv.delimiter,
      maxRecordBytes: job.input.csv.max_record_bytes,
      outputDelimiter: job.output.csv.delimiter,
      onBatch: (rows) => opts.onEvent?.({ type: 'batch', rows: add(before, rows), part: index, parts: inputs.length }),
    });
    manifest.rows = add(before, result.rows);
    manifest.inputs.push({ uri: input.uri, bytes: input.bytes, rows: result.rows.read });
    manifest.parts.push({ uri: result.part.uri, rows: result.part.rows });
    written.add(result.part.key);
    if (result.rejects) {
      manifest.rejects.push({ uri: result.rejects.uri, rows: result.rejects.rows });
      written.add(result.rejects.key);
    }
    opts.onEvent?.({ type: 'part', rows: manifest.rows, part: index, parts: inputs.length });
  }
}

function checkLimits(job: JobDefinition, rows: RowCounts): void {
  const { max_reject_rate: maxRate, min_rows: minRows } = job.limits;
  if (rows.read < minRows) {
    throw new NightscoreError('limit', 'TOO_FEW_ROWS', `read ${rows.read} rows; limits.min_rows is ${minRows}`, {
      hint: 'An empty day usually means the upstream export failed; check it, or lower limits.min_rows.',
    });
  }
  const rate = rows.read === 0 ? 0 : rows.rejected / rows.read;
  if (rate > maxRate) {
    throw new NightscoreError('limit', 'REJECT_RATE_EXCEEDED', `rejected ${rows.rejected} of ${rows.read} rows (${(rate * 100).toFixed(2)}%); limits.max_reject_rate is ${(maxRate * 100).toFixed(2)}%`, {
      hint: 'See the rejects file for each row\'s line and reason; fix the input, or raise limits.max_reject_rate.',
    });
  }
}

function add(a: RowCounts, b: RowCounts): RowCounts {
  return { read: a.read + b.read, scored: a.scored + b.scored, rejected: a.rejected + b.rejected };
}

function finish(manifest: RunManifest, started: number): void {
  const now = Date.now();
  manifest.finished_at = new Date(now).toISOString();
  manifest.duration_ms = now - started;
}

function uriOf(location: string): string {
  const { storage, key } = openLocation(location);
  return storage.uri(key);
}

function newManifest({ job, model, scorer }: PreparedJob, date: string, inputUri: string, out: Location, started: number): RunManifest {
  return {
    job: job.name,
    date,
    status: 'running',
    attempt: randomUUID(),
    model: {
      path: model.path,
      sha256: model.sha256,
      features: scorer.features,
      outputs: Object.fromEntries(scorer.outputs.map((o) => [o.output, o.names])),
    },
    input: { uri: uriOf(inputUri), format: job.input.format },
    output: { uri: out.storage.uri(out.storage.join(out.key, '')), format: job.output.format },
    rows: { read: 0, scored: 0, rejected: 0 },
    inputs: [],
    parts: [],
    rejects: [],
    limits: { max_reject_rate: job.limits.max_reject_rate, min_rows: job.limits.min_rows },
    error: null,
    started_at: new Date(started).toISOString(),
    finished_at: null,
    duration_ms: null,
    nightscore: { version: VERSION, host: hostname(), pid: process.pid },
  };
}
