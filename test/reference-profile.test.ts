import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeDemoDay } from '../src/demo/demo.js';
import { loadJob } from '../src/job/load.js';
import { Registry } from '../src/registry/registry.js';
import { TORCH_MLP, TORCH_MLP_FEATURES, torchMlpDay } from './support/torch-mlp.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

/**
 * A reference profile with no job file (docs/drift.md, "Building a profile"): `profile build
 * models:/name@alias` reads the reference with the model's own binding, as a job with only
 * `model.uri` would; `model register --reference` builds it from the file being registered and
 * stores it with the version, or registers nothing.
 */

const MODEL = path.join(REPO, 'models', 'churn', 'model.onnx');
const DATE = '2026-03-01';
/** The shipped demo job's renaming of the churn model's outputs. */
const RENAMED = { label: 'churn_predicted', probabilities: ['p_stay', 'p_churn'] };

let ws: Workspace;
let env: Record<string, string>;
let reference: string;
/** The profile of the reference built with a job file whose model is the file itself. */
let byPath: string;

const job = (name: string, model: string, input: string, columns?: Record<string, unknown>) => ({
  name,
  input: { uri: input, format: 'csv' },
  model: { uri: model },
  output: { uri: `out/${name}/dt={date}/`, format: 'csv', ...(columns ? { columns } : {}) },
});

/** The error a command printed: its `nightscore: CODE: …` line and its hint (log lines may land between). */
const errorOf = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('nightscore: ') || l.startsWith('  hint: '));

beforeAll(async () => {
  ws = await Workspace.create();
  env = { NIGHTSCORE_REGISTRY_URI: ws.path('registry') };
  await ws.job('by-path.yaml', job('by-path', MODEL, 'ref/'));
  // The demo's customers, with its untidiness: columns in another order, an extra one, a few broken rows.
  await writeDemoDay(await loadJob(ws.path('by-path.yaml')), DATE, { rows: 6_000, files: 1, seed: 3 });
  reference = ws.path('ref', 'customers-000.csv');
  await ws.job('daily.yaml', job('daily', 'models:/churn@champion', 'in/dt={date}/'));
  await writeDemoDay(await loadJob(ws.path('daily.yaml')), DATE, { rows: 2_000, files: 1, seed: 4 });
  await new Registry(ws.path('registry')).register('churn', MODEL, { alias: 'champion' });
  byPath = ws.path('by-path.json');
  const built = await runCli(['profile', 'build', ws.path('by-path.yaml'), reference, '-o', byPath]);
  expect(built.code, built.stderr).toBe(0);
});
afterAll(async () => {
  await ws?.remove();
});

describe('profile build models:/name@alias', () => {
  it('writes the bytes a job with only model.uri writes, by alias or by version; rejected rows counted, not profiled', async () => {
    const byAlias = await runCli(['profile', 'build', 'models:/churn@champion', reference, '-o', ws.path('by-alias.json')], { env });
    expect(byAlias.code, byAlias.stderr).toBe(0);
    const byVersion = await runCli(['profile', 'build', 'models:/churn/1', reference], { env });
    expect(byVersion.code, byVersion.stderr).toBe(0);
    const expected = await readFile(byPath, 'utf8');
    expect(await ws.read('by-alias.json')).toBe(expected);
    expect(byVersion.stdout).toBe(expected);
    const profile = JSON.parse(expected);
    expect(profile.model.sha256).toBe((await new Registry(ws.path('registry')).record('churn', 1)).sha256);
    expect(profile.reference.uri).toBe(reference);
    expect(profile.reference.rows.rejected).toBeGreaterThan(0);
    expect(profile.reference.rows.scored + profile.reference.rows.rejected).toBe(6_000);
  });

  it("differs from the demo job's profile only in what that job renames: the prediction columns", async () => {
    await ws.job('renamed.yaml', job('renamed', MODEL, 'ref/', RENAMED));
    expect((await runCli(['profile', 'build', ws.path('renamed.yaml'), reference, '-o', ws.path('renamed.json')])).code).toBe(0);
    const own = JSON.parse(await readFile(byPath, 'utf8'));
    const renamed = JSON.parse(await ws.read('renamed.json'));
    expect(renamed.model.outputs).toEqual(['churn_predicted', 'p_stay', 'p_churn']);
    const named = new Map<string, string>(own.model.outputs.map((o: string, i: number) => [renamed.model.outputs[i], o]));
    renamed.model.outputs = own.model.outputs;
    for (const c of renamed.columns) c.name = named.get(c.name) ?? c.name;
    expect(renamed).toEqual(own);
  });

  it('says what it needs: a registry, and the format of a reference its name does not tell', async () => {
    const unset = await runCli(['profile', 'build', 'models:/churn@champion', reference], { env: { NIGHTSCORE_REGISTRY_URI: '' } });
    expect(unset.code).toBe(2);
    expect(unset.stderr).toContain('nightscore: REGISTRY_NOT_SET: nightscore profile build models:/churn@champion needs a registry, and none is set');
    const folder = await runCli(['profile', 'build', 'models:/churn@champion', ws.path('ref')], { env });
    expect(folder.code).toBe(2);
    expect(folder.stderr).toContain(`BAD_OPTION: nightscore profile build models:/churn@champion: the name of the reference ${ws.path('ref')} does not say its format`);
    const given = await runCli(['profile', 'build', 'models:/churn@champion', ws.path('ref'), '--format', 'csv', '--registry', ws.path('registry')]);
    expect(given.code, given.stderr).toBe(0);
    expect(JSON.parse(given.stdout).columns).toEqual(JSON.parse(await readFile(byPath, 'utf8')).columns);
  });
});

describe('model register --reference', () => {
  it('stores the profile with the version, and runs of models:/… measure drift against it', async () => {
    const res = await runCli(['model', 'register', 'churn', MODEL, '--alias', 'champion', '--reference', reference], { env });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^registered models:\/churn\/2 {2}sha256 [0-9a-f]{64} {2}\(churn@champion → 2\)\nprofile attached \(.*registry\/churn\/versions\/2\/profile\.json, sha256 [0-9a-f]{64}\): .*customers-000\.csv, 6000 rows read, \d+ profiled, [1-9]\d* rejected\n$/);
    expect(await ws.read('registry/churn/versions/2/profile.json')).toBe(await readFile(byPath, 'utf8'));

    const run = await runCli(['run', ws.path('daily.yaml'), '--date', DATE], { env });
    expect(run.code, run.stderr).toBe(0);
    const manifest = await ws.manifest(`out/daily/dt=${DATE}`);
    expect(manifest.model).toMatchObject({ name: 'churn', version: 2 });
    expect(manifest.drift).toMatchObject({ mode: 'warn', profile: { uri: expect.stringMatching(/registry\/churn\/versions\/2\/profile\.json$/) } });
    expect(JSON.parse(await ws.read(`out/daily/dt=${DATE}/_drift.json`)).columns.map((c: { name: string }) => c.name)).toContain('nps_score');
  });

  it("with --reference-job, reads it with that job's binding: the profile fits that job's runs", async () => {
    await ws.job('renamed-daily.yaml', job('renamed-daily', 'models:/churn@renamed', 'in/dt={date}/', RENAMED));
    const res = await runCli(['model', 'register', 'churn', MODEL, '--alias', 'renamed', '--reference', reference, '--reference-job', ws.path('renamed-daily.yaml'), '--json'], { env });
    expect(res.code, res.stderr).toBe(0);
    const registered = JSON.parse(res.stdout);
    expect(registered).toMatchObject({ version: 3, profile: { uri: expect.stringMatching(/registry\/churn\/versions\/3\/profile\.json$/), reference: { uri: reference } } });
    const run = await runCli(['run', ws.path('renamed-daily.yaml'), '--date', DATE], { env });
    expect(run.code, run.stderr).toBe(0);
    expect((await ws.manifest(`out/renamed-daily/dt=${DATE}`)).drift).toMatchObject({ profile: { sha256: registered.profile.sha256 } });
    // The model's own binding names its outputs otherwise: that job's runs refuse version 2's profile.
    await ws.job('renamed-daily.yaml', job('renamed-daily', 'models:/churn/2', 'in/dt={date}/', RENAMED));
    const refused = await runCli(['run', ws.path('renamed-daily.yaml'), '--date', DATE], { env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('PROFILE_MISMATCH');
  });

  it('stores the profile of a model with external data, registered from another file name, under the identity its runs have', async () => {
    await ws.write('mlp/mlp.onnx', await readFile(path.join(TORCH_MLP, 'model.onnx')));
    await ws.write('mlp/model.onnx.data', await readFile(path.join(TORCH_MLP, 'model.onnx.data')));
    await torchMlpDay(ws, '2026-02-01', 1_000, 1);
    await torchMlpDay(ws, '2026-03-02', 500, 2);
    await ws.job('mlp.yaml', { name: 'mlp', input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] }, model: { uri: 'models:/mlp@champion', features: TORCH_MLP_FEATURES }, output: { uri: 'out/mlp/dt={date}/', format: 'csv' } });
    const res = await runCli(['model', 'register', 'mlp', ws.path('mlp', 'mlp.onnx'), '--alias', 'champion', '--reference', ws.path('in', 'dt=2026-02-01', 'a.csv'), '--reference-job', ws.path('mlp.yaml'), '--json'], { env });
    expect(res.code, res.stderr).toBe(0);
    const registered = JSON.parse(res.stdout);
    // Under mlp.onnx the files have another identity than under the registry's model.onnx.
    expect(JSON.parse(await ws.read('registry/mlp/versions/1/profile.json')).model.sha256).toBe(registered.sha256);
    const run = await runCli(['run', ws.path('mlp.yaml'), '--date', '2026-03-02'], { env });
    expect(run.code, run.stderr).toBe(0);
    expect((await ws.manifest('out/mlp/dt=2026-03-02')).drift).toMatchObject({ profile: { sha256: registered.profile.sha256 } });
  });

  it('registers nothing when the reference lacks a column the model reads, with the error a run gives', async () => {
    const [header, ...rows] = (await readFile(reference, 'utf8')).trimEnd().split('\n');
    const drop = header!.split(',').indexOf('nps_score');
    const without = (line: string) => line.split(',').filter((_, i) => i !== drop).join(',');
    const lacking = await ws.write('lacking.csv', [header!, ...rows].map(without).join('\n') + '\n');

    const res = await runCli(['model', 'register', 'lacking', MODEL, '--alias', 'champion', '--reference', lacking], { env });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`nightscore: INPUT_MISSING_COLUMN: ${'file://' + lacking}:1: no column "nps_score" (feature)`);
    const registry = new Registry(ws.path('registry'));
    expect(await registry.versionNumbers('lacking', true)).toEqual([]);
    expect((await registry.aliases('lacking')).aliases).toEqual({});

    await ws.job('lacking.yaml', job('lacking', MODEL, 'lacking.csv'));
    const run = await runCli(['run', ws.path('lacking.yaml'), '--date', DATE]);
    expect(run.code).toBe(1);
    expect(errorOf(run.stderr)).toHaveLength(2);
    expect(errorOf(res.stderr)).toEqual(errorOf(run.stderr));
    const built = await runCli(['profile', 'build', 'models:/churn@champion', lacking], { env });
    expect(errorOf(built.stderr)).toEqual(errorOf(run.stderr));
  });
});
