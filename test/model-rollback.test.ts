import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toNightscoreError } from '../src/errors.js';
import { Registry } from '../src/registry/registry.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

/**
 * nightscore model rollback: an alias goes back to the version its last move took it from, by
 * compare-and-swap, and the history keeps the move and its rollback.
 */
const MODEL = path.join(REPO, 'models/churn/model.onnx');
const MLP = path.join(REPO, 'models/torch-mlp/model.onnx');

let ws: Workspace;
let registry: Registry;
beforeAll(async () => {
  ws = await Workspace.create();
  registry = new Registry(ws.path('registry'));
  await registry.register('churn', MODEL, { alias: 'champion' });
  await registry.register('churn', MLP);
});
afterAll(async () => {
  await ws?.remove();
});

describe('nightscore model rollback', () => {
  it('moves the alias back to the version it came from, with the reason, and the history holds both moves', async () => {
    await registry.setAlias('churn', 'champion', 2, { reason: 'promoted' });
    const res = await runCli(['model', 'rollback', 'churn', 'champion', '--reason', 'AUC fell', '--registry', ws.path('registry')]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^rolled back churn@champion 2 → 1 at \S+ by \S+ \(generation 3\)\n {2}the dates version 2 scored are stale now/);
    expect((await registry.aliases('churn')).aliases.champion).toBe(1);
    const moves = await registry.aliasHistory('churn', 'champion');
    expect(moves.map((m) => [m.from, m.to])).toEqual([[null, 1], [1, 2], [2, 1]]);
    expect(moves[2]!.reason).toMatch(/^rollback to 1 \(undoing 1 → 2 of \S+\): AUC fell$/);
  });

  it('has nothing to roll back to when the alias was only ever set once', async () => {
    await registry.setAlias('churn', 'fresh', 2);
    const res = await runCli(['model', 'rollback', 'churn', 'fresh', '--registry', ws.path('registry')]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/nightscore: MODEL_ALIAS_NO_PREVIOUS: churn@fresh points at version 2, and its last move \(fresh \(unset\) → 2 at \S+ by \S+\) set it for the first time: there is no earlier version to roll back to/);
    expect((await registry.aliases('churn')).aliases.fresh).toBe(2);
    const unset = await runCli(['model', 'rollback', 'churn', 'nope', '--registry', ws.path('registry')]);
    expect(unset.code).toBe(1);
    expect(unset.stderr).toMatch(/nightscore: MODEL_ALIAS_NOT_FOUND: churn has no alias "nope" to roll back \(its aliases are [a-z, ]*champion/);
  });

  it('is a compare-and-swap: of two rollbacks started together one moves the alias, the other meets ALIAS_CONFLICT', async () => {
    await registry.setAlias('churn', 'race', 1);
    await registry.setAlias('churn', 'race', 2);
    const outcomes = await Promise.allSettled([registry.rollback('churn', 'race'), registry.rollback('churn', 'race')]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect(toNightscoreError(refused.reason).code).toBe('ALIAS_CONFLICT');
    expect((await registry.aliases('churn')).aliases.race).toBe(1);
    const stale = await runCli(['model', 'rollback', 'churn', 'race', '--if-generation', '1', '--registry', ws.path('registry')]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('nightscore: ALIAS_CONFLICT');
  });
});
