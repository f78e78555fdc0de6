/**
 * The registry's records as they are read back: `version.json`, `aliases.json` and the event
 * files. Whoever can write the bucket can write them, so each field is checked as its type
 * before a name becomes a path or a number a loop bound: a record that is not what nightscore
 * writes is REGISTRY_CORRUPT naming the file, the field and what was expected.
 */
import { z } from 'zod';
import { NightscoreError } from '../errors.js';
import { isPlainLocation, modelIdentity } from '../model/session.js';
import { isAliasName, isModelName, MAX_VERSION } from './ref.js';

export const MODEL_FILE = 'model.onnx';
export const RECORD_FILE = 'version.json';
/** A version's reference profile, for drift (model profile attach). */
export const PROFILE_FILE = 'profile.json';
/** A version's latest evaluation on labelled data (model evaluate --register). */
export const EVALUATION_FILE = 'evaluation.json';

/** As many alias moves as version numbers: more than any model makes, few enough to count. */
export const MAX_GENERATION = MAX_VERSION;

const whole = (min: number, max: number, expected: string) => z.int({ error: expected }).min(min, { error: expected }).max(max, { error: expected });
const text = z.string({ error: 'text' });
const version = whole(1, MAX_VERSION, `a version number from 1 to ${MAX_VERSION}`);
const versionOrNull = version.nullable();
const sha256 = z.string({ error: 'a sha256: 64 hex digits' }).regex(/^[0-9a-f]{64}$/, { error: 'a sha256: 64 hex digits' });
const bytes = whole(0, Number.MAX_SAFE_INTEGER, 'a whole number of bytes');
const time = z.iso.datetime({ error: 'an ISO 8601 time such as 2026-03-01T12:00:00.000Z' });
const modelName = z.string({ error: 'a model name' }).refine(isModelName, { error: 'a model name: a letter or digit, then letters, digits, ".", "_" or "-"', abort: true });
const aliasName = z.string({ error: 'an alias' }).refine(isAliasName, { error: 'an alias: a letter or digit, then letters, digits, ".", "_" or "-", not a version', abort: true });
// Refinements abort: the record's own checks below never see a value that failed its field's.
// A file's name is joined to the version's folder (in storage, the model cache, a download's
// folder): plain segments below it, as an external data location must be, of a length file systems take.
const fileName = z
  .string({ error: 'a file name' })
  .refine((n) => n.length <= 1024 && isPlainLocation(n) && n.split('/').every((s) => Buffer.byteLength(s) <= 255), {
    error: 'a plain file name inside the version\'s folder (no "", ".", ".." or absolute segment, no backslash or control character, at most 255 bytes a segment)',
    abort: true,
  });

const versionFile = z.object({ name: fileName, sha256, bytes }, { error: 'a file: { name, sha256, bytes }' });
const tensor = z.object({ name: text, type: text, shape: z.array(z.union([z.number(), z.string()], { error: 'a dimension' }), { error: 'a list of dimensions' }) }, { error: 'a tensor: { name, type, shape }' });

/** A golden rows check the version passed when it was registered (docs/registry.md, "Golden rows"). */
const versionCheck = z.object({
  kind: z.literal('golden', { error: '"golden"' }),
  /** The golden file's name and sha256: which rows were compared. */
  file: text,
  sha256,
  rows: whole(1, Number.MAX_SAFE_INTEGER, 'a whole number of rows, at least 1'),
  tolerance: z.number({ error: 'a tolerance: a number' }).nonnegative({ error: 'a tolerance: a number, 0 or more' }),
  /** The output columns compared. */
  columns: z.array(text, { error: 'a list of output columns' }),
  max_abs_diff: z.number({ error: 'a difference: a number' }).nonnegative({ error: 'a difference: a number, 0 or more' }),
  at: time,
}, { error: 'a check: { kind, file, sha256, rows, tolerance, columns, max_abs_diff, at }' });

export const versionRecordSchema = z
  .object({
    name: modelName,
    version,
    /** The model's identity over its files (docs/job-file.md, "Model identity and external data"): what manifests and pins compare. */
    sha256,
    /** Size of the model file. */
    bytes,
    /** `model.onnx`, then its external data files by name. */
    files: z.array(versionFile, { error: 'a list of the version\'s files, model.onnx first' }).min(1, { error: 'a list of the version\'s files, model.onnx first' }).max(10_000, { error: 'at most 10000 files' }),
    created_at: time,
    created_by: text,
    /** Where the model was registered from. */
    source: text,
    description: text,
    signature: z.object({ inputs: z.array(tensor, { error: 'a list of tensors' }), outputs: z.array(tensor, { error: 'a list of tensors' }) }, { error: 'the signature: { inputs, outputs }' }),
    /** The model's `feature_names`, when it carries them. */
    features: z.array(text, { error: 'a list of feature names, or null' }).nullable(),
    tags: z.record(z.string(), text, { error: 'a map of tag names to text' }),
    /** Free-form: whatever the team records (AUC, the training run's id). */
    metrics: z.record(z.string(), z.unknown(), { error: 'a map of metric names to values' }),
    nightscore: z.object({ version: text }, { error: 'the nightscore that wrote it: { version }' }),
    /** The checks it passed when registered; absent in records written before checks were. */
    checks: z.array(versionCheck, { error: 'a list of checks' }).max(1000, { error: 'at most 1000 checks' }).optional(),
  }, { error: 'a version record: a JSON object' })
  .superRefine((r, ctx) => {
    const names = r.files.map((f) => f.name);
    const issue = (path: PropertyKey[], error: string) => ctx.addIssue({ code: 'custom', path, message: error, input: path.reduce<unknown>((o, k) => (o as Record<PropertyKey, unknown>)[k], r) });
    if (names[0] !== MODEL_FILE) issue(['files', 0, 'name'], `"${MODEL_FILE}", the model file`);
    names.forEach((n, i) => {
      if (i > 0 && (n === MODEL_FILE || n === RECORD_FILE || names.indexOf(n) !== i)) issue(['files', i, 'name'], `a name of its own, not another file's nor "${RECORD_FILE}"`);
    });
    const identity = modelIdentity(r.files, names);
    if (r.sha256 !== identity) issue(['sha256'], `${identity}, the identity of the files it lists`);
  });

const aliasEvent = z.object({
  kind: z.literal('alias'),
  /** The aliases.json generation this move created: moves are numbered 1, 2, … without gaps. */
  generation: whole(1, MAX_GENERATION, `a whole number from 1 to ${MAX_GENERATION}`),
  alias: aliasName,
  /** The version the alias pointed to before (null: it was not set), and after (null: deleted). */
  from: versionOrNull,
  to: versionOrNull,
  at: time,
  by: text,
  reason: text,
}, { error: 'an alias move: a JSON object' });

const registerEvent = z.object({ kind: z.literal('register'), version, sha256, at: time, by: text, reason: text }, { error: 'a register event: a JSON object' });

const gateCondition = z.object({
  name: text,
  value: z.number().nullable(),
  bound: text,
  result: z.enum(['pass', 'fail', 'inconclusive']),
  detail: text,
}, { error: 'a gate condition: { name, value, bound, result, detail }' });

/**
 * A promotion gate's report (model promote): what it checked, its verdict, and the alias move it
 * made (`moved`, that move's generation; null when it moved nothing).
 */
const gateEvent = z.object({
  kind: z.literal('gate'),
  /** The alias to move and the alias whose version the gate judged. */
  alias: aliasName,
  from_alias: aliasName,
  version,
  sha256,
  verdict: z.enum(['pass', 'fail', 'inconclusive']),
  conditions: z.array(gateCondition, { error: 'a list of conditions' }).max(100, { error: 'at most 100 conditions' }),
  window: z.object({ job: text, from: text, to: text }, { error: 'the window: { job, from, to }' }),
  moved: whole(1, MAX_GENERATION, `a whole number from 1 to ${MAX_GENERATION}`).nullable(),
  at: time,
  by: text,
  reason: text,
}, { error: 'a gate report: a JSON object' });

export const registryEventSchema = z.discriminatedUnion('kind', [aliasEvent, registerEvent, gateEvent], { error: (iss) => (iss.input !== null && typeof iss.input === 'object' ? '"alias", "register" or "gate"' : 'an event: a JSON object') });

export const aliasesDocSchema = z
  .object({
    generation: whole(0, MAX_GENERATION, `a whole number from 0 to ${MAX_GENERATION}`),
    aliases: z.record(z.string().refine(isAliasName, { abort: true }), version, { error: (iss) => (iss.code === 'invalid_key' ? 'an alias: a letter or digit, then letters, digits, ".", "_" or "-", not a version' : 'a map of aliases to version numbers') }),
    /** The move that made this generation (null before the first). */
    last: aliasEvent.nullable(),
  }, { error: 'the aliases: a JSON object' })
  .superRefine((d, ctx) => {
    if (d.last === null ? d.generation !== 0 : d.last.generation !== d.generation) {
      ctx.addIssue({ code: 'custom', path: d.last === null ? ['last'] : ['last', 'generation'], input: d.last?.generation ?? null, message: `the move that made generation ${d.generation}` });
    }
  });

const metricValue = z.number({ error: 'a finite number, or null' }).refine(Number.isFinite, { error: 'a finite number, or null' }).nullable();
const rowCount = whole(0, Number.MAX_SAFE_INTEGER, 'a whole number of rows');

/** `evaluation.json`: what model evaluate --register measured on labelled data, with its bounds' verdicts. */
export const evaluationRecordSchema = z.strictObject(
  {
    sha256,
    at: time,
    by: text,
    data: text,
    label: text,
    task: z.enum(['classification', 'regression'], { error: '"classification" or "regression"' }),
    score: text,
    predicted: text,
    rows: z.strictObject({ read: rowCount, evaluated: rowCount, rejected: rowCount, unlabelled: rowCount }, { error: 'the rows: a JSON object' }),
    metrics: z.record(z.string(), metricValue, { error: 'a map of metric names to values' }),
    bounds: z.array(
      z.strictObject({ metric: text, kind: z.enum(['min', 'max'], { error: '"min" or "max"' }), value: metricValue.unwrap(), got: metricValue, passed: z.boolean({ error: 'true or false' }) }, { error: 'a bound: a JSON object' }),
      { error: 'a list of bounds' },
    ),
    passed: z.boolean({ error: 'true or false' }),
  },
  { error: 'an evaluation: a JSON object' },
);
export type EvaluationRecord = z.infer<typeof evaluationRecordSchema>;

/** A version's evaluation, which must be of that version's model (its sha256). */
export function readEvaluationRecord(value: unknown, uri: string, versionSha256: string): EvaluationRecord {
  const record = readRecord(evaluationRecordSchema, value, uri);
  if (record.sha256 !== versionSha256) fail(uri, ['sha256'], record.sha256, `${versionSha256}, the sha256 of the version whose folder holds it`);
  return record;
}

export type VersionFile = z.infer<typeof versionFile>;
export type TensorSignature = z.infer<typeof tensor>;
export type VersionCheck = z.infer<typeof versionCheck>;
/** `version.json`: what a version is, written once when it is registered. */
export type VersionRecord = z.infer<typeof versionRecordSchema>;
export type AliasEvent = z.infer<typeof aliasEvent>;
export type RegisterEvent = z.infer<typeof registerEvent>;
export type GateEvent = z.infer<typeof gateEvent>;
export type GateCondition = z.infer<typeof gateCondition>;
export type RegistryEvent = AliasEvent | RegisterEvent | GateEvent;
/** `aliases.json`. */
export type AliasesDoc = z.infer<typeof aliasesDocSchema>;

/** A parsed registry file as `schema`, or REGISTRY_CORRUPT naming `uri`, the first field that is not, and what it should be. */
export function readRecord<T>(schema: z.ZodType<T>, value: unknown, uri: string): T {
  const parsed = schema.safeParse(value, { reportInput: true });
  if (parsed.success) return parsed.data;
  const [first, ...more] = parsed.error.issues;
  return fail(uri, first!.path, first!.input, first!.message, more.length);
}

/** A version's record, which must also be the record of the version whose folder holds it. */
export function readVersionRecord(value: unknown, uri: string, name: string, n: number): VersionRecord {
  const record = readRecord(versionRecordSchema, value, uri);
  if (record.name !== name) fail(uri, ['name'], record.name, `"${name}", the model whose folder holds it`);
  if (record.version !== n) fail(uri, ['version'], record.version, `${n}, the version whose folder holds it`);
  return record;
}

function fail(uri: string, path: PropertyKey[], input: unknown, expected: string, more = 0): never {
  // A union's issue carries the whole object as its input, not the field it names.
  const key = path.at(-1);
  if (key !== undefined && input !== null && typeof input === 'object' && !Array.isArray(input) && key in input) input = (input as Record<PropertyKey, unknown>)[key];
  const field = path.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i > 0 ? '.' : ''}${String(k)}`)).join('') || 'the file';
  throw new NightscoreError('REGISTRY_CORRUPT', `${uri}: ${field} is ${shown(input)}, expected ${expected}${more > 0 ? ` (and ${more} more field(s) are wrong)` : ''}`, {
    source: uri,
    hint: 'Registry files are written by nightscore only, and this one is not as nightscore writes it: restore it from a backup or the bucket\'s object versions, and find out who else writes the registry. A damaged version can also be registered again as a new version.',
  });
}

function shown(input: unknown): string {
  if (input === undefined) return 'missing';
  const json = JSON.stringify(input) ?? String(input);
  return json.length > 80 ? `${json.slice(0, 80)}…` : json;
}
