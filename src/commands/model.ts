/** nightscore model …: the registry from the command line. Tables for people, --json for scripts. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { optionInteger } from '../env.js';
import { NightscoreError } from '../errors.js';
import { loadJob, resolveLocation, type JobDefinition } from '../job/load.js';
import { buildProfile } from '../drift/build.js';
import { readProfile, type Profile } from '../drift/profile.js';
import { checkFailedError, checkGolden, type GoldenBinding, type GoldenResult } from '../model/golden.js';
import { loadModel, type LoadedModel } from '../model/session.js';
import { formatTable } from '../observe/table.js';
import { MAX_GENERATION } from '../registry/records.js';
import { checkAlias, checkName, isModelRef, MAX_VERSION, versionRef } from '../registry/ref.js';
import { describeMove, Registry, registryRoot, type GateEvent, type VersionCheck, type VersionRecord } from '../registry/registry.js';
import type { EvaluationRecord } from '../registry/records.js';
import { loadResolvedModel, prepareJob } from '../run/bind.js';
import { formatOption, modelReferenceJob, resolveRoot, withModel } from './reference.js';

interface RegistryOption {
  registry?: string;
  json?: boolean;
}

function open(opts: RegistryOption): Registry {
  const root = registryRoot(opts.registry === undefined ? undefined : resolveRoot(opts.registry), 'nightscore model');
  return new Registry(root);
}

function print(opts: RegistryOption, json: unknown, text: () => string): number {
  process.stdout.write(opts.json ? `${JSON.stringify(json, null, 2)}\n` : `${text()}\n`);
  return 0;
}

/** `k=v` options into a map; a value of a metric that reads as a number is one. */
function pairs(option: string, values: string[] | undefined, numbers = false): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const raw of values ?? []) {
    const eq = raw.indexOf('=');
    if (eq < 1) throw new NightscoreError('BAD_OPTION', `${option} takes key=value, got "${raw}"`);
    const value = raw.slice(eq + 1);
    out[raw.slice(0, eq)] = numbers && value.trim() !== '' && Number.isFinite(Number(value)) ? Number(value) : value;
  }
  return out;
}

/** How golden rows are compared: --tolerance, and --job for the binding. */
interface GoldenOption {
  tolerance?: string;
  job?: string;
}

/** How the reference profile is built: --reference, and --reference-job, --reference-format. */
interface ReferenceOption {
  reference?: string;
  referenceJob?: string;
  referenceFormat?: string;
}

export async function registerCommand(name: string, file: string, opts: RegistryOption & GoldenOption & ReferenceOption & { alias?: string; tag?: string[]; metric?: string[]; description?: string; reason?: string; check?: string }): Promise<number> {
  if (opts.check === undefined && (opts.tolerance !== undefined || opts.job !== undefined)) {
    throw new NightscoreError('BAD_OPTION', `${opts.tolerance !== undefined ? '--tolerance' : '--job'} goes with --check <golden.csv>`, { hint: 'Give the golden rows to compare: --check golden.csv (docs/registry.md, "Golden rows").' });
  }
  if (opts.reference === undefined && (opts.referenceJob !== undefined || opts.referenceFormat !== undefined)) {
    throw new NightscoreError('BAD_OPTION', `${opts.referenceJob !== undefined ? '--reference-job' : '--reference-format'} goes with --reference <data>`, { hint: 'Give the reference data to profile: --reference validation.parquet (docs/drift.md, "Building a profile").' });
  }
  const golden = opts.check === undefined ? undefined : await goldenCheck(opts.check, opts);
  const reference = opts.reference === undefined ? undefined : await referenceProfile(name, opts.reference, opts);
  const registry = open(opts);
  const record = await registry.register(name, path.resolve(file), {
    alias: opts.alias,
    tags: pairs('--tag', opts.tag) as Record<string, string>,
    metrics: pairs('--metric', opts.metric, true),
    description: opts.description,
    reason: opts.reason,
    check: golden,
    profile: reference?.build,
  });
  const checked = record.checks?.[0];
  const profileUri = registry.profileUri(name, record.version);
  const profile = reference && (await readProfile(profileUri));
  const rows = profile?.profile.reference.rows;
  return print(opts, profile ? { ...record, profile: { uri: profileUri, sha256: profile.sha256, reference: profile.profile.reference } } : record, () =>
    [
      `registered ${versionRef(name, record.version)}  sha256 ${record.sha256}${opts.alias ? `  (${name}@${opts.alias} → ${record.version})` : ''}`,
      ...(checked ? [passedLine(checked)] : []),
      ...(profile && rows ? [`profile attached (${profileUri}, sha256 ${profile.sha256}): ${profile.profile.reference.uri}, ${rows.read} rows read, ${rows.scored} profiled, ${rows.rejected} rejected`] : []),
    ].join('\n'),
  );
}

/**
 * The profile register --reference stores with the version: built from the file being
 * registered, before a version number is claimed, so a reference that cannot be read (a
 * missing column, no rows) registers nothing. The binding is --reference-job's, with this file
 * for its model, else the model's own, as profile build models:/… reads it.
 */
async function referenceProfile(name: string, reference: string, opts: ReferenceOption): Promise<{ build: (model: LoadedModel) => Promise<Profile> }> {
  const format = formatOption('--reference-format', opts.referenceFormat);
  const referenceUri = resolveLocation(reference, process.cwd());
  const bound = opts.referenceJob === undefined ? undefined : await loadJob(path.resolve(opts.referenceJob));
  return {
    build: async (model) => {
      const job: JobDefinition = bound
        ? withModel(bound, model.path)
        : modelReferenceJob(`nightscore model register ${name} --reference`, { model: model.path }, referenceUri, format, '--reference-format');
      // A job that segments its drift needs a profile with those segments (pin.ts refuses one without).
      return buildProfile(await prepareJob(job), referenceUri, { format, segment: job.drift?.segment });
    },
  };
}

/**
 * The check register --check runs on the model it loaded, before claiming a version: a model
 * that disagrees with the golden rows throws, and nothing is registered.
 */
async function goldenCheck(file: string, opts: GoldenOption): Promise<(model: LoadedModel) => Promise<VersionCheck>> {
  const tolerance = parseTolerance(opts.tolerance);
  const binding = await jobBinding(opts.job);
  return async (model) => {
    const result = await checkGolden(model, file, { tolerance, binding });
    if (result.failed > 0) throw checkFailedError(model.path, file, result);
    return asCheck(result);
  };
}

/** nightscore model check: scores the golden rows with a model file or a registered version, and compares. */
export async function checkCommand(model: string, file: string, opts: RegistryOption & GoldenOption): Promise<number> {
  const tolerance = parseTolerance(opts.tolerance);
  const binding = await jobBinding(opts.job);
  const loaded = await loadCandidate(model, opts);
  const result = await checkGolden(loaded.model, file, { tolerance, binding });
  if (opts.json) process.stdout.write(`${JSON.stringify({ model: loaded.name, ...result, passed: result.failed === 0 }, null, 2)}\n`);
  if (result.failed > 0) throw checkFailedError(loaded.name, file, result);
  if (!opts.json) process.stdout.write(`${loaded.name}: ${passedLine(asCheck(result))}\n`);
  return 0;
}

/** A models:/ reference (or name@alias, name/3 when no such file exists), else a model file. */
async function loadCandidate(model: string, opts: RegistryOption): Promise<{ name: string; model: LoadedModel }> {
  if (isModelRef(model) || (!existsSync(model) && isModelRef(`models:/${model}`))) {
    const resolved = await open(opts).resolve(asRef(model));
    const version = versionRef(resolved.name, resolved.version);
    return { name: resolved.ref === version ? version : `${resolved.ref} (${version})`, model: await loadResolvedModel(resolved) };
  }
  return { name: model, model: await loadModel(path.resolve(model)) };
}

/** --job: the job file's binding (model.features, model.input, model.inputs, output.columns, input.missing); its model.uri is not used. */
async function jobBinding(job: string | undefined): Promise<GoldenBinding | undefined> {
  if (job === undefined) return undefined;
  const { model, output, input } = await loadJob(path.resolve(job));
  return { scorer: { features: model.features, input: model.input, inputs: model.inputs, columns: output.columns }, missing: input.missing };
}

function parseTolerance(option: string | undefined): number | undefined {
  if (option === undefined) return undefined;
  const t = Number(option);
  if (option.trim() === '' || !Number.isFinite(t) || t < 0) {
    throw new NightscoreError('BAD_OPTION', `--tolerance takes a number, 0 or more (such as 1e-5), got "${option}"`, { hint: 'A cell passes when |got − expected| ≤ tolerance × (1 + |expected|).' });
  }
  return t;
}

function asCheck(r: GoldenResult): VersionCheck {
  return { kind: 'golden', file: r.file, sha256: r.sha256, rows: r.rows, tolerance: r.tolerance, columns: r.columns, max_abs_diff: r.max_abs_diff, at: new Date().toISOString() };
}

function passedLine(c: VersionCheck): string {
  return `${c.rows} golden rows of ${c.file} match within tolerance ${c.tolerance} (${c.columns.join(', ')}; largest difference ${c.max_abs_diff.toPrecision(3)})`;
}

export async function listCommand(name: string | undefined, opts: RegistryOption): Promise<number> {
  const registry = open(opts);
  if (name === undefined) {
    const models = await Promise.all(
      (await registry.names()).map(async (n) => {
        const [versions, { aliases }] = await Promise.all([registry.versionNumbers(n), registry.aliases(n)]);
        return { name: n, versions: versions.length, latest: versions.at(-1) ?? null, aliases };
      }),
    );
    return print(opts, models, () =>
      models.length === 0
        ? `no models in ${registry.root}`
        : formatTable(['NAME', 'VERSIONS', 'LATEST', 'ALIASES'], models.map((m) => [m.name, String(m.versions), String(m.latest ?? '-'), aliasList(m.aliases)])),
    );
  }
  checkName(name, name);
  const [versions, { aliases }] = await Promise.all([registry.versions(name), registry.aliases(name)]);
  const pointing = (v: number) => Object.keys(aliases).filter((a) => aliases[a] === v);
  return print(opts, versions.map((v) => ({ ...v, aliases: pointing(v.version) })), () =>
    versions.length === 0
      ? `${name} has no versions in ${registry.root}`
      : formatTable(['VERSION', 'ALIASES', 'CREATED', 'BY', 'SHA256', 'DESCRIPTION'], versions.map((v) => [String(v.version), pointing(v.version).join(',') || '-', v.created_at, v.created_by, v.sha256.slice(0, 12), v.description])),
  );
}

export async function showCommand(ref: string, opts: RegistryOption): Promise<number> {
  const registry = open(opts);
  const resolved = await registry.resolve(asRef(ref));
  const { aliases } = await registry.aliases(resolved.name);
  const evaluation = await registry.evaluation(resolved.name, resolved.version);
  const r = resolved.record;
  return print(opts, { ...resolved, aliases, ...(evaluation ? { evaluation } : {}) }, () =>
    [
      `${resolved.ref} → ${r.name} version ${r.version}`,
      `  uri          ${resolved.uri}`,
      `  sha256       ${r.sha256}`,
      `  files        ${r.files.map((f) => `${f.name} (${f.bytes} bytes)`).join(', ')}`,
      `  created      ${r.created_at} by ${r.created_by}, from ${r.source}`,
      ...(r.description ? [`  description  ${r.description}`] : []),
      `  inputs       ${signature(r.signature.inputs)}`,
      `  outputs      ${signature(r.signature.outputs)}`,
      ...(r.features ? [`  features     ${r.features.join(', ')}`] : []),
      ...(Object.keys(r.tags).length ? [`  tags         ${Object.entries(r.tags).map(([k, v]) => `${k}=${v}`).join(', ')}`] : []),
      ...(Object.keys(r.metrics).length ? [`  metrics      ${Object.entries(r.metrics).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}`] : []),
      ...(r.checks ?? []).map((c) => `  checked      ${passedLine(c)}, ${c.at}`),
      ...(evaluation ? [`  evaluated    ${evaluatedLine(evaluation)}`] : []),
      `  aliases      ${aliasList(aliases)}`,
    ].join('\n'),
  );
}

export async function aliasSetCommand(name: string, alias: string, version: string, opts: RegistryOption & { reason?: string; ifGeneration?: string }): Promise<number> {
  const n = optionInteger('<version>', version, { min: 1, max: MAX_VERSION, unit: 'versions' })!;
  const ifGeneration = optionInteger('--if-generation', opts.ifGeneration, { min: 0, max: MAX_GENERATION, unit: 'generations' });
  const event = await open(opts).setAlias(name, alias, n, { reason: opts.reason, ifGeneration });
  return print(opts, event, () => `moved ${name}@${describeMove(event)} (generation ${event.generation})`);
}

/** nightscore model rollback: the alias back to the version its last move took it from. */
export async function rollbackCommand(name: string, alias: string, opts: RegistryOption & { reason?: string; ifGeneration?: string }): Promise<number> {
  const ifGeneration = optionInteger('--if-generation', opts.ifGeneration, { min: 0, max: MAX_GENERATION, unit: 'generations' });
  const event = await open(opts).rollback(name, alias, { reason: opts.reason, ifGeneration });
  return print(opts, event, () =>
    [
      `rolled back ${name}@${describeMove(event)} (generation ${event.generation})`,
      `  the dates version ${event.from} scored are stale now; score them again with: nightscore backfill <job.yaml> --from <date> --to <date> --reprocess stale`,
    ].join('\n'),
  );
}

export async function aliasDeleteCommand(name: string, alias: string, opts: RegistryOption & { reason?: string; ifGeneration?: string }): Promise<number> {
  checkAlias(alias, alias);
  const ifGeneration = optionInteger('--if-generation', opts.ifGeneration, { min: 0, max: MAX_GENERATION, unit: 'generations' });
  const event = await open(opts).setAlias(name, alias, null, { reason: opts.reason, ifGeneration });
  return print(opts, event, () => `deleted ${name}@${alias} (it pointed to ${event.from ?? 'nothing'}; generation ${event.generation})`);
}

export async function aliasHistoryCommand(name: string, alias: string | undefined, opts: RegistryOption): Promise<number> {
  checkName(name, name);
  const { moves, unmoved } = await open(opts).aliasHistoryWithGates(name, alias);
  // A promotion gate's report sits beside the move it made; a gate that moved nothing is listed after.
  const gated = moves.some((m) => m.gate !== null) || unmoved.length > 0;
  const json = gated ? moves : moves.map(({ gate: _, ...m }) => m);
  return print(opts, json, () => {
    if (moves.length === 0 && !gated) return `${name}${alias ? `@${alias}` : ''} has never been moved`;
    const header = ['WHEN', 'ALIAS', 'FROM', 'TO', 'WHO', 'REASON', ...(gated ? ['GATE'] : [])];
    const rows = moves.map((m) => [m.at, m.alias, m.from === null ? '-' : String(m.from), m.to === null ? '(deleted)' : String(m.to), m.by, m.reason, ...(gated ? [m.gate ? gateLine(m.gate) : '-'] : [])]);
    const lines = [formatTable(header, rows)];
    if (unmoved.length > 0) lines.push('', 'gate reports that moved nothing:', ...unmoved.map((g) => `  ${g.at}  ${g.from_alias} (version ${g.version}) → ${g.alias}: ${gateLine(g)}`));
    return lines.join('\n');
  });
}

/** A gate's verdict in a line: `pass (churn-daily 2026-03-01…2026-03-03)`, or what failed or was not sure. */
function gateLine(g: GateEvent): string {
  const not = g.conditions.filter((c) => c.result !== 'pass').map((c) => `${c.name} ${c.result}: ${c.detail}`);
  return `${g.verdict} (${g.window.job} ${g.window.from}…${g.window.to})${not.length > 0 ? `; ${not.join('; ')}` : ''}`;
}

export async function verifyCommand(ref: string, opts: RegistryOption): Promise<number> {
  const registry = open(opts);
  const resolved = await registry.resolve(asRef(ref));
  const bad = await registry.verify(resolved);
  const sound = bad.length === 0;
  if (opts.json) process.stdout.write(`${JSON.stringify({ ref: resolved.ref, name: resolved.name, version: resolved.version, sha256: resolved.record.sha256, sound, bad }, null, 2)}\n`);
  if (!sound) {
    const b = bad[0]!;
    throw new NightscoreError('REGISTRY_CORRUPT', `${resolved.name} version ${resolved.version}: ${bad.length} of ${resolved.files.length} stored file(s) are not the bytes registered: ${b.file} has ${b.found === null ? 'gone' : `sha256 ${b.found}`}, registered with ${b.expected}`, {
      source: b.file,
      hint: 'Restore the file from a backup or the bucket\'s object versions, or register the model again as a new version and move its aliases.',
    });
  }
  if (!opts.json) process.stdout.write(`${versionRef(resolved.name, resolved.version)}: ${resolved.files.length} file(s) hold the bytes registered (sha256 ${resolved.record.sha256})\n`);
  return 0;
}

export async function downloadCommand(ref: string, file: string, opts: RegistryOption): Promise<number> {
  const registry = open(opts);
  const resolved = await registry.resolve(asRef(ref));
  await registry.download(resolved, path.resolve(file));
  return print(opts, { ref: resolved.ref, name: resolved.name, version: resolved.version, sha256: resolved.record.sha256, file: path.resolve(file) }, () => `${versionRef(resolved.name, resolved.version)} → ${path.resolve(file)} (sha256 ${resolved.record.sha256} verified)`);
}

/** The CLI takes `churn@champion` and `churn/3` as well as the full `models:/…` form. */
function asRef(ref: string): string {
  return isModelRef(ref) ? ref : `models:/${ref}`;
}

function aliasList(aliases: Record<string, number>): string {
  const names = Object.keys(aliases);
  return names.length === 0 ? '-' : names.map((a) => `${a}→${aliases[a]}`).join(', ');
}

function signature(tensors: VersionRecord['signature']['inputs']): string {
  return tensors.map((t) => `${t.name} ${t.type}[${t.shape.join(',')}]`).join(', ');
}

/** nightscore model profile attach <ref> <profile.json>: the version's reference profile, which runs of it measure drift against (docs/drift.md). */
export async function profileAttachCommand(ref: string, file: string, opts: RegistryOption): Promise<number> {
  const registry = open(opts);
  const { resolved, uri, sha256 } = await registry.attachProfile(asRef(ref), path.resolve(file));
  if (opts.json) process.stdout.write(`${JSON.stringify({ ref: resolved.ref, name: resolved.name, version: resolved.version, profile: { uri, sha256 } }, null, 2)}\n`);
  else process.stdout.write(`${versionRef(resolved.name, resolved.version)}: profile attached (${uri}, sha256 ${sha256}); its runs measure drift against it\n`);
  return 0;
}

/** `roc_auc 0.8476, log_loss 0.4173, … on <data> (996 rows), <at>; bounds passed`: a recorded evaluation on one line. */
function evaluatedLine(e: EvaluationRecord): string {
  const shown = Object.entries(e.metrics)
    .filter(([k]) => k !== 'rows' && k !== 'positives')
    .map(([k, v]) => `${k} ${v === null ? 'undefined' : v.toPrecision(4)}`)
    .join(', ');
  const verdict = e.bounds.length === 0 ? '' : e.passed ? '; every bound passed' : `; failed ${e.bounds.filter((b) => !b.passed).map((b) => `${b.kind} ${b.metric}=${b.value}`).join(', ')}`;
  return `${shown} on ${e.data} (${e.rows.evaluated} rows), ${e.at}${verdict}`;
}
