/** Scoring one chunk from its spec, on whichever thread it lands: bind its champion, then score. */
import { bindModel } from './bind.js';
import type { ChunkResult } from './chunk-result.js';
import { scoreChunk, type ScoreOptions } from './score-chunk.js';
import { champion, type ChunkSpec } from './spec.js';

export async function runChunk(spec: ChunkSpec, opts: ScoreOptions = {}): Promise<ChunkResult> {
  const scorer = await bindModel(champion(spec), spec.input.key);
  return scoreChunk(spec, scorer, opts);
}
