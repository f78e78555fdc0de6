/**
 * Binding a job to its model: loading it, checking its signature against the job, and the
 * context a chunk of the job scores in.
 */
import { modelError } from '../errors.js';
import { modelPath, type JobDefinition } from '../job/load.js';
import { createScorer, type Scorer } from '../model/scorer.js';
import { loadModel, type LoadedModel } from '../model/session.js';
import type { RowCounts } from './manifest.js';
import type { ChunkContext } from './score-chunk.js';

/** A job bound to its model: everything checked that can be checked before reading data. */
export interface PreparedJob {
  job: JobDefinition;
  model: LoadedModel;
  scorer: Scorer;
}

/** Loads the model once per process and checks its signature against the job. */
export async function prepareJob(job: JobDefinition): Promise<PreparedJob> {
  const model = await loadModel(modelPath(job), { threads: job.model.threads });
  if (job.model.sha256 && job.model.sha256 !== model.sha256) {
    throw modelError('MODEL_SHA_MISMATCH', `${model.path} has sha256 ${model.sha256}, but the job pins model.sha256 ${job.model.sha256}`, {
      source: model.path,
      column: 'model.sha256',
      hint: 'The model file changed. Deploy the pinned model, or update model.sha256 after checking the new one.',
    });
  }
  const scorer = await createScorer(model, {
    features: job.model.features,
    input: job.model.input,
    columns: job.output.columns,
    keys: job.input.key,
  });
  return { job, model, scorer };
}

/**
 * Fails a chunk with MODEL_CHANGED (not retried) when the model file this thread loaded is
 * not the one the run was planned with: a model deployed mid-run must not score the later
 * chunks of a run whose manifest names the first.
 */
export function checkModelUnchanged(prepared: PreparedJob, planned: string): void {
  const { model } = prepared;
  if (model.sha256 === planned) return;
  throw modelError('MODEL_CHANGED', `${model.path} changed during the run: it has sha256 ${model.sha256} now, but the run was planned with sha256 ${planned}`, {
    source: model.path,
    column: 'model.path',
    hint: 'A model file was replaced while the date was being scored. Run the date again to score it whole with the new model, and deploy models between runs (or pin model.sha256).',
  });
}

/** The context chunks of this date of this job score in. */
export function chunkContext(prepared: PreparedJob, date: string, outputUri: string, onBatch?: (rows: RowCounts) => void): ChunkContext {
  const { job, scorer, model } = prepared;
  return {
    scorer,
    keys: job.input.key,
    batchRows: job.chunk.rows,
    delimiter: job.input.csv.delimiter,
    maxRecordBytes: job.input.csv.max_record_bytes,
    output: { format: job.output.format, delimiter: job.output.csv.delimiter, escapeFormulas: job.output.csv.escape_formulas, codec: job.output.parquet.codec },
    metadata: { 'nightscore.job': job.name, 'nightscore.date': date, 'nightscore.model_sha256': model.sha256 },
    outputUri,
    onBatch,
  };
}

/** The CSV output options rejects files are written with. */
export function csvOutput(job: JobDefinition): { delimiter: string; escapeFormulas: boolean } {
  return { delimiter: job.output.csv.delimiter, escapeFormulas: job.output.csv.escape_formulas };
}
