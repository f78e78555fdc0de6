/** nightscore profile: reference profiles for drift (docs/drift.md). */
import { createHash } from 'node:crypto';
import { NightscoreError } from '../errors.js';
import { loadJob, resolveLocation, type JobDefinition } from '../job/load.js';
import { prepareJob } from '../run/bind.js';
import { buildProfile, DEFAULT_FIT_ROWS } from '../drift/build.js';
import { profileBytes, readProfile } from '../drift/profile.js';
import { isModelRef, parseModelRef } from '../registry/ref.js';
import { registryRoot } from '../registry/registry.js';
import { openLocation } from '../storage/open.js';
import { formatOption, modelReferenceJob, resolveRoot } from './reference.js';

export interface ProfileBuildOptions {
  output?: string;
  rows?: string;
  format?: string;
  binsFrom?: string;
  registry?: string;
  segment?: string;
}

/**
 * nightscore profile build <job.yaml | models:/name@alias> <reference>: reads the reference as a
 * run would, and writes its profile (stdout without -o). A models:/ reference is read as a job
 * with only that model.uri would read it.
 */
export async function profileBuildCommand(source: string, reference: string, opts: ProfileBuildOptions): Promise<number> {
  const rows = opts.rows === undefined ? DEFAULT_FIT_ROWS : Number(opts.rows);
  if (!Number.isSafeInteger(rows) || rows < 1) {
    throw new NightscoreError('BAD_OPTION', `--rows takes a whole number of rows of at least 1, got "${opts.rows}"`, { hint: `Leave it out for ${DEFAULT_FIT_ROWS.toLocaleString('en')} rows.` });
  }
  const format = formatOption('--format', opts.format);
  const referenceUri = resolveLocation(reference, process.cwd());
  let job: JobDefinition;
  if (isModelRef(source)) {
    parseModelRef(source);
    const what = `nightscore profile build ${source}`;
    const root = registryRoot(opts.registry === undefined ? undefined : resolveRoot(opts.registry), what);
    job = modelReferenceJob(what, { model: source, registry: root }, referenceUri, format, '--format');
  } else {
    if (opts.registry !== undefined) {
      throw new NightscoreError('BAD_OPTION', '--registry goes with a models:/ reference; a job file names its registry itself', { hint: 'Set registry: in the job file (or NIGHTSCORE_REGISTRY_URI), or give models:/<name>@<alias> instead of the job.' });
    }
    job = await loadJob(source);
  }
  const prepared = await prepareJob(job);
  const binsFrom = opts.binsFrom === undefined ? undefined : resolveLocation(opts.binsFrom, process.cwd());
  const profile = await buildProfile(prepared, referenceUri, { rows, format, segment: opts.segment ?? job.drift?.segment, binsFrom: binsFrom === undefined ? undefined : { uri: binsFrom, profile: (await readProfile(binsFrom)).profile } });
  const bytes = profileBytes(profile);
  if (opts.output === undefined) {
    process.stdout.write(bytes);
    return 0;
  }
  const target = resolveLocation(opts.output, process.cwd());
  const { storage, key } = openLocation(target);
  await storage.put(key, bytes);
  const { read, scored, rejected } = profile.reference.rows;
  process.stderr.write(
    `profile  ${target}  sha256 ${createHash('sha256').update(bytes).digest('hex')}\n` +
      `         ${profile.columns.length} columns; reference rows: ${read} read, ${scored} profiled, ${rejected} rejected; bins fitted on ${profile.reference.fitted_on}\n` +
      (profile.segment ? `         segments of ${profile.segment.column}: ${profile.segment.values.length} values, then OTHER and NULL\n` : ''),
  );
  return 0;
}
