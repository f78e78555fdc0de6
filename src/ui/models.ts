/**
 * The models view of the page: each registered model of the registries the jobs name, read
 * back and checked as the registry reads it (records, aliases, events), with its versions,
 * where each alias points, the alias history with the gate reports beside each move, and per
 * challenger the agreement with the champion over the last days (from the jobs' `_shadow.json`).
 */
import { daysEnding } from '../job/dates.js';
import { registryOf, type JobDefinition } from '../job/load.js';
import { isModelRef, parseModelRef } from '../registry/ref.js';
import { Registry, registryRoot, type AliasEvent, type EvaluationRecord, type GateEvent } from '../registry/registry.js';
import { readGateDays } from '../shadow/read.js';
import { noticeOf, type Notice } from './context.js';

/** Days of agreement a challenger's chart shows. */
export const AGREEMENT_DAYS = 14;

export interface ModelVersionView {
  version: number;
  sha256: string;
  created_at: string;
  created_by: string;
  description: string;
  tags: Record<string, string>;
  metrics: Record<string, unknown>;
  checks: number;
  evaluation: Pick<EvaluationRecord, 'at' | 'metrics' | 'rows'> | null;
}

export interface AgreementSeries {
  job: string;
  /** The challenger as the job names it (models:/name@alias). */
  challenger: string;
  dates: string[];
  /** Per date: the share of compared rows that agree; null without a comparison that day. */
  values: Array<number | null>;
}

export interface ModelView {
  registry: string;
  name: string;
  aliases: Record<string, number>;
  generation: number;
  versions: ModelVersionView[];
  /** Every alias move, oldest first, each with the gate report that made it (null: moved by hand). */
  history: Array<AliasEvent & { gate: GateEvent | null }>;
  /** Gate reports that moved nothing (a fail or an inconclusive verdict). */
  unmoved: GateEvent[];
  agreement: AgreementSeries[];
}

export interface ModelsView {
  models: ModelView[];
  notices: Notice[];
}

/** Every model of the registries `jobs` name (their `registry`, else NIGHTSCORE_REGISTRY_URI), up to `to`'s last AGREEMENT_DAYS. */
export async function readModels(jobs: readonly JobDefinition[], to: string): Promise<ModelsView> {
  const notices: Notice[] = [];
  const roots = new Map<string, JobDefinition[]>();
  for (const job of jobs) {
    if (![job.model.uri ?? job.model.path, ...(job.shadow ?? []).map((s) => s.uri), job.canary?.uri].some((u) => u !== undefined && isModelRef(u))) continue;
    try {
      const root = registryRoot(registryOf(job), `${job.file}: a models:/ reference`);
      roots.set(root, [...(roots.get(root) ?? []), job]);
    } catch (err) {
      notices.push(noticeOf(`${job.name}: registry`, err));
    }
  }
  const models: ModelView[] = [];
  for (const [root, rootJobs] of roots) {
    const registry = new Registry(root);
    let names: string[] = [];
    try {
      names = await registry.names();
    } catch (err) {
      notices.push(noticeOf(`registry ${root}`, err));
    }
    for (const name of names) {
      try {
        models.push(await readModel(registry, root, name, rootJobs, to));
      } catch (err) {
        notices.push(noticeOf(`model ${name}`, err));
      }
    }
  }
  return { models, notices };
}

async function readModel(registry: Registry, root: string, name: string, jobs: readonly JobDefinition[], to: string): Promise<ModelView> {
  const doc = await registry.aliases(name);
  const records = await registry.versions(name);
  const versions = await Promise.all(
    records.map(async (r): Promise<ModelVersionView> => {
      const e = await registry.evaluation(name, r.version);
      return { version: r.version, sha256: r.sha256, created_at: r.created_at, created_by: r.created_by, description: r.description, tags: r.tags, metrics: r.metrics, checks: r.checks?.length ?? 0, evaluation: e ? { at: e.at, metrics: e.metrics, rows: e.rows } : null };
    }),
  );
  const { moves: history, unmoved } = await registry.aliasHistoryWithGates(name);
  const dates = daysEnding(to, AGREEMENT_DAYS);
  const agreement: AgreementSeries[] = [];
  for (const job of jobs) {
    for (const s of job.shadow ?? []) {
      if (!isModelRef(s.uri) || parseModelRef(s.uri).name !== name) continue;
      const days = await readGateDays(job, dates, s.uri);
      agreement.push({ job: job.name, challenger: s.uri, dates, values: days.map((d) => (d.state === 'compared' && d.compared > 0 ? d.agree / d.compared : null)) });
    }
  }
  return { registry: root, name, aliases: doc.aliases, generation: doc.generation, versions, history, unmoved, agreement };
}
