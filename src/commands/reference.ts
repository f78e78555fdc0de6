/**
 * What the commands that read reference data share (profile build, model register
 * --reference): the job a model is read with when no job file is given, and their options.
 */
import path from 'node:path';
import { NightscoreError } from '../errors.js';
import { modelOnlyJob, type JobDefinition } from '../job/load.js';
import { formatOf } from '../run/read-data.js';

/** --format (or --reference-format): csv, parquet, or left out. */
export function formatOption(option: string, value: string | undefined): 'csv' | 'parquet' | undefined {
  if (value === undefined || value === 'csv' || value === 'parquet') return value;
  throw new NightscoreError('BAD_OPTION', `${option} takes csv or parquet, got "${value}"`, { hint: 'Leave it out to take the format from the name (.parquet, .csv) or the job.' });
}

/**
 * The job a reference is read with when no job file is given: the model's own binding (see
 * modelOnlyJob). Without a job there is no input.format to fall back on, so a reference whose
 * name does not tell its format needs the option.
 */
export function modelReferenceJob(what: string, model: { model: string; registry?: string; key?: string[] }, referenceUri: string, format: 'csv' | 'parquet' | undefined, option: string): JobDefinition {
  const read = format ?? formatOf(referenceUri);
  if (read === undefined) {
    throw new NightscoreError('BAD_OPTION', `${what}: the name of the reference ${referenceUri} does not say its format, and there is no job file to say it`, {
      hint: `Give ${option} csv or ${option} parquet.`,
    });
  }
  return modelOnlyJob(what, { ...model, input: referenceUri, format: read }, process.cwd());
}

/**
 * A job file's binding with another model (`--reference-job`, model evaluate `--job`): its
 * model.uri is `uri`, and the job's own model.path and model.sha256, which name its model, go.
 */
export function withModel(job: JobDefinition, uri: string): JobDefinition {
  return { ...job, model: { ...job.model, uri, path: undefined, sha256: undefined } };
}

/** A registry root given on the command line: a relative folder is the working directory's; URIs stay. */
export function resolveRoot(root: string): string {
  return /^[a-z][a-z0-9+.-]+:/i.test(root) ? root : path.resolve(root);
}
