import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { didYouMean } from '../suggest.js';
import type { z } from 'zod';
import { NightscoreError } from '../errors.js';
import { isModelRef, parseModelRef } from '../registry/ref.js';
import { parseUri, schemeOf } from '../storage/uri.js';
import { jobSchema, type JobFile } from './schema.js';
import { checkTemplate, renderTemplate } from './template.js';

/** A validated job file plus where it came from; paths inside it resolve against `dir`. */
export interface JobDefinition extends JobFile {
  /** Absolute path of the job file. */
  file: string;
  /** Folder of the job file: relative paths in it resolve against this. */
  dir: string;
}

/** The input and output locations of one logical date. */
export interface RunLocations {
  date: string;
  inputUri: string;
  outputUri: string;
  /** output.rejects_uri for the date; undefined for the default, `_rejects/` in the output folder. */
  rejectsUri?: string;
}

/**
 * Reads and validates a job file. Every error names the file, the line and the key path
 * (`input.format`) and says what was expected, because the person reading it is
 * usually looking at the YAML, not at our schema.
 */
export async function loadJob(file: string): Promise<JobDefinition> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    throw new NightscoreError('JOB_NOT_FOUND', `cannot read job file ${abs}: ${(err as Error).message}`, {
      source: abs,
      hint: 'Pass the path of a job definition, for example jobs/churn-daily.yaml.',
      cause: err,
    });
  }
  return parseJob(text, abs);
}

/** Validates job YAML text; `file` is used for messages, and its folder (or `dir`) to resolve relative paths. */
export function parseJob(text: string, file: string, dir = path.dirname(file)): JobDefinition {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const line = lines.linePos(yamlError.pos[0]).line;
    throw new NightscoreError('JOB_INVALID', `${file}${line ? `:${line}` : ''}: not valid YAML: ${yamlError.message.split('\n')[0]}`, {
      source: file,
      line,
      hint: 'Fix the YAML syntax at that line.',
    });
  }
  const lineOf = (keyPath: (string | number)[]): number | undefined => {
    // The key's own line (a block mapping's value starts on the next one), else the value's.
    const parent = keyPath.length > 0 ? doc.getIn(keyPath.slice(0, -1), true) : undefined;
    const pair = isMap(parent) ? parent.items.find((p) => isScalar(p.key) && p.key.value === keyPath.at(-1)) : undefined;
    const node = (pair?.key ?? doc.getIn(keyPath, true)) as { range?: [number, number, number] } | undefined;
    return node?.range ? lines.linePos(node.range[0]).line : undefined;
  };
  const invalid = (keyPath: (string | number)[], what: string, hint: string) => {
    const line = lineOf(keyPath);
    const key = keyPath.map(String).join('.') || '(top level)';
    return new NightscoreError('JOB_INVALID', `${file}${line ? `:${line}` : ''}: ${key}: ${what}`, { source: file, line, column: key, hint });
  };
  const parsed = jobSchema.safeParse(toJS(doc, invalid));
  if (!parsed.success) {
    // An unknown key first: `outptu:` is a typo of output, which is then also "missing".
    const issues = parsed.error.issues as z.core.$ZodIssue[];
    const issue = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0]!;
    const at = issue.path as (string | number)[];
    if (issue.code === 'unrecognized_keys') {
      const key = issue.keys[0]!;
      const others = issue.keys.slice(1).map((k) => `"${k}"${didYouMean(k, keysAt(at)).replace(/^; (.*)$/, ' ($1)')}`);
      throw invalid([...at, key], `unknown key${didYouMean(key, keysAt(at))}${others.length ? ` (and unknown here too: ${others.join(', ')})` : ''}`, `The keys here are ${keysAt(at).join(', ')}; see docs/job-file.md, "Job file reference".`);
    }
    throw invalid(at, describeIssue(issue, doc.getIn(at)), 'See docs/job-file.md, "Job file reference", for every key and its type.');
  }
  const job = parsed.data;
  const model = (job.model.uri ?? job.model.path)!;
  const locations: Array<[string[], string]> = [
    [['input', 'uri'], job.input.uri],
    [['output', 'uri'], job.output.uri],
    ...(isModelRef(model) ? [] : [[['model', job.model.uri === undefined ? 'path' : 'uri'], model] as [string[], string]]),
    ...(job.output.rejects_uri === undefined ? [] : [[['output', 'rejects_uri'], job.output.rejects_uri] as [string[], string]]),
    ...(job.registry === undefined ? [] : [[['registry'], job.registry] as [string[], string]]),
    ...(job.drift?.profile === undefined ? [] : [[['drift', 'profile'], job.drift.profile] as [string[], string]]),
  ];
  if (isModelRef(model)) {
    try {
      parseModelRef(model);
    } catch (err) {
      if (!(err instanceof NightscoreError)) throw err;
      throw invalid(['model', job.model.uri === undefined ? 'path' : 'uri'], err.message, err.hint ?? 'See docs/registry.md, "Model registry".');
    }
  }
  for (const [keyPath, uri] of locations) {
    try {
      checkTemplate(uri);
      // Every date renders the same shape, so one sample date proves the location's form.
      parseUri(resolveLocation(renderTemplate(uri, '2000-01-01'), dir));

    } catch (err) {
      if (!(err instanceof NightscoreError)) throw err;
      throw invalid(keyPath, err.message, err.hint ?? 'See docs/job-file.md, "Job file reference".');
    }
  }
  // The rejects folder is written and cleaned like the output folder, per date: one shared by
  // every date would have each run remove the others' rejects.
  const dated = (uri: string) => renderTemplate(uri, '2000-01-01') !== renderTemplate(uri, '2000-01-02');
  if (job.output.rejects_uri !== undefined && dated(job.output.uri) && !dated(job.output.rejects_uri)) {
    throw invalid(['output', 'rejects_uri'], `"${job.output.rejects_uri}" names no date, but output.uri does: every date's rejects would land in one folder`, 'Put the date in it as in output.uri, e.g. rejects_uri: "s3://scores-rejects/churn/dt={date}/".');
  }
  return { ...job, file, dir };
}

/**
 * The document as plain data. Aliases are expanded with a bound: a "billion laughs" file
 * would otherwise take all memory; the yaml library counts them and we say where.
 */
function toJS(doc: Document, invalid: (keyPath: (string | number)[], what: string, hint: string) => NightscoreError): unknown {
  try {
    return doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    throw invalid([], `cannot expand the document: ${(err as Error).message}`, 'Use fewer YAML aliases (*name); a job file needs none.');
  }
}

/** The keys the schema allows at a key path (for "did you mean"). */
function keysAt(keyPath: (string | number)[]): string[] {
  type Node = { shape?: Record<string, unknown>; def?: { innerType?: unknown; in?: unknown; schema?: unknown } } | undefined;
  const unwrap = (s: Node): Node => {
    for (let i = 0; s && i < 10; i++) {
      if (s.shape) return s;
      s = (s.def?.innerType ?? s.def?.in ?? s.def?.schema) as Node;
    }
    return undefined;
  };
  let node = unwrap(jobSchema as unknown as Node);
  for (const k of keyPath) node = unwrap(node?.shape?.[k] as Node);
  return node?.shape ? Object.keys(node.shape) : [];
}

function describeIssue(issue: z.core.$ZodIssue, found: unknown): string {
  if (issue.code === 'invalid_value') return `expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}, got ${JSON.stringify(found)}`;
  if (issue.code === 'invalid_type' && issue.message.includes('received undefined')) return `missing; ${issue.message.toLowerCase()}`;
  if (issue.code === 'unrecognized_keys') return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  return issue.message.charAt(0).toLowerCase() + issue.message.slice(1);
}

/** What a command that names a model and no job file reads data with (see modelOnlyJob). */
export interface ModelOnlyJob {
  /** A path (absolute, or relative to `dir`), an s3:// URI or a models:/ reference. */
  model: string;
  /** The data read, and its format. */
  input: string;
  format: 'csv' | 'parquet';
  /** The registry a models:/ reference resolves against. */
  registry?: string;
  /** Columns copied beside the predictions (input.key): model evaluate's label. */
  key?: string[];
}

/**
 * The job a command reads data with when it is given a model and no job file (`profile build
 * models:/…`, `model register --reference`): the definition a user would write with only
 * `model.uri`, validated by the same loader, so its binding is the model's own (inputs from the
 * columns of their names, outputs under theirs, missing values rejected) and any check a job
 * file meets, it meets. `what` names it in messages, where a job file's path would be.
 */
export function modelOnlyJob(what: string, def: ModelOnlyJob, dir: string): JobDefinition {
  const definition = {
    name: 'reference',
    ...(def.registry === undefined ? {} : { registry: def.registry }),
    input: { uri: def.input, format: def.format, ...(def.key ? { key: def.key } : {}) },
    model: { uri: def.model },
    // The schema asks for an output; these commands read and never write, so it names the input.
    output: { uri: def.input, format: def.format },
  };
  return parseJob(JSON.stringify(definition), what, dir);
}

/**
 * Every job file of a folder, validated, for the commands that read a folder (schedule
 * sync, worker --jobs-dir): one invalid file fails them all, and so do two files that give
 * the same `name`, which would share one scheduler and one run id per date.
 */
export async function loadJobsDir(dir: string): Promise<JobDefinition[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new NightscoreError('JOBS_DIR_NOT_FOUND', `cannot read the jobs folder ${path.resolve(dir)}: ${(err as Error).message}`, {
      source: path.resolve(dir),
      hint: 'Pass the folder that holds the job files (*.yaml), for example jobs/.',
    });
  }
  const jobs = await Promise.all(names.filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => loadJob(path.join(dir, f))));
  const byName = new Map<string, JobDefinition>();
  for (const job of jobs) {
    const other = byName.get(job.name);
    if (other) {
      throw new NightscoreError('JOB_NAME_DUPLICATE', `${other.file} and ${job.file} both have name: ${job.name}; a name identifies a job's schedule, runs and outputs`, {
        source: job.file,
        column: 'name',
        hint: 'Give each job file a name of its own (a copied file keeps the name of its original).',
      });
    }
    byName.set(job.name, job);
  }
  return jobs;
}

/** Absolute form of a location: `s3://…` and `file://…` stay; plain paths resolve against the job folder. */
export function resolveLocation(uri: string, baseDir: string): string {
  if (schemeOf(uri) !== undefined) return uri;
  const abs = path.resolve(baseDir, uri);
  // path.resolve drops a trailing slash, which is how a user says "this is a prefix".
  return uri.endsWith('/') || uri.endsWith(path.sep) ? `${abs}${path.sep}` : abs;
}

/** The input and output locations of `date` for this job. */
export function locateRun(job: JobDefinition, date: string): RunLocations {
  return {
    date,
    inputUri: resolveLocation(renderTemplate(job.input.uri, date), job.dir),
    outputUri: resolveLocation(renderTemplate(job.output.uri, date), job.dir),
    rejectsUri: job.output.rejects_uri === undefined ? undefined : resolveLocation(renderTemplate(job.output.rejects_uri, date), job.dir),
  };
}

/**
 * A model the job names (its model by default; a challenger's or the canary's `uri`): an
 * absolute path, an s3:// URI, or a models:/ reference (see registryOf). A path is relative to
 * the job's folder.
 */
export function modelLocation(job: JobDefinition, written: string = (job.model.uri ?? job.model.path)!): string {
  if (isModelRef(written)) return written;
  const location = resolveLocation(written, job.dir);
  const parsed = parseUri(location);
  return parsed.scheme === 'file' ? parsed.path : location;
}

/** One challenger of the job's `shadow` list. */
export type ShadowEntry = NonNullable<JobFile['shadow']>[number];

/** The registry the job's models:/ reference resolves against: its `registry:` (relative to the job file), else NIGHTSCORE_REGISTRY_URI. */
export function registryOf(job: JobDefinition): string | undefined {
  return job.registry === undefined ? undefined : resolveLocation(job.registry, job.dir);
}
