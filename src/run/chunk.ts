/** Scoring one chunk from its spec, on whichever thread it lands: bind each of its models by role, then score. */
import { bindModel } from './bind.js';
import type { ChunkResult } from './chunk-result.js';
import { scoreChunk, type ScoreOptions } from './score-chunk.js';
import type { ChunkSpec, ModelRole } from './spec.js';
import type { Scorer } from '../model/scorer.js';

export async function runChunk(spec: ChunkSpec, opts: ScoreOptions = {}): Promise<ChunkResult> {
  const scorers = new Map<ModelRole, Scorer>();
  for (const model of spec.models) scorers.set(model.role, await bindModel(model, spec.input.key));
  return scoreChunk(spec, scorers, opts);
}
