/**
 * Building a reference profile (nightscore profile build): the reference data is read through
 * the same readers, binding and model as a run, in two passes. The first fits each column's
 * bins: numeric columns on a sample of at most `rows` scored rows, drawn with a fixed seed so
 * the same reference gives the same profile, and string columns on all their values. The
 * second counts every scored row on those bins with the counter runs use (profile-counter.ts),
 * so a reference and a run are counted alike. Rejected rows are counted, never profiled.
 */
import { NightscoreError } from '../errors.js';
import { seededRandom } from '../random.js';
import type { Batch } from '../formats/batch.js';
import { float32Offsets, type FeatureColumn } from '../model/features.js';
import { float16Value } from '../formats/numbers.js';
import type { OutputColumns, OutputValues, Scorer } from '../model/scorer.js';
import type { PreparedJob } from '../run/bind.js';
import { planReading, readAll, ScoringSink } from '../run/read-data.js';
import { fitCategorical, fitNumeric, type Bins } from './bins.js';
import { PROFILE_FORMAT, PROFILE_VERSION, type Profile, type ProfileColumn } from './profile.js';
import { checkProfileFits, ProfileCounter } from './profile-counter.js';
import { emptyCounts } from './counts.js';
import { locateSegmentColumn, segmentBlock, SegmentedCounter, SegmentReader, SegmentTally } from './segment.js';

export interface BuildOptions {
  /** Scored rows the numeric bins are fitted on, at most. @defaultValue 1,000,000 */
  rows?: number;
  /** The reference's format. @defaultValue from its name (.parquet, else .csv), else the job's input.format */
  format?: 'csv' | 'parquet';
  /**
   * Count on this profile's bins instead of fitting new ones (profile build --bins-from): the
   * counts then add to, and compare with, every run counted on that profile.
   */
  binsFrom?: { profile: Profile; uri: string };
  /**
   * Profile per segment of this column too (drift.segment, or profile build --segment): its most
   * frequent reference values are fixed in the profile (with --bins-from, that profile's, when
   * it is segmented by the same column).
   */
  segment?: string;
}

export const DEFAULT_FIT_ROWS = 1_000_000;
/** Distinct strings a column keeps while fitting; past it the vocabulary is incomplete (bins.ts, CategoricalBins). */
const MAX_DISTINCT = 1_000_000;

/** Builds the profile of `referenceUri` for a prepared job's model. */
export async function buildProfile(prepared: PreparedJob, referenceUri: string, opts: BuildOptions = {}): Promise<Profile> {
  const { job } = prepared;
  const reading = await planReading(prepared, referenceUri, opts.format, 'the reference');
  const { prepared: sized, columns } = reading;

  const reader = opts.segment === undefined ? undefined : new SegmentReader(locateSegmentColumn(opts.segment, job.input.key, columns, job.file), columns);
  let profileColumns: ProfileColumn[];
  let fittedOn: number;
  let segmentValues: string[] | undefined;
  if (opts.binsFrom) {
    checkProfileFits(opts.binsFrom.profile, opts.binsFrom.uri, { sha256: sized.spec.sha256, columns, outputs: sized.scorer.outputs });
    profileColumns = opts.binsFrom.profile.columns.map((c) => emptyColumn(c.name, c.role, c.bins));
    fittedOn = opts.binsFrom.profile.reference.fitted_on;
    if (reader) {
      const fixed = opts.binsFrom.profile.segment;
      if (fixed && fixed.column === opts.segment) segmentValues = fixed.values;
      else {
        const tally = new TallySink(sized.scorer, reader);
        await readAll(reading, tally);
        segmentValues = tally.tally.values();
      }
    }
  } else {
    const fit = new FitSink(sized.scorer, columns, opts.rows ?? DEFAULT_FIT_ROWS, reader);
    await readAll(reading, fit);
    segmentValues = fit.tally?.values();
    if (fit.scored === 0) {
      throw new NightscoreError('TOO_FEW_ROWS', `no row of the reference ${referenceUri} scored (${fit.rejected} rejected): there is nothing to profile`, {
        source: referenceUri,
        hint: 'Profile the data the model was trained or validated on, with the columns the job reads.',
      });
    }
    profileColumns = [
      ...columns.map((c, j) => emptyColumn(c.name, 'feature', fit.binsOfFeature(j))),
      ...sized.scorer.outputs.flatMap((o, i) => o.names.map((name, k) => emptyColumn(name, 'prediction', fit.binsOfOutput(i, k)))),
    ];
    fittedOn = Math.min(fit.scored, fit.capacity);
  }
  const model = { columns, outputs: sized.scorer.outputs };
  const segmented = reader && segmentValues ? new SegmentedCounter({ columns: profileColumns }, segmentValues, model, reader.at) : undefined;
  const count = new CountSink(sized.scorer, segmented ?? new ProfileCounter({ columns: profileColumns }, model));
  await readAll(reading, count);
  const counts = (segmented?.overall ?? (count.counter as ProfileCounter)).result();
  return {
    format: PROFILE_FORMAT,
    version: PROFILE_VERSION,
    model: { sha256: sized.spec.sha256, features: columns.map((c) => c.name), outputs: sized.scorer.outputs.flatMap((o) => o.names) },
    reference: { uri: referenceUri, rows: { read: count.scored + count.rejected, scored: count.scored, rejected: count.rejected }, fitted_on: fittedOn },
    columns: profileColumns.map((c) => ({ ...c, counts: counts[`${c.role}:${c.name}`]! })),
    ...(segmented ? { segment: segmentBlock(opts.segment!, segmentValues!, { columns: profileColumns }, segmented.result()) } : {}),
  };
}

function emptyColumn(name: string, role: ProfileColumn['role'], bins: Bins): ProfileColumn {
  return { name, role, bins, counts: emptyCounts(bins) };
}

class CountSink extends ScoringSink {
  constructor(
    scorer: Scorer,
    readonly counter: ProfileCounter | SegmentedCounter,
  ) {
    super(scorer);
  }

  protected take(batch: Batch, failed: number[], outputs: OutputValues[]): void {
    this.counter.add(batch, failed, outputs);
  }
}

/** Tallies the segment column's values of the rows that scored, for a build whose bins are not fitted (--bins-from). */
class TallySink extends ScoringSink {
  readonly tally = new SegmentTally();

  constructor(
    scorer: Scorer,
    private readonly reader: SegmentReader,
  ) {
    super(scorer);
  }

  protected take(batch: Batch, failed: number[]): void {
    tallyRows(this.tally, this.reader, batch, failed);
  }
}

function tallyRows(tally: SegmentTally, reader: SegmentReader, batch: Batch, failed: readonly number[]): void {
  let skip = 0;
  for (let r = 0; r < batch.rows; r++) {
    if (skip < failed.length && failed[skip] === r) skip++;
    else tally.add(reader.text(batch, r));
  }
}

/**
 * Gathers what fitting needs: a sample of rows (Vitter's algorithm R with a fixed seed, so the
 * same reference read in the same order gives the same sample) for numeric columns, and every
 * value's count for string columns.
 */
class FitSink extends ScoringSink {
  private readonly random = seededRandom(0x6e73);
  private readonly numeric: (Float64Array | undefined)[];
  private readonly strings: (Map<string, number> | undefined)[];
  private readonly outputNumeric: Float64Array[][];
  private readonly outputStrings: (Map<string, number> | undefined)[][];
  private overflowed = new Set<Map<string, number>>();
  /** Where each column sits among the float32 block's columns, and how many that block holds. */
  private readonly float32At: number[];
  private readonly float32Width: number;

  /** With a segment column: its values, counted. */
  readonly tally: SegmentTally | undefined;

  constructor(
    scorer: Scorer,
    private readonly columns: readonly FeatureColumn[],
    readonly capacity: number,
    private readonly segment?: SegmentReader,
  ) {
    super(scorer);
    this.tally = segment ? new SegmentTally() : undefined;
    this.float32At = float32Offsets(columns);
    this.float32Width = columns.filter((c) => c.type === 'float32').length;
    this.numeric = columns.map((c) => (c.type === 'string' ? undefined : new Float64Array(capacity).fill(NaN)));
    this.strings = columns.map((c) => (c.type === 'string' ? new Map() : undefined));
    this.outputNumeric = scorer.outputs.map((o) => o.names.map(() => (isLabel(o) ? new Float64Array(0) : new Float64Array(capacity).fill(NaN))));
    this.outputStrings = scorer.outputs.map((o) => o.names.map(() => (isLabel(o) ? new Map() : undefined)));
  }

  protected take(batch: Batch, failed: number[], outputs: OutputValues[]): void {
    if (this.segment) tallyRows(this.tally!, this.segment, batch, failed);
    const { float32At } = this;
    const nf = this.float32Width;
    let skip = 0;
    let out = 0;
    const seenBefore = this.scored - (batch.rows - failed.length);
    for (let r = 0; r < batch.rows; r++) {
      if (skip < failed.length && failed[skip] === r) {
        skip++;
        continue;
      }
      const g = seenBefore + out;
      const slot = g < this.capacity ? g : Math.floor(this.random() * (g + 1));
      const sampled = slot < this.capacity;
      this.columns.forEach((c, j) => {
        const values = batch.columns[j];
        if (Array.isArray(values)) countString(this.strings[j]!, values[r] ?? '', this.overflowed);
        else if (sampled) this.numeric[j]![slot] = values === undefined ? batch.features[r * nf + float32At[j]!]! : numberAt(values, r, c.type === 'float16');
      });
      outputs.forEach((o, i) => {
        const width = o.columns.names.length;
        o.columns.names.forEach((_, k) => {
          const at = out * width + k;
          const strings = this.outputStrings[i]![k];
          if (strings) countString(strings, String(o.data[at]), this.overflowed);
          else if (sampled) this.outputNumeric[i]![k]![slot] = numberAt(o.data as Float64Array, at, o.columns.type === 'float16');
        });
      });
      out++;
    }
  }

  binsOfFeature(j: number): Bins {
    const strings = this.strings[j];
    if (strings) return categorical(strings, this.overflowed);
    return fitNumeric(finiteOf(this.numeric[j]!));
  }

  binsOfOutput(i: number, k: number): Bins {
    const strings = this.outputStrings[i]![k];
    if (strings) return categorical(strings, this.overflowed);
    const values = finiteOf(this.outputNumeric[i]![k]!);
    // A float output whose every reference value lies in [0, 1] is taken for a probability: fixed bins, comparable across models.
    if (values.length > 0 && values.every((v) => v >= 0 && v <= 1) && this.scorer.outputs[i]!.type.startsWith('float')) return { kind: 'probability' };
    return fitNumeric(values);
  }
}

function isLabel(o: OutputColumns): boolean {
  return o.type === 'string' || o.type === 'int64' || o.type === 'uint64';
}

function numberAt(values: ArrayLike<number | bigint>, at: number, float16: boolean): number {
  const v = values[at]!;
  if (typeof v === 'bigint') return Number(v);
  return float16 ? float16Value(v) : v;
}

function countString(counts: Map<string, number>, s: string, overflowed: Set<Map<string, number>>): void {
  const n = counts.get(s);
  if (n !== undefined) counts.set(s, n + 1);
  else if (counts.size < MAX_DISTINCT) counts.set(s, 1);
  else overflowed.add(counts);
}

function categorical(counts: Map<string, number>, overflowed: Set<Map<string, number>>): Bins {
  const bins = fitCategorical(counts);
  // Values were dropped while fitting: the vocabulary cannot tell OTHER from UNSEEN.
  return overflowed.has(counts) ? { ...bins, vocabulary: null } : bins;
}

/** The sampled values that are finite (NaN marks a slot never filled, or a missing value). */
function finiteOf(sample: Float64Array): number[] {
  const out: number[] = [];
  for (const v of sample) if (Number.isFinite(v)) out.push(v);
  return out;
}
