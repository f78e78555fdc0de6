/** nightscore model evaluate: a model's metrics on labelled data, and the CI gate on them (--min, --max). */
import path from 'node:path';
import { NightscoreError } from '../errors.js';
import { evaluateModel, type Evaluation, type Task } from '../evaluate/evaluate.js';
import { loadJob, resolveLocation, type JobDefinition } from '../job/load.js';
import { isModelRef, parseModelRef } from '../registry/ref.js';
import { Registry, registryRoot } from '../registry/registry.js';
import { prepareJob } from '../run/bind.js';
import { formatOption, modelReferenceJob, resolveRoot, withModel } from './reference.js';

export interface EvaluateCommandOptions {
  label: string;
  job?: string;
  format?: string;
  registry?: string;
  task?: string;
  score?: string;
  positive?: string;
  threshold?: string;
  min?: string[];
  max?: string[];
  json?: boolean;
  register?: boolean;
}

/** The metrics each task reports, and the other names a bound may give them. */
const METRICS: Record<Task, readonly string[]> = {
  classification: ['accuracy', 'precision', 'recall', 'f1', 'roc_auc', 'log_loss'],
  regression: ['rmse', 'mae', 'r2'],
};
const ALIASES: Record<string, string> = { auc: 'roc_auc', logloss: 'log_loss' };

interface Bound {
  metric: string;
  kind: 'min' | 'max';
  value: number;
}

export async function evaluateCommand(model: string, data: string, opts: EvaluateCommandOptions): Promise<number> {
  const task = taskOption(opts.task);
  const threshold = opts.threshold === undefined ? undefined : Number(opts.threshold);
  if (threshold !== undefined && !(threshold >= 0 && threshold <= 1)) {
    throw new NightscoreError('BAD_OPTION', `--threshold takes a probability between 0 and 1, got "${opts.threshold}"`, { hint: 'Leave it out for 0.5.' });
  }
  const bounds = [...(opts.min ?? []).map((b) => parseBound(b, 'min')), ...(opts.max ?? []).map((b) => parseBound(b, 'max'))];
  const dataUri = resolveLocation(data, process.cwd());
  const what = `nightscore model evaluate ${model}`;
  if (isModelRef(model)) parseModelRef(model);
  else if (opts.register) {
    throw new NightscoreError('BAD_OPTION', `--register records the evaluation on a registered version, and ${model} is a file`, { hint: 'Register the model first (nightscore model register), then evaluate models:/<name>/<version> --register.' });
  }
  const bound = opts.job === undefined ? undefined : await loadJob(path.resolve(opts.job));
  const root = isModelRef(model) ? registryRoot(opts.registry !== undefined ? resolveRoot(opts.registry) : bound?.registry, what) : undefined;
  // --register: the version the reference names now is the one evaluated and recorded on, were its alias to move meanwhile.
  const pinned = opts.register && root !== undefined ? await new Registry(root).resolve(model) : undefined;
  const modelUri = pinned ? `models:/${pinned.name}/${pinned.version}` : isModelRef(model) ? model : path.resolve(model);
  const format = formatOption('--format', opts.format);
  let job: JobDefinition;
  if (bound) {
    const key = bound.input.key.includes(opts.label) ? bound.input.key : [...bound.input.key, opts.label];
    job = { ...withModel(bound, modelUri), ...(root ? { registry: root } : {}), input: { ...bound.input, key } };
  } else {
    job = modelReferenceJob(what, { model: modelUri, ...(root ? { registry: root } : {}), key: [opts.label] }, dataUri, format, '--format');
  }
  const evaluation = await evaluateModel(await prepareJob(job), dataUri, { label: opts.label, format, task, score: opts.score, positive: opts.positive, threshold });
  for (const b of bounds) {
    if (!METRICS[evaluation.task].includes(b.metric)) {
      throw new NightscoreError('BAD_OPTION', `--${b.kind} ${b.metric}: a ${evaluation.task} model is measured by ${METRICS[evaluation.task].join(', ')}`, { hint: 'Bound one of the metrics this model reports, or give --task.' });
    }
  }
  const checked = bounds.map((b) => ({ ...b, got: metricOf(evaluation, b.metric) })).map((b) => ({ ...b, passed: b.got !== null && (b.kind === 'min' ? b.got >= b.value : b.got <= b.value) }));
  const failed = checked.filter((b) => !b.passed);
  const recorded = pinned
    ? await new Registry(root!).recordEvaluation(pinned.name, pinned.version, {
        sha256: evaluation.model.sha256,
        data: evaluation.data,
        label: evaluation.label,
        task: evaluation.task,
        score: evaluation.score,
        predicted: evaluation.predicted,
        rows: evaluation.rows,
        metrics: { ...evaluation.metrics },
        bounds: checked,
        passed: failed.length === 0,
      })
    : undefined;
  if (opts.json) process.stdout.write(`${JSON.stringify({ ...evaluation, bounds: checked, passed: failed.length === 0, ...(recorded ? { recorded } : {}) }, null, 2)}\n`);
  else process.stdout.write(`${report(what, evaluation, checked)}${recorded ? `  recorded on models:/${pinned!.name}/${pinned!.version} (${recorded})\n` : ''}`);
  return failed.length > 0 ? 1 : 0;
}

/** A metric by name; null when undefined (a ROC area of one class) or not the task's. */
function metricOf(e: Evaluation, metric: string): number | null {
  return (e.metrics as unknown as Record<string, number | null>)[metric] ?? null;
}

function taskOption(value: string | undefined): Task | undefined {
  if (value === undefined || value === 'classification' || value === 'regression') return value;
  throw new NightscoreError('BAD_OPTION', `--task takes classification or regression, got "${value}"`, { hint: 'Leave it out to take it from the model: a label or two probabilities make a classifier.' });
}

/** `auc=0.8`: a metric and the value it must reach (--min) or stay under (--max). */
function parseBound(text: string, kind: 'min' | 'max'): Bound {
  const m = /^([a-z0-9_]+)=(.+)$/i.exec(text);
  const value = m ? Number(m[2]) : NaN;
  if (!m || !Number.isFinite(value)) {
    throw new NightscoreError('BAD_OPTION', `--${kind} takes metric=value, got "${text}"`, { hint: `For example --${kind} ${kind === 'min' ? 'auc=0.8' : 'log_loss=0.4'}.` });
  }
  const name = m[1]!.toLowerCase();
  return { metric: ALIASES[name] ?? name, kind, value };
}

function report(what: string, e: Evaluation, bounds: Array<Bound & { got: number | null; passed: boolean }>): string {
  const rows = `${e.rows.evaluated.toLocaleString('en-US')} rows evaluated of ${e.rows.read.toLocaleString('en-US')} read (${e.rows.rejected} rejected, ${e.rows.unlabelled} without a label)`;
  const lines = [`${what}: ${e.task}, ${rows}`, `  label ${e.label}, score ${e.score}${e.task === 'classification' ? `, predicted class from ${e.predicted}` : ''}`];
  for (const metric of METRICS[e.task]) {
    const got = metricOf(e, metric);
    const verdicts = bounds.filter((b) => b.metric === metric).map((b) => `${b.kind} ${b.value}: ${b.passed ? 'pass' : 'FAIL'}`);
    lines.push(`  ${metric.padEnd(10)}${got === null ? 'undefined (one class only)' : got.toPrecision(6)}${verdicts.length ? `  ${verdicts.join(', ')}` : ''}`);
  }
  const failed = bounds.filter((b) => !b.passed);
  if (bounds.length > 0) lines.push(failed.length === 0 ? `  every bound passed` : `  ${failed.length} of ${bounds.length} bounds failed: ${failed.map((b) => `${b.metric} ${b.got === null ? 'undefined' : b.got.toPrecision(6)} (${b.kind} ${b.value})`).join(', ')}`);
  return `${lines.join('\n')}\n`;
}
