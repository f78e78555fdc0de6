/** Pinning a run's drift profile at plan time: found, read, checked against the model, and its sha256 frozen in the spec. */
import { NightscoreError } from '../errors.js';
import { resolveLocation, type JobDefinition } from '../job/load.js';
import type { FeatureColumn } from '../model/features.js';
import type { OutputColumns } from '../model/scorer.js';
import { DEFAULT_POLICY, type DriftPolicy } from './policy.js';
import { readProfile } from './profile.js';
import { checkProfileFits } from './profile-counter.js';

/** What a run of the job compares with: the pinned profile and the job's policy; null when it measures no drift. */
export async function pinProfile(job: JobDefinition, model: { sha256: string; columns: readonly FeatureColumn[]; outputs: readonly OutputColumns[] }): Promise<{ profile: { uri: string; sha256: string }; policy: DriftPolicy } | null> {
  const policy = driftPolicy(job);
  if (policy.mode === 'off') return null;
  const written = job.drift?.profile;
  if (written === undefined) {
    if (job.drift === undefined) return null;
    throw new NightscoreError('PROFILE_NOT_FOUND', `${job.file}: drift is set, but names no profile`, {
      source: job.file,
      column: 'drift.profile',
      hint: 'Build one with nightscore profile build <job.yaml> <reference data> -o profile.json and set drift.profile to it, or set drift.mode: off.',
    });
  }
  const uri = resolveLocation(written, job.dir);
  const { profile, sha256 } = await readProfile(uri);
  checkProfileFits(profile, uri, model);
  return { profile: { uri, sha256 }, policy };
}

/** The job's drift block as a policy, with the documented defaults (policy.ts) where it is silent. */
export function driftPolicy(job: JobDefinition): DriftPolicy {
  const d = job.drift;
  if (!d) return DEFAULT_POLICY;
  return { mode: d.mode, psi: d.psi, js: d.js, missing_delta: d.missing_delta, unseen: d.unseen, max_drifted_share: d.max_drifted_share, columns: d.columns };
}
