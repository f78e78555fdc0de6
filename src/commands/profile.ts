/** nightscore profile: reference profiles for drift (docs/drift.md). */
import { createHash } from 'node:crypto';
import { NightscoreError } from '../errors.js';
import { loadJob, resolveLocation } from '../job/load.js';
import { prepareJob } from '../run/bind.js';
import { buildProfile, DEFAULT_FIT_ROWS } from '../drift/build.js';
import { profileBytes, readProfile } from '../drift/profile.js';
import { openLocation } from '../storage/open.js';

export interface ProfileBuildOptions {
  output?: string;
  rows?: string;
  format?: string;
  binsFrom?: string;
  segment?: string;
}

/** nightscore profile build <job.yaml> <reference>: reads the reference as a run would, and writes its profile (stdout without -o). */
export async function profileBuildCommand(jobFile: string, reference: string, opts: ProfileBuildOptions): Promise<number> {
  const rows = opts.rows === undefined ? DEFAULT_FIT_ROWS : Number(opts.rows);
  if (!Number.isSafeInteger(rows) || rows < 1) {
    throw new NightscoreError('BAD_OPTION', `--rows takes a whole number of rows of at least 1, got "${opts.rows}"`, { hint: `Leave it out for ${DEFAULT_FIT_ROWS.toLocaleString('en')} rows.` });
  }
  if (opts.format !== undefined && opts.format !== 'csv' && opts.format !== 'parquet') {
    throw new NightscoreError('BAD_OPTION', `--format takes csv or parquet, got "${opts.format}"`, { hint: 'Leave it out to take the format from the name (.parquet, .csv) or the job.' });
  }
  const job = await loadJob(jobFile);
  const prepared = await prepareJob(job);
  const binsFrom = opts.binsFrom === undefined ? undefined : resolveLocation(opts.binsFrom, process.cwd());
  const profile = await buildProfile(prepared, resolveLocation(reference, process.cwd()), { rows, format: opts.format, segment: opts.segment ?? job.drift?.segment, binsFrom: binsFrom === undefined ? undefined : { uri: binsFrom, profile: (await readProfile(binsFrom)).profile } });
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
