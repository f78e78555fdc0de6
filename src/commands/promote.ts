/**
 * nightscore model promote: judge a challenger by the comparisons of a job's last days
 * (shadow/gate.ts) and, when it passes, move the alias to its version by compare-and-swap.
 * Every verdict but a dry run's is stored among the model's events.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { NightscoreError } from '../errors.js';
import { daysEnding } from '../job/dates.js';
import { loadJob, registryOf } from '../job/load.js';
import { formatTable } from '../observe/table.js';
import { MAX_GENERATION } from '../registry/records.js';
import { checkAlias, checkName, isModelRef, parseModelRef } from '../registry/ref.js';
import { aliasConflict, Registry, registryRoot, type GateEvent } from '../registry/registry.js';
import { judge, parseGate, type Verdict } from '../shadow/gate.js';
import { readGateDays } from '../shadow/read.js';
import { optionInteger } from '../env.js';
import { resolveRoot } from './reference.js';

export interface PromoteOptions {
  from: string;
  to: string;
  gate: string;
  job: string;
  date: string;
  dryRun?: boolean;
  ifGeneration?: string;
  registry?: string;
  json?: boolean;
}

const EXIT: Record<Verdict, number> = { pass: 0, fail: 1, inconclusive: 3 };

export async function promoteCommand(name: string, opts: PromoteOptions): Promise<number> {
  checkName(name, name);
  checkAlias(opts.from, opts.from);
  checkAlias(opts.to, opts.to);
  const ifGeneration = optionInteger('--if-generation', opts.ifGeneration, { min: 0, max: MAX_GENERATION, unit: 'generations' });
  const gateFile = path.resolve(opts.gate);
  const gate = parseGate(await readGateFile(gateFile), gateFile);
  const job = await loadJob(path.resolve(opts.job));
  const uri = (job.shadow ?? []).map((s) => s.uri).find((u) => isModelRef(u) && sameAlias(u, name, opts.from));
  if (uri === undefined) {
    throw new NightscoreError('BAD_OPTION', `${job.file} names no challenger models:/${name}@${opts.from} (its shadow list: ${(job.shadow ?? []).map((s) => s.uri).join(', ') || 'none'})`, {
      hint: `The gate reads the comparisons of a job that scores the challenger beside its model: add { uri: "models:/${name}@${opts.from}" } to its shadow list, and let it run for the gate's days.`,
    });
  }
  const registry = new Registry(registryRoot(opts.registry === undefined ? registryOf(job) : resolveRoot(opts.registry), 'nightscore model promote'));
  // One read of the aliases: the version judged and the generation the move swaps on.
  const doc = await registry.aliases(name);
  // A pinned generation is checked first: a promote that lost a race must not read the winner's move as "already there".
  if (ifGeneration !== undefined && doc.generation !== ifGeneration) throw aliasConflict(name, `the aliases are at generation ${doc.generation}, not ${ifGeneration}`);
  const version = doc.aliases[opts.from];
  if (version === undefined) {
    throw new NightscoreError('MODEL_ALIAS_NOT_FOUND', `${name} has no alias "${opts.from}" (its aliases: ${Object.keys(doc.aliases).join(', ') || 'none'})`, {
      hint: `Point it at the challenger's version first: nightscore model alias set ${name} ${opts.from} <version>.`,
    });
  }
  const record = await registry.record(name, version);
  const dates = daysEnding(opts.date, gate.min_days);
  const days = await readGateDays(job, dates, uri);
  const { verdict, conditions } = judge(gate, days, record.sha256);
  const current = doc.aliases[opts.to] ?? null;
  let moved: number | null = null;
  let note = '';
  if (verdict === 'pass' && !opts.dryRun) {
    if (current === version) note = `${name}@${opts.to} already points at version ${version}: nothing to move`;
    else {
      const reason = `promoted by the gate of ${path.basename(gateFile)} on ${job.name} ${dates[0]}…${dates.at(-1)}`;
      moved = (await registry.setAlias(name, opts.to, version, { reason, ifGeneration: ifGeneration ?? doc.generation })).generation;
      note = `moved ${name}@${opts.to}: ${current ?? '(unset)'} → ${version} (generation ${moved})`;
    }
  } else if (verdict === 'pass') note = `--dry-run: ${name}@${opts.to} would move ${current ?? '(unset)'} → ${version}`;
  else note = `${name}@${opts.to} stays at ${current ?? '(unset)'}`;
  const report: Omit<GateEvent, 'kind' | 'at' | 'by'> = {
    alias: opts.to,
    from_alias: opts.from,
    version,
    sha256: record.sha256,
    verdict,
    conditions,
    window: { job: job.name, from: dates[0]!, to: dates.at(-1)! },
    moved,
    reason: note,
  };
  const stored = opts.dryRun ? undefined : await registry.recordGate(name, report);
  if (opts.json) process.stdout.write(`${JSON.stringify({ ...report, dry_run: opts.dryRun === true, stored: stored !== undefined }, null, 2)}\n`);
  else {
    const table = formatTable(['CONDITION', 'VALUE', 'BOUND', 'RESULT', 'DETAIL'], conditions.map((c) => [c.name, c.value === null ? '-' : String(round(c.value)), c.bound, c.result, c.detail]));
    process.stdout.write(`${name} version ${version} (${opts.from}) → ${opts.to}, judged on ${job.name} ${dates[0]}…${dates.at(-1)}\n${table}\n${verdict}: ${note}\n`);
  }
  return EXIT[verdict];
}

function sameAlias(uri: string, name: string, alias: string): boolean {
  const ref = parseModelRef(uri);
  return ref.name === name && ref.kind === 'alias' && ref.alias === alias;
}

async function readGateFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new NightscoreError('GATE_INVALID', `${file} cannot be read: ${(err as Error).message}`, { source: file, hint: 'Pass the path of a gate file (docs/shadow.md, "The promotion gate").' });
  }
  try {
    return parseYaml(text) as unknown;
  } catch (err) {
    throw new NightscoreError('GATE_INVALID', `${file} is not YAML: ${(err as Error).message.split('\n')[0]}`, { source: file, hint: 'Fix the YAML (docs/shadow.md, "The promotion gate").' });
  }
}

function round(v: number): number {
  return Number(v.toPrecision(6));
}
