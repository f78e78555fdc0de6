/** nightscore model …: the registry from the command line. Tables for people, --json for scripts. */
import path from 'node:path';
import { optionInteger } from '../env.js';
import { NightscoreError } from '../errors.js';
import { formatTable } from '../observe/table.js';
import { MAX_GENERATION } from '../registry/records.js';
import { checkAlias, checkName, isModelRef, MAX_VERSION, versionRef } from '../registry/ref.js';
import { describeMove, Registry, registryRoot, type AliasEvent, type VersionRecord } from '../registry/registry.js';

interface RegistryOption {
  registry?: string;
  json?: boolean;
}

function open(opts: RegistryOption): Registry {
  const root = registryRoot(opts.registry === undefined ? undefined : resolveRoot(opts.registry), 'nightscore model');
  return new Registry(root);
}

/** A relative folder is the working directory's; URIs stay. */
function resolveRoot(root: string): string {
  return /^[a-z][a-z0-9+.-]+:/i.test(root) ? root : path.resolve(root);
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

export async function registerCommand(name: string, file: string, opts: RegistryOption & { alias?: string; tag?: string[]; metric?: string[]; description?: string; reason?: string }): Promise<number> {
  const record = await open(opts).register(name, path.resolve(file), {
    alias: opts.alias,
    tags: pairs('--tag', opts.tag) as Record<string, string>,
    metrics: pairs('--metric', opts.metric, true),
    description: opts.description,
    reason: opts.reason,
  });
  return print(opts, record, () => `registered ${versionRef(name, record.version)}  sha256 ${record.sha256}${opts.alias ? `  (${name}@${opts.alias} → ${record.version})` : ''}`);
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
  const r = resolved.record;
  return print(opts, { ...resolved, aliases }, () =>
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

export async function aliasDeleteCommand(name: string, alias: string, opts: RegistryOption & { reason?: string; ifGeneration?: string }): Promise<number> {
  checkAlias(alias, alias);
  const ifGeneration = optionInteger('--if-generation', opts.ifGeneration, { min: 0, max: MAX_GENERATION, unit: 'generations' });
  const event = await open(opts).setAlias(name, alias, null, { reason: opts.reason, ifGeneration });
  return print(opts, event, () => `deleted ${name}@${alias} (it pointed to ${event.from ?? 'nothing'}; generation ${event.generation})`);
}

export async function aliasHistoryCommand(name: string, alias: string | undefined, opts: RegistryOption): Promise<number> {
  checkName(name, name);
  const moves = await open(opts).aliasHistory(name, alias);
  return print(opts, moves, () =>
    moves.length === 0
      ? `${name}${alias ? `@${alias}` : ''} has never been moved`
      : formatTable(['WHEN', 'ALIAS', 'FROM', 'TO', 'WHO', 'REASON'], moves.map((m: AliasEvent) => [m.at, m.alias, m.from === null ? '-' : String(m.from), m.to === null ? '(deleted)' : String(m.to), m.by, m.reason])),
  );
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
