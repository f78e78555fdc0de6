/** Scoring one chunk from its spec, on whichever thread it lands: bind each of its models by role, and its drift profile, then score. */
import { readProfile, type Profile, type ProfilePin } from '../drift/profile.js';
import { toNightscoreError } from '../errors.js';
import { bindModel } from './bind.js';
import type { ChunkResult } from './chunk-result.js';
import { scoreChunk, type ScoreOptions } from './score-chunk.js';
import type { ChunkSpec, ModelRole } from './spec.js';
import type { Scorer } from '../model/scorer.js';

export async function runChunk(spec: ChunkSpec, opts: ScoreOptions = {}): Promise<ChunkResult> {
  const scorers = new Map<ModelRole, Scorer>();
  // A challenger that cannot be bound here never fails the chunk: its comparison records why.
  const unbound = new Map<ModelRole, string>();
  for (const model of spec.models) {
    // The canary publishes rows as the champion does: it must bind, or the chunk fails.
    if (model.role === 'champion' || model.role === 'canary') scorers.set(model.role, await bindModel(model, spec.input.key));
    else await bindModel(model, spec.input.key).then((s) => scorers.set(model.role, s), (err: unknown) => unbound.set(model.role, toNightscoreError(err).message));
  }
  const profile = spec.drift ? await bindProfile(spec.drift.profile) : undefined;
  return scoreChunk(spec, scorers, { ...opts, profile, unbound });
}

/**
 * A thread reads a profile once per pin and keeps it for the chunks after. The read checks the
 * bytes against the pin, so every chunk counts on the bins the run was planned with: a thread
 * that first reads a profile replaced mid-run fails its chunk with PROFILE_CHANGED.
 */
const profiles = new Map<string, Promise<Profile>>();

async function bindProfile(pin: ProfilePin): Promise<Profile> {
  const key = `${pin.sha256} ${pin.uri}`;
  let loading = profiles.get(key);
  if (!loading) {
    loading = readProfile(pin.uri, pin.sha256).then((r) => r.profile);
    profiles.set(key, loading);
    loading.catch(() => profiles.delete(key));
  }
  return loading;
}
