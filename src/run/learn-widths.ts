/**
 * Output widths from the first real rows of the day, for a model whose graph leaves an
 * output's width open (a symbolic dimension after the batch one, as tf2onnx writes) and whose
 * job gives no list of names for it. No made-up row is run: a model may refuse zeros or empty
 * strings and still score every real row. The rows read here are read again by their chunk,
 * which scores, writes and rejects them; this only scores until one row has scored.
 */
import { NightscoreError } from '../errors.js';
import { sizeOutputs, type PreparedJob } from './bind.js';
import type { BatchBuilder, Reject } from '../formats/batch.js';
import { shownWidths, type Scorer } from '../model/scorer.js';
import { modelReject, rejectLimitError, type RejectPlace } from './model-rejects.js';
import type { ChunkPlan } from './plan.js';
import { chunkContext, feedSegment, type BatchSink, type ChunkContext } from './score-chunk.js';
import { chunkSpec, type RunSpec } from './spec.js';

/** Stops reading once a batch has scored: it carries the widths that batch showed. */
class Learned {
  constructor(readonly widths: Record<string, number>) {}
}

/**
 * Scores batches as a chunk would, rejecting nothing and writing nothing. The rows the
 * model fails on count against the run's reject limit as the chunk will count them, so a
 * day its chunks would fail fails here with the same error, before any part is written.
 */
class WidthProbe implements BatchSink {
  rejected = 0;
  private first: { reject: Reject; at: RejectPlace } | undefined;

  constructor(private readonly ctx: ChunkContext) {}

  async open(): Promise<void> {}

  async flush(builder: BatchBuilder, segmentStart: number): Promise<void> {
    const { scorer, keys, spec } = this.ctx;
    if (builder.rows === 0) {
      this.rejected += builder.takeRejects().length;
      return;
    }
    const batch = builder.take();
    const pending = builder.pendingRejects;
    let failures = 0;
    const { outputs, failed } = await scorer.score(batch, (failure) => {
      failures += 1;
      this.first ??= { reject: modelReject(builder.source, batch, failure, keys.length), at: { format: spec.input.format, start: segmentStart } };
      // No row of the day has scored yet: the probe stops at the first that does.
      const error = rejectLimitError(spec.limits, this.rejected + pending + failures, this.first.reject, this.first.at, true, scorer.runFailedHint);
      if (error) throw error;
    });
    this.rejected += builder.takeRejects().length + failed.length;
    const scored = batch.rows - failed.length;
    if (scored === 0) return;
    throw new Learned(shownWidths(outputs, scored));
  }
}

/** `prepared` with its open outputs sized on the first rows of the date that score (sizeOutputs); itself when none is open. */
export async function sizedOnDate(prepared: PreparedJob, spec: RunSpec, chunks: ChunkPlan[]): Promise<PreparedJob> {
  if (prepared.scorer.open.length === 0) return prepared;
  return sizeOutputs(prepared, await learnWidths(spec, chunks, prepared.scorer, prepared.spec.location));
}

/** The widths of `scorer`'s open outputs, from the first rows of the date that score. */
export async function learnWidths(spec: RunSpec, chunks: ChunkPlan[], scorer: Scorer, model: string): Promise<Record<string, number>> {
  let probe: WidthProbe | undefined;
  try {
    for (const chunk of chunks) {
      const ctx = chunkContext(chunkSpec(spec, chunk), new Map([['champion', scorer]]));
      probe ??= new WidthProbe(ctx);
      for (const segment of chunk.segments) await feedSegment(segment, ctx, probe);
    }
  } catch (err) {
    if (err instanceof Learned) return err.widths;
    throw err;
  }
  const open = scorer.open.map((o) => `"${o}"`).join(', ');
  throw new NightscoreError('OUTPUT_COLUMNS_WIDTH', `${model}: the graph leaves the width of output ${open} open, and no row of ${spec.date} scored (${probe?.rejected ?? 0} rejected) to learn it from`, {
    source: model,
    column: `output.columns.${scorer.open[0]}`,
    hint: `Name each of its columns under output.columns, e.g. output.columns: { ${scorer.open[0]}: [${scorer.open[0]}_a, ${scorer.open[0]}_b] }, or export the model with a fixed output width.`,
  });
}
