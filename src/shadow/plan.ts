/**
 * Planning a run's challengers (the job's `shadow` list): each bound like the model and pinned
 * in the spec with its role, or recorded with the error that kept it out; and the rule that
 * says what "agree" means. A challenger never fails the plan; a `compare` block that names an
 * output the model does not have does, as any job mistake.
 */
import { errorRecord, NightscoreError, toNightscoreError } from '../errors.js';
import type { JobDefinition } from '../job/load.js';
import { featureColumns } from '../model/features.js';
import type { OutputColumns } from '../model/scorer.js';
import { prepareCanary, prepareChallenger, type PreparedJob, type PrepareOptions } from '../run/bind.js';
import { sizedOnDate } from '../run/learn-widths.js';
import type { ChunkPlan } from '../run/plan.js';
import type { CanarySpec, ModelSpec, RunSpec, ShadowSpec } from '../run/spec.js';
import { canaryThreshold } from './canary.js';
import type { CompareRule } from './compare.js';

const FLOATS = new Set(['float32', 'float64', 'float16']);

/** The challengers of `spec`'s job, bound and sized, with the spec's shadow block; none when the job names none. */
export async function planShadow(prepared: PreparedJob, spec: RunSpec, chunks: ChunkPlan[], opts: PrepareOptions = {}): Promise<{ models: ModelSpec[]; shadow: ShadowSpec | null }> {
  const { job } = prepared;
  if (!job.shadow || job.shadow.length === 0) return { models: [], shadow: null };
  const compare = compareRule(job, prepared.spec.outputs);
  const batch = featureColumns(prepared.scorer.inputs, spec.input.missing);
  const models: ModelSpec[] = [];
  const challengers: ShadowSpec['challengers'] = [];
  for (const entry of job.shadow) {
    let name = entry.name ?? entry.uri;
    try {
      const bound = await prepareChallenger(job, entry, batch, opts);
      name = bound.name;
      const sized = await sizedOnDate(bound.prepared, spec, chunks);
      checkCompared(name, sized, compare);
      if (challengers.some((c) => c.name === name)) {
        throw new NightscoreError('JOB_INVALID', `${job.file}: two challengers are called ${name}`, { source: job.file, column: 'shadow.name', hint: 'Give each challenger a name of its own (shadow[].name).' });
      }
      models.push(sized.spec);
      challengers.push({ name, uri: entry.uri, error: null });
    } catch (err) {
      const e = toNightscoreError(err);
      // A mistake in the job file is the job's to fix now; a challenger that does not load is recorded.
      if (e.code === 'JOB_INVALID') throw e;
      challengers.push({ name, uri: entry.uri, error: errorRecord(e) });
    }
  }
  return { models, shadow: { compare, challengers } };
}

/**
 * The job's canary bound, sized and checked against the model: the same inputs and the same
 * output columns of the same types, since its rows are published beside the model's. A canary
 * that does not load or fit fails the plan, as the model would: it writes the output.
 */
export async function planCanary(prepared: PreparedJob, spec: RunSpec, chunks: ChunkPlan[]): Promise<{ model: ModelSpec; canary: CanarySpec } | null> {
  const { job } = prepared;
  if (!job.canary) return null;
  const bound = await prepareCanary(job, job.canary.uri);
  const sized = await sizedOnDate(bound, spec, chunks);
  const shape = (p: PreparedJob) => JSON.stringify({ inputs: featureColumns(p.scorer.inputs, []).map((c) => [c.name, c.type]), outputs: p.spec.outputs.map((o) => [o.names, o.type]) });
  if (shape(sized) !== shape(prepared)) {
    throw new NightscoreError('CANARY_MISMATCH', `the canary ${sized.spec.location} is fed or writes other columns than the model ${prepared.spec.location}: the model reads and writes ${shape(prepared)}, the canary ${shape(sized)}`, {
      source: job.file,
      column: 'canary.uri',
      hint: 'A canary publishes rows beside the model\'s: export it with the same inputs and outputs (the same output.columns fit both), or compare it as a challenger (shadow:) instead.',
    });
  }
  const label = (m: ModelSpec) => (m.registry ? `${m.registry.name}/${m.registry.version}` : m.sha256.slice(0, 12));
  const { fraction, salt } = job.canary;
  return { model: sized.spec, canary: { fraction, salt, threshold: canaryThreshold(fraction), labels: { champion: label(prepared.spec), canary: label(sized.spec) } } };
}

/** What the job's `compare` block says, with the defaults filled in from the model's outputs. */
export function compareRule(job: JobDefinition, outputs: readonly OutputColumns[]): CompareRule {
  const wanted = job.compare;
  const floats = outputs.filter((o) => FLOATS.has(o.type));
  const output = wanted?.output !== undefined ? outputs.find((o) => o.output === wanted.output) : (floats.find((o) => o.names.length === 2) ?? floats[0] ?? outputs[0]);
  if (!output) {
    throw new NightscoreError('JOB_INVALID', `${job.file}: compare.output is "${wanted?.output}", which the model does not write; it writes ${outputs.map((o) => `"${o.output}"`).join(', ')}`, {
      source: job.file,
      column: 'compare.output',
      hint: 'Name one of the model\'s outputs (nightscore model inspect lists them), or leave compare.output out for its probabilities.',
    });
  }
  const column = wanted?.column ?? (FLOATS.has(output.type) && output.names.length === 2 ? 1 : 0);
  if (column >= output.names.length) {
    throw new NightscoreError('JOB_INVALID', `${job.file}: compare.column is ${column}, and output "${output.output}" has ${output.names.length} column(s) (${output.names.join(', ')})`, {
      source: job.file,
      column: 'compare.column',
      hint: 'Count columns from 0: for two-class probabilities, 1 is the positive class.',
    });
  }
  return { output: output.output, column, threshold: wanted?.threshold ?? 0.5, kind: FLOATS.has(output.type) ? 'score' : 'label' };
}

function checkCompared(name: string, challenger: PreparedJob, rule: CompareRule): void {
  const output = challenger.spec.outputs.find((o) => o.output === rule.output);
  if (!output || output.names.length <= rule.column || FLOATS.has(output.type) !== (rule.kind === 'score')) {
    const has = challenger.spec.outputs.map((o) => `"${o.output}" (${o.type}, ${o.names.length} column(s))`).join(', ');
    throw new NightscoreError('SHADOW_COLUMNS', `challenger ${name} (${challenger.spec.location}) has no ${rule.kind} output "${rule.output}" with a column ${rule.column} to compare with the model's; it writes ${has}`, {
      source: challenger.spec.location,
      column: 'compare.output',
      hint: 'Compare an output both models write (compare.output, compare.column), or export the challenger as the model was.',
    });
  }
}
