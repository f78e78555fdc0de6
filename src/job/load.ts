import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { configError } from '../errors.js';
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
    throw configError('JOB_NOT_FOUND', `cannot read job file ${abs}: ${(err as Error).message}`, {
      source: abs,
      hint: 'Pass the path of a job definition, for example jobs/churn-daily.yaml.',
      cause: err,
    });
  }
  return parseJob(text, abs);
}

/** Validates job YAML text; `file` is used for messages and to resolve relative paths. */
export function parseJob(text: string, file: string): JobDefinition {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const line = lines.linePos(yamlError.pos[0]).line;
    throw configError('JOB_INVALID', `${file}${line ? `:${line}` : ''}: not valid YAML: ${yamlError.message.split('\n')[0]}`, {
      source: file,
      line,
      hint: 'Fix the YAML syntax at that line.',
    });
  }
  const parsed = jobSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue;
    const keyPath = issue.path.map(String).join('.') || '(top level)';
    const node = doc.getIn(issue.path as (string | number)[], true) as { range?: [number, number, number] } | undefined;
    const line = node?.range ? lines.linePos(node.range[0]).line : undefined;
    const found = doc.getIn(issue.path as (string | number)[]);
    throw configError('JOB_INVALID', `${file}${line ? `:${line}` : ''}: ${keyPath}: ${describeIssue(issue, found)}`, {
      source: file,
      line,
      column: keyPath,
      hint: 'See "Job file reference" in the README for every key and its type.',
    });
  }
  const job = parsed.data;
  checkTemplate(job.input.uri, 'input.uri');
  checkTemplate(job.output.uri, 'output.uri');
  for (const [where, uri] of [['input.uri', job.input.uri], ['output.uri', job.output.uri]] as const) checkScheme(uri, where, file);
  return { ...job, file, dir: path.dirname(file) };
}

function describeIssue(issue: z.core.$ZodIssue, found: unknown): string {
  if (issue.code === 'invalid_value') return `expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}, got ${JSON.stringify(found)}`;
  if (issue.code === 'invalid_type' && issue.message.includes('received undefined')) return `missing; ${issue.message.toLowerCase()}`;
  if (issue.code === 'unrecognized_keys') return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  return issue.message.charAt(0).toLowerCase() + issue.message.slice(1);
}

const SCHEME_RE = /^([a-z][a-z0-9+.-]*):\/\//i;

function checkScheme(uri: string, where: string, file: string): void {
  const scheme = SCHEME_RE.exec(uri)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 's3' && scheme !== 'file') {
    throw configError('JOB_INVALID', `${file}: ${where}: unsupported scheme "${scheme}://" in "${uri}"`, {
      source: file,
      column: where,
      hint: 'Use s3://bucket/prefix, a file:// URL, or a plain path (relative to the job file).',
    });
  }
}

/** Absolute form of a location: `s3://…` and `file://…` stay; plain paths resolve against the job folder. */
export function resolveLocation(uri: string, baseDir: string): string {
  if (SCHEME_RE.test(uri)) return uri;
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
  };
}

/** Absolute path of the job's model file. */
export function modelPath(job: JobDefinition): string {
  return job.model.path.startsWith('file://') ? new URL(job.model.path).pathname : path.resolve(job.dir, job.model.path);
}
