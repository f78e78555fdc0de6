/** Pinning a run's drift profile at plan time: found, read, checked against the model, and its sha256 frozen in the spec. */
import { NightscoreError } from '../errors.js';
import { daysEnding } from '../job/dates.js';
import { locateRun, registryOf, resolveLocation, type JobDefinition } from '../job/load.js';
import { Registry } from '../registry/registry.js';
import { environment } from '../settings.js';
import type { DriftSpec, RegistryPin } from '../run/spec.js';
import { openLocation } from '../storage/open.js';
import type { FeatureColumn } from '../model/features.js';
import type { OutputColumns } from '../model/scorer.js';
import { DEFAULT_POLICY, type DriftPolicy } from './policy.js';
import { readProfile } from './profile.js';
import { checkProfileSegments, locateSegmentColumn } from './segment.js';
import { checkProfileFits } from './profile-counter.js';

/**
 * What a run of the job compares with: the pinned profile and the job's policy; null when it
 * measures no drift. The profile is the job's drift.profile, else the one attached to the
 * registry version the model resolved to (model profile attach), with the mode warn when the
 * job has no drift block.
 */
export async function pinProfile(job: JobDefinition, date: string, model: { sha256: string; columns: readonly FeatureColumn[]; outputs: readonly OutputColumns[]; registry: RegistryPin | null }): Promise<DriftSpec | null> {
  const policy = driftPolicy(job);
  if (policy.mode === 'off') return null;
  const uri = job.drift?.profile !== undefined ? resolveLocation(job.drift.profile, job.dir) : await attachedProfile(job, model.registry);
  if (uri === undefined) {
    if (job.drift === undefined) return null;
    throw new NightscoreError('PROFILE_NOT_FOUND', `${job.file}: drift is set, but names no profile${model.registry ? `, and ${model.registry.name} version ${model.registry.version} has none attached` : ''}`, {
      source: job.file,
      column: 'drift.profile',
      hint: 'Build one with nightscore profile build <job.yaml> <reference data> -o profile.json; set drift.profile to it, or attach it to the model version (nightscore model profile attach); or set drift.mode: off.',
    });
  }
  const segment = job.drift?.segment ?? null;
  if (segment !== null) locateSegmentColumn(segment, job.input.key, model.columns, job.file);
  const { profile, sha256 } = await readProfile(uri);
  checkProfileFits(profile, uri, model);
  if (segment !== null) checkProfileSegments(profile, uri, segment);
  return { profile: { uri, sha256 }, policy, previous: previousFolders(job, date), segment };
}

/**
 * Where drift.baseline: { previous: N } looks: the output folders of the dates before `date`,
 * newest first, as far back as four times N days (a job that skips weekends still finds its
 * week), from the job's own layout.
 */
function previousFolders(job: JobDefinition, date: string): DriftSpec['previous'] {
  const baseline = job.drift?.baseline;
  if (baseline === undefined || baseline === 'reference') return null;
  const before = daysEnding(date, 4 * baseline.previous + 1).slice(0, -1).reverse();
  return { dates: baseline.previous, folders: before.map((d) => ({ date: d, uri: locateRun(job, d).outputUri })) };
}

/** The profile attached to the registry version, when there is one. */
async function attachedProfile(job: JobDefinition, pin: RegistryPin | null): Promise<string | undefined> {
  const uri = pin ? attachedProfileUri(job, pin) : undefined;
  if (uri === undefined) return undefined;
  const { storage, key } = openLocation(uri);
  return (await storage.stat(key)) ? uri : undefined;
}

/**
 * Where a profile attached to version `name`/`version` of the job's registry is (the job's
 * registry:, else NIGHTSCORE_REGISTRY_URI): it follows from the registry's layout, never from a
 * record; undefined when no registry is set.
 */
export function attachedProfileUri(job: JobDefinition, model: { name: string; version: number }): string | undefined {
  const root = registryOf(job) ?? environment().settings.NIGHTSCORE_REGISTRY_URI;
  return root === undefined ? undefined : new Registry(root).profileUri(model.name, model.version);
}

/** The job's drift block as a policy, with the documented defaults (policy.ts) where it is silent. */
export function driftPolicy(job: JobDefinition): DriftPolicy {
  const d = job.drift;
  if (!d) return DEFAULT_POLICY;
  return { mode: d.mode, psi: d.psi, js: d.js, missing_delta: d.missing_delta, unseen: d.unseen, max_drifted_share: d.max_drifted_share, columns: d.columns };
}
