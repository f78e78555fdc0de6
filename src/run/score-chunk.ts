import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { openCsv, type CsvHeader, type CsvStream } from '../formats/csv-read.js';
import { scanLayout } from '../formats/csv-scan.js';
import { formatStagedRejects, stagedRejectsHeader } from '../formats/csv-write.js';
import { CR, LF, sliceLineRange, type LineRangeStats } from '../formats/line-range.js';
import { csvPartWriter, type KeyColumn, type PartWriter } from '../formats/part-writer.js';
import { NightscoreError, toNightscoreError } from '../errors.js';
import { featureColumns, projection, type FeatureBatch, type FeatureColumn } from '../model/features.js';
import type { OutputColumns, OutputValues, Scorer, ScoredBatch } from '../model/scorer.js';
import type { TensorData } from '../engine/engine.js';
import { canaryRows } from '../shadow/canary.js';
import { openLocation, type Location } from '../storage/open.js';
import { digestingWriter, type DigestingWriter } from '../storage/digest.js';
import { BatchBuilder, mapColumns, type Batch, type Reject } from '../formats/batch.js';
import { keptKeys, keysOfRows, modelReject, rejectLimitError, type RejectPlace } from './model-rejects.js';
import { emptyRows, mergeStats, type ChunkResult, type ChunkStats, type RowCounts, type SegmentResult } from './chunk-result.js';
import { chunkFiles } from './manifest.js';
import type { Segment } from './plan.js';
import { champion, challengerName, type ChunkSpec, type ModelRole } from './spec.js';
import { Comparer } from '../shadow/compare.js';
import { ProfileCounter } from '../drift/profile-counter.js';
import type { Profile } from '../drift/profile.js';
import { checkProfileSegments, locateSegmentColumn, SegmentedCounter } from '../drift/segment.js';

// hyparquet with its compressors (WebAssembly), and hyparquet-writer, are loaded on first use:
// a scoring thread that only sees CSV never loads or compiles them.
const parquetReader = () => import('../formats/parquet-read.js');
const parquetWriter = () => import('../formats/parquet-part-writer.js');

/** Who is watching a chunk: its progress, and the signal that stops it. */
export interface ScoreOptions {
  /** Called after each batch is written, for progress. */
  onBatch?: (counts: RowCounts) => void;
  /** Stops the chunk at its next batch (an interrupted in-process run). */
  signal?: AbortSignal;
  /** The run's drift profile (spec.drift, read and checked against its pin): the chunk counts its values on its bins. */
  profile?: Profile;
  /** Challengers this thread could not bind, with why: their comparison records it, the chunk goes on. */
  unbound?: ReadonlyMap<ModelRole, string>;
}

/** A challenger as a chunk scores it: fed its columns of each batch, and compared with the champion. */
interface Challenger {
  role: ModelRole;
  name: string;
  scorer: Scorer | undefined;
  feed: (batch: FeatureBatch) => FeatureBatch;
  /** None when the spec has no compare rule: the challenger is scored and its rows counted only. */
  comparer: Comparer | undefined;
}

export interface ChunkContext extends ScoreOptions {
  spec: ChunkSpec;
  /** Every model of the spec, bound on this thread, by role. */
  scorers: ReadonlyMap<ModelRole, Scorer>;
  /** The champion's: its columns are the batch's, its outputs the part's. */
  scorer: Scorer;
  keys: string[];
  /** Key-value metadata for Parquet parts: job, date, model sha. */
  metadata: Record<string, string>;
  /** The columns the model reads, in batch order, with their types and missing policies. */
  columns: FeatureColumn[];
}

/** Where a segment's batches go as they are read: a chunk's sink writes them; the width probe (learn-widths.ts) only scores them. */
export interface BatchSink {
  /** Called once the key columns' source types are known, before the first flush. */
  open(keys: KeyColumn[]): Promise<void>;
  /** Takes the rows the builder holds, and the rows it rejected. */
  flush(builder: BatchBuilder, segmentStart: number): Promise<void>;
}

/** One batch on its way through a chunk's stages. */
interface BatchFlow {
  /** The rows the reader took (none when every row of the flush was rejected). */
  batch: Batch | undefined;
  source: string;
  segmentStart: number;
  /** Rows the builder has rejected and not yet handed over (the reject limit counts them). */
  pending: number;
  /** Each model's outputs for the batch, by role. */
  scored: Map<ModelRole, ScoredBatch>;
  /** The rows rejected, in line order: they go to the staged rejects. */
  rejects: Reject[];
  /** With a canary: 1 for each row its split gives it. */
  canary: Uint8Array | undefined;
}

/**
 * Where a chunk's rows go: scored batches to the part, rejected rows to the staged rejects
 * file (created on the first reject). Every row handed to it lands in exactly one of them.
 */
class ChunkSink implements BatchSink {
  readonly rows: RowCounts = emptyRows();
  private part: PartWriter | undefined;
  private partFile: DigestingWriter | undefined;
  private rejects: DigestingWriter | undefined;
  /** The chunk's first row the model failed on, which a limit's error names. */
  private firstFailure: { reject: Reject; at: RejectPlace } | undefined;
  readonly files: ReturnType<typeof chunkFiles>;

  /** Counts the values the champion scored, and its predictions, on the profile's bins (drift); with drift.segment, per segment too. */
  readonly drift: ProfileCounter | SegmentedCounter | undefined;
  /** The run's challengers, in the spec's order. */
  readonly challengers: Challenger[];

  constructor(
    private readonly ctx: ChunkContext,
    private readonly out: Location,
    index: number,
  ) {
    this.files = chunkFiles(out, index, ctx.spec.output.format);
    this.drift = ctx.profile ? driftCounter(ctx.profile, ctx) : undefined;
    this.challengers = challengersOf(ctx);
  }

  /** Opens the part once the key columns' source types are known (Parquet keys keep theirs). */
  async open(keys: KeyColumn[]): Promise<void> {
    if (this.part) return;
    const writer = (this.partFile = digestingWriter(await this.out.storage.createWriter(this.files.part)));
    const { scorer, spec: { output } } = this.ctx;
    const outputs = this.ctx.spec.canary ? [...scorer.outputs, MODEL_VERSION] : scorer.outputs;
    this.part = output.format === 'parquet'
      ? (await parquetWriter()).parquetPartWriter(writer, keys, outputs, this.ctx.metadata, output.parquet.codec)
      : csvPartWriter(writer, keys, outputs, { delimiter: output.csv.delimiter, escapeFormulas: output.csv.escape_formulas });
  }

  /**
   * A batch goes through the chunk's stages in order: each model scores it, the champion's
   * outputs are written to the part, the rejected rows (the reader's, and the rows the
   * champion failed on, each with its line, key and the engine's message) to the staged
   * rejects, and progress is reported. A new per-batch stage (drift, a comparison of the
   * models) goes into this list and adds its counts to the chunk's result with `count`.
   */
  private readonly stages: ReadonlyArray<(flow: BatchFlow) => Promise<void>> = [
    (flow) => this.scoreChampion(flow),
    (flow) => this.scoreCanary(flow),
    (flow) => this.scoreOthers(flow),
    async (flow) => this.countDrift(flow),
    async (flow) => this.compare(flow),
    (flow) => this.writePart(flow),
    (flow) => this.writeRejects(flow),
    async () => this.ctx.onBatch?.({ ...this.rows }),
  ];

  /** Counts a stage adds to the chunk's result (ChunkStats.stages), summed over its batches. */
  readonly counts = new Map<string, Map<string, number>>();

  async flush(builder: BatchBuilder, segmentStart: number): Promise<void> {
    if (this.ctx.signal?.aborted) throw interrupted(this.ctx.signal);
    const pending = builder.pendingRejects;
    const batch = builder.rows > 0 ? builder.take() : undefined;
    const split = this.ctx.spec.canary;
    const canary = batch && split ? canaryRows(batch.keys, batch.rows, this.ctx.keys.length, split.salt, split.threshold) : undefined;
    const flow: BatchFlow = { batch, source: builder.source, segmentStart, pending, scored: new Map(), rejects: [], canary };
    flow.rejects.push(...builder.takeRejects());
    for (const stage of this.stages) await stage(flow);
  }

  private count(stage: string, name: string, n: number): void {
    if (n === 0) return;
    let counts = this.counts.get(stage);
    if (!counts) this.counts.set(stage, (counts = new Map()));
    counts.set(name, (counts.get(name) ?? 0) + n);
  }

  /** The champion scores the batch; a row it fails on alone is rejected (see bisect.ts), and the reject limit is checked as each is found. */
  private async scoreChampion(flow: BatchFlow): Promise<void> {
    const { batch } = flow;
    if (!batch) return;
    const failures: Reject[] = [];
    const started = process.hrtime.bigint();
    const scored = await this.ctx.scorer.score(batch, (failure) => {
      // A canary row is the canary's to publish or reject.
      if (flow.canary?.[failure.row]) return;
      failures.push(modelReject(flow.source, batch, failure, this.ctx.keys.length));
      // Depth first, left first: the model has scored nothing yet while every row so far failed.
      const none = this.rows.scored === 0 && failure.row === failures.length - 1;
      this.firstFailure ??= { reject: failures[0]!, at: { format: this.ctx.spec.input.format, start: flow.segmentStart } };
      this.checkRejectLimit(this.rows.rejected + flow.pending + failures.length, this.firstFailure, none);
    });
    // Beside challengers, or with a price per CPU hour, what each model cost is reported.
    if (this.ctx.spec.timed) this.count('score.champion', 'time_us', microsecondsSince(started));
    flow.scored.set('champion', scored);
    this.count('score.champion', 'failed', failures.length);
    if (failures.length === 0) return;
    // In line order, the reader's rejects and the model's together.
    flow.rejects.push(...failures);
    flow.rejects.sort((a, b) => a.line - b.line);
  }

  /**
   * The canary scores the batch; the rows of its split that it fails on are rejected with its
   * message (they are its to publish), counted against the reject limit as the champion's are.
   */
  private async scoreCanary(flow: BatchFlow): Promise<void> {
    const { batch, canary } = flow;
    const scorer = this.ctx.scorers.get('canary');
    if (!batch || !canary || !scorer) return;
    const failures: Reject[] = [];
    const started = process.hrtime.bigint();
    const scored = await scorer.score(batch, (failure) => {
      if (!canary[failure.row]) return;
      failures.push(modelReject(flow.source, batch, failure, this.ctx.keys.length));
      this.firstFailure ??= { reject: failures[0]!, at: { format: this.ctx.spec.input.format, start: flow.segmentStart } };
      this.checkRejectLimit(this.rows.rejected + flow.rejects.length + failures.length, this.firstFailure, false);
    });
    flow.scored.set('canary', scored);
    if (this.ctx.spec.timed) this.count('score.canary', 'time_us', microsecondsSince(started));
    this.count('score.canary', 'failed', failures.length);
    if (failures.length === 0) return;
    flow.rejects.push(...failures);
    flow.rejects.sort((a, b) => a.line - b.line);
  }

  /**
   * Every challenger scores the same batch, fed its own columns of it. What it writes is the
   * champion's business, so a row it fails on is counted, not rejected, and a batch it cannot
   * score at all is counted with the engine's message: a challenger never fails the chunk.
   */
  private async scoreOthers(flow: BatchFlow): Promise<void> {
    const { batch } = flow;
    if (!batch) return;
    for (const c of this.challengers) {
      if (!c.scorer) continue;
      const started = process.hrtime.bigint();
      try {
        const scored = await c.scorer.score(c.feed(batch));
        flow.scored.set(c.role, scored);
        this.count(`score.${c.role}`, 'rows', batch.rows - scored.failed.length);
        this.count(`score.${c.role}`, 'failed', scored.failed.length);
      } catch (err) {
        c.comparer?.addError(toNightscoreError(err).message);
        this.count(`score.${c.role}`, 'batch_errors', 1);
      }
      if (this.ctx.spec.timed) this.count(`score.${c.role}`, 'time_us', microsecondsSince(started));
    }
  }

  /** Each challenger's outputs against the champion's, row by row, on the rows both scored. */
  private compare(flow: BatchFlow): void {
    const { batch } = flow;
    const champion = flow.scored.get('champion');
    if (!batch || !champion) return;
    for (const c of this.challengers) {
      const scored = flow.scored.get(c.role);
      if (scored) c.comparer?.add(batch.rows, champion, scored);
    }
  }

  /** The rows the champion scored, as the model read them, and what it predicted: rejected rows are not counted. */
  private countDrift(flow: BatchFlow): void {
    const { batch } = flow;
    const scored = flow.scored.get('champion');
    if (!this.drift || !batch || !scored) return;
    this.drift.add(batch, scored.failed.map((f) => f.row), scored.outputs);
  }

  private async writePart(flow: BatchFlow): Promise<void> {
    const { batch } = flow;
    const scored = flow.scored.get('champion');
    if (!batch || !scored) return;
    if (flow.canary) return this.writeCanaryPart(flow, batch, scored, flow.scored.get('canary')!, flow.canary);
    const { outputs, failed } = scored;
    const rows = batch.rows - failed.length;
    await this.part!.writeBatch(failed.length === 0 ? batch.keys : keptKeys(batch.keys, batch.rows, failed), outputs, rows);
    this.rows.scored += rows;
    this.rows.read += rows;
  }

  /**
   * With a canary, each row from the model its split gives it (the champion's or the
   * canary's outputs), with the model_version column saying which; a row its model failed on
   * is in the rejects instead.
   */
  private async writeCanaryPart(flow: BatchFlow, batch: Batch, champion: ScoredBatch, canary: ScoredBatch, split: Uint8Array): Promise<void> {
    const labels = this.ctx.spec.canary!.labels;
    const { outputs, kept, from } = mergeBySplit(batch.rows, champion, canary, split);
    const versions = Array.from(from, (c) => (c ? labels.canary : labels.champion));
    const rows = kept.length;
    await this.part!.writeBatch(keysOfRows(batch.keys, kept), [...outputs, { columns: MODEL_VERSION, data: versions }], rows);
    const onCanary = from.reduce((n, c) => n + c, 0);
    this.count('score.canary', 'rows', onCanary);
    this.count('score.champion', 'rows', rows - onCanary);
    this.rows.scored += rows;
    this.rows.read += rows;
  }

  private async writeRejects(flow: BatchFlow): Promise<void> {
    const { rejects } = flow;
    if (rejects.length === 0) return;
    const csv = { delimiter: this.ctx.spec.output.csv.delimiter };
    if (!this.rejects) {
      this.rejects = digestingWriter(await this.out.storage.createWriter(this.files.stagedRejects));
      await this.rejects.write(stagedRejectsHeader(this.ctx.keys, csv));
    }
    await this.rejects.write(formatStagedRejects(rejects, flow.segmentStart, csv));
    this.rows.rejected += rejects.length;
    this.rows.read += rejects.length;
  }

  /** Fails the chunk as soon as the reject limit is certain to be exceeded (see rejectLimitError). */
  private checkRejectLimit(rejected: number, first: { reject: Reject; at: RejectPlace }, noneScored: boolean): void {
    const error = rejectLimitError(this.ctx.spec.limits, rejected, first.reject, first.at, noneScored, this.ctx.scorer.runFailedHint);
    if (error) throw error;
  }

  async close(): Promise<void> {
    if (!this.part) await this.open(this.ctx.keys.map((name) => ({ name })));
    await this.part!.close();
    await this.rejects?.close();
  }

  async abort(): Promise<void> {
    await this.part?.abort();
    await this.rejects?.abort();
  }

  /** The part as written, once closed. */
  get written(): ChunkResult['part'] {
    return { uri: this.out.storage.uri(this.files.part), rows: this.rows.scored, ...this.partFile!.digest() };
  }

  /** The staged rejects as written, once closed. */
  get stagedRejects(): ChunkResult['stagedRejects'] {
    return this.rejects ? { uri: this.out.storage.uri(this.files.stagedRejects), rows: this.rows.rejected, ...this.rejects.digest() } : null;
  }
}

/**
 * Scores one chunk into `part-<index>`. Rows stream through in batches of `batchRows`, so
 * memory is bounded by one batch whatever the chunk's size (a Parquet chunk, at most two
 * batches, is decoded whole: see planParquetChunks). Every record of the chunk's
 * segments lands in exactly one place: the part, or the staged rejects file that the run's
 * commit turns into `_rejects/part-<index>` with absolute line numbers.
 * The part is written under a deterministic name and only becomes visible when complete,
 * so a chunk that runs twice (a retry, a crashed worker) overwrites its own part and
 * nothing else.
 */
export async function scoreChunk(spec: ChunkSpec, scorers: ReadonlyMap<ModelRole, Scorer>, opts: ScoreOptions = {}): Promise<ChunkResult> {
  const out = openLocation(spec.output.uri);
  const ctx = chunkContext(spec, scorers, opts);
  const sink = new ChunkSink(ctx, out, spec.index);
  const segments: SegmentResult[] = [];
  // Each segment's rows counted against its object, merged as a run merges its chunks.
  const counted: ChunkStats[] = [];
  try {
    for (const segment of spec.segments) {
      const before = sink.rows.read;
      segments.push(await feedSegment(segment, ctx, sink));
      counted.push({ rows: emptyRows(), inputs: { [segment.uri]: sink.rows.read - before } });
    }
    await sink.close();
  } catch (err) {
    await sink.abort();
    throw err;
  }
  return {
    index: spec.index,
    stats: mergeStats([...counted, { rows: { ...sink.rows }, inputs: {}, ...stageCounts(sink.counts), ...driftCounts(sink.drift), ...shadowCounts(sink.challengers) }]),
    part: sink.written,
    stagedRejects: sink.stagedRejects,
    segments,
  };
}

/**
 * The chunk's drift counter: without drift.segment the plain one, whose cost is the run's
 * alone; with it, one that counts each row into its segment as well.
 */
function driftCounter(profile: Profile, ctx: ChunkContext): ProfileCounter | SegmentedCounter {
  const model = { columns: ctx.columns, outputs: ctx.scorer.outputs };
  const segment = ctx.spec.drift?.segment ?? null;
  if (segment === null) return new ProfileCounter(profile, model);
  // Checked at plan time: a thread that fails here was handed a profile the plan did not check.
  checkProfileSegments(profile, ctx.spec.drift!.profile.uri, segment);
  return new SegmentedCounter(profile, profile.segment!.values, model, locateSegmentColumn(segment, ctx.keys, ctx.columns));
}

/** A drift counter's counts as ChunkStats.drift (and drift_segments): absent when the run measures no drift. */
function driftCounts(counter: ProfileCounter | SegmentedCounter | undefined): Pick<ChunkStats, 'drift' | 'drift_segments'> {
  if (!counter) return {};
  if (counter instanceof SegmentedCounter) return { drift: counter.overall.result(), drift_segments: counter.result() };
  return { drift: counter.result() };
}

/**
 * The chunk's challengers, from its spec's models of role challenger:<name>: each with its
 * bound scorer (none when this thread could not bind it: the reason is counted as an error of
 * its comparison), the projection that feeds it, and its comparer.
 */
function challengersOf(ctx: ChunkContext): Challenger[] {
  const rule = ctx.spec.compare;
  return ctx.spec.models.flatMap((m) => {
    const name = challengerName(m.role);
    if (name === null) return [];
    const scorer = ctx.scorers.get(m.role);
    const comparer = rule ? new Comparer(rule) : undefined;
    const unbound = ctx.unbound?.get(m.role);
    if (unbound !== undefined || !scorer) comparer?.addError(unbound ?? 'the challenger was not bound on this thread');
    const feed = scorer ? projection(ctx.columns, featureColumns(scorer.inputs, ctx.spec.input.missing)) : (b: FeatureBatch) => b;
    return [{ role: m.role, name, scorer, feed, comparer }];
  });
}

/** The challengers' comparisons as ChunkStats.shadow: absent when the run has none. */
function shadowCounts(challengers: readonly Challenger[]): Pick<ChunkStats, 'shadow'> {
  const compared = challengers.flatMap((c) => (c.comparer ? [[c.name, c.comparer.result()] as const] : []));
  return compared.length === 0 ? {} : { shadow: Object.fromEntries(compared) };
}

/** The column a canary run adds to the part: which model scored each row. */
const MODEL_VERSION: OutputColumns = { output: 'model_version', type: 'string', names: ['model_version'] };

/**
 * One batch's published rows under a canary split: each row from the model the split gives
 * it, dropped when that model failed on it. Returns the outputs (the champion's columns, each
 * value from its row's model), the rows kept (batch row numbers, in order) and, per kept row,
 * 1 when the canary scored it.
 */
function mergeBySplit(rows: number, champion: ScoredBatch, canary: ScoredBatch, split: Uint8Array): { outputs: OutputValues[]; kept: Int32Array; from: number[] } {
  const failedA = new Set(champion.failed.map((f) => f.row));
  const failedB = new Set(canary.failed.map((f) => f.row));
  const kept: number[] = [];
  const from: number[] = [];
  // Where each row's values are in each model's outputs (which hold the rows it scored, in order).
  const at: Array<[number, number]> = [];
  let ia = 0;
  let ib = 0;
  for (let r = 0; r < rows; r++) {
    const c = split[r]!;
    if (c ? !failedB.has(r) : !failedA.has(r)) {
      kept.push(r);
      from.push(c);
      at.push([ia, ib]);
    }
    if (!failedA.has(r)) ia++;
    if (!failedB.has(r)) ib++;
  }
  const outputs = champion.outputs.map((a, o) => {
    const b = canary.outputs[o]!;
    const width = a.columns.names.length;
    const data = newLike(a.data, kept.length * width);
    for (let i = 0; i < kept.length; i++) {
      const [pa, pb] = at[i]!;
      const source = from[i] ? b.data : a.data;
      const p = from[i] ? pb : pa;
      for (let w = 0; w < width; w++) (data as unknown[])[i * width + w] = (source as unknown[])[p * width + w];
    }
    return { columns: a.columns, data };
  });
  return { outputs, kept: Int32Array.from(kept), from };
}

function newLike(data: TensorData, length: number): TensorData {
  if (Array.isArray(data)) return new Array<string>(length);
  return new (data.constructor as new (n: number) => Exclude<TensorData, string[]>)(length);
}

/** Whole microseconds since `started` (process.hrtime.bigint()): a count that adds exactly. */
function microsecondsSince(started: bigint): number {
  return Number((process.hrtime.bigint() - started) / 1000n);
}

/** A sink's stage counts as ChunkStats.stages: absent when no stage counted. */
function stageCounts(counts: Map<string, Map<string, number>>): Pick<ChunkStats, 'stages'> {
  return counts.size === 0 ? {} : { stages: Object.fromEntries([...counts].map(([stage, c]) => [stage, Object.fromEntries(c)])) };
}

/** What reading a chunk's segments needs besides the sink. */
export function chunkContext(spec: ChunkSpec, scorers: ReadonlyMap<ModelRole, Scorer>, opts: ScoreOptions = {}): ChunkContext {
  const model = champion(spec);
  const scorer = scorers.get('champion');
  if (!scorer) throw new NightscoreError('INTERNAL', `chunk ${spec.index} of ${spec.run.job} ${spec.run.date} has no champion bound`, { hint: 'Run the date again; if it happens again, report it.' });
  return {
    ...opts,
    spec,
    scorers,
    scorer,
    keys: spec.input.key,
    metadata: {
      'nightscore.job': spec.run.job,
      'nightscore.date': spec.run.date,
      'nightscore.model_sha256': model.sha256,
      ...(model.registry ? { 'nightscore.model_name': model.registry.name, 'nightscore.model_version': String(model.registry.version), 'nightscore.model_ref': model.registry.ref } : {}),
    },
    columns: featureColumns(scorer.inputs, spec.input.missing),
  };
}

/** Reads a segment's rows in batches into `sink`. */
export function feedSegment(segment: Segment, ctx: ChunkContext, sink: BatchSink): Promise<SegmentResult> {
  return segment.rows ? scoreParquetSegment(segment, ctx, sink) : scoreCsvSegment(segment, ctx, sink);
}

async function scoreCsvSegment(segment: Segment, ctx: ChunkContext, sink: BatchSink): Promise<SegmentResult> {
  const stats: LineRangeStats = { newlines: 0 };
  const streams: Readable[] = [];
  try {
    const csv = await openSegment(segment, ctx, stats, streams);
    const { features } = ctx.scorer;
    const columns = mapColumns(csv.header.names, features, ctx.keys, segment.uri, champion(ctx.spec).binding.job_key);
    const scan = ctx.columns.map((c, j) => ({ at: columns.features[j]!, float32: c.type === 'float32', missing: c.missing }));
    const layout = scanLayout(columns.width, scan, columns.keys, features);
    const builder = new BatchBuilder(ctx.columns, ctx.spec.batch.rows, segment.uri, ctx.keys.length, layout.textColumn);
    await sink.open(ctx.keys.map((name) => ({ name })));
    for await (const full of csv.scan(layout, builder)) await sink.flush(full, segment.start);
    await sink.flush(builder, segment.start);
    return { uri: segment.uri, start: segment.start, newlines: stats.newlines };
  } finally {
    // Whatever happened, release the object's connection (S3) or file descriptor.
    for (const stream of streams) stream.destroy();
  }
}

/**
 * A Parquet segment is a row range of one row group. Only the key and feature columns are
 * fetched and decoded, the whole segment at once, then scored a batch at a time; a reject's
 * line is its 0-based row index in the file.
 */
async function scoreParquetSegment(segment: Segment, ctx: ChunkContext, sink: BatchSink): Promise<SegmentResult> {
  const { openParquet, parquetColumnReader, parquetKeyReader, resolveColumn } = await parquetReader();
  const source = await openParquet(segment.uri, segment.bytes, segment.version);
  const features = ctx.columns.map((c) => resolveColumn(source.metadata, c.name, c.type, segment.uri, champion(ctx.spec).binding.job_key));
  const keys = ctx.keys.map((k) => resolveColumn(source.metadata, k, 'key', segment.uri));
  await sink.open(keys.map((k) => ({ name: k.name, element: k.element })));
  const { rows: batchRows } = ctx.spec.batch;
  const builder = new BatchBuilder(ctx.columns, batchRows, segment.uri, ctx.keys.length);
  const readFeatures = await parquetColumnReader(source, features);
  const readKeys = await parquetKeyReader(source, keys);
  const { start, end } = segment.rows!;
  // The whole segment in one read per column (see planParquetChunks), then batches of it.
  const featureColumns = await readFeatures(start, end);
  const keyColumns = await readKeys(start, end);
  for (let from = start; from < end; from += batchRows) {
    const to = Math.min(end, from + batchRows);
    builder.addColumns(featureColumns, keyColumns, from - start, to - from, from);
    await sink.flush(builder, start);
  }
  return { uri: segment.uri, start, newlines: 0 };
}

/** Opens a segment's CSV records; every stream it opens is pushed to `streams` for the caller to destroy. */
async function openSegment(segment: Segment, ctx: ChunkContext, stats: LineRangeStats, streams: Readable[]): Promise<CsvStream> {
  const { storage, key } = openLocation(segment.uri);
  const whole = segment.start === 0 && segment.end >= segment.bytes;
  const mid = segment.start > 0;
  // A split point is a line end of the file's own kind (CR alone, or LF), which its header
  // tells: a range from mid-object reads the header first, the one at byte 0 as it goes.
  const header = mid ? await readHeader(segment, ctx) : undefined;
  const raw = await storage.read(key, mid ? { start: segment.start - 1 } : undefined, segment.version);
  streams.push(raw);
  let source: Readable = raw;
  if (segment.gzip) {
    const gunzip = createGunzip();
    streams.push(gunzip);
    // pipeline() tears both down when either fails (a truncated gzip, a reset connection).
    pipeline(raw, gunzip).catch(() => undefined);
    source = gunzip;
  }
  const from = mid ? segment.start - 1 : 0;
  const sliced = Readable.from(
    sliceLineRange(source, { skipFirst: mid, last: whole ? Infinity : segment.end - 1 - from, length: segment.gzip ? undefined : segment.bytes - from, source: segment.uri, eol: lineEnd(header, whole) }, stats),
  );
  streams.push(sliced);
  return openCsv(sliced, {
    source: segment.uri,
    delimiter: ctx.spec.input.csv.delimiter,
    maxRecordBytes: ctx.spec.input.csv.max_record_bytes,
    header,
    endsMidObject: !whole && segment.end < segment.bytes,
    range: mid ? { start: segment.start, end: segment.end } : undefined,
  });
}

/**
 * The byte that ends a record, for slicing: from the header a mid-object range read, read
 * from the stream by the first range of a split object, and moot for a whole object (it has
 * no split point, and its line count is only needed to number later ranges, of which it has none).
 */
function lineEnd(header: CsvHeader | undefined, whole: boolean): number | 'auto' {
  if (header) return header.eol === 'cr' ? CR : LF;
  return whole ? LF : 'auto';
}

/** The header of an object, for a range that starts mid-object: parsed from the object's first record. */
async function readHeader(segment: Segment, ctx: ChunkContext): Promise<CsvHeader> {
  const { storage, key } = openLocation(segment.uri);
  const stream = await storage.read(key, undefined, segment.version);
  try {
    return (await openCsv(stream, { source: segment.uri, delimiter: ctx.spec.input.csv.delimiter, maxRecordBytes: ctx.spec.input.csv.max_record_bytes })).header;
  } finally {
    stream.destroy();
  }
}

/** The failure of a run stopped by a signal (the abort reason names it). */
export function interrupted(signal: AbortSignal): NightscoreError {
  return new NightscoreError('RUN_INTERRUPTED', `the run was interrupted (${String(signal.reason ?? 'aborted')}) before it finished; nothing was published`, {
    hint: 'Run the date again; its earlier parts are replaced.',
  });
}
