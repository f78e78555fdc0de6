/**
 * Scoring labelled data to judge a model (nightscore model evaluate): the data is read through
 * the same readers, binding and model as a run, the label column alongside as a key column
 * (copied as read), and the model's predictions compared with it by the metrics of metrics.ts.
 * Rows the reader or the model rejects, and rows without a label, are counted, not evaluated.
 * The labels and scores are held in memory (a ROC area needs every score): evaluation data is
 * a validation set, not a day of production.
 */
import { NightscoreError } from '../errors.js';
import type { TensorData } from '../engine/engine.js';
import type { Batch } from '../formats/batch.js';
import type { OutputColumns, OutputValues, Scorer } from '../model/scorer.js';
import type { PreparedJob } from '../run/bind.js';
import { planReading, readAll, ScoringSink } from '../run/read-data.js';
import { locateSegmentColumn, SegmentReader } from '../drift/segment.js';
import { binaryMetrics, regressionMetrics, type BinaryMetrics, type RegressionMetrics } from './metrics.js';

export type Task = 'classification' | 'regression';

export interface EvaluateOptions {
  /** The column holding the truth; it must be among the job's key columns (input.key). */
  label: string;
  /** @defaultValue from the data's name, else the job's input.format */
  format?: 'csv' | 'parquet';
  /** @defaultValue classification when the model writes a label or two probabilities, else regression */
  task?: Task;
  /** The prediction column scored against the label. @defaultValue the positive class's probability, or the one float output */
  score?: string;
  /** The label text of the positive class. @defaultValue "1" */
  positive?: string;
  /** A score at or above it predicts the positive class, when the model writes no label. @defaultValue 0.5 */
  threshold?: number;
}

export interface Evaluation {
  task: Task;
  model: { sha256: string };
  data: string;
  label: string;
  /** The prediction column the metrics read, and for a classifier the one that gives its class (or the threshold). */
  score: string;
  predicted: string;
  rows: { read: number; evaluated: number; rejected: number; unlabelled: number };
  metrics: BinaryMetrics | RegressionMetrics;
}

/** Where a prediction column sits among the scorer's outputs. */
interface OutputColumn {
  output: number;
  column: number;
  width: number;
  name: string;
  type: OutputColumns['type'];
}

const isFloat = (type: OutputColumns['type']) => type === 'float32' || type === 'float64' || type === 'float16';

export async function evaluateModel(prepared: PreparedJob, dataUri: string, opts: EvaluateOptions): Promise<Evaluation> {
  const { job } = prepared;
  const reading = await planReading(prepared, dataUri, opts.format, 'the labelled data');
  const { prepared: sized, columns } = reading;
  const label = new SegmentReader(locateSegmentColumn(opts.label, job.input.key, [], job.file), columns);

  const outputs = sized.scorer.outputs.flatMap((o, output) => o.names.map((name, column) => ({ output, column, width: o.names.length, name, type: o.type })));
  const task = opts.task ?? (outputs.some((c) => !isFloat(c.type)) || outputs.some((c) => isFloat(c.type) && c.width === 2) ? 'classification' : 'regression');
  const positive = opts.positive ?? '1';
  const score = scoreColumn(outputs, task, opts.score, positive);
  // The model's own label predicts the class, unless --threshold asks for the score's.
  const labelOutput = task === 'classification' && opts.threshold === undefined ? outputs.find((c) => !isFloat(c.type) && c.width === 1) : undefined;
  const threshold = opts.threshold ?? 0.5;

  // The labels seen, up to three: a binary evaluation needs two, one of them the positive class.
  const classes = new Set<string>();
  const predictedClasses = new Set<string>();
  const sink = new EvaluationSink(sized.scorer, (sink, batch, failed, scored) => {
    let skip = 0;
    for (let r = 0, s = 0; r < batch.rows; r++) {
      if (skip < failed.length && failed[skip] === r) {
        skip++;
        continue;
      }
      const row = s++;
      const truth = label.text(batch, r);
      const value = numberAt(scored[score.output]!.data, row * score.width + score.column);
      // A score that is no number has no place in a ranking or a loss: counted with the model's rejects.
      if (!Number.isFinite(value)) {
        sink.rejected++;
        continue;
      }
      if (task === 'regression') {
        const y = truth === null ? NaN : Number(truth);
        if (!Number.isFinite(y)) sink.unlabelled++;
        else sink.add(y, value, 0);
      } else if (truth === null) sink.unlabelled++;
      else {
        if (classes.size < 3) classes.add(truth);
        const predicted = labelOutput ? textAt(scored[labelOutput.output]!.data, row) : undefined;
        if (predicted !== undefined && predictedClasses.size < 3) predictedClasses.add(predicted);
        const predictedPositive = predicted !== undefined ? predicted === positive : value >= threshold;
        sink.add(truth === positive ? 1 : 0, value, predictedPositive ? 1 : 0);
      }
    }
  });
  await readAll(reading, sink);
  const n = sink.rows;
  if (n === 0) {
    throw new NightscoreError('TOO_FEW_ROWS', `no row of ${dataUri} was evaluated (${sink.rejected} rejected, ${sink.unlabelled} without a label in "${opts.label}")`, {
      source: dataUri,
      column: opts.label,
      hint: 'Evaluate labelled data with the columns the model reads and a label in every row.',
    });
  }
  if (task === 'classification' && (classes.size > 2 || (classes.size === 2 && !classes.has(positive)))) {
    const found = [...classes].map((c) => `"${c}"`).join(', ');
    throw new NightscoreError('BAD_OPTION', classes.size > 2 ? `the label column "${opts.label}" holds more than two classes (${found}, …): model evaluate measures a binary classifier` : `no label in "${opts.label}" is the positive class "${positive}" (the labels are ${found})`, {
      source: dataUri,
      column: opts.label,
      hint: classes.size > 2 ? 'Evaluate a binary label (one class against the rest, as a column of its own).' : 'Name the positive class: --positive <label>.',
    });
  }
  if (labelOutput && predictedClasses.size === 2 && !predictedClasses.has(positive)) {
    throw new NightscoreError('BAD_OPTION', `the model's ${labelOutput.name} predicts ${[...predictedClasses].map((c) => `"${c}"`).join(' and ')}, and the positive class is "${positive}"`, {
      source: dataUri,
      column: opts.label,
      hint: 'Predict the class from the score instead: --threshold 0.5 (with --score naming the positive class\'s probability).',
    });
  }
  const truth = sink.truth.subarray(0, n);
  const scores = sink.scores.subarray(0, n);
  const metrics = task === 'regression' ? regressionMetrics(truth, scores) : binaryMetrics(Uint8Array.from(truth), scores, sink.predicted.subarray(0, n));
  return {
    task,
    model: { sha256: sized.spec.sha256 },
    data: dataUri,
    label: opts.label,
    score: score.name,
    predicted: task === 'regression' ? score.name : labelOutput ? labelOutput.name : `${score.name} ≥ ${threshold}`,
    rows: { read: n + sink.rejected + sink.unlabelled, evaluated: n, rejected: sink.rejected, unlabelled: sink.unlabelled },
    metrics,
  };
}

/**
 * The column compared with the label: `--score`'s; for a classifier, the positive class's
 * probability (the column named for it, as an unwrapped ZipMap names them, else the second of two
 * for "1" and the first for "0"), or a one-column score; for a regressor, the one-column number.
 */
function scoreColumn(outputs: OutputColumn[], task: Task, named: string | undefined, positive: string): OutputColumn {
  const floats = outputs.filter((c) => isFloat(c.type));
  const pairs = floats.filter((c) => c.width === 2);
  const ofPositive = pairs.find((c) => c.name.endsWith(`_${positive}`)) ?? (positive === '1' || positive === '0' ? pairs.find((c) => c.column === Number(positive)) : undefined);
  const found = named !== undefined ? outputs.find((c) => c.name === named) : task === 'classification' ? (ofPositive ?? (pairs.length === 0 ? floats.find((c) => c.width === 1) : undefined)) : floats.find((c) => c.width === 1);
  if (!found || !isFloat(found.type)) {
    const names = outputs.map((c) => `${c.name} (${c.type})`).join(', ');
    throw new NightscoreError('BAD_OPTION', named !== undefined ? `--score ${named}: the model writes no number column of that name; it writes ${names}` : `the model's outputs (${names}) hold no ${task === 'classification' ? "positive class's probability" : 'single number'} to evaluate`, {
      hint: 'Name the prediction column to compare with the label: --score <column> (as the output part names it), and --task if the guess is wrong.',
    });
  }
  return found;
}

function numberAt(data: TensorData, at: number): number {
  if (Array.isArray(data)) return Number(data[at]);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Number(data[at]!);
  return (data as ArrayLike<number>)[at]!;
}

function textAt(data: TensorData, at: number): string {
  if (Array.isArray(data)) return String(data[at] ?? '');
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return String(data[at]!);
  return String((data as ArrayLike<number>)[at]!);
}

/** Keeps what the metrics need of each row that scored; the arrays grow as rows come. */
class EvaluationSink extends ScoringSink {
  rows = 0;
  unlabelled = 0;
  truth = new Float64Array(1024);
  scores = new Float64Array(1024);
  predicted = new Uint8Array(1024);

  constructor(
    scorer: Scorer,
    private readonly each: (sink: EvaluationSink, batch: Batch, failed: number[], scored: OutputValues[]) => void,
  ) {
    super(scorer);
  }

  protected take(batch: Batch, failed: number[], outputs: OutputValues[]): void {
    this.each(this, batch, failed, outputs);
  }

  add(truth: number, score: number, predicted: number): void {
    if (this.rows === this.truth.length) {
      const grow = <T extends Float64Array | Uint8Array>(a: T, make: (n: number) => T): T => {
        const b = make(a.length * 2);
        b.set(a);
        return b;
      };
      this.truth = grow(this.truth, (n) => new Float64Array(n));
      this.scores = grow(this.scores, (n) => new Float64Array(n));
      this.predicted = grow(this.predicted, (n) => new Uint8Array(n));
    }
    this.truth[this.rows] = truth;
    this.scores[this.rows] = score;
    this.predicted[this.rows] = predicted;
    this.rows++;
  }
}
