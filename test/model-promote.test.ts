import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { day, driftModel, FEATURES } from './support/drift-day.js';
import { runCli, startCli, Workspace } from './support/workspace.js';

/**
 * The promotion gate (docs/shadow.md, "The promotion gate"): `model promote` reads the
 * comparisons of a job's last days and moves the alias only on a pass; a fail names its
 * condition, and a window it cannot trust (a missing day, another challenger version) is
 * inconclusive, exit 3, with nothing moved.
 */

let ws: Workspace;
let env: Record<string, string>;
const DAYS = ['2026-03-01', '2026-03-02', '2026-03-03'];

const cli = (...args: string[]) => runCli(args, { env });
const aliases = async () => JSON.parse(await ws.read('registry/m/aliases.json')) as { generation: number; aliases: Record<string, number> };

beforeAll(async () => {
  ws = await Workspace.create();
  env = { NIGHTSCORE_REGISTRY_URI: ws.path('registry') };
  await ws.write('v1.onnx', driftModel(-0.2));
  // Close to the champion: a few decisions near 0.5 change.
  await ws.write('v2.onnx', driftModel(-0.15));
  await ws.write('v3.onnx', driftModel(0.6));
  for (const [file, alias] of [['v1.onnx', 'champion'], ['v2.onnx', 'challenger'], ['v3.onnx', undefined]] as const) {
    const registered = await cli('model', 'register', 'm', ws.path(file), ...(alias ? ['--alias', alias] : []));
    expect(registered.code, registered.stderr).toBe(0);
  }
  await ws.job('job.yaml', {
    name: 'daily',
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] },
    model: { uri: 'models:/m@champion', inputs: { num: FEATURES, region: 'region' } },
    output: { uri: 'out/dt={date}/', format: 'csv' },
    shadow: [{ uri: 'models:/m@challenger' }],
  });
  for (const [i, date] of [...DAYS, '2026-03-04'].entries()) await ws.write(`in/dt=${date}/a.csv`, day(2000, 20 + i));
  for (const date of DAYS) {
    const run = await cli('run', ws.path('job.yaml'), '--date', date);
    expect(run.code, run.stderr).toBe(0);
  }
  await ws.write('gate.yaml', 'min_days: 3\nmin_rows: 3000\nagreement: { min: 0.9 }\nscore_js: { max: 0.2 }\nreject_rate_delta: { max: 0.001 }\n');
  await ws.write('strict.yaml', 'min_days: 3\nagreement: { min: 0.9999 }\n');
});
afterAll(async () => {
  await ws?.remove();
});

const promote = (gate: string, date: string, ...more: string[]) => cli('model', 'promote', 'm', '--from', 'challenger', '--to', 'champion', '--gate', ws.path(gate), '--job', ws.path('job.yaml'), '--date', date, ...more);

describe('model promote', () => {
  it('--dry-run judges and moves nothing, stores nothing', async () => {
    const before = await ws.read('registry/m/aliases.json');
    const dry = await promote('gate.yaml', '2026-03-03', '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^agreement\s+0\.9\d*\s+≥ 0\.9\s+pass/m);
    expect(dry.stdout).toContain('pass: --dry-run: m@champion would move 1 → 2');
    expect(await ws.read('registry/m/aliases.json')).toBe(before);
    expect((await ws.list('registry/m/events')).filter((f) => f.includes('-gate-'))).toEqual([]);
  });

  it('is inconclusive (exit 3, nothing moved) with a day missing from the window', async () => {
    const missing = await promote('gate.yaml', '2026-03-04');
    expect(missing.code, missing.stderr).toBe(3);
    expect(missing.stdout).toMatch(/^min_days\s+2\s+≥ 3 consecutive days\s+inconclusive\s+2026-03-04: no run$/m);
    expect(missing.stdout).toContain('inconclusive: m@champion stays at 1');
    expect((await aliases()).aliases.champion).toBe(1);
  });

  it('fails naming the condition when agreement is below its bound', async () => {
    const failed = await promote('strict.yaml', '2026-03-03');
    expect(failed.code, failed.stderr).toBe(1);
    expect(failed.stdout).toMatch(/^agreement\s+0\.9\d*\s+≥ 0\.9999\s+fail\s+\d+ of 6000 rows agree$/m);
    expect((await aliases()).aliases.champion).toBe(1);
  });

  it('passes with enough agreeing days; of two promotes racing on one generation only one moves the alias', async () => {
    const generation = (await aliases()).generation;
    const racers = [0, 1].map(() => startCli(['model', 'promote', 'm', '--from', 'challenger', '--to', 'champion', '--gate', ws.path('gate.yaml'), '--job', ws.path('job.yaml'), '--date', '2026-03-03', '--if-generation', String(generation)], env));
    const results = await Promise.all(racers.map((r) => r.done));
    expect(results.map((r) => r.code).sort()).toEqual([0, 1]);
    const loser = results.find((r) => r.code !== 0)!;
    expect(loser.stderr).toContain('ALIAS_CONFLICT');
    expect(await aliases()).toMatchObject({ generation: generation + 1, aliases: { champion: 2, challenger: 2 } });

    const history = await cli('model', 'alias', 'history', 'm', 'champion');
    const lines = history.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^WHEN\s+ALIAS\s+FROM\s+TO\s+WHO\s+REASON\s+GATE$/);
    expect(lines[2]).toMatch(/champion\s+1\s+2\s+.*promoted by the gate of gate\.yaml on daily 2026-03-01…2026-03-03\s+pass \(daily 2026-03-01…2026-03-03\)$/);
    // The two judgements that moved nothing are kept too.
    expect(history.stdout).toMatch(/gate reports that moved nothing:\n.*challenger \(version 2\) → champion: inconclusive \(daily 2026-03-02…2026-03-04\); min_days inconclusive: 2026-03-04: no run/);
    expect(history.stdout).toMatch(/challenger \(version 2\) → champion: fail \(daily 2026-03-01…2026-03-03\); agreement fail/);
  });

  it('is inconclusive when the challenger version changed within the window', async () => {
    expect((await cli('model', 'alias', 'set', 'm', 'challenger', '3')).code).toBe(0);
    expect((await cli('run', ws.path('job.yaml'), '--date', '2026-03-04')).code).toBe(0);
    const changed = await promote('gate.yaml', '2026-03-04');
    expect(changed.code, changed.stderr).toBe(3);
    expect(changed.stdout).toMatch(/min_days\s+1\s+≥ 3 consecutive days\s+inconclusive\s+2026-03-02: another challenger version \(sha256 [0-9a-f]{12}…\); 2026-03-03: another challenger version/);
    expect((await aliases()).aliases.champion).toBe(2);
  });

  it('rollback restores the previous version, and the history holds both moves', async () => {
    const back = await cli('model', 'rollback', 'm', 'champion', '--reason', 'the gate was too kind');
    expect(back.code, back.stderr).toBe(0);
    expect((await aliases()).aliases.champion).toBe(1);
    const moves = JSON.parse((await cli('model', 'alias', 'history', 'm', 'champion', '--json')).stdout) as Array<{ from: number | null; to: number; gate: { verdict: string } | null }>;
    expect(moves.map((m) => `${m.from}→${m.to} ${m.gate?.verdict ?? '-'}`)).toEqual(['null→1 -', '1→2 pass', '2→1 -']);
  });
});
