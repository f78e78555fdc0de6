import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logisticModel } from '../scripts/onnx-builder.js';
import { runCli, Workspace } from './support/workspace.js';

/** `nightscore model …` as docs/registry.md shows it: tables for people, --json for scripts. */

let ws: Workspace;
let env: Record<string, string>;
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const v1 = logisticModel({ weights: [1, 2], bias: 0, featureNames: ['x', 'y'] });
const v2 = logisticModel({ weights: [2, 1], bias: 0, featureNames: ['x', 'y'] });

beforeAll(async () => {
  ws = await Workspace.create();
  await ws.write('v1.onnx', v1);
  await ws.write('v2.onnx', v2);
  env = { NIGHTSCORE_REGISTRY_URI: ws.path('registry'), NIGHTSCORE_USER: 'ana' };
});
afterAll(async () => ws?.remove());

const cli = async (...args: string[]) => {
  const res = await runCli(['model', ...args], { env, cwd: ws.dir });
  return { ...res, json: () => JSON.parse(res.stdout) as unknown };
};

describe('nightscore model', () => {
  it('registers, lists, moves aliases, shows their history, verifies and downloads', async () => {
    const reg = await cli('register', 'churn', 'v1.onnx', '--alias', 'champion', '--tag', 'team=growth', '--metric', 'auc=0.81', '--description', 'baseline');
    expect(reg.code, reg.stderr).toBe(0);
    expect(reg.stdout).toBe(`registered models:/churn/1  sha256 ${sha(v1)}  (churn@champion → 1)\n`);
    const second = await cli('register', 'churn', 'v2.onnx', '--json');
    expect(second.json()).toMatchObject({ name: 'churn', version: 2, sha256: sha(v2), created_by: 'ana', features: ['x', 'y'] });

    const list = await cli('list');
    expect(list.stdout.split('\n')[0]).toMatch(/^NAME\s+VERSIONS\s+LATEST\s+ALIASES$/);
    expect(list.stdout).toMatch(/churn\s+2\s+2\s+champion→1/);
    const versions = (await cli('list', 'churn', '--json')).json() as Array<{ version: number; aliases: string[]; tags: object; metrics: object }>;
    expect(versions.map((v) => [v.version, v.aliases])).toEqual([[1, ['champion']], [2, []]]);
    expect(versions[0]).toMatchObject({ tags: { team: 'growth' }, metrics: { auc: 0.81 } });

    const move = await cli('alias', 'set', 'churn', 'champion', '2', '--reason', 'better auc');
    expect(move.code, move.stderr).toBe(0);
    expect((await cli('show', 'churn@champion', '--json')).json()).toMatchObject({ ref: 'models:/churn@champion', version: 2, alias: 'champion', record: { sha256: sha(v2) } });
    const show = await cli('show', 'models:/churn/1');
    expect(show.stdout).toContain('models:/churn/1 → churn version 1');
    expect(show.stdout).toMatch(/inputs\s+input float32\[N,2\]/);

    const history = await cli('alias', 'history', 'churn');
    const lines = history.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^WHEN\s+ALIAS\s+FROM\s+TO\s+WHO\s+REASON$/);
    expect(lines.slice(1).map((l) => l.split(/\s{2,}/).slice(1))).toEqual([
      ['champion', '-', '1', 'ana', 'registered version 1'],
      ['champion', '1', '2', 'ana', 'better auc'],
    ]);

    const verify = await cli('verify', 'churn@champion');
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain('1 file(s) hold the bytes registered');
    const dl = await cli('download', 'churn/1', 'copy/model.onnx');
    expect(dl.code, dl.stderr).toBe(0);
    expect(sha(await readFile(ws.path('copy', 'model.onnx')))).toBe(sha(v1));

    const deleted = await cli('alias', 'delete', 'churn', 'champion', '--reason', 'retired');
    expect(deleted.code, deleted.stderr).toBe(0);
    const twice = await cli('alias', 'delete', 'churn', 'champion');
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain('MODEL_ALIAS_NOT_FOUND: churn has no alias "champion" to delete');
    const gone = await cli('show', 'churn@champion');
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('nightscore: MODEL_ALIAS_NOT_FOUND: models:/churn@champion: churn has no alias "champion"');
  });

  it('scores a job that names the alias from a local registry, with the version it points to', async () => {
    await cli('register', 'local', 'v1.onnx', '--alias', 'champion');
    await cli('register', 'local', 'v2.onnx');
    await cli('alias', 'set', 'local', 'champion', '2');
    await ws.write('in/dt=2026-05-01/a.csv', 'id,x,y\nr1,1,0\nr2,0,1\n');
    const file = await ws.job('local.yaml', { name: 'local', registry: 'registry', input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] }, model: { uri: 'models:/local@champion' }, output: { uri: 'out/dt={date}/', format: 'csv', columns: { probabilities: ['p0', 'p1'] } } });
    const res = await runCli(['run', file, '--date', '2026-05-01'], { env: { NIGHTSCORE_REGISTRY_URI: '' } });
    expect(res.code, res.stderr).toBe(0);
    // v2 has weights [2, 1]: r1 scores sigmoid(2), r2 sigmoid(1).
    const rows = (await ws.csv('out/dt=2026-05-01/part-00000.csv')).slice(1);
    expect(rows.map((r) => [r[0], Number(r[2]).toFixed(5)])).toEqual([['r1', (1 / (1 + Math.exp(-2))).toFixed(5)], ['r2', (1 / (1 + Math.exp(-1))).toFixed(5)]]);
    expect((await ws.manifest('out/dt=2026-05-01')).model).toMatchObject({ ref: 'models:/local@champion', name: 'local', version: 2, alias: 'champion', sha256: sha(v2), path: ws.path('registry', 'local', 'versions', '2', 'model.onnx') });
  });

  it('lets exactly one of four processes racing to move an alias from one generation win; the others say ALIAS_CONFLICT once and exit 1', async () => {
    await cli('register', 'race', 'v1.onnx', '--alias', 'champion');
    await cli('register', 'race', 'v2.onnx');
    const moves = (await cli('alias', 'history', 'race', '--json')).json() as Array<{ generation: number }>;
    const from = moves.at(-1)!.generation;
    // Whether a loser lost at the generation check or at the swap, it is told the same way
    // (the swap itself, raced from one read, is proven in registry.test.ts).
    const results = await Promise.all([1, 2, 1, 2].map((v) => cli('alias', 'set', 'race', 'champion', String(v), '--if-generation', String(from))));
    expect(results.map((r) => r.code).sort()).toEqual([0, 1, 1, 1]);
    for (const r of results.filter((x) => x.code === 1)) expect(r.stderr.match(/nightscore: ALIAS_CONFLICT/g)).toHaveLength(1);
    const after = (await cli('alias', 'history', 'race', '--json')).json() as Array<{ generation: number }>;
    expect(after.map((m) => m.generation)).toEqual([from, from + 1]);
  });

  it('refuses an alias generation no registry reaches, at once and cleanly, where it used to kill the process', async () => {
    await cli('register', 'claims', 'v1.onnx', '--alias', 'champion');
    const file = ws.path('registry', 'claims', 'aliases.json');
    const doc = JSON.parse(await readFile(file, 'utf8')) as { generation: number; last: { generation: number } };
    doc.generation = doc.last.generation = 1e12;
    await writeFile(file, JSON.stringify(doc));
    const started = Date.now();
    const history = await cli('alias', 'history', 'claims');
    expect(history.code, history.stderr).toBe(1);
    expect(history.stderr).toContain(`REGISTRY_CORRUPT: file://${file}: generation is 1000000000000, expected a whole number from 0 to 999999999`);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('downloads nothing above its target for a version.json naming a file outside its folder', async () => {
    await cli('register', 'deep', 'v1.onnx');
    await ws.write('registry/deep/evil/pwned.txt', 'pwned');
    const file = ws.path('registry', 'deep', 'versions', '1', 'version.json');
    const record = JSON.parse(await readFile(file, 'utf8')) as { files: Array<{ name: string; sha256: string; bytes: number }> };
    record.files.push({ name: '../../evil/pwned.txt', sha256: sha(Buffer.from('pwned')), bytes: 5 });
    await writeFile(file, JSON.stringify(record));
    const dl = await cli('download', 'deep/1', 'deep-copy/a/b/model.onnx');
    expect(dl.code).toBe(1);
    expect(dl.stderr).toContain(`REGISTRY_CORRUPT: file://${file}: files[1].name is "../../evil/pwned.txt", expected a plain file name`);
    expect(await readdir(ws.path('deep-copy'), { recursive: true }).catch(() => [])).not.toContain(path.join('evil', 'pwned.txt'));
  });

  it('says what to set when no registry is given, and which forms a reference takes', async () => {
    const unset = await runCli(['model', 'list'], { env: { NIGHTSCORE_REGISTRY_URI: '' }, cwd: ws.dir });
    expect(unset.code).toBe(2);
    expect(unset.stderr).toContain('nightscore: REGISTRY_NOT_SET');
    const bad = await cli('show', 'models:/churn');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('MODEL_REF_INVALID: "models:/churn" is not a model reference: it names no alias or version');
  });
});
